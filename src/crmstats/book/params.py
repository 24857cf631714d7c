"""Study parameters: plain data of the declared type, no credentials, parsed as papermill does.

Split from :mod:`crmstats.book.studies` (which re-exports every name here): a
parameter is data, never code (:func:`check_parameter_types`), declared in the
template's ``parameters`` cell (:func:`declared_parameters`,
:func:`validate_parameters`), and anything that looks like a credential is
refused (:func:`check_no_secrets`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from crmstats.book.template import check_template
from crmstats.exceptions import StudyError

__all__ = ["check_no_secrets", "check_parameter_types", "comma_list", "declared_parameters",
           "parse_value", "validate_parameters"]

#: The only value types a parameter may have (exact types: no subclasses), and containers of them.
_PLAIN = (str, int, float, bool, type(None))
_MAX_DEPTH = 10


def _key_label(key: Any) -> str:
    """Label a nested dict key for an error message: shown only if a short plain name."""
    if type(key) is str and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ -]{0,30}", key):
        from crmstats.privacy import find_credential

        if find_credential(key) is None:
            return f"[{key!r}]"
    return "[...]"


def _walk(value: Any, path: str = "", depth: int = 0):
    """Yield ``(path, item, depth)`` for ``value`` and everything in its lists and dicts."""
    yield path, value, depth
    if depth > _MAX_DEPTH:
        return
    if type(value) is list:
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]", depth + 1)
    elif type(value) is dict:
        for k, item in value.items():
            yield from _walk(item, path + _key_label(k), depth + 1)


def check_no_secrets(params: dict[str, Any], where: str) -> None:
    """Refuse parameters whose names or values look like credentials, nested ones included.

    Every string in a value (in lists and dicts at any depth, dict keys too)
    is matched against :data:`crmstats.privacy.CREDENTIAL_PATTERNS`; every
    parameter name and nested dict key against credential words
    (``password``, ``token``, ``api_key``, ...).

    Parameters
    ----------
    params : dict
        Parameter names and values.
    where : str
        Where they come from, for the error message.

    Raises
    ------
    StudyError
        Naming the parameter (and the nested position) and what it looks
        like; the value itself is never repeated in the message.
    """
    from crmstats.privacy import CREDENTIAL_WORDS, find_credential, name_words

    def refuse_name(key: Any, what: str, nested: bool = False) -> None:
        words = name_words(str(key))  # PGPASSWORD holds password
        if nested:  # a nested key may be data ("key accounts"): only setting-like names count
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,40}", str(key)):
                return
            words = ({w for w in words if w not in ("key", "auth")}
                     | ({"key"} if words & {"api", "access", "secret", "private", "account"}
                        and "key" in words else set()))
        words &= CREDENTIAL_WORDS
        if words:
            raise StudyError(
                f"{where}: {what} looks like a credential ({sorted(words)[0]}); "
                "parameters are written into the notebooks and the book, so credentials "
                "must come from environment variables (e.g. PGPASSWORD), not parameters"
            )

    for name, value in params.items():
        refuse_name(name, f"parameter {name!r}")
        for path, item, _ in _walk(value):
            label = f"{name!r}{path}"
            texts = [item]
            if type(item) is dict:
                for key in item:
                    refuse_name(key, f"a key in parameter {label}", nested=True)
                texts += list(item)
            for text in texts:
                what = find_credential(text) if isinstance(text, str) else None
                if what:
                    raise StudyError(
                        f"{where}: the value of parameter {label} looks like a credential "
                        f"({what}); "
                        "credentials must come from environment variables, not parameters "
                        "(the value is not repeated here)"
                    )


def _describe(value: Any) -> str:
    """Name a value's type for an error message (never the value)."""
    import datetime as dt

    kind = type(value)
    if kind is tuple:
        return "a tuple (YAML !!pairs / !!omap give tuples)"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return f"a {kind.__name__} (quote dates in YAML: '2024-03-01')"
    if isinstance(value, set | frozenset):
        return "a set (YAML !!set)"
    if isinstance(value, bytes | bytearray):
        return "binary data (YAML !!binary)"
    names = {bool: "a bool", int: "an int", float: "a float", str: "a str", list: "a list",
             dict: "a dict", type(None): "None"}
    return names.get(kind, f"a {kind.__module__}.{kind.__qualname__} object")


def _split_type(declared: str) -> list[str]:
    """``"Optional[str]"`` -> ``["str", "None"]``; ``"int | float"`` -> ``["int", "float"]``."""
    text = declared.replace(" ", "").replace("typing.", "")
    m = re.fullmatch(r"Optional\[(.*)\]", text)
    if m:
        return [*_split_type(m.group(1)), "None"]
    m = re.fullmatch(r"Union\[(.*)\]", text)
    parts: list[str] = []
    depth, current = 0, ""
    for ch in m.group(1) if m else text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if depth == 0 and ch in ("|," if m else "|"):
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p]


def _matches(value: Any, declared: str) -> bool | None:
    """Whether ``value`` fits ``declared``; None when the declaration is not understood."""
    kind = type(value)
    results = []
    for part in _split_type(declared):
        base, _, inner = part.partition("[")
        inner = inner[:-1] if inner.endswith("]") else inner
        base = base.lower()
        if base in ("none", "nonetype"):
            results.append(value is None)
        elif base == "str":
            results.append(kind is str)
        elif base == "bool":
            results.append(kind is bool)
        elif base == "int":
            results.append(kind is int)
        elif base == "float":
            results.append(kind in (float, int))
        elif base == "list":
            results.append(kind is list and (not inner or all(
                _matches(v, inner) is not False for v in value)))
        elif base == "dict":
            value_type = inner.split(",", 1)[1] if "," in inner else ""
            results.append(kind is dict and all(type(k) is str for k in value) and (
                not value_type or all(_matches(v, value_type) is not False
                                      for v in value.values())))
        elif base == "any":
            results.append(True)
        else:
            return None
    return any(results)


def check_parameter_types(params: dict[str, Any], declared: dict[str, str], where: str) -> None:
    """Refuse any value that is not plain data of its declared type.

    Papermill writes parameter values into the notebook as Python source and
    only str, numbers, bool, None, lists and dicts are written as literals —
    anything else (a tuple from YAML ``!!pairs``, a date, a set, an object) is
    written as its unescaped text, which can run code in the kernel. So every
    value, nested ones included, must be exactly one of ``str, int, float,
    bool, None`` or a list or dict (with str keys) of them, and must fit the
    type annotation of its parameter in the template's ``parameters`` cell
    (``int`` is accepted for ``float``; an unannotated parameter takes any
    plain value).

    Parameters
    ----------
    params : dict
        Parameter names and values.
    declared : dict
        ``{name: annotation}`` from :func:`declared_parameters`.
    where : str
        The study, for the error message.

    Raises
    ------
    StudyError
        One line naming the study, the parameter and the offending type; the
        value is not repeated.
    """
    for name, value in params.items():
        for path, item, depth in _walk(value):
            label = f"{name!r}{path}"
            if type(item) is dict:
                bad_keys = [k for k in item if type(k) is not str]
                if bad_keys:
                    raise StudyError(f"{where}: parameter {label} has a key that is "
                                     f"{_describe(bad_keys[0])}; keys must be strings")
            elif type(item) not in (*_PLAIN, list):
                raise StudyError(
                    f"{where}: parameter {label} is {_describe(item)}; parameters are data: "
                    "str, int, float, bool, None, or lists and dicts of them"
                )
            if depth > _MAX_DEPTH:
                raise StudyError(f"{where}: parameter {name!r} is nested deeper than "
                                 f"{_MAX_DEPTH} levels")
        annotation = declared.get(name, "")
        if annotation and annotation != "None" and _matches(value, annotation) is False:
            raise StudyError(f"{where}: parameter {name!r} is {_describe(value)}, but the "
                             f"template declares it {annotation}")


def validate_parameters(params: dict[str, Any], template: Path, where: str,
                        declared: dict[str, str] | None = None) -> dict[str, str]:
    """Check ``params`` against ``template``: declared names, plain typed data, no secrets.

    ``declared`` is the template's :func:`declared_parameters` when the caller
    has read them already. Returns the template's declared ``{name: annotation}``.
    """
    check_parameter_types(params, {}, where)  # plain data first: nothing else is looked at
    check_no_secrets(params, where)
    if declared is None:
        declared = declared_parameters(template)
    undeclared = sorted(set(params) - set(declared))
    if undeclared:
        raise StudyError(f"{where}: parameter(s) {undeclared} are not declared in the "
                         f"parameters cell of {template.name} (declared: {sorted(declared)})")
    check_parameter_types(params, declared, where)
    return declared


def parse_value(text: str, declared: str = "") -> Any:
    """Parse a command-line parameter value as papermill does: int, float, bool, None or str.

    With ``declared`` (the parameter's annotation), text is kept as text when
    the parsed value would not fit it but text does (``-p folder=2024`` for a
    ``str`` parameter stays ``"2024"``).
    """
    value = _parse_plain(text)
    if declared and _matches(value, declared) is False and _matches(text, declared):
        return text
    return value


def comma_list(text: str | None) -> list[str]:
    """Split a comma-separated study parameter into its names.

    Study parameters are literals, so a list of columns is written as one
    string (``features: str = "engagement_score, company_size"``); each name is
    stripped and empty items are dropped (``""`` and ``None`` give ``[]``, which
    crmstats' ``by=`` / ``covariates=`` arguments read as "none").

    Examples
    --------
    >>> comma_list("engagement_score, company_size,,industry")
    ['engagement_score', 'company_size', 'industry']
    >>> comma_list(" ")
    []
    """
    if text is None:
        return []
    if not isinstance(text, str):
        raise StudyError(f"expected a comma-separated list of names, got {type(text).__name__}")
    return [name.strip() for name in text.split(",") if name.strip()]


def _parse_plain(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def declared_parameters(template: Path, study: str | None = None) -> dict[str, str]:
    """Return ``{name: annotation}`` of the template's ``parameters`` cell.

    The template is first checked against the template contract
    (:func:`crmstats.book.template.check_template`): a broken one is a
    one-line :class:`StudyError` naming ``study``.

    Raises
    ------
    StudyError
        If the template is not a readable notebook or breaks the contract.
    """
    import papermill

    template = Path(template)
    check_template(template, study)
    try:
        info = papermill.inspect_notebook(str(template))
    except Exception as exc:  # papermill/nbformat/json raise many types; all mean "unreadable"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StudyError(f"{template}: not a readable notebook ({reason[:200]})") from None
    return {name: spec.get("inferred_type_name", "") for name, spec in info.items()}

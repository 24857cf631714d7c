"""``book/studies.yml``: which templates the book runs, with which parameters.

The file has these keys::

    templates: notebooks # folder the templates must live in (optional; the default)
    defaults:            # parameters given to every study (optional)
      data_source: demo
    studies:             # in book order
      - slug: data-overview                 # output name: book/studies/<slug>.ipynb
        title: "Data overview: {source}"    # {source}: the data source's name
        template: notebooks/data_overview.ipynb   # relative to the repository root
        parameters: {}                      # overrides of the defaults (optional)
        requires: [transactions]            # what the data source must hold (optional)
        formerly: [data-overview-demo]      # earlier slugs, for comparisons (optional)

``requires`` lists what a study needs from its data source; each item is a
canonical table (``transactions``), a column of one (``transactions.quantity``)
or a list of alternatives, any one of which will do (``[deals, stage_events]``).
A build runs the studies whose source has what they need and lists the others
on one page, "Not available for this source" (:func:`unmet_requirements`).

Every parameter a study receives must be declared in its template's
``parameters`` cell; anything else is an error naming the study and the
parameter, so a typo never silently runs a study on its defaults.

Parameters are data, never code (:func:`check_parameter_types`): a value must be
``str, int, float, bool, None`` or a list or dict of them, of the type its
template declares. Templates must live under the repository's ``notebooks/``
(or the folder ``templates`` names); slugs match ``[a-z0-9][a-z0-9-]*`` exactly.

Parameters end up in the executed notebooks, the run archive and the book, so
anything that looks like a credential is refused (:func:`check_no_secrets`):
credentials come from environment variables, never from parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmstats.book.template import check_template
from crmstats.exceptions import StudyError
from crmstats.yamlfile import read_yaml

__all__ = ["Study", "check_no_secrets", "check_parameter_types", "comma_list",
           "declared_parameters",
           "load_studies", "parse_value", "parse_requirements", "source_label", "study_title",
           "unmet_requirements", "validate_parameters"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")  # always used with fullmatch ("a\n" is refused)

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


_STUDY_KEYS = {"slug", "title", "template", "parameters", "requires", "formerly"}

#: Tables a study may require besides the canonical ones of :mod:`crmstats.schema`
#: (a table being added: a requirement may name it before the schema has it).
_EXTRA_TABLES = {"deals"}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def _requirement(item: Any, where: str) -> tuple[str, ...]:
    """One ``requires`` item as a tuple of alternatives, each ``table`` or ``table.column``."""
    from crmstats.schema import TABLES

    options = item if type(item) is list else [item]
    if not options:
        raise StudyError(f"{where}: 'requires' has an empty list of alternatives")
    out = []
    for option in options:
        if type(option) is not str:
            raise StudyError(f"{where}: a 'requires' item is a table name, table.column or a "
                             f"list of them, got {_describe(option)}")
        table, _, column = option.partition(".")
        if table not in TABLES and table not in _EXTRA_TABLES:
            raise StudyError(f"{where}: 'requires' names no table {option!r}; tables: "
                             f"{', '.join(sorted({*TABLES, *_EXTRA_TABLES}))}")
        if column and not _NAME.fullmatch(column):
            raise StudyError(f"{where}: 'requires' item {option!r}: the column is not a name")
        out.append(option)
    return tuple(out)


def parse_requirements(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    """Check a study's ``requires`` list; return it as a tuple of alternatives per item."""
    if value is None:
        return ()
    if type(value) is not list:
        raise StudyError(f"{where}: 'requires' must be a list, got {_describe(value)}")
    return tuple(_requirement(item, where) for item in value)


def unmet_requirements(requires: tuple[tuple[str, ...], ...], tables: set[str],
                       has_column=None) -> list[tuple[str, ...]]:
    """Return the items of ``requires`` that a data source does not meet.

    Parameters
    ----------
    requires : tuple of tuple of str
        From :func:`parse_requirements`: per item, its alternatives.
    tables : set of str
        The tables the source holds.
    has_column : callable, optional
        ``has_column(table, column) -> bool`` for ``table.column`` items
        (default: any column of a present table is there).

    Returns
    -------
    list of tuple of str
        The unmet items, each with its alternatives, in the order required.
    """
    def met(option: str) -> bool:
        table, _, column = option.partition(".")
        if table not in tables:
            return False
        return not column or has_column is None or bool(has_column(table, column))

    return [item for item in requires if not any(met(option) for option in item)]

def source_label(data_source: Any, root: str | Path | None = None) -> str:
    """Name a data source for readers (:func:`crmstats.source_label`; the demo by default).

    A relative path is read from ``root`` (the repository, where the kernels run).
    """
    from crmstats.sources import source_label as label

    return str(label("demo" if data_source is None else data_source, root))


def study_title(title: str, data_source: Any, root: str | Path | None = None) -> str:
    """Return ``title`` with ``{source}`` replaced by the data source's name for readers."""
    return (title.replace("{source}", source_label(data_source, root)) if "{source}" in title
            else title)


@dataclass(frozen=True)
class Study:
    """One study of the book.

    Attributes
    ----------
    slug : str
        Output name (``book/studies/<slug>.ipynb``, ``<slug>.html``).
    title : str
        Title in the table of contents.
    template : pathlib.Path
        Absolute path of the template notebook.
    parameters : dict
        Parameters passed to papermill (defaults merged with the study's own).
    requires : tuple of tuple of str
        What the study needs from its data source: per item, its alternatives
        (``table`` or ``table.column``); see :func:`unmet_requirements`.
    formerly : tuple of str
        Slugs the study had before (``clv-demo``): the summary compares with
        runs archived under them.
    """

    slug: str
    title: str
    template: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    requires: tuple[tuple[str, ...], ...] = ()
    formerly: tuple[str, ...] = ()


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


def load_studies(
    path: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    check_parameters: bool = True,
    params_file: str | Path | None = None,
) -> list[Study]:
    """Read and check a ``studies.yml``.

    Parameters
    ----------
    path : str or Path
        The file; templates are resolved against its parent's parent (the
        repository root, as ``book/studies.yml`` sits in ``book/``).
    overrides : dict, optional
        Run parameters (from ``--params``). Top-level ones replace the file's
        defaults in every study whose template declares them, but not a
        parameter a study sets itself (a study pinned to its source, such as
        the CDNOW one, keeps it); one that no study declares is an error.
        ``studies: {slug: {name: value}}`` overrides named studies
        explicitly, their own parameters included.
    only : list of str, optional
        Keep only these slugs.
    check_parameters : bool
        Check every parameter against the template's ``parameters`` cell.
    params_file : str or Path, optional
        The file ``overrides`` came from (``run.yml``): errors about them name
        it, not ``studies.yml``.

    Returns
    -------
    list of Study

    Raises
    ------
    StudyError
        Naming the entry and what is wrong with it.
    """
    path = Path(path)
    run = f"run parameters ({params_file})" if params_file else "run parameters"
    overrides = dict(overrides or {})
    per_study = overrides.pop("studies", None) or {}
    if not isinstance(per_study, dict) or not all(isinstance(v, dict)
                                                  for v in per_study.values()):
        raise StudyError(f"{run}: 'studies' must map study slugs to their parameters, "
                         "e.g. studies: {clv-cdnow: {data_source: data/acme}}")
    check_parameter_types(overrides, {}, run)
    check_no_secrets(overrides, run)
    for slug, values in per_study.items():
        check_parameter_types(values, {}, f"{run} of study {slug!r}")
        check_no_secrets(values, f"{run} of study {slug!r}")
    if not path.exists():
        raise StudyError(f"{path}: no such studies file")
    # bounded, plain data, no aliases (crmstats.yamlfile)
    spec = read_yaml(path, what="studies file", error=StudyError) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("studies"), list):
        raise StudyError(f"{path}: expected a mapping with a 'studies' list")
    unknown_top = set(spec) - {"defaults", "studies", "templates"}
    if unknown_top:
        raise StudyError(f"{path}: unknown top-level key(s) {sorted(unknown_top)}")
    defaults = spec.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise StudyError(f"{path}: 'defaults' must be a mapping of parameters")
    root = path.resolve().parent.parent
    template_dir = _template_dir(spec.get("templates", "notebooks"), root, path)
    studies: list[Study] = []
    seen: set[str] = set()
    used_overrides: set[str] = set()
    for i, entry in enumerate(spec["studies"], start=1):
        where = f"{path}: study #{i}"
        if not isinstance(entry, dict):
            raise StudyError(f"{where}: expected a mapping, got {_describe(entry)}")
        unknown = set(entry) - _STUDY_KEYS
        if unknown:
            raise StudyError(f"{where}: unknown key(s) {sorted(map(str, unknown))}; "
                             f"allowed: {sorted(_STUDY_KEYS)}")
        missing = {"slug", "title", "template"} - set(entry)
        if missing:
            raise StudyError(f"{where}: missing key(s) {sorted(missing)}")
        slug = entry["slug"]
        if type(slug) is not str or not _SLUG.fullmatch(slug):
            raise StudyError(f"{where}: a slug is lowercase letters, digits and dashes "
                             "(a-z, 0-9, -), starting with a letter or digit")
        where = f"{path}: study {slug!r}"
        if slug in seen:
            raise StudyError(f"{where}: duplicate slug")
        seen.add(slug)
        if type(entry["title"]) is not str:
            raise StudyError(f"{where}: the title must be a string, "
                             f"got {_describe(entry['title'])}")
        template = _template(entry["template"], root, template_dir, where)
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise StudyError(f"{where}: 'parameters' must be a mapping")
        merged = {**defaults, **params}
        check_parameter_types(merged, {}, where)  # plain data before anything else
        own = per_study.get(slug) or {}
        declared: dict[str, str] = {}
        if check_parameters or overrides or own:
            declared = declared_parameters(template, slug)
            # run-wide overrides reach the studies that declare them, except a parameter
            # the study pins itself (the CDNOW study's data_source); the run overrides
            # those only by naming the study (studies: {slug: {...}})
            reach = [k for k in overrides if k in declared and k not in params]
            if check_parameters:  # a run's mistakes are reported against the run's file
                validate_parameters({k: overrides[k] for k in reach}, template,
                                    f"{run}, for study {slug!r}", declared=declared)
                validate_parameters(own, template, f"{run} of study {slug!r}",
                                    declared=declared)
            merged.update({k: overrides[k] for k in reach})
            used_overrides.update(k for k in overrides if k in declared)
            merged.update(own)
        if "currency" in declared and "currency" not in params and "currency" not in own:
            # each study's money is in its source's currency (CDNOW: USD; a source
            # file's currency:), whatever the run's default
            from crmstats.sources import source_currency

            currency = source_currency(merged.get("data_source", "demo"), root)
            if currency is not None:
                merged["currency"] = currency
        if check_parameters:  # the template was read just above
            validate_parameters(merged, template, where, declared=declared)
        else:
            check_parameter_types(merged, {}, where)
            check_no_secrets(merged, where)
        formerly = entry.get("formerly") or []
        if type(formerly) is not list or not all(type(f) is str and _SLUG.fullmatch(f)
                                                 for f in formerly):
            raise StudyError(f"{where}: 'formerly' must be a list of earlier slugs")
        studies.append(Study(slug=slug, title=study_title(str(entry["title"]),
                                                          merged.get("data_source"), root),
                             template=template, parameters=merged,
                             requires=parse_requirements(entry.get("requires"), where),
                             formerly=tuple(formerly)))
    unknown_studies = sorted(set(per_study) - seen)
    if unknown_studies:
        raise StudyError(f"{run}: 'studies' names no study {unknown_studies}; studies: "
                         f"{sorted(seen)}")
    unused = sorted(set(overrides) - used_overrides)
    if unused:
        raise StudyError(f"{run}: parameter(s) {unused} are declared by no study of {path}")
    if only:
        wanted = set(only)
        unknown_slugs = wanted - seen
        if unknown_slugs:
            raise StudyError(f"{path}: no study with slug(s) {sorted(unknown_slugs)}")
        studies = [s for s in studies if s.slug in wanted]
    return studies


def _template_dir(value: Any, root: Path, path: Path) -> Path:
    """Return the folder templates must live in: ``notebooks/`` or the ``templates`` key."""
    if type(value) is not str or not value.strip():
        raise StudyError(f"{path}: 'templates' must be a folder of the repository")
    folder = (root / value).resolve()
    if not folder.is_relative_to(root):
        raise StudyError(f"{path}: 'templates' must be a folder inside the repository {root}")
    return folder


def _template(value: Any, root: Path, template_dir: Path, where: str) -> Path:
    """Resolve a study's template; it must be a notebook file under ``template_dir``."""
    if type(value) is not str or not value.strip():
        raise StudyError(f"{where}: 'template' must be a path, got {_describe(value)}")
    template = (root / value).resolve()  # symlinks resolved: a link out of the folder is refused
    if not template.is_relative_to(template_dir):
        raise StudyError(f"{where}: template {value} is outside "
                         f"{template_dir.relative_to(root).as_posix() or '.'}/ of the "
                         "repository; templates must live there")
    if template.is_dir():
        raise StudyError(f"{where}: template {value} is a folder, not a notebook")
    if not template.exists():
        raise StudyError(f"{where}: template {value} does not exist")
    if template.suffix != ".ipynb":
        raise StudyError(f"{where}: template {value} is not a notebook (.ipynb)")
    return template

"""``book/studies.yml``: which templates the book runs, with which parameters.

The file has two keys::

    defaults:            # parameters given to every study (optional)
      data_source: demo
    studies:             # in book order
      - slug: data-overview                 # output name: book/studies/<slug>.ipynb
        title: "Data overview: {source}"    # {source}: the data source's name
        template: notebooks/data_overview.ipynb   # relative to the repository root
        parameters: {}                      # overrides of the defaults (optional)

Every parameter a study receives must be declared in its template's
``parameters`` cell; anything else is an error naming the study and the
parameter, so a typo never silently runs a study on its defaults.

Parameters end up in the executed notebooks, the run archive and the book, so
anything that looks like a credential is refused (:func:`check_no_secrets`):
credentials come from environment variables, never from parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmstats.book.template import check_template
from crmstats.exceptions import StudyError

__all__ = ["Study", "check_no_secrets", "declared_parameters", "load_studies", "parse_value",
           "source_label", "study_title"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")

#: Parameter names that denote credentials (matched on words split at _ - . and case changes).
_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "token", "secret",
                 "key", "apikey", "credential", "credentials", "auth", "bearer"}
#: Values that look like credentials, with what they look like.
_SECRET_VALUES = [
    (re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.I), "a URL with a password"),
    (re.compile(r"(^|[\s;?&])(password|pwd|passwd|secret|token|api[_-]?key)\s*=", re.I),
     "a connection string with a credential"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"^(sk|pk|rk)-[A-Za-z0-9_-]{16,}$"), "an API key"),
    (re.compile(r"^(ghp|gho|ghs|ghu|github_pat|xox[abpr]|glpat)[-_][A-Za-z0-9_-]{10,}$"),
     "an access token"),
    (re.compile(r"^(AKIA|ASIA)[0-9A-Z]{16}$"), "a cloud access key"),
    (re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$"), "a JWT"),
]


def _name_words(name: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {w.lower() for w in re.split(r"[\s_.\-]+", spaced) if w}


def check_no_secrets(params: dict[str, Any], where: str) -> None:
    """Refuse parameters whose names or values look like credentials.

    Parameters
    ----------
    params : dict
        Parameter names and values.
    where : str
        Where they come from, for the error message.

    Raises
    ------
    StudyError
        Naming the parameter and what it looks like; the value itself is
        never repeated in the message.
    """
    for name, value in params.items():
        words = _name_words(name) & _SECRET_WORDS
        if words:
            raise StudyError(
                f"{where}: parameter {name!r} looks like a credential ({sorted(words)[0]}); "
                "parameters are written into the notebooks and the book, so credentials "
                "must come from environment variables (e.g. PGPASSWORD), not parameters"
            )
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if not isinstance(item, str):
                continue
            for pattern, what in _SECRET_VALUES:
                if pattern.search(item.strip()):
                    raise StudyError(
                        f"{where}: the value of parameter {name!r} looks like {what}; "
                        "credentials must come from environment variables, not parameters "
                        "(the value is not repeated here)"
                    )
_STUDY_KEYS = {"slug", "title", "template", "parameters"}

#: Readers' names of the bundled data sources (used until ``crmstats.source_label`` exists).
_BUNDLED = {"demo": "demo CRM", "cdnow": "CDNOW (real data)"}


def source_label(data_source: Any) -> str:
    """Name a data source for readers: the source file's ``name``, or a bundled source's.

    Uses :func:`crmstats.source_label` (the data layer's, which reads a
    ``crmstats.yml`` source file's ``name``) when the package has it; otherwise
    names the bundled sources and shows a folder or file by its last part,
    never a machine path.
    """
    import crmstats

    label = getattr(crmstats, "source_label", None)
    if label is not None and label is not source_label:
        return str(label(data_source))
    text = str(data_source if data_source is not None else "demo").strip()
    head = text.split(":", 1)[0].lower()
    if head in _BUNDLED and "//" not in text:
        return _BUNDLED[head]
    if "://" in text:  # a database URL: its scheme and database name
        scheme, rest = text.split("://", 1)
        return f"{scheme.split('+')[0]} database {rest.rsplit('/', 1)[-1].split('?')[0]}".strip()
    parts = [p for p in Path(text).parts if p not in ("/", ".")]
    if parts and parts[-1] == "crmstats.yml":
        parts = parts[:-1]
    return parts[-1] if parts else text


def study_title(title: str, data_source: Any) -> str:
    """Return ``title`` with ``{source}`` replaced by the data source's name for readers."""
    return title.replace("{source}", source_label(data_source)) if "{source}" in title else title


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
    """

    slug: str
    title: str
    template: Path
    parameters: dict[str, Any] = field(default_factory=dict)


def parse_value(text: str) -> Any:
    """Parse a command-line parameter value as papermill does: int, float, bool, None or str."""
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
    """Return ``{name: inferred type}`` of the template's ``parameters`` cell.

    The template is first checked against the template contract
    (:func:`crmstats.book.template.check_template`): a broken one is a
    one-line :class:`StudyError` naming ``study``.
    """
    import papermill

    check_template(template, study)

    info = papermill.inspect_notebook(str(template))
    return {name: spec.get("inferred_type_name", "") for name, spec in info.items()}


def load_studies(
    path: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    check_parameters: bool = True,
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

    Returns
    -------
    list of Study

    Raises
    ------
    StudyError
        Naming the entry and what is wrong with it.
    """
    path = Path(path)
    overrides = dict(overrides or {})
    per_study = overrides.pop("studies", None) or {}
    if not isinstance(per_study, dict) or not all(isinstance(v, dict)
                                                  for v in per_study.values()):
        raise StudyError("run parameters: 'studies' must map study slugs to their parameters, "
                         "e.g. studies: {clv-cdnow: {data_source: data/acme}}")
    check_no_secrets(overrides, "run parameters")
    for slug, values in per_study.items():
        check_no_secrets(values, f"run parameters of study {slug!r}")
    if not path.exists():
        raise StudyError(f"{path}: no such studies file")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("studies"), list):
        raise StudyError(f"{path}: expected a mapping with a 'studies' list")
    unknown_top = set(spec) - {"defaults", "studies"}
    if unknown_top:
        raise StudyError(f"{path}: unknown top-level key(s) {sorted(unknown_top)}")
    defaults = spec.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise StudyError(f"{path}: 'defaults' must be a mapping of parameters")
    root = path.resolve().parent.parent
    studies: list[Study] = []
    seen: set[str] = set()
    used_overrides: set[str] = set()
    for i, entry in enumerate(spec["studies"], start=1):
        where = f"{path}: study #{i}"
        if not isinstance(entry, dict):
            raise StudyError(f"{where}: expected a mapping, got {entry!r}")
        unknown = set(entry) - _STUDY_KEYS
        if unknown:
            raise StudyError(f"{where}: unknown key(s) {sorted(unknown)}; "
                             f"allowed: {sorted(_STUDY_KEYS)}")
        missing = {"slug", "title", "template"} - set(entry)
        if missing:
            raise StudyError(f"{where}: missing key(s) {sorted(missing)}")
        slug = str(entry["slug"])
        where = f"{path}: study {slug!r}"
        if not _SLUG.match(slug):
            raise StudyError(f"{where}: a slug is lowercase letters, digits and dashes")
        if slug in seen:
            raise StudyError(f"{where}: duplicate slug")
        seen.add(slug)
        template = (root / entry["template"]).resolve()
        if not template.exists():
            raise StudyError(f"{where}: template {entry['template']} does not exist")
        params = entry.get("parameters") or {}
        if not isinstance(params, dict):
            raise StudyError(f"{where}: 'parameters' must be a mapping")
        merged = {**defaults, **params}
        check_no_secrets(merged, where)
        own = per_study.get(slug) or {}
        if check_parameters or overrides or own:
            declared = declared_parameters(template, slug)
            # run-wide overrides reach the studies that declare them, except a parameter
            # the study pins itself (the CDNOW study's data_source); the run overrides
            # those only by naming the study (studies: {slug: {...}})
            reach = [k for k in overrides if k in declared and k not in params]
            merged.update({k: overrides[k] for k in reach})
            used_overrides.update(k for k in overrides if k in declared)
            merged.update(own)
        if check_parameters:
            undeclared = sorted(set(merged) - set(declared))
            if undeclared:
                raise StudyError(
                    f"{where}: parameter(s) {undeclared} are not declared in the parameters "
                    f"cell of {entry['template']} (declared: {sorted(declared)})"
                )
        studies.append(Study(slug=slug, title=study_title(str(entry["title"]),
                                                          merged.get("data_source")),
                             template=template, parameters=merged))
    unknown_studies = sorted(set(per_study) - seen)
    if unknown_studies:
        raise StudyError(f"run parameters: 'studies' names no study {unknown_studies}")
    unused = sorted(set(overrides) - used_overrides)
    if unused:
        raise StudyError(f"{path}: run parameter(s) {unused} are declared by no study")
    if only:
        wanted = set(only)
        unknown_slugs = wanted - seen
        if unknown_slugs:
            raise StudyError(f"{path}: no study with slug(s) {sorted(unknown_slugs)}")
        studies = [s for s in studies if s.slug in wanted]
    return studies

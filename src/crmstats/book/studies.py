"""``book/studies.yml``: which templates the book runs, with which parameters.

The file has two keys::

    defaults:            # parameters given to every study (optional)
      data_source: demo
    studies:             # in book order
      - slug: data-overview                 # output name: book/studies/<slug>.ipynb
        title: Data overview                # title in the table of contents
        template: notebooks/data_overview.ipynb   # relative to the repository root
        parameters: {}                      # overrides of the defaults (optional)

Every parameter a study receives must be declared in its template's
``parameters`` cell; anything else is an error naming the study and the
parameter, so a typo never silently runs a study on its defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmstats.exceptions import StudyError

__all__ = ["Study", "declared_parameters", "load_studies", "parse_value"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_STUDY_KEYS = {"slug", "title", "template", "parameters"}


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


def declared_parameters(template: Path) -> dict[str, str]:
    """Return ``{name: inferred type}`` of the template's ``parameters`` cell."""
    import papermill

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
        Run-wide parameters (from ``--params``), applied after the file's to
        every study whose template declares them; one that no study declares
        is an error.
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
        if check_parameters or overrides:
            declared = declared_parameters(template)
            # run-wide overrides reach the studies that declare them
            merged.update({k: v for k, v in (overrides or {}).items() if k in declared})
            used_overrides.update(k for k in (overrides or {}) if k in declared)
        if check_parameters:
            undeclared = sorted(set(merged) - set(declared))
            if undeclared:
                raise StudyError(
                    f"{where}: parameter(s) {undeclared} are not declared in the parameters "
                    f"cell of {entry['template']} (declared: {sorted(declared)})"
                )
        studies.append(Study(slug=slug, title=str(entry["title"]), template=template,
                             parameters=merged))
    unused = sorted(set(overrides or {}) - used_overrides)
    if unused:
        raise StudyError(f"{path}: run parameter(s) {unused} are declared by no study")
    if only:
        wanted = set(only)
        unknown_slugs = wanted - seen
        if unknown_slugs:
            raise StudyError(f"{path}: no study with slug(s) {sorted(unknown_slugs)}")
        studies = [s for s in studies if s.slug in wanted]
    return studies

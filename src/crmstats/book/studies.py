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

The parameter checks live in :mod:`crmstats.book.params` (re-exported here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmstats.book.params import (
    _describe,
    check_no_secrets,
    check_parameter_types,
    comma_list,
    declared_parameters,
    parse_value,
    validate_parameters,
)
from crmstats.exceptions import StudyError
from crmstats.yamlfile import read_yaml

__all__ = ["Study", "check_no_secrets", "check_parameter_types", "comma_list",
           "declared_parameters",
           "load_studies", "parse_value", "parse_requirements", "source_label", "study_title",
           "unmet_requirements", "validate_parameters"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")  # always used with fullmatch ("a\n" is refused)

_STUDY_KEYS = {"slug", "title", "template", "parameters", "requires", "formerly"}

#: Tables a study may require besides the canonical ones of :mod:`crmstats.schema`
#: (a table being added: a requirement may name it before the schema has it).
_EXTRA_TABLES = {"deals"}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


def _requirement(item: Any, where: str) -> tuple[str, ...]:
    """One ``requires`` item as alternatives: ``table``, ``table.column`` or ``table@weekly``."""
    from crmstats.schema import TABLES

    options = item if type(item) is list else [item]
    if not options:
        raise StudyError(f"{where}: 'requires' has an empty list of alternatives")
    out = []
    for option in options:
        if type(option) is not str:
            raise StudyError(f"{where}: a 'requires' item is a table name, table.column or a "
                             f"list of them, got {_describe(option)}")
        option_name, _, qualifier = option.partition("@")
        if qualifier and (qualifier != "weekly" or "." in option_name):
            raise StudyError(f"{where}: 'requires' item {option!r}: the only qualifier is "
                             "table@weekly (dates daily or weekly, not one row a month)")
        table, _, column = option_name.partition(".")
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
                       has_column=None, is_weekly=None) -> list[tuple[str, ...]]:
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
    is_weekly : callable, optional
        ``is_weekly(table) -> bool`` for ``table@weekly`` items (default: yes).

    Returns
    -------
    list of tuple of str
        The unmet items, each with its alternatives, in the order required.
    """
    def met(option: str) -> bool:
        option, _, qualifier = option.partition("@")
        table, _, column = option.partition(".")
        if table not in tables:
            return False
        if qualifier and is_weekly is not None and not is_weekly(table):
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

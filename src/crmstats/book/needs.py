"""Which studies have the data they need (:func:`unmet_needs`); the page naming the rest."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from crmstats.book.report import md_text
from crmstats.book.studies import Study, source_label
from crmstats.exceptions import CRMStatsError


def _source_of(study: Study) -> Any:
    """Return the data source a study reads (its template's default is the demo)."""
    return study.parameters.get("data_source", "demo")


def _load_sources(studies: list[Study], root: Path) -> dict[Any, Any]:
    """Load each study's data source once, as its kernel will read it (from ``root``).

    Returns ``{data_source: CRMData}``, or the CRMStatsError for a source
    that cannot be loaded (its studies run and report it themselves).
    """
    import crmstats
    from crmstats.sources import resolve_source

    crms: dict[Any, Any] = {}
    for study in studies:
        source = _source_of(study)
        if not isinstance(source, str) or not source or source in crms:
            continue
        try:
            crms[source] = crmstats.load_crm(resolve_source(source, root))
        except CRMStatsError as exc:
            crms[source] = exc
    return crms


def _has_column(crm: Any, table: str, column: str) -> bool:
    """Whether ``table`` of ``crm`` has ``column`` once mapped.

    A table that fails validation counts as having it: the study runs and
    reports the real problem.
    """
    with warnings.catch_warnings():  # the studies show them
        warnings.simplefilter("ignore")
        try:
            return column in crm.table(table).columns
        except CRMStatsError:
            return True


def _is_weekly(crm: Any, table: str) -> bool:
    """Whether ``table`` of ``crm`` is finer than one row a month (a failing table counts)."""
    from crmstats.attribution.media import recorded_monthly

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return not recorded_monthly(crm, table)
        except CRMStatsError:
            return True


def unmet_needs(study: Study, crm: Any, source: Any = None) -> list[tuple[str, ...]]:
    """Return what ``study`` requires that ``crm`` does not hold (empty: the study applies).

    ``source`` is the data source as written (default ``crm.source``): a
    simulated demo source counts as holding experiments
    (:func:`crmstats.attribution.experiment_data` simulates its holdouts) and
    weekly spend (:func:`crmstats.attribution.media_data` simulates its media).
    """
    from crmstats.book.studies import unmet_requirements

    if not study.requires:
        return []
    tables = set(crm.tables())
    demo = str(crm.source if source is None else source).strip().partition(":")[0] == "demo"
    if demo:
        tables.add("experiments")
    return unmet_requirements(study.requires, tables,
                              lambda table, column: _has_column(crm, table, column),
                              lambda table: demo or _is_weekly(crm, table))


def _unavailable(studies: list[Study], crms: dict[Any, Any]) -> dict[str, list[tuple[str, ...]]]:
    """``{slug: unmet requirements}`` of the studies their source cannot serve.

    A study whose source cannot be loaded is not listed: it runs, and fails
    naming the problem.
    """
    out: dict[str, list[tuple[str, ...]]] = {}
    for study in studies:
        crm = crms.get(_source_of(study))
        if crm is None or isinstance(crm, CRMStatsError):
            continue
        unmet = unmet_needs(study, crm, _source_of(study))
        if unmet:
            out[study.slug] = unmet
    return out


def _table_example(table: str) -> str:
    """Return a crmstats.yml entry mapping ``table`` (its required columns), as an example."""
    from crmstats.schema import TABLES

    spec = TABLES.get(table)
    columns = spec.required if spec is not None else ["..."]
    mapping = ", ".join(f"{c}: <your column>" for c in columns)
    return f"  {table}:\n    file: <your {table} file>.csv\n    columns: {{{mapping}}}"


def needs_text(item: tuple[str, ...]) -> str:
    """Describe an unmet requirement for readers: ```deals` or `stage_events```."""
    def words_of(option: str) -> str:
        if option.endswith("@weekly"):
            return f"`{option[:-len('@weekly')]}` recorded daily or weekly (not once a month)"
        if "." in option:
            return "column `{1}` of `{0}`".format(*option.split(".", 1))
        return f"`{option}`"

    words = [words_of(o) for o in item]
    return " or ".join(words)


def _not_available_page(studies: list[Study], unavailable: dict[str, list[tuple[str, ...]]],
                        root: Path | None = None) -> str:
    """Write the one page listing the studies the source cannot serve, and how to add data."""
    from crmstats.book.report import reader_text

    def text(value: str) -> str:
        return md_text(reader_text(value))

    chosen = [s for s in studies if s.slug in unavailable]
    sources = sorted({source_label(_source_of(s), root) for s in chosen})
    lines = ["# Not available for this source", "",
             f"The data of {text(', '.join(sources))} does not hold what these studies "
             "need, so they were not run. Each runs in the next build once its data is "
             "described in the source's `crmstats.yml`.", ""]
    tables: list[str] = []
    for study in chosen:
        needs = [needs_text(item) for item in unavailable[study.slug]]
        lines.append(f"- **{text(study.title)}** needs {', '.join(needs)}.")
        tables += [item[0].split("@")[0].split(".")[0] for item in unavailable[study.slug]]
    example = "\n".join(_table_example(t) for t in dict.fromkeys(tables))
    lines += ["", "To add a table, export it from the CRM next to the others and map it under "
              "`tables:` in `crmstats.yml` (`crmstats source init <folder>` writes a first draft, "
              "`crmstats source check <folder>` shows which studies the source supports); on a "
              "database, name its table with `table:` instead of `file:`. For example:", "",
              "```yaml", "tables:", example, "```", ""]
    return "\n".join(lines)

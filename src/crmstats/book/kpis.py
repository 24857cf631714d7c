"""Headline KPIs: recorded by each study, assembled into the book's summary page.

A study records its headline figures with one call, :func:`record_kpis`. The
call displays them as a table and embeds them in the executed notebook as a
machine-readable output (MIME type :data:`KPI_MIME`); the book build reads
them back from every executed notebook (:func:`read_kpis`), archives them
under the run's dated folder (``book/runs/<stamp>/kpis.json``) and writes the
summary page from those records (:func:`summary_page`) — no figure on the
summary is typed in or recomputed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_ratio,
    get_currency,
    md_code,
    md_text,
    reader_text,
)
from crmstats.exceptions import CRMStatsError

__all__ = ["HEADLINE_KPIS", "KPI_MIME", "Kpi", "format_kpi", "read_kpis", "record_kpis",
           "strip_kpi_records", "summary_page"]

#: Run-record status of a study its data source cannot serve, and the page listing them.
NOT_AVAILABLE = "not available"
NOT_AVAILABLE_PAGE = "not-available"

#: MIME type of the KPI record embedded in an executed notebook.
KPI_MIME = "application/vnd.crmstats.kpis+json"


@dataclass(frozen=True)
class Kpi:
    """How a headline KPI is labelled and formatted.

    Attributes
    ----------
    label : str
        Name shown to readers.
    kind : {"count", "money", "share", "ratio", "months", "number"}
        Formatting: counts with thousands separators, money with two decimals,
        shares as percentages, ratios with two decimals and an "x".
    """

    label: str
    kind: str


#: The book's headline KPIs, in summary order (studies may record others too).
HEADLINE_KPIS: dict[str, Kpi] = {
    "customers": Kpi("Customers", "count"),
    "revenue": Kpi("Revenue", "money"),
    "average_clv": Kpi("Average customer lifetime value (12 months, discounted)", "money"),
    "top20_revenue_share": Kpi("Revenue share of the top 20 % of customers", "share"),
    "churn_rate": Kpi("Churn rate per period", "share"),
    "nrr": Kpi("Net revenue retention (NRR)", "share"),
    "grr": Kpi("Gross revenue retention (GRR)", "share"),
    "cac": Kpi("Customer acquisition cost (CAC)", "money"),
    "ltv_cac": Kpi("LTV:CAC", "ratio"),
    "lead_to_customer_rate": Kpi("Lead → customer rate", "share"),
}

_KINDS = {"count", "money", "share", "ratio", "months", "number"}


def format_kpi(value: float, kind: str, currency: str | None = None, per: Any = 1) -> str:
    """Format ``value`` for readers according to ``kind`` (see :mod:`crmstats.book.report`).

    ``currency`` is the money figures' symbol or code (default: the running
    study's, :func:`crmstats.book.report.set_currency`). ``per``: a ``"number"``
    recorded per unit (0.066 conversions per $1) is shown per this amount (6.6
    per $100, as its label says); the recorded value stays as it is.
    """
    if kind == "number":
        return fmt_number(value * _per(per))
    if kind == "count":
        return fmt_count(value)
    if kind == "money":
        return fmt_money(value, currency)
    if kind == "share":
        return fmt_pct(value)
    if kind == "ratio":
        return fmt_ratio(value)
    if kind == "months":
        return "—" if fmt_number(value) == "—" else f"{fmt_number(value, 3)} months"
    return fmt_number(value)


#: The largest amount a ``"number"`` KPI may be shown per (:func:`format_kpi`).
_MAX_PER = 1_000_000


def _per(per: Any) -> float:
    """Return a record's ``per`` amount, or 1 when it is absent or not a plain amount."""
    if isinstance(per, bool) or not isinstance(per, int | float):
        return 1.0
    return float(per) if math.isfinite(per) and 1 <= per <= _MAX_PER else 1.0


def _normalise(kpis: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in kpis.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise CRMStatsError(f"record_kpis: KPI name {name!r} must be an identifier "
                                "such as 'average_clv'")
        if isinstance(spec, Mapping):
            value, label, kind = spec.get("value"), spec.get("label"), spec.get("kind")
        else:
            value, label, kind = spec, None, None
        known = HEADLINE_KPIS.get(name)
        label = label or (known.label if known else name.replace("_", " ").capitalize())
        kind = kind or (known.kind if known else "number")
        if kind not in _KINDS:
            raise CRMStatsError(f"record_kpis: KPI {name!r} has unknown kind {kind!r}; "
                                f"one of {sorted(_KINDS)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise CRMStatsError(f"record_kpis: KPI {name!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise CRMStatsError(f"record_kpis: KPI {name!r} is not finite ({number}); "
                                "a headline figure must be a real number")
        # digits past the 10th are the rounding noise of float sums (their order can vary
        # with threads): kept, two runs on the same data would record different bytes
        number = float(f"{number:.10g}")
        out[name] = {"value": number, "label": str(label), "kind": kind}
        per = spec.get("per") if isinstance(spec, Mapping) else None
        if per is not None:
            if kind != "number" or isinstance(per, bool) or _per(per) != per:
                raise CRMStatsError(f"record_kpis: KPI {name!r}: 'per' is the amount a "
                                    f"number is shown per, from 1 to {_MAX_PER:,} (got "
                                    f"{per!r} for kind {kind!r})")
            out[name]["per"] = per
        if kind == "money":
            currency = spec.get("currency") if isinstance(spec, Mapping) else None
            out[name]["currency"] = get_currency() if currency is None else str(currency)
    return out


def record_kpis(kpis: Mapping[str, Any] | None = None, *, show: bool = True,
                **named: Any) -> pd.DataFrame:
    """Record a study's headline KPIs for the book's summary page.

    Call it once per study (a later call adds to or replaces earlier names).
    In a notebook it displays the figures as a table and embeds them as a
    machine-readable output that ``crmstats book build`` collects into the
    run's folder and the summary page.

    Parameters
    ----------
    kpis : mapping, optional
        ``{name: value}`` or ``{name: {"value": v, "label": ..., "kind": ...}}``.
        Names of :data:`HEADLINE_KPIS` get their label and format; other names
        need no declaration (kind ``"number"`` unless given). A ``"number"``
        recorded per unit may give ``"per"``: the amount it is shown per
        (``{"value": 0.066, "per": 100, "label": "conversions per $100"}``
        shows 6.6; the record keeps 0.066).
    show : bool
        Display the table (and embed the record) in the running notebook.
    **named
        More KPIs as keyword arguments, e.g. ``record_kpis(customers=3500)``.

    Returns
    -------
    pandas.DataFrame
        One row per KPI: ``label``, ``value``, ``kind``, ``formatted``.

    Raises
    ------
    CRMStatsError
        For a name that is not an identifier, an unknown kind, or a value
        that is not a finite number.

    Examples
    --------
    >>> from crmstats.book import record_kpis
    >>> record_kpis(customers=3501, top20_revenue_share=0.62, show=False)["formatted"].tolist()
    ['3,501', '62.0 %']
    """
    records = _normalise({**(kpis or {}), **named})
    frame = pd.DataFrame.from_dict(records, orient="index")
    if frame.empty:
        raise CRMStatsError("record_kpis: no KPI given")
    frame.index.name = "kpi"
    frame["formatted"] = [format_kpi(rec["value"], rec["kind"], rec.get("currency", ""),
                                     rec.get("per", 1))
                          for rec in records.values()]
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover - IPython is a dependency
            return frame
        if get_ipython() is not None:
            from crmstats.book.report import format_table

            table = frame[["label", "formatted"]].rename(
                columns={"label": "KPI", "formatted": "value"})
            shown = format_table(table, index=False, labels=False)
            display({KPI_MIME: records, "text/html": shown.to_html(),
                     "text/plain": table.to_string(index=False)}, raw=True)
    return frame


def read_kpis(notebook: str | Path) -> dict[str, dict[str, Any]]:
    """Read the KPI records embedded in an executed notebook (later records win)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    found: dict[str, dict[str, Any]] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if KPI_MIME in data:
                payload = data[KPI_MIME]
                if isinstance(payload, str):
                    payload = json.loads(payload)
                found.update(payload)
    return found


#: The tags that fold a cell's code behind a toggle, and what replaces them on a page.
_TOGGLE_TAGS = {"hide-input": "remove-input", "hide-cell": "remove-cell"}
#: An object's default repr (``<pandas.io.formats.style.Styler at 0x7f…>``): its address
#: changes with every run.
_ADDRESS = re.compile(r"\s+at\s+0x[0-9a-fA-F]+(?=>)")
_OBJECT_REPR = re.compile(r"<[\w.]+(?: object)?\s+at\s+0x[0-9a-fA-F]+>")
#: Timing papermill and the kernel leave in metadata: different in every run.
_RUN_METADATA = ("papermill", "execution")


def strip_kpi_records(source: str | Path, target: str | Path, *, title: str | None = None,
                      banner: str | None = None, source_name: str | None = None) -> None:
    """Copy an executed notebook for publishing: readers' page, reproducible bytes, no paths.

    * the KPI records (read into the run's ``kpis.json``) are dropped; the
      rendered page keeps the human-readable table of the same output;
    * code cells lose their "Show code cell source" toggles: ``hide-input``
      becomes ``remove-input`` and papermill's injected-parameters cell and
      the template's parameters cell are removed from the page — the
      notebook itself (``_sources/studies/<slug>.ipynb`` of the book) keeps
      every cell's code for analysts;
    * the ``data_source`` parameter is written as the source's name
      (``source_name``) in the injected cell and the notebook's metadata: a
      scheduled run's absolute path never reaches a page; the run archive
      (``book/runs/<stamp>/notebooks``) keeps the notebook as executed;
    * papermill's machine paths and timings, the kernel's timestamps, the
      random cell ids and object addresses in outputs
      (``<... Styler at 0x7f…>``) are replaced by fixed values, so two runs
      on the same data publish the same bytes;
    * the first heading becomes ``title`` (the study's title, naming its data
      source) and ``banner`` (Markdown) is shown under it.
    """
    import nbformat

    nb = nbformat.read(str(source), as_version=4)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
        for key in _RUN_METADATA:
            cell.metadata.pop(key, None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            data.pop(KPI_MIME, None)
            plain = data.get("text/plain")
            if isinstance(plain, list):
                plain = "".join(plain)
            if isinstance(plain, str) and _OBJECT_REPR.search(plain):
                if _OBJECT_REPR.fullmatch(plain.strip()) and len(data) > 1:
                    data.pop("text/plain")  # the HTML (a styled table) is what readers see
                else:
                    data["text/plain"] = _ADDRESS.sub("", plain)
        tags = list(cell.metadata.get("tags", []))
        if "injected-parameters" in tags or "parameters" in tags:
            tags = [t for t in tags if t not in _TOGGLE_TAGS] + ["remove-cell"]
        else:
            tags = [_TOGGLE_TAGS.get(t, t) for t in tags]
        if tags:
            cell.metadata["tags"] = list(dict.fromkeys(tags))
        if "injected-parameters" in tags and source_name is not None:
            cell.source = re.sub(r"(?m)^data_source = .*$",
                                 f"data_source = {source_name!r}  # the run's data source "
                                 "(its location is not published)", cell.source)
    papermill_meta = nb.metadata.get("papermill", {})
    params = dict(papermill_meta.get("parameters") or {})
    if "data_source" in params and source_name is not None:
        params["data_source"] = source_name
    nb.metadata["papermill"] = {"parameters": params} if params else {}
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    if title and first is not None:
        lines = nb.cells[first].source.splitlines()
        if lines and lines[0].startswith("# "):
            nb.cells[first].source = "\n".join([f"# {md_text(title)}", *lines[1:]])
    if banner:
        cell = nbformat.v4.new_markdown_cell(f":::{{note}}\n{banner}\n:::")
        cell["id"] = "banner"
        nb.cells.insert(0 if first is None else first + 1, cell)
    nbformat.write(nb, str(target))


def _change(current: float, previous: float | None, kind: str, per: Any = 1) -> str:
    if previous is None:
        return "—"
    delta = current - previous
    if kind == "share":
        text = f"{100 * delta:+.1f} pp"
    elif previous:
        text = fmt_pct(delta / abs(previous), signed=True)
    else:  # from zero: the difference, in the unit the value is shown in
        text = fmt_number(delta * (_per(per) if kind == "number" else 1.0))
        text = text if text.startswith("-") else "+" + text
    # a change that rounds to zero reads as "no change", without a sign
    digits = text.lstrip("+-").rstrip(" p%").replace(",", "").strip()
    return "no change" if not digits.strip("0.") else text


def _source(study: Mapping[str, Any]) -> str:
    return str((study.get("parameters") or {}).get("data_source", ""))


def _previous_values(study: Mapping[str, Any], slug: str,
                     earlier: list[dict[str, Any]]) -> tuple[str | None, dict[str, float]]:
    """Find the latest earlier run of ``slug`` on the same source: its stamp and KPI values."""
    source = _source(study)
    names = [slug, *(study.get("formerly") or ())]  # a renamed study: its runs under old slugs
    for run in earlier:
        runs_studies = run.get("studies") or {}
        old = next((runs_studies[n] for n in names if n in runs_studies), None)
        if not old or old.get("status") not in ("ok", "kept") or _source(old) != source:
            continue
        stamp = old.get("from_run") or run.get("run")
        if study.get("status") == "kept" and stamp == study.get("from_run"):
            continue  # the same figures, carried over: compare with the run before them
        return stamp, {name: rec["value"] for name, rec in (old.get("kpis") or {}).items()}
    return None, {}


def summary_page(run: dict[str, Any],
                 previous: dict[str, Any] | list[dict[str, Any]] | None = None,
                 root: str | Path | None = None) -> str:
    """Write the summary page (MyST Markdown) from a run record and the earlier ones.

    Each KPI's change is against the latest earlier published run of the same
    study **on the same data source**; a study with no such run says so, so a
    book built on a company's own data is never compared with the demo.

    Parameters
    ----------
    run : dict
        The run record written to ``book/runs/<stamp>/kpis.json``: ``run``
        (stamp), ``started`` (ISO time), ``parameters`` (run-wide), and
        ``studies``: ``{slug: {"title", "status", "error", "parameters", "kpis"}}``;
        a study not rerun (``--only``) has status ``"kept"`` and ``from_run``.
    previous : dict or list of dict, optional
        The earlier published run records, newest first (one record is
        accepted too).
    root : str or Path, optional
        Where relative data source paths are read from (the repository,
        where the kernels ran), for the sources' names.

    Returns
    -------
    str
        The page source.
    """
    from crmstats.book.studies import source_label

    earlier = [previous] if isinstance(previous, dict) else list(previous or [])
    order = {name: i for i, name in enumerate(HEADLINE_KPIS)}
    rows = []
    compared: dict[str, str | None] = {}
    for slug, study in run["studies"].items():
        stamp, values = _previous_values(study, slug, earlier)
        compared[slug] = stamp
        for name, rec in (study.get("kpis") or {}).items():
            rows.append((order.get(name, len(order)), slug, name, rec, study, values.get(name)))
    rows.sort(key=lambda r: r[0])
    lines = [
        "# KPI summary",
        "",
        f"Run **{run['run']}** (started {run['started']}). Every figure below was recorded by the "
        "study it links to. The change is against the latest earlier published run of the "
        "same study on the **same data source**; figures of a different source are never "
        "compared.",
        "",
    ]
    failed = {s: st for s, st in run["studies"].items()
              if st["status"] not in ("ok", "kept", NOT_AVAILABLE)}
    if failed:
        lines += [":::{warning}", "Studies that failed in this run (figures missing):", ""]
        lines += [f"- [{md_text(st['title'])}](studies/{slug}) — "
                  f"{md_text(st.get('error') or 'failed')}" for slug, st in failed.items()]
        lines += [":::", ""]
    missing = [st for st in run["studies"].values() if st["status"] == NOT_AVAILABLE]
    if missing:  # titles hold commas: one per line
        lines += [":::{note}", f"Not available for this source ([what they need]"
                  f"(studies/{NOT_AVAILABLE_PAGE})):", ""]
        lines += [f"- {md_text(st['title'])}" for st in missing]
        lines += [":::", ""]
    kept = {s: st for s, st in run["studies"].items() if st["status"] == "kept"}
    if kept:
        lines += [":::{note}", "Not rerun in this build (`--only`); their pages and figures are "
                  "those of the run named:", ""]
        lines += [f"- [{md_text(st['title'])}](studies/{slug}) — run {st['from_run']}"
                  for slug, st in kept.items()]
        lines += [":::", ""]
    first_time = sorted({source_label(_source(st), root) for s, st in run["studies"].items()
                         if st.get("kpis") and compared.get(s) is None
                         and st["status"] != "kept"})
    if first_time:
        lines += [f"No earlier published run of {', '.join(map(md_text, first_time))}: the "
                  "change column starts with the next run.", ""]
    lines += ["| KPI | value | change | since | study | data source |",
              "|---|---|---|---|---|---|"]
    for _, slug, _name, rec, study, before in rows:
        value = format_kpi(rec["value"], rec["kind"], rec.get("currency", ""), rec.get("per", 1))
        if study["status"] == "kept":
            change, since = "not rerun", study["from_run"]
        elif compared[slug] is None:
            change, since = "—", "first run"
        else:
            change = _change(rec["value"], before, rec["kind"], rec.get("per", 1))
            since = compared[slug]
        title = md_text(study["title"]) + (f" (run {study['from_run']})"
                                       if study["status"] == "kept" else "")
        lines.append(f"| {md_text(rec['label'])} | {md_text(value)} | {change} | "
                     f"{since} | [{title}](studies/{slug}) | "
                     f"{md_text(source_label(_source(study), root))} |")
    if not rows:
        lines.append("| (no study recorded KPIs) | | | | | |")
    lines += ["", "## Parameters of this run", ""]
    lines += ["| study | status | parameters |", "|---|---|---|"]
    for slug, study in run["studies"].items():
        params = ", ".join(_parameter(k, v, root)
                           for k, v in sorted(study.get("parameters", {}).items()))
        status = study["status"] + (f" (run {study['from_run']})"
                                    if study["status"] == "kept" else "")
        page = NOT_AVAILABLE_PAGE if study["status"] == NOT_AVAILABLE else slug
        lines.append(f"| [{md_text(study['title'])}](studies/{page}) | {status} | "
                     f"{params or '(defaults)'} |")
    if run.get("parameters"):
        lines += ["", "Run parameters (`--params`): "
                  + ", ".join(_parameter(k, v, root)
                              for k, v in sorted(run["parameters"].items()))]
    return "\n".join(lines) + "\n"


def _parameter(name: str, value: Any, root: str | Path | None = None) -> str:
    """Show a parameter on the summary; a data source by its name, never its path."""
    from crmstats.book.studies import source_label

    if name == "data_source" and isinstance(value, str):
        value = source_label(value, root)
    return md_code(reader_text(f"{name}={value!r}"))


"""Presentation for the book: numbers formatted for readers, findings first, data notes last.

The studies are read by people who do not read code, so what a study shows
goes through this module:

* :func:`fmt_number`, :func:`fmt_count`, :func:`fmt_money`, :func:`fmt_pct`,
  :func:`fmt_ratio` format one value (thousands separators, 3-4 significant
  digits, a currency, shares as percentages) — they live in
  :mod:`crmstats.formatting`, below the domain subpackages, and are re-exported
  here;
* :func:`format_table` formats a whole table for display — the raw values stay
  in the frame (``styled.data``), only their display changes;
* :func:`md_text` and :func:`html_text` turn a value from the data or a
  configuration (a channel, a stage, a source's name) into Markdown or HTML
  that shows it as plain text — every table, heading, finding and note of a
  study is written through them, so a name such as
  ``<script>alert(1)</script>`` is shown, never run;
* :class:`StudyPage` opens a study with its "Key findings" (written when the
  study has run, shown before any method) and collects every warning raised
  while the study runs into a "Data notes" section at its end, worded for
  readers and free of machine paths.

The currency is a study parameter (``currency: str = "$"``); a study passes it
to :class:`StudyPage` (or :func:`set_currency`) and every money figure of that
study, including its KPI records, uses it.
"""

from __future__ import annotations

import html
import itertools
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataWarning
from crmstats.formatting import (  # re-exported: the book's public formatting names
    MISSING,
    decimals_for,
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_pvalue,
    fmt_ratio,
    get_currency,
    is_missing,
    set_currency,
)

__all__ = [
    "StudyPage",
    "fmt_count",
    "fmt_money",
    "fmt_number",
    "fmt_pct",
    "fmt_pvalue",
    "fmt_ratio",
    "format_record",
    "format_table",
    "get_currency",
    "html_text",
    "md_code",
    "md_text",
    "plain_plot_text",
    "reader_text",
    "set_currency",
]



# ----------------------------------------------------------------------------- text

#: Characters that open Markdown/MyST syntax anywhere in a line: escapes, code and
#: roles (`` ` ``, ``{role}``), emphasis, links and images, raw HTML and autolinks,
#: entities, dollar math, table cells, strike-through and a heading's closing ``#``s.
_MD_INLINE = re.compile(r"([\\`*_\[\]{}<>&$|~#])")
#: What makes a block of a line's start: headings, quotes, lists, rules, fences,
#: targets ``(x)=``, comments ``%``, field lists ``:x:`` and definitions ``: x``.
_MD_LEADING = re.compile(r"^([#>+\-=:%.!\"'(^/@;,?)])")
#: What the linkify extension would turn into a link: ``www.x.com``, ``x.io``, ``a@b.com``,
#: ``http://`` (an escaped dot, at sign or colon breaks the match; the text reads the same).
_MD_LINKIFY = re.compile(r"(?<=\w)([.@])(?=[A-Za-z])|(?<=\w)(:)(?=//)")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")
_SPACES = re.compile(r"[\s\x00-\x1f\x7f\u2028\u2029]+")


def _one_line(value: Any) -> str:
    return _SPACES.sub(" ", "" if value is None else str(value)).strip()


def md_text(value: Any) -> str:
    r"""Return Markdown (MyST) that shows ``value`` as literal text on one line.

    Every name that comes from the data or a configuration is written into a
    page through this function (or :func:`html_text`): raw HTML (``<script>``,
    ``<img onerror=...>``), links (``[x](javascript:...)``), images, MyST roles
    and substitutions (``{raw}`...```, ``{{x}}``), ``$math$``, emphasis and
    table bars are backslash-escaped, and so are the dots, at signs and colons
    of what would be made a link (``www.x.com``, ``a@b.com``), so they read as
    the characters typed; line
    breaks and control characters become spaces, so a value cannot start a new
    block (a fence, a directive, a heading); a leading character that would
    open a block where the value starts a line (``#``, ``-``, ``1.``, ``:::``,
    ``%``) is escaped too.

    Examples
    --------
    >>> print(md_text("<script>alert(1)</script>"))
    \<script\>alert(1)\</script\>
    >>> print(md_text("# Paid_search [x](javascript:y)"))
    \# Paid\_search \[x\](javascript:y)
    """
    text = _MD_INLINE.sub(r"\\\1", _one_line(value))
    text = _MD_LINKIFY.sub(lambda m: "\\" + (m.group(1) or m.group(2)), text)
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return _MD_LEADING.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """Return a Markdown code span showing ``value`` literally (on one line).

    The span's fence is longer than any run of backticks in the value, so the
    value cannot close it; table bars are escaped (GitHub-style tables split
    cells at ``|`` even inside code).
    """
    text = _one_line(value).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def html_text(value: Any) -> str:
    """Return HTML that shows ``value`` as text (``&``, ``<``, ``>`` and quotes escaped)."""
    return html.escape("" if value is None else str(value), quote=True)


# ----------------------------------------------------------------------------- tables

_table_ids = itertools.count(1)


def _as_list(cols: str | Iterable[str] | None) -> list:
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


def _whole(values: pd.Series) -> bool:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite)]
    return len(finite) > 0 and bool((finite == np.round(finite)).all())


def _typical(values: pd.Series) -> float:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite) & (finite != 0)].abs()
    return float(finite.median()) if len(finite) else 0.0


def _column_decimals(values: pd.Series, sig: int, max_decimals: int) -> int:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite) & (finite != 0)].abs()
    if finite.empty:
        return 0
    return decimals_for(float(finite.median()), sig, max_decimals)


def _label(name: Any) -> str:
    if isinstance(name, tuple):
        return " / ".join(_label(n) for n in name)
    return str(name).replace("_", " ")


def _date_text(value: Any) -> str:
    if is_missing(value):
        return MISSING
    if isinstance(value, pd.Period):
        return str(value)
    stamp = pd.Timestamp(value)
    if stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M")


def _index_formatter(index: pd.Index, humanize: bool):
    """Dates as dates; names (column labels only) without underscores; ids unchanged."""
    if isinstance(index, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(index):
        return _date_text

    def show(value):
        if isinstance(value, (pd.Timestamp, pd.Period)):
            return _date_text(value)
        return _label(value) if humanize and isinstance(value, (str, tuple)) else value
    return show


def _escaped(formatter: Any):
    """Wrap a cell formatter (None: the value as it is) so its text is HTML-escaped."""
    def show(value: Any) -> str:
        if formatter is not None:
            return html_text(formatter(value))
        if isinstance(value, (float, np.floating)):
            return html_text(fmt_number(value))
        return html_text(value)
    return show


def _axis_names(axis: pd.Index, labels: bool) -> list:
    """Return the names of an index as shown: humanized when ``labels``, HTML-escaped."""
    return [None if n is None else html_text(_label(n) if labels else n) for n in axis.names]


def format_table(
    frame: pd.DataFrame | pd.Series,
    *,
    money: str | Sequence[str] | None = None,
    pct: str | Sequence[str] | None = None,
    count: str | Sequence[str] | None = None,
    ratio: str | Sequence[str] | None = None,
    number: str | Sequence[str] | None = None,
    currency: str | None = None,
    sig: int = 4,
    labels: bool = True,
    caption: str | None = None,
    index: bool = True,
    empty: str | None = None,
) -> Any:
    """Format a table for readers; its values are not changed.

    Every column is formatted by what it holds: the columns named in
    ``money`` with the currency, ``pct`` (fractions) as percentages, ``count``
    as whole numbers, ``ratio`` with an "x"; other numeric columns (or those in
    ``number``) with ``sig`` significant digits at the column's typical size,
    so one column shares its decimals. Integer columns read as counts, dates
    as dates. Column names lose their underscores.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
        The table (not modified).
    money, pct, count, ratio, number : str, list of str or True, optional
        Columns by role; ``True`` gives the role to every numeric column.
        Columns named ``p_value`` are shown as p-values (``< 0.001``).
    currency : str, optional
        Currency of the money columns; default the study's (:func:`set_currency`).
    sig : int
        Significant digits of plain numbers and money (3-4 read best).
    labels : bool
        Replace underscores in column and index names with spaces.
    caption : str, optional
        A caption shown above the table.
    index : bool
        Show the index.
    empty : str, optional
        A sentence shown instead of a table without rows (a header with no
        rows reads like a broken page).

    Returns
    -------
    pandas.io.formats.style.Styler or IPython.display.Markdown
        Renders as an HTML table (``styled.data`` is the unchanged frame); the
        ``empty`` sentence when given and the table has no rows.

    Raises
    ------
    CRMStatsError
        When a named column is not in the table.

    Examples
    --------
    >>> import pandas as pd
    >>> t = format_table(pd.DataFrame({"spend": [190870.508], "share": [0.0312]}),
    ...                  money="spend", pct="share", currency="$")
    >>> "$190,871" in t.to_html() and "3.1 %" in t.to_html()
    True
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(frame.name if frame.name is not None else "value")
    if not isinstance(frame, pd.DataFrame):
        raise CRMStatsError(f"format_table: expected a DataFrame, got {type(frame).__name__}")
    if empty is not None and frame.empty:
        from IPython.display import Markdown

        return Markdown(md_text(empty))
    numeric_cols = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
                    and not pd.api.types.is_bool_dtype(frame[c])]
    roles: dict[Any, str] = {c: "pvalue" for c in frame.columns
                             if str(c).lower() in ("p_value", "pvalue", "p-value")}
    for role, cols in (("money", money), ("pct", pct), ("count", count), ("ratio", ratio),
                       ("number", number)):
        for col in (numeric_cols if cols is True else _as_list(cols)):
            if col not in frame.columns:
                raise CRMStatsError(f"format_table: column {col!r} is not in the table "
                                    f"(columns: {[str(c) for c in frame.columns]})")
            roles[col] = role
    currency = get_currency() if currency is None else currency
    formatters: dict[Any, Any] = {}
    for col in frame.columns:
        values = frame[col]
        role = roles.get(col)
        if role is None:
            if pd.api.types.is_bool_dtype(values):
                continue
            if pd.api.types.is_integer_dtype(values):
                role = "count"
            elif pd.api.types.is_numeric_dtype(values):
                role = "number"
            elif pd.api.types.is_datetime64_any_dtype(values):
                formatters[col] = _date_text
                continue
            else:
                continue
        if role == "number" and _whole(values):
            role = "count"  # e.g. 90.0 purchases: a float column of whole numbers
        if role == "money":
            d = 0 if _typical(values) >= 1000 else 2
            formatters[col] = lambda v, d=d: fmt_money(v, currency, decimals=d)
        elif role == "pct":
            formatters[col] = fmt_pct
        elif role == "count":
            formatters[col] = fmt_count
        elif role == "ratio":
            formatters[col] = fmt_ratio
        elif role == "pvalue":
            formatters[col] = fmt_pvalue
        else:
            d = _column_decimals(values, sig, 6)
            formatters[col] = lambda v, d=d: fmt_number(v, decimals=d)
    # every cell, header and caption is text: formatted, then HTML-escaped; the names of the
    # axes are shown from a shallow copy (the caller's frame keeps its own names)
    shown = frame.rename_axis(index=_axis_names(frame.index, labels),
                              columns=_axis_names(frame.columns, labels))
    styler = shown.style
    styler.set_uuid(f"crm{next(_table_ids)}")
    styler.format({c: _escaped(formatters.get(c)) for c in frame.columns}, na_rep=MISSING)
    styler.format_index(_escaped(_index_formatter(frame.columns, labels)), axis=1)
    styler.format_index(_escaped(_index_formatter(frame.index, False)), axis=0)
    if not index:
        styler.hide(axis="index")
    if caption:
        styler.set_caption(html_text(caption))
    numeric = [c for c in frame.columns if c in formatters]
    styler.set_table_attributes('class="dataframe crm-table"')
    if numeric:  # numbers right-aligned, one rule per column
        styler.set_table_styles({c: [{"selector": "td", "props": "text-align: right;"}]
                                 for c in numeric}, overwrite=False)
    return styler


def format_record(values: Any, *, money: Sequence[str] = (), pct: Sequence[str] = (),
                  count: Sequence[str] = (), ratio: Sequence[str] = (),
                  currency: str | None = None, name: str = "value") -> Any:
    """Format a key-value record (a Series or mapping of mixed figures) as a two-column table.

    Parameters
    ----------
    values : Series or mapping
        Figures by name, e.g. ``funnel.pipeline(...).summary``.
    money, pct, count, ratio : list of str
        Names by role; other numbers get 4 significant digits, dates show as dates.
    currency : str, optional
        Currency of the money figures (default the study's).
    name : str
        Header of the value column.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    roles = {**{k: "money" for k in money}, **{k: "pct" for k in pct},
             **{k: "count" for k in count}, **{k: "ratio" for k in ratio}}
    currency = get_currency() if currency is None else currency
    shown = []
    for key, value in series.items():
        role = roles.get(key)
        if isinstance(value, (pd.Timestamp, np.datetime64)):
            shown.append(_date_text(value))
        elif role == "money":
            shown.append(fmt_money(value, currency))
        elif role == "pct":
            shown.append(fmt_pct(value))
        elif role == "count" or isinstance(value, (int, np.integer)):
            shown.append(fmt_count(value))
        elif role == "ratio":
            shown.append(fmt_ratio(value))
        elif isinstance(value, (float, np.floating)):
            shown.append(fmt_number(value))
        else:
            shown.append(MISSING if is_missing(value) else str(value))
    frame = pd.DataFrame({name: shown}, index=[_label(k) for k in series.index])
    return format_table(frame, labels=False)


# ----------------------------------------------------------------------------- page

_PATH = re.compile(
    r"""(?:[A-Za-z]:\\|\\\\|~/|/)(?:[^\s'"`:,;()\[\]{}<>]+[/\\])+([^\s'"`:,;()\[\]{}<>/\\]*)""")


_EXAMPLES = re.compile(
    r"[,;:]?\s*\(?\b(?:e\.g\.|for example|such as)\s*(?:(?:the\s+)?(?:rows?|ids?|values?|"
    r"customers?|contacts?|accounts?|leads?)\s*)?(?:\[[^\]]*\]|\([^)]*\)|'[^']*'"
    r"(?:\s*,\s*'[^']*')*)\)?", re.I)


def reader_text(message: str) -> str:
    """Reword a warning or error message for a published page.

    Machine paths (absolute, home-relative or Windows) are cut to their file
    name, and example values (``e.g. rows ['C1', 'C2']``) are dropped: a
    published page names tables, columns and counts, never a customer's id.

    Examples
    --------
    >>> reader_text("rfm_summary: 3 rows of /tmp/tmpab12/transactions.parquet are late")
    'rfm_summary: 3 rows of transactions.parquet are late'
    """
    text = _PATH.sub(lambda m: m.group(1) or "a folder", str(message))
    # example rows name customers or values: a page for readers names counts, not values
    text = _EXAMPLES.sub("", text)
    return " ".join(text.split())


def plain_plot_text() -> None:
    r"""Show plot labels as typed: matplotlib reads no ``$...$`` math in any text.

    A channel named ``$\x{ $`` would otherwise stop every plot naming it
    (a mathtext error at drawing) and ``$5 off $10`` would be typeset as math.
    crmstats' own plots use no mathtext.
    """
    import matplotlib

    matplotlib.rcParams["text.parse_math"] = False


@dataclass(frozen=True)
class Note:
    """One warning collected while a study ran."""

    kind: str
    text: str


_KIND = {DataWarning: "Data", ConvergenceWarning: "Model fit"}


class StudyPage:
    """A study page: "Key findings" first, "Data notes" last, no warnings in between.

    Create it in the first code cell of a study (its output is the "Key
    findings" heading, filled in when the study calls :meth:`finish`) and call
    :meth:`finish` in the last cell. In between, every warning raised by the
    study is collected instead of printed; :meth:`finish` writes them at the
    end of the page under "Data notes", worded for readers, without machine
    paths, each message once with how often it came.

    Parameters
    ----------
    currency : str
        The currency of the study's money figures (see :func:`set_currency`).

    Notes
    -----
    Findings, notes and the data source line are Markdown built with
    :func:`md_text`: a name from the data shows as typed. The page also turns
    off matplotlib's mathtext (:func:`plain_plot_text`), so plot labels show
    names with ``$`` signs as typed instead of failing or typesetting them.

    The findings are displayed with a display id and updated at the end, so
    the executed notebook (papermill/nbclient apply display updates to the
    cell that showed the original) has them at the top.
    """

    def __init__(self, currency: str = "") -> None:
        set_currency(currency)
        plain_plot_text()
        self.notes: list[Note] = []
        self._counts: dict[Note, int] = {}
        self._findings_id = f"crmstats-findings-{id(self):x}"
        self._previous_showwarning = warnings.showwarning
        warnings.showwarning = self._collect
        self._display(self._findings_markdown(None), display_id=self._findings_id)

    # warnings ----------------------------------------------------------------
    def _collect(self, message, category, filename, lineno, file=None, line=None) -> None:
        kind = next((k for cls, k in _KIND.items() if issubclass(category, cls)), "Software")
        note = Note(kind, reader_text(str(message)))
        if note not in self._counts:
            self.notes.append(note)
            self._counts[note] = 0
        self._counts[note] += 1

    def set_currency(self, currency: str) -> None:
        """Change the currency of the page's money figures."""
        set_currency(currency)

    def data_source(self, crm: Any, currency: str | None = None) -> str:
        """Show which data the study read, for readers (no machine paths); set the currency.

        Parameters
        ----------
        crm : CRMData
            The loaded data source.
        currency : str, optional
            The currency of its money figures.

        Returns
        -------
        str
            The Markdown shown.
        """
        from crmstats.sources import source_label

        if currency is not None:
            set_currency(currency)
        tables = []
        for name, table in crm.tables().items():
            tables.append(f"{md_text(_label(name))} ({fmt_count(len(table))} rows)"
                          if isinstance(table, pd.DataFrame) else md_text(_label(name)))
        text = f"**Data source:** {md_text(source_label(crm))}"
        if tables:
            text += ". Tables: " + ", ".join(tables)
        if get_currency():
            text += f". Money in {md_text(get_currency())}"
        text += "."
        self._display(text)
        return text

    # rendering ---------------------------------------------------------------
    @staticmethod
    def _display(markdown: str, display_id: str | None = None, update: bool = False) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import Markdown, display, update_display
        except ImportError:  # pragma: no cover - IPython is a dependency
            return
        if get_ipython() is None:
            return
        if update:
            update_display(Markdown(markdown), display_id=display_id)
        else:
            display(Markdown(markdown), display_id=display_id)

    @staticmethod
    def _findings_markdown(findings: Sequence[str] | None) -> str:
        if findings is None:
            return ("## Key findings\n\n*The findings are written when the study has run; "
                    "if this line stays, the study stopped before its end.*\n")
        return "## Key findings\n\n" + "\n".join(f"- {md_text(s)}" for s in findings) + "\n"

    def notes_markdown(self) -> str:
        """Return the "Data notes" section (Markdown)."""
        lines = ["## Data notes", ""]
        if not self.notes:
            lines.append("Nothing in the data or the model fits needed a remark in this run.")
            return "\n".join(lines) + "\n"
        lines.append("Remarks raised while the study ran; the figures above take them into "
                     "account.")
        lines.append("")
        technical = [n for n in self.notes if n.kind == "Software"]
        for note in self.notes:
            if note.kind == "Software":
                continue
            times = self._counts[note]
            suffix = f" (noted {times} times)" if times > 1 else ""
            lines.append(f"- **{note.kind}.** {md_text(note.text)}{suffix}")
        if technical:
            lines.append(f"- **Software.** {len(technical)} technical message(s) from the "
                         "libraries used (not about the data) were left out of this page.")
        return "\n".join(lines) + "\n"

    def finish(self, findings: Sequence[str]) -> list[str]:
        """Write the key findings at the top of the page and the data notes at its end.

        Parameters
        ----------
        findings : list of str
            3-5 sentences computed from the study's results (the
            ``crmstats.book.findings`` functions write them).

        Returns
        -------
        list of str
            The findings.

        Raises
        ------
        CRMStatsError
            For fewer than one or more than five findings, or non-text ones.
        """
        findings = [str(s).strip() for s in findings if str(s).strip()]
        if not 1 <= len(findings) <= 5:
            raise CRMStatsError(f"StudyPage.finish: give 1 to 5 findings, got {len(findings)}")
        warnings.showwarning = self._previous_showwarning
        self._display(self._findings_markdown(findings), display_id=self._findings_id,
                      update=True)
        self._display(self.notes_markdown())
        return findings


"""Presentation for the book: numbers formatted for readers, findings first, data notes last.

The studies are read by people who do not read code, so what a study shows
goes through this module:

* :func:`fmt_number`, :func:`fmt_count`, :func:`fmt_money`, :func:`fmt_pct`,
  :func:`fmt_ratio` format one value (thousands separators, 3-4 significant
  digits, a currency, shares as percentages) — they live in
  :mod:`crmstats.formatting`, below the domain subpackages, and are re-exported
  here;
* :func:`format_table` formats a whole table for display — the raw values stay
  in the frame (``styled.data``), only their display changes (it lives in
  :mod:`crmstats.book.tables`, re-exported here);
* :func:`md_text` and :func:`html_text` turn a value from the data or a
  configuration (a channel, a stage, a source's name) into Markdown or HTML
  that shows it as plain text — every table, heading, finding and note of a
  study is written through them, so a name such as
  ``<script>alert(1)</script>`` is shown, never run (they live in
  :mod:`crmstats.book.markup`, re-exported here);
* :class:`StudyPage` opens a study with its "Key findings" (written when the
  study has run, shown before any method) and collects every warning raised
  while the study runs into a "Data notes" section at its end, worded for
  readers and free of machine paths.

The currency is a study parameter (``currency: str = "$"``); a study passes it
to :class:`StudyPage` (or :func:`set_currency`) and every money figure of that
study, including its KPI records, uses it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crmstats.book.markup import html_text, md_code, md_text
from crmstats.book.tables import _label, format_record, format_table
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataWarning
from crmstats.formatting import (  # noqa: F401 re-exported: the book's public formatting names
    MISSING,
    decimals_for,
    fmt_count,
    fmt_interval,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_pvalue,
    fmt_ratio,
    get_currency,
    is_missing,
    per_spend,
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
    "points",
    "reader_text",
    "set_currency",
]

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


def points(sentences: Sequence[str]) -> Any:
    """Show sentences (e.g. a section's findings) as a bulleted list, each escaped as text.

    Parameters
    ----------
    sentences : list of str
        Plain sentences (untrusted text is escaped by :func:`md_text`).

    Returns
    -------
    IPython.display.Markdown
        Displayed when it is a cell's last value.
    """
    from IPython.display import Markdown

    return Markdown("\n".join(f"- {md_text(s)}" for s in sentences if str(s).strip()))

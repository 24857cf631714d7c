"""Honest time windows: which periods a table observes, shared by every time-windowed KPI.

The window rule
---------------
Every per-period KPI of crmstats (churn rate, retention and revenue cohorts,
the MRR bridge, NRR and GRR, service KPIs, lead KPIs by month, the data
overview's activity) follows one rule:

1. **The window.** A table's data run from its first to its last timestamp.
   Periods are counted from the first period with data: what lies before it
   is history the export does not hold.
2. **A partial last period is left out.** The last period is *complete* when
   the data reach its last day (a timestamp on 31 December completes
   December; a log whose last purchase is on 9 December does not), or when the
   table records whole periods (every timestamp on a period's first day, as
   subscriptions' months or monthly spend). A partial last period is dropped
   from per-period tables and its cohort cells are NaN: a 9-day December is
   not shown like a full month. A quiet last day (no purchase on 31 December)
   reads as partial too; the data cannot tell it from an export cut.
3. **Unobservable values are missing, never 0.** A value that depends on
   periods before the window is NaN: churn after ``n`` inactive periods in
   the window's first ``n`` periods (nobody *can* churn yet), the first
   cohort (it holds everyone who bought before the data too), the MRR
   bridge's first period (every account would look new), and rates of
   recent lead cohorts that have not had the time to convert.
4. **Headlines use observable values only.** Averages, headline KPIs and
   "recent against before" findings take the last ``n`` observable values
   of complete periods (:func:`recent`), and their text states how many
   there were.

Days (period ``"D"``) are always complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Window", "WindowFrame", "data_window", "recent"]


@dataclass(frozen=True)
class Window:
    """The observed window of a table at one period granularity.

    Attributes
    ----------
    period : str
        The canonical unit ("D", "W", "M", "Q" or "Y").
    first, last : int
        Period numbers (:func:`crmstats._expr.period_index`) of the first and
        last timestamp.
    start, end : pandas.Timestamp
        The first and last timestamp.
    last_complete : int
        The last period the data cover to its end (``last`` or ``last - 1``).
    """

    period: str
    first: int
    last: int
    start: pd.Timestamp
    end: pd.Timestamp
    last_complete: int

    @property
    def partial_last(self) -> bool:
        """Whether the last period is partial (and left out)."""
        return self.last_complete < self.last

    def periods(self) -> np.ndarray:
        """Return the period numbers kept: the first to the last complete one."""
        return np.arange(self.first, self.last_complete + 1)

    def note(self) -> str:
        """Return a sentence for readers on the partial period left out ('' when none)."""
        if not self.partial_last:
            return ""
        return (f"{_period_name(self.last, self.period)} is left out of the per-period "
                f"figures: the data stop on {self.end.day} {self.end:%B %Y}, before it ended.")


class WindowFrame(pd.DataFrame):
    """A per-period KPI table with the :class:`Window` it observed.

    A typed result rather than ``DataFrame.attrs`` (no result travels there):
    ``frame.window`` is the window (``window.note()`` says which partial period
    was left out, ``window.start``/``window.end`` the first and last
    timestamp); ``mature_days`` and ``span`` are set by the lead KPIs (the
    days a lead cohort needs to be observed, and the observable span's first
    and last day) and are None elsewhere. They follow the frame through
    pandas' selections (``_metadata``).
    """

    _metadata = ["window", "mature_days", "span"]

    @property
    def _constructor(self):
        return WindowFrame

    @classmethod
    def of(cls, frame: pd.DataFrame, window: Window, *, mature_days: float | None = None,
           span: tuple | None = None) -> WindowFrame:
        """Return ``frame`` (not copied) as a WindowFrame observed over ``window``."""
        out = cls(frame, copy=False)
        out.window, out.mature_days, out.span = window, mature_days, span
        return out

    def left_out(self) -> str:
        """Return the sentence on the partial period left out ('' when none)."""
        window = getattr(self, "window", None)
        return window.note() if window is not None else ""


def _period_name(index: int, period: str) -> str:
    from crmstats._expr import period_start

    start = period_start([index], period)[0]
    if period == "M":
        return start.strftime("%B %Y")
    if period == "Q":
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    if period == "Y":
        return str(start.year)
    if period == "W":
        return f"The week of {start:%d %B %Y}"
    return start.strftime("%d %B %Y")


def data_window(table, column: str, period: str) -> Window:
    """Return the :class:`Window` of ``table[column]`` at ``period`` (one query in the database).

    Parameters
    ----------
    table : ibis.Table
        A validated canonical table (from :func:`crmstats.validation.as_table`).
    column : str
        Its timestamp column.
    period : {"D", "W", "M", "Q", "Y"}
        The period of the KPI.
    """
    from crmstats._expr import period_index, period_unit, truncate
    from crmstats.backend import execute

    unit = period_unit(period)
    col = table[column]
    stats = execute(table.aggregate(
        start=col.min(), end=col.max(),
        first=period_index(col.min(), unit), last=period_index(col.max(), unit),
        off_start=table.count(where=truncate(col, unit) != col))).iloc[0]
    if pd.isna(stats["start"]):
        raise ValueError("data_window of an empty table")
    first, last = int(stats["first"]), int(stats["last"])
    end = pd.Timestamp(stats["end"])
    return Window(period=unit, first=first, last=last, start=pd.Timestamp(stats["start"]),
                  end=end, last_complete=last if _complete(end, last, unit,
                                                           int(stats["off_start"])) else last - 1)


def _complete(end: pd.Timestamp, last: int, unit: str, off_start: int) -> bool:
    """Whether the period ``last`` (holding ``end``) is covered to its last day."""
    if unit == "D" or off_start == 0:
        return True
    from crmstats._expr import period_start

    next_start = period_start([last + 1], unit)[0]
    return end.normalize() + pd.Timedelta(days=1) >= next_start


def recent(values: pd.Series, n: int = 12) -> pd.Series:
    """Return the last ``n`` observable (non-missing) values of a per-period series.

    Headlines and findings average these and say ``len(...)`` periods, so the
    text matches the figure: missing periods (unobservable, rule 3 of the
    module) are neither averaged in as 0 nor counted.
    """
    clean = pd.to_numeric(values, errors="coerce").replace([np.inf, -np.inf], np.nan)
    return clean.dropna().tail(int(n))

"""The time units a per-customer summary is measured in, carried by the summary itself.

A summary's ``recency`` and ``T`` are in ``time_unit`` (days, weeks or calendar
months), and its purchases were merged at granularity ``freq``. Both are
recorded in the name of the summary's column axis
(``summary.columns.name == "rfm summary (freq=D, time_unit=W)"``) by
:func:`~crmstats.clv.rfm_summary` and
:func:`~crmstats.clv.calibration_holdout_split`. Unlike ``DataFrame.attrs``, the
label survives what one ordinarily does to a summary — filtering rows,
selecting or adding columns, ``copy``, ``head``, ``sample``, ``sort_values``,
``concat`` of pieces of one summary, a Parquet or pickle round trip; ``merge``
and ``join`` build a new column axis and drop it (an unlabelled summary then
needs ``time_unit=`` given explicitly wherever a unit matters).

Every function that turns a summary into time-dependent numbers reads the
label (:func:`resolve_units`): the fitted models record the units they were
fitted in (``freq_``, ``time_unit_``) and refuse a summary in other units, and
the value functions refuse a ``time_unit`` argument that contradicts the
summary or the model. The label is checked against the data as well: ``T``
and ``recency`` are whole numbers of ``freq`` periods, so a summary rescaled
after labelling (``T / 7`` under a "days" label) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["SummaryUnits", "resolve_units", "summary_units", "with_units"]

#: Days per unit (calendar months are not a fixed number of days).
_UNIT_DAYS = {"D": 1.0, "W": 7.0}
_NAMES = {"D": "days", "W": "weeks", "M": "months"}
_LABEL = re.compile(r"^rfm summary \(freq=(?P<freq>[DWM]), time_unit=(?P<unit>[DWM])\)$")


@dataclass(frozen=True)
class SummaryUnits:
    """Units of a per-customer summary.

    Attributes
    ----------
    freq : {"D", "W", "M"}
        Granularity at which purchases were merged into occasions.
    time_unit : {"D", "W", "M"}
        Unit of ``recency`` and ``T``.
    """

    freq: str
    time_unit: str

    @property
    def label(self) -> str:
        """The column-axis name that records these units on a summary."""
        return f"rfm summary (freq={self.freq}, time_unit={self.time_unit})"

    def describe(self) -> str:
        """Human-readable units, e.g. ``"weeks (purchases merged per day)"``."""
        per = {"D": "day", "W": "week", "M": "month"}[self.freq]
        return f"{_NAMES[self.time_unit]} (purchases merged per {per})"


def check_units(freq: str, time_unit: str | None) -> SummaryUnits:
    """Validate a ``freq``/``time_unit`` pair (``time_unit`` defaults to ``freq``)."""
    freq = str(freq).upper()
    unit = str(time_unit or freq).upper()
    if freq not in ("D", "W", "M"):
        raise ValueError(f"freq must be 'D', 'W' or 'M'; got {freq!r}")
    if freq == "M" or unit == "M":
        if not (freq == "M" and unit == "M"):
            raise ValueError("time_unit 'M' (calendar months) requires freq='M', and vice versa")
    elif unit not in _UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D', 'W' or 'M'; got {time_unit!r}")
    elif _UNIT_DAYS[unit] < _UNIT_DAYS[freq]:
        raise ValueError(f"time_unit {unit!r} is finer than freq {freq!r}")
    return SummaryUnits(freq, unit)


def _periods_per_unit(units: SummaryUnits) -> float:
    if units.freq == "M":
        return 1.0
    return _UNIT_DAYS[units.time_unit] / _UNIT_DAYS[units.freq]


def _check_against_data(summary: pd.DataFrame, units: SummaryUnits) -> None:
    """Refuse a label the data contradict: recency and T are whole numbers of periods."""
    k = _periods_per_unit(units)
    for col in ("T", "recency"):
        if col not in summary.columns:
            continue
        values = pd.to_numeric(summary[col], errors="coerce").to_numpy(dtype=float) * k
        finite = np.isfinite(values)
        off = finite & (np.abs(values - np.round(values)) > 1e-6 * np.maximum(1.0, values))
        if off.any():
            rows = list(summary.index[off][:5])
            raise DataError(
                f"summary table, column {col!r}: the summary is labelled "
                f"{units.describe()}, but {int(off.sum())} value(s) are not whole "
                f"{_NAMES[units.freq]} (e.g. rows "
                f"{rows}); was it rescaled after rfm_summary? Make it again with the "
                "wanted freq and time_unit",
                table="summary", column=col, rows=rows,
            )


def summary_units(summary: pd.DataFrame, *, check: bool = True) -> SummaryUnits | None:
    """Return the units recorded on a summary, or None if it carries none.

    Parameters
    ----------
    summary : pandas.DataFrame
        A per-customer summary (see :func:`~crmstats.clv.rfm_summary`).
    check : bool
        Also check the label against the data (``recency`` and ``T`` are whole
        numbers of ``freq`` periods).

    Returns
    -------
    SummaryUnits or None
    """
    if not isinstance(summary, pd.DataFrame):
        return None
    name = summary.columns.name
    if name is None:
        return None
    match = _LABEL.match(str(name))
    if match is None:
        if str(name).startswith("rfm summary"):
            raise DataError(f"summary table: unreadable unit label {name!r}", table="summary")
        return None
    units = SummaryUnits(match["freq"], match["unit"])
    if check:
        _check_against_data(summary, units)
    return units


def with_units(summary: pd.DataFrame, *, freq: str, time_unit: str | None = None
               ) -> pd.DataFrame:
    """Return a copy of a summary labelled with its units (for summaries made elsewhere).

    Parameters
    ----------
    summary : pandas.DataFrame
        Per-customer summary with ``recency`` and ``T`` in ``time_unit``.
    freq : {"D", "W", "M"}
        Granularity at which purchases were merged.
    time_unit : {"D", "W", "M"}, optional
        Unit of ``recency`` and ``T``; defaults to ``freq``.

    Returns
    -------
    pandas.DataFrame
        A shallow copy whose column axis records the units; the caller's frame
        is not modified.

    Raises
    ------
    DataError
        If ``recency`` or ``T`` are not whole numbers of ``freq`` periods.
    """
    units = check_units(freq, time_unit)
    if not isinstance(summary, pd.DataFrame):
        raise DataError(f"summary: expected a DataFrame, got {type(summary).__name__}",
                        table="summary")
    _check_against_data(summary, units)
    out = summary.copy(deep=False)
    out.columns = pd.Index(list(out.columns), name=units.label)
    return out


def label(frame: pd.DataFrame, units: SummaryUnits) -> pd.DataFrame:
    """Record ``units`` on ``frame`` in place (for frames this package just built)."""
    frame.columns.name = units.label
    return frame


def resolve_units(summary: pd.DataFrame | None = None, *models, time_unit: str | None = None,
                  freq: str | None = None, what: str = "this function") -> SummaryUnits:
    """Return the one set of units that a summary, fitted models and arguments agree on.

    Parameters
    ----------
    summary : pandas.DataFrame, optional
        A per-customer summary, labelled or not.
    *models
        Fitted models; those fitted on a labelled summary record ``freq_`` and
        ``time_unit_``.
    time_unit, freq : str, optional
        Units the caller passed explicitly.
    what : str
        The caller's name, for messages.

    Returns
    -------
    SummaryUnits
        ``freq`` is None where no source records it.

    Raises
    ------
    DataError
        When two sources disagree, or when no source gives a time unit.
    """
    sources: list[tuple[str, SummaryUnits]] = []
    if summary is not None:
        units = summary_units(summary)
        if units is not None:
            sources.append(("the summary", units))
    for model in models:
        unit = getattr(model, "time_unit_", None)
        if unit is not None:
            sources.append((f"the fitted {type(model).__name__}",
                            SummaryUnits(getattr(model, "freq_", None), unit)))
    if time_unit is not None:
        t = str(time_unit).upper()
        if t not in _NAMES:
            raise ValueError(f"time_unit must be 'D', 'W' or 'M'; got {time_unit!r}")
        f = None if freq is None else str(freq).upper()
        sources.append((f"time_unit={time_unit!r}" + (f", freq={freq!r}" if freq else ""),
                        SummaryUnits(f, t)))
    elif freq is not None:
        sources.append((f"freq={freq!r}", SummaryUnits(str(freq).upper(), None)))
    unit = next((u.time_unit for _, u in sources if u.time_unit), None)
    fr = next((u.freq for _, u in sources if u.freq), None)
    for name, u in sources:
        for other, v in sources:
            if u.time_unit and v.time_unit and u.time_unit != v.time_unit:
                raise DataError(
                    f"{what}: unit mismatch: {name} is in {_NAMES[u.time_unit]}, {other} in "
                    f"{_NAMES[v.time_unit]}; recency, T and the horizon must be in one unit "
                    "(make the summary with rfm_summary(..., time_unit=...) and fit the "
                    "models on it)", table="summary", column="T",
                )
            if u.freq and v.freq and u.freq != v.freq:
                raise DataError(
                    f"{what}: purchase-merging mismatch: {name} merges purchases per "
                    f"{u.freq!r}, {other} per {v.freq!r}", table="summary", column="frequency",
                )
    if unit is None:
        raise DataError(
            f"{what}: the summary does not record its time unit (made elsewhere, or its "
            "label was lost in a merge/join) and no time_unit was given; pass "
            "time_unit='D'/'W'/'M', or label it with crmstats.clv.with_units",
            table="summary", column="T",
        )
    return SummaryUnits(fr, unit)

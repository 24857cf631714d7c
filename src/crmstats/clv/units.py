"""The time units a per-customer summary is measured in, carried by the summary itself.

A summary's ``recency`` and ``T`` are in ``time_unit`` (days, weeks or calendar
months), and its purchases were merged at granularity ``period``.
:func:`~crmstats.clv.rfm_summary` and :func:`~crmstats.clv.calibration_holdout_split`
return an :class:`RFMSummary`: a DataFrame whose :attr:`~RFMSummary.units`
record both. pandas carries them (the subclass's ``_metadata``) through what one
ordinarily does to a summary — filtering rows, selecting or adding columns,
``copy``, ``head``, ``sample``, ``sort_values``, ``concat`` of pieces in one
unit, a pickle round trip; ``merge`` and ``join`` drop them (an unlabelled
summary then needs ``time_unit=`` given explicitly wherever a unit matters).
A Parquet file written by :meth:`RFMSummary.to_parquet` records them as the
name of its column axis, as summaries of earlier releases did in memory: such
files, and such summaries, are still read (:func:`summary_units`).

Every function that turns a summary into time-dependent numbers reads the
units through :func:`summary_units` or :func:`resolve_units`: the fitted models
record the units they were fitted in (``time_unit_`` and the period) and refuse a
summary in other units, and the value functions refuse a ``time_unit``
argument that contradicts the summary or the model. The units are checked
against the data as well (once per unchanged frame): ``T`` and ``recency``
are whole numbers of ``period`` periods, so a summary rescaled after
labelling (``T / 7`` under a "days" label) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmstats._frames import COUNTS, frame_once
from crmstats.exceptions import DataError
from crmstats.vocabulary import renamed_arguments, renamed_attribute

__all__ = ["RFMSummary", "SummaryUnits", "resolve_units", "summary_units", "with_units"]


#: Days per unit (calendar months are not a fixed number of days).
_UNIT_DAYS = {"D": 1.0, "W": 7.0}
_NAMES = {"D": "days", "W": "weeks", "M": "months"}
#: The units label of earlier releases, on the column axis' name (still read).
_LABEL = re.compile(r"^rfm summary \(freq=(?P<freq>[DWM]), time_unit=(?P<unit>[DWM])\)$")


@dataclass(frozen=True)
class SummaryUnits:
    """Units of a per-customer summary.

    Attributes
    ----------
    period : {"D", "W", "M"}
        Granularity at which purchases were merged into occasions (None where
        nothing records it).
    time_unit : {"D", "W", "M"}
        Unit of ``recency`` and ``T``.
    """

    period: str | None
    time_unit: str | None

    freq = renamed_attribute("period", "freq")

    @property
    def label(self) -> str:
        """The column-axis name that recorded these units in earlier releases."""
        return f"rfm summary (freq={self.period}, time_unit={self.time_unit})"

    def describe(self) -> str:
        """Human-readable units, e.g. ``"weeks (purchases merged per day)"``."""
        per = {"D": "day", "W": "week", "M": "month"}[self.period]
        return f"{_NAMES[self.time_unit]} (purchases merged per {per})"


class RFMSummary(pd.DataFrame):
    """A per-customer summary (:func:`~crmstats.clv.rfm_summary`) that knows its units.

    A pandas DataFrame in every respect; :attr:`units` are the units it was
    made in. pandas carries them (``_metadata``) through filtering, column
    selection, ``copy``, ``head``, ``sample``, ``sort_values``, ``concat`` of
    pieces in the same units and a pickle round trip; ``merge`` and ``join``
    drop them. :meth:`to_parquet` writes them into the file (as the name of
    the column axis, where files of earlier releases have them too), so a
    summary read back with ``pandas.read_parquet`` still has them
    (:func:`summary_units`).
    """

    _metadata = ["_units", "_first_purchase"]
    _units: SummaryUnits | None = None
    _first_purchase: pd.Timestamp | None = None

    @property
    def _constructor(self):
        return RFMSummary

    def __finalize__(self, other, method=None, **kwargs):
        """Keep the units through pandas operations; a ``concat`` of pieces in one unit too."""
        super().__finalize__(other, method=method, **kwargs)
        if method == "concat":
            units = {getattr(o, "_units", None) for o in getattr(other, "objs", ())}
            if len(units) == 1:
                object.__setattr__(self, "_units", units.pop())
            firsts = [getattr(o, "_first_purchase", None) for o in getattr(other, "objs", ())]
            known = [f for f in firsts if f is not None]
            object.__setattr__(self, "_first_purchase", min(known) if known
                               and len(known) == len(firsts) else None)
        return self

    @property
    def units(self) -> SummaryUnits | None:
        """The summary's :class:`SummaryUnits` (None if they were lost, e.g. in a merge)."""
        return self._units

    @property
    def first_purchase(self) -> pd.Timestamp | None:
        """The first purchase of the log the summary was made from: where its data start.

        None where it is not known (a summary made elsewhere, read from a file,
        or merged). A log that starts mid-stream holds only the later part of
        the histories of customers acquired before this date.
        """
        return self._first_purchase

    def to_parquet(self, path=None, *, engine: str | None = None,
                   compression: str | None = "snappy", index: bool | None = None,
                   partition_cols: list | None = None,
                   storage_options: dict | None = None) -> bytes | None:
        """Write the summary to Parquet with its units (see :class:`RFMSummary`).

        The arguments are those of :meth:`pandas.DataFrame.to_parquet`;
        ``engine=None`` leaves the choice to pandas (passing ``"auto"`` is
        deprecated there).
        """
        out = pd.DataFrame(self)
        if self._units is not None:
            out.columns = pd.Index(list(out.columns), name=self._units.label)
        chosen = {} if engine is None else {"engine": engine}
        return out.to_parquet(path, compression=compression, index=index,
                              partition_cols=partition_cols, storage_options=storage_options,
                              **chosen)


def check_units(period: str, time_unit: str | None) -> SummaryUnits:
    """Validate a ``period``/``time_unit`` pair (``time_unit`` defaults to ``period``)."""
    period = str(period).upper()
    unit = str(time_unit or period).upper()
    if period not in ("D", "W", "M"):
        raise ValueError(f"period must be 'D', 'W' or 'M'; got {period!r}")
    if period == "M" or unit == "M":
        if not (period == "M" and unit == "M"):
            raise ValueError("time_unit 'M' (calendar months) requires period='M', and vice "
                             "versa")
    elif unit not in _UNIT_DAYS:
        raise ValueError(f"time_unit must be 'D', 'W' or 'M'; got {time_unit!r}")
    elif _UNIT_DAYS[unit] < _UNIT_DAYS[period]:
        raise ValueError(f"time_unit {unit!r} is finer than period {period!r}")
    return SummaryUnits(period, unit)


def _periods_per_unit(units: SummaryUnits) -> float:
    if units.period == "M":
        return 1.0
    return _UNIT_DAYS[units.time_unit] / _UNIT_DAYS[units.period]


def _check_against_data(summary: pd.DataFrame, units: SummaryUnits) -> None:
    """Refuse a label the data contradict: recency and T are whole numbers of periods."""
    COUNTS["summary units"] += 1
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
                f"{_NAMES[units.period]} (e.g. rows "
                f"{rows}); was it rescaled after rfm_summary? Make it again with the "
                "wanted period and time_unit",
                table="summary", column=col, rows=rows,
            )


def summary_units(summary: pd.DataFrame, *, check: bool = True) -> SummaryUnits | None:
    """Return the units recorded on a summary, or None if it carries none.

    Parameters
    ----------
    summary : pandas.DataFrame
        A per-customer summary (see :func:`~crmstats.clv.rfm_summary`); an
        :class:`RFMSummary`, or a frame read back from its Parquet file or
        labelled by an earlier release.
    check : bool
        Also check the units against the data (``recency`` and ``T`` are
        whole numbers of ``period`` periods); once per unchanged frame.

    Returns
    -------
    SummaryUnits or None
    """
    if not isinstance(summary, pd.DataFrame):
        return None
    units = _recorded(summary)
    if units is not None and check:
        frame_once(summary, ("units", units), lambda: _check_against_data(summary, units))
    return units


def _recorded(summary: pd.DataFrame) -> SummaryUnits | None:
    units = getattr(summary, "_units", None)
    if isinstance(units, SummaryUnits):
        return units
    name = summary.columns.name  # a Parquet file's units, or an earlier release's label
    if name is None:
        return None
    match = _LABEL.match(str(name))
    if match is None:
        if str(name).startswith("rfm summary"):
            raise DataError(f"summary table: unreadable unit label {name!r}", table="summary")
        return None
    return SummaryUnits(match["freq"], match["unit"])


@renamed_arguments(freq="period")
def with_units(summary: pd.DataFrame, *, period: str, time_unit: str | None = None
               ) -> RFMSummary:
    """Return a copy of a summary that records its units (for summaries made elsewhere).

    Parameters
    ----------
    summary : pandas.DataFrame
        Per-customer summary with ``recency`` and ``T`` in ``time_unit``.
    period : {"D", "W", "M"}
        Granularity at which purchases were merged.
    time_unit : {"D", "W", "M"}, optional
        Unit of ``recency`` and ``T``; defaults to ``period``.

    Returns
    -------
    RFMSummary
        A shallow copy that records the units; the caller's frame is not
        modified.

    Raises
    ------
    DataError
        If ``recency`` or ``T`` are not whole numbers of ``period`` periods.
    """
    units = check_units(period, time_unit)
    if not isinstance(summary, pd.DataFrame):
        raise DataError(f"summary: expected a DataFrame, got {type(summary).__name__}",
                        table="summary")
    _check_against_data(summary, units)
    return label(summary, units)


def label(frame: pd.DataFrame, units: SummaryUnits,
          first_purchase: pd.Timestamp | None = None) -> RFMSummary:
    """Return ``frame`` as an :class:`RFMSummary` in ``units`` (no data copied).

    ``first_purchase``: the first purchase of the log it was made from, when known.
    """
    out = RFMSummary(frame.copy(deep=False))
    if out.columns.name is not None and _LABEL.match(str(out.columns.name)):
        out.columns = pd.Index(list(out.columns))  # a file's (or earlier release's) label goes
    out._units = units
    out._first_purchase = (first_purchase if first_purchase is not None
                           else getattr(frame, "_first_purchase", None))
    return out


@renamed_arguments(freq="period")
def resolve_units(summary: pd.DataFrame | None = None, *models, time_unit: str | None = None,
                  period: str | None = None, what: str = "this function") -> SummaryUnits:
    """Return the one set of units that a summary, fitted models and arguments agree on.

    Parameters
    ----------
    summary : pandas.DataFrame, optional
        A per-customer summary, labelled or not.
    *models
        Fitted models; those fitted on a labelled summary record the period
        and ``time_unit_``.
    time_unit, period : str, optional
        Units the caller passed explicitly.
    what : str
        The caller's name, for messages.

    Returns
    -------
    SummaryUnits
        ``period`` is None where no source records it.

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
                            SummaryUnits(_model_period(model), unit)))
    if time_unit is not None:
        t = str(time_unit).upper()
        if t not in _NAMES:
            raise ValueError(f"time_unit must be 'D', 'W' or 'M'; got {time_unit!r}")
        f = None if period is None else str(period).upper()
        sources.append((f"time_unit={time_unit!r}" + (f", period={period!r}" if period else ""),
                        SummaryUnits(f, t)))
    elif period is not None:
        sources.append((f"period={period!r}", SummaryUnits(str(period).upper(), None)))
    unit = next((u.time_unit for _, u in sources if u.time_unit), None)
    fr = next((u.period for _, u in sources if u.period), None)
    for name, u in sources:
        for other, v in sources:
            if u.time_unit and v.time_unit and u.time_unit != v.time_unit:
                raise DataError(
                    f"{what}: unit mismatch: {name} is in {_NAMES[u.time_unit]}, {other} in "
                    f"{_NAMES[v.time_unit]}; recency, T and the horizon must be in one unit "
                    "(make the summary with rfm_summary(..., time_unit=...) and fit the "
                    "models on it)", table="summary", column="T",
                )
            if u.period and v.period and u.period != v.period:
                raise DataError(
                    f"{what}: purchase-merging mismatch: {name} merges purchases per "
                    f"{u.period!r}, {other} per {v.period!r}", table="summary",
                    column="frequency",
                )
    if unit is None:
        raise DataError(
            f"{what}: the summary does not record its time unit (made elsewhere, or its "
            "units were lost in a merge/join) and no time_unit was given; pass "
            "time_unit='D'/'W'/'M', or label it with crmstats.clv.with_units",
            table="summary", column="T",
        )
    return SummaryUnits(fr, unit)


def _model_period(model) -> str | None:
    """Return the period a fitted model records (``period_``, or ``freq_`` of earlier ones)."""
    if "period_" in vars(model) or hasattr(type(model), "period_"):
        return getattr(model, "period_", None)
    return vars(model).get("freq_")


def checked_summary(summary: pd.DataFrame, key, check):
    """Return ``check()`` for ``summary``, run once while the frame is unchanged.

    For the models' checks of a summary's columns: one :func:`fit_value`
    checks its summary once per set of columns, not once per prediction.
    """
    def run():
        COUNTS["summary"] += 1
        return check()

    return frame_once(summary, ("checked", key), run)

"""Per-customer RFM summaries from raw transactions, computed in-database (Ibis).

The definitions are those of the buy-till-you-die (BTYD) literature [1]_ and of
the ``lifetimes`` package:

* purchases are merged into *purchase occasions* at granularity ``period``
  (``"D"``: several purchases on one day are one occasion); rows with a
  negative amount are refunds and never purchases (see :mod:`crmstats.schema`),
  zero-value rows (free items) are purchases;
* ``frequency`` — number of **repeat** occasions (occasions − 1);
* ``recency`` — time from the first to the last occasion;
* ``T`` — time from the first occasion to the end of observation;
* ``monetary_value`` — mean value of the repeat occasions (0 when there are none).

Times are measured between period starts and expressed in ``time_unit``
(default: ``period``); ``period="D", time_unit="W"`` gives the fractional weeks of
the published CDNOW analyses. Both are recorded on the result, an
:class:`~crmstats.clv.units.RFMSummary` (``summary.units``).

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats._expr import observation_end as _observation_end
from crmstats._expr import period_index, truncate, up_to
from crmstats.backend import _backend_of, execute
from crmstats.clv.units import RFMSummary, check_units, label
from crmstats.exceptions import DataError
from crmstats.validation import as_table, transactions_table
from crmstats.vocabulary import renamed_arguments

__all__ = ["calibration_holdout_split", "holdout_period", "rfm_summary"]

#: Length of each time unit in days (months use calendar months instead).
_UNIT_DAYS = {"D": 1.0, "W": 7.0}


def _check_units(period: str, time_unit: str | None) -> tuple[str, str]:
    units = check_units(period, time_unit)
    return units.period, units.time_unit


def _elapsed(later: ir.IntegerValue, earlier: ir.IntegerValue, freq: str,
             unit: str) -> ir.FloatingValue:
    """Time from period ``earlier`` to ``later`` (:func:`period_index` numbers) in ``unit``."""
    periods = (later - earlier).cast("float64")
    if freq == "M":
        return periods  # calendar months (time_unit "M" goes with freq "M" only)
    return periods * (_UNIT_DAYS[freq] / _UNIT_DAYS[unit])


#: Exact type of summed amounts: 9 decimals (a float amount is rounded at 1e-9), up to 1e29.
_EXACT = "decimal(38, 9)"


def _occasions(t: ir.Table, freq: str, *, starts: bool = False) -> ir.Table:
    """Purchase occasions: one row per customer and period with its summed value.

    ``period`` is the :func:`period_index` number, or with ``starts`` the
    period's start timestamp.
    """
    buys = t.filter(t.amount >= 0)
    period = truncate(buys.timestamp, freq) if starts else period_index(buys.timestamp, freq)
    buys = buys.mutate(period=period)
    # summed as exact decimals: a float sum depends on the order parallel threads add the
    # rows in, so two runs on the same data differed in the last bits of monetary_value
    # (1e-13) and, through a flat likelihood, in the 6th digit of Gamma-Gamma's v
    return buys.group_by(["customer_id", "period"]).aggregate(
        value=buys.amount.cast(_EXACT).sum())


def _arg_min(arg: ir.Column, key: ir.IntegerColumn) -> ir.Scalar:
    """DuckDB's own ``arg_min(arg, key)``: ``arg`` at the row of the smallest ``key``."""


def _duckdb_arg_min(arg: ir.Column, key: ir.IntegerColumn) -> ir.Scalar:
    """``arg`` at the smallest ``key`` per group, as DuckDB's hash aggregate ``arg_min``."""
    udf = ibis.udf.agg.builtin(_arg_min, name="arg_min",
                               signature=((arg.type(), "int64"), arg.type()))
    return udf(arg, key.cast("int64"))


def _summary_expr(occ: ir.Table, end: ir.IntegerValue, freq: str, unit: str,
                  monetary: bool) -> ir.Table:
    """One row per customer from its occasions, in a single aggregation.

    The repeat value is the total minus the first occasion's value (``argmin``
    by period, which is unique per customer among occasions): no window over
    the occasions is needed.
    """
    aggs = dict(
        first_period=occ.period.min(),
        last_period=occ.period.max(),
        occasions=occ.count(),
    )
    if monetary:
        aggs["total_value"] = occ.value.sum()
        if _backend_of(occ).name == "duckdb":
            # Ibis compiles argmin to an ordered FIRST(... ORDER BY ...), which DuckDB
            # evaluates by sorting every group; its own arg_min is a plain hash aggregate
            aggs["first_value"] = _duckdb_arg_min(occ.value, occ.period)
        else:
            aggs["first_value"] = occ.value.argmin(occ.period)
    per = occ.group_by("customer_id").aggregate(**aggs)
    cols = dict(
        frequency=(per.occasions - 1).cast("float64"),
        recency=_elapsed(per.last_period, per.first_period, freq, unit),
        T=_elapsed(end, per.first_period, freq, unit),
    )
    if monetary:
        cols["monetary_value"] = ibis.ifelse(
            per.occasions > 1,
            (per.total_value - per.first_value) / (per.occasions - 1),
            0.0,
        ).cast("float64")
    return per.select("customer_id", **cols)


def _end_of_observation(t: ir.Table, observation_end) -> pd.Timestamp:
    return _observation_end(t, observation_end)


def _to_frame(expr: ir.Table, columns: list[str]) -> pd.DataFrame:
    # sorted here rather than in the query: pandas sorts a million ids in a fraction of
    # the time an ORDER BY adds to the aggregation
    out = execute(expr).set_index("customer_id")[columns].sort_index(kind="stable")
    return out.astype("float64")


@renamed_arguments(freq="period")
def rfm_summary(
    transactions: Any,
    *,
    observation_end=None,
    period: str = "D",
    time_unit: str | None = None,
    monetary: bool = True,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> RFMSummary:
    """Summarise transactions into one frequency/recency/T/monetary row per customer.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    observation_end : timestamp-like, optional
        End of observation; later transactions are ignored. Defaults to the
        last transaction.
    period : {"D", "W", "M"}
        Granularity at which purchases merge into one occasion (default "D").
    time_unit : {"D", "W", "M"}, optional
        Unit of ``recency`` and ``T``; defaults to ``period``. ``"W"`` with
        ``period="D"`` gives fractional weeks.
    monetary : bool
        Whether to compute ``monetary_value``.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    RFMSummary
        A DataFrame: index ``customer_id`` (sorted); columns ``frequency``,
        ``recency``, ``T`` [, ``monetary_value``], all float. Customers whose
        first purchase is after ``observation_end`` are absent. ``.units``
        records ``period`` and ``time_unit`` (:func:`~crmstats.clv.summary_units`);
        models and value functions read them from there.

    Raises
    ------
    DataError
        If no purchase (non-negative amount) falls before ``observation_end``.
    """
    freq, unit = _check_units(period, time_unit)
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    end = _end_of_observation(t, observation_end)
    end_period = period_index(ibis.literal(end.to_pydatetime()), freq)
    t = t.filter(up_to(t.timestamp, end))  # a date includes that whole day
    occ = _occasions(t, freq)
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if monetary else [])
    out = _to_frame(_summary_expr(occ, end_period, freq, unit, monetary), cols)
    if out.empty:
        raise DataError(
            f"transactions table: no purchase (non-refund row) on or before {end}",
            table="transactions",
            column=amount_col or "amount",
        )
    return label(out, check_units(freq, unit), _first_purchase(t))


def _first_purchase(t: ir.Table) -> pd.Timestamp:
    """Return the time of the first purchase (non-refund row) of ``t``: where its log starts."""
    return pd.Timestamp(execute(t.filter(t.amount >= 0).timestamp.min()))


@renamed_arguments(freq="period")
def calibration_holdout_split(
    transactions: Any,
    *,
    calibration_end,
    observation_end=None,
    period: str = "D",
    time_unit: str | None = None,
    monetary: bool = True,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> RFMSummary:
    """Summarise a calibration period and count what each customer did in the holdout.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    calibration_end : timestamp-like
        Last moment of the calibration period; customers are those with a
        purchase on or before it.
    observation_end : timestamp-like, optional
        End of the holdout period; defaults to the last transaction.
    period, time_unit, monetary, customer_id_col, timestamp_col, amount_col
        As in :func:`rfm_summary`.

    Returns
    -------
    RFMSummary
        The calibration summary (``frequency``, ``recency``, ``T``
        [, ``monetary_value``] of :func:`rfm_summary`) plus
        ``frequency_holdout`` (purchase occasions in the holdout period),
        [``monetary_holdout`` (mean value of those occasions, 0 if none; like
        ``monetary_value`` it averages merged occasions, whereas lifetimes'
        ``monetary_value_holdout`` averages raw rows),]
        ``duration_holdout`` (holdout length in ``time_unit``).
    """
    freq, unit = _check_units(period, time_unit)
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    cal_end = pd.Timestamp(calibration_end)
    end = _end_of_observation(t, observation_end)
    if end <= cal_end:
        raise ValueError(
            f"observation_end {end} must be after calibration_end {cal_end}"
        )
    cal_lit = ibis.literal(cal_end.to_pydatetime())
    end_lit = ibis.literal(end.to_pydatetime())
    cal_period = period_index(cal_lit, freq)
    end_period = period_index(end_lit, freq)
    t = t.filter(up_to(t.timestamp, end))
    occ = _occasions(t, freq)
    cal = _summary_expr(occ.filter(occ.period <= cal_period), cal_period, freq, unit, monetary)
    hold_occ = occ.filter(occ.period > cal_period)
    hold_aggs = dict(frequency_holdout=hold_occ.count())
    if monetary:
        hold_aggs["monetary_holdout"] = hold_occ.value.mean()
    hold = hold_occ.group_by("customer_id").aggregate(**hold_aggs)
    joined = cal.left_join(hold, "customer_id").select(
        cal,
        frequency_holdout=hold.frequency_holdout.fill_null(0).cast("float64"),
        **(
            {"monetary_holdout": hold.monetary_holdout.fill_null(0.0).cast("float64")}
            if monetary
            else {}
        ),
    )
    cols = ["frequency", "recency", "T"] + (["monetary_value"] if monetary else [])
    cols += ["frequency_holdout"] + (["monetary_holdout"] if monetary else [])
    out = _to_frame(joined, cols)
    if out.empty:
        raise DataError(
            f"transactions table: no purchase (non-refund row) on or before the "
            f"calibration end {cal_end}",
            table="transactions",
            column=amount_col or "amount",
        )
    duration = execute(_elapsed(end_period, cal_period, freq, unit))
    out["duration_holdout"] = float(duration)
    return label(out, check_units(freq, unit), _first_purchase(t))


def holdout_period(
    transactions: Any,
    *,
    holdout_weeks: float = 39,
    observation_end=None,
    timestamp_col: str | None = None,
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return ``(calibration_end, observation_end)`` for a holdout of the last weeks.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    holdout_weeks : float
        Length of the holdout period in weeks (39 in the CDNOW studies).
    observation_end : timestamp-like, optional
        End of observation; defaults to the last transaction's day.
    timestamp_col : str, optional
        The caller's name of the ``timestamp`` column.

    Returns
    -------
    tuple of pandas.Timestamp
        The calibration end (inclusive) and the observation end.
    """
    if float(holdout_weeks) <= 0:
        raise ValueError(f"holdout_weeks must be positive, got {holdout_weeks}")
    t = as_table(transactions, "transactions", columns={"timestamp": timestamp_col})
    end = _end_of_observation(t, observation_end).normalize()
    first = pd.Timestamp(execute(t.timestamp.min())).normalize()
    cal_end = end - pd.Timedelta(weeks=float(holdout_weeks))
    if cal_end <= first:
        raise ValueError(
            f"a {holdout_weeks}-week holdout leaves no calibration period: the data run "
            f"from {first.date()} to {end.date()}"
        )
    return cal_end, end

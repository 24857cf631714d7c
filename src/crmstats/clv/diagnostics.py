"""How well a fitted transaction model describes the data: the checks of the BTYD papers.

* :func:`frequency_recency_grid` — expected purchases or P(alive) over the
  frequency × recency grid (Fader, Hardie & Lee 2005, figures 4-5 [1]_);
* :func:`holdout_comparison` — actual vs predicted holdout purchases by
  calibration frequency (FHL 2005, figure 3);
* :func:`tracking` — cumulative repeat transactions, actual vs predicted, over
  calendar time (FHL 2005, figure 2). The actual counts are aggregated
  in-database.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.backend import execute
from crmstats.clv.models.limits import is_one_dropout_limit
from crmstats.clv.summaries import _check_units, _occasions
from crmstats.clv.units import resolve_units
from crmstats.clv.value import _require_summary, fit_problem
from crmstats.validation import transactions_table
from crmstats.vocabulary import renamed_arguments

__all__ = [
    "compare_models",
    "frequency_recency_grid",
    "holdout_comparison",
    "holdout_error",
    "tracking",
]

_UNIT_DAYS = {"D": 1.0, "W": 7.0}


def frequency_recency_grid(
    model,
    *,
    T: float,
    max_frequency: int = 30,
    max_recency: float | None = None,
    quantity: str = "probability_alive",
    t: float = 1.0,
) -> pd.DataFrame:
    """Evaluate a model over the frequency × recency grid for customers of age ``T``.

    Parameters
    ----------
    model : fitted BetaGeoModel, ParetoNBDModel or ModifiedBetaGeoModel
        The transaction model.
    T : float
        Customer age (time since the first purchase), in the model's unit.
    max_frequency : int
        Largest frequency (rows 0..max_frequency).
    max_recency : float, optional
        Largest recency (columns 0..max_recency, integer steps); default ``T``.
    quantity : {"probability_alive", "predict_purchases"}
        What to evaluate; ``predict_purchases`` is over the next ``t`` units.
    t : float
        Horizon of ``predict_purchases``.

    Returns
    -------
    pandas.DataFrame
        Index ``frequency``, columns ``recency``; cells where recency is 0 but
        frequency is positive (impossible) are NaN.
    """
    if quantity not in ("probability_alive", "predict_purchases"):
        raise ValueError(f"quantity must be 'probability_alive' or 'predict_purchases', "
                         f"got {quantity!r}")
    if T <= 0:
        raise ValueError(f"T must be positive, got {T}")
    max_recency = float(T if max_recency is None else min(max_recency, T))
    freqs = np.arange(int(max_frequency) + 1, dtype=float)
    recs = np.arange(0.0, np.floor(max_recency) + 1)
    f, r = np.meshgrid(freqs, recs, indexing="ij")
    grid = pd.DataFrame({"frequency": f.ravel(), "recency": r.ravel(), "T": float(T)})
    possible = ~((grid["frequency"] > 0) & (grid["recency"] == 0))
    values = np.full(len(grid), np.nan)
    sub = grid[possible].reset_index(drop=True)
    if quantity == "probability_alive":
        values[possible.to_numpy()] = np.asarray(model.probability_alive(sub), dtype=float)
    else:
        values[possible.to_numpy()] = np.asarray(model.predict_purchases(sub, t), dtype=float)
    out = pd.DataFrame(values.reshape(f.shape), index=pd.Index(freqs.astype(int), name="frequency"),
                       columns=pd.Index(recs, name="recency"))
    return out


def holdout_comparison(model, calibration_holdout: pd.DataFrame, *,
                       max_frequency: int = 7) -> pd.DataFrame:
    """Compare actual and predicted holdout purchases by calibration frequency.

    Parameters
    ----------
    model : fitted transaction model
        With ``predict_purchases(summary, t)``.
    calibration_holdout : pandas.DataFrame
        Output of :func:`~crmstats.clv.calibration_holdout_split`.
    max_frequency : int
        Customers with a larger calibration frequency are pooled in the last
        bin (labelled ``max_frequency`` and flagged ``pooled``).

    Returns
    -------
    pandas.DataFrame
        Index ``frequency`` (calibration repeat purchases, 0..max_frequency);
        columns ``customers``, ``actual`` and ``predicted`` (mean holdout
        purchases per customer) and ``pooled``. For totals and per-customer
        errors see :func:`holdout_error`.
    """
    _require_summary(calibration_holdout,
                     ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"])
    duration = calibration_holdout["duration_holdout"].to_numpy(dtype=float)
    pred = np.asarray(model.predict_purchases(calibration_holdout, duration[0]), dtype=float)
    if not np.allclose(duration, duration[0]):
        pred = np.array([
            float(np.asarray(model.predict_purchases(calibration_holdout.iloc[[i]], d))[0])
            for i, d in enumerate(duration)
        ])
    bins = calibration_holdout["frequency"].clip(upper=max_frequency).astype(int)
    frame = pd.DataFrame({"bin": bins.to_numpy(), "actual": calibration_holdout[
        "frequency_holdout"].to_numpy(dtype=float), "predicted": pred})
    out = frame.groupby("bin").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                   predicted=("predicted", "mean"))
    out.index.name = "frequency"
    out["pooled"] = out.index == max_frequency
    return out


def holdout_error(model, calibration_holdout: pd.DataFrame) -> pd.Series:
    """Summarise a model's holdout prediction error over all customers.

    Returns
    -------
    pandas.Series
        ``actual`` and ``predicted`` total holdout purchases, their relative
        difference ``total_error``, and the per-customer ``mae`` and ``rmse``.
    """
    _require_summary(calibration_holdout,
                     ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"])
    duration = float(calibration_holdout["duration_holdout"].iloc[0])
    pred = np.asarray(model.predict_purchases(calibration_holdout, duration), dtype=float)
    actual = calibration_holdout["frequency_holdout"].to_numpy(dtype=float)
    return pd.Series({
        "actual": actual.sum(),
        "predicted": pred.sum(),
        "total_error": (pred.sum() - actual.sum()) / actual.sum() if actual.sum() else np.nan,
        "mae": float(np.mean(np.abs(pred - actual))),
        "rmse": float(np.sqrt(np.mean((pred - actual) ** 2))),
    })


@renamed_arguments(freq="period")
def tracking(
    model,
    transactions: Any,
    *,
    period: str | None = None,
    time_unit: str | None = None,
    calibration_end=None,
    observation_end=None,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Cumulative repeat transactions over calendar time: actual vs model.

    The expected curve adds, over the cohorts of customers who made their
    first purchase on the same day, the cohort size times the model's
    expected repeat purchases of a new customer ``model.expected_purchases(t)``
    since that day.

    Parameters
    ----------
    model : fitted transaction model
        With ``expected_purchases(t)`` in ``time_unit``.
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    period : {"D", "W"}, optional
        Merging granularity of purchases, as in the summary the model was
        fitted on; read from the model (``period_``) when it records it
        (``freq`` is its old name, deprecated).
    time_unit : {"D", "W"}, optional
        The model's time unit, also the step of the output; read from the
        model (``time_unit_``) when it records it. A value contradicting the
        model is an error.
    calibration_end : timestamp-like, optional
        When given, only customers whose first purchase is on or before it are
        tracked (the calibration cohort), as in the papers.
    observation_end : timestamp-like, optional
        End of the curve; defaults to the last transaction.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period``: the last day (``period="W"``: week) each step
        includes, as in lifetimes' ``expected_cumulative_transactions``; the
        model is evaluated at the step's end. Columns ``actual`` and
        ``expected`` repeat transactions in the step, and their cumulative
        sums ``actual_cumulative`` and ``expected_cumulative``.
    """
    units = resolve_units(None, model, time_unit=time_unit, period=period, what="tracking")
    freq, unit = _check_units(units.period or "D", units.time_unit)
    if unit not in _UNIT_DAYS:
        raise ValueError("tracking supports time_unit 'D' or 'W'")
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    occ = _occasions(t, freq, starts=True)
    occ = occ.mutate(first=occ.period.min().over(group_by=occ.customer_id))
    if calibration_end is not None:
        occ = occ.filter(occ.first <= pd.Timestamp(calibration_end).to_pydatetime())
    firsts = occ.filter(occ.period == occ.first)
    later = occ.filter(occ.period > occ.first)
    cohorts = execute(firsts.group_by("period").aggregate(n=firsts.count()))
    repeats = execute(later.group_by("period").aggregate(n=later.count()))
    start = pd.Timestamp(cohorts["period"].min())
    end = pd.Timestamp(observation_end) if observation_end is not None else max(
        pd.Timestamp(cohorts["period"].max()),
        pd.Timestamp(repeats["period"].max()) if len(repeats) else start,
    )
    step = pd.Timedelta(days=_UNIT_DAYS[unit])
    edges = pd.date_range(start + step, end + step, freq=step)
    cohort_age = (edges.to_numpy()[:, None] - cohorts["period"].to_numpy()[None, :]) / step
    ages = np.clip(cohort_age.astype(float), 0.0, None)
    flat = np.asarray(model.expected_purchases(ages.ravel()), dtype=float).reshape(ages.shape)
    expected_cum = flat @ cohorts["n"].to_numpy(dtype=float)
    repeats = repeats.sort_values("period")
    cum = np.concatenate([[0.0], np.cumsum(repeats["n"].to_numpy(dtype=float))])
    idx = np.searchsorted(pd.to_datetime(repeats["period"]).to_numpy(), edges.to_numpy(),
                          side="left")
    actual_cum = cum[idx]
    # each step is labelled by the last period it includes (as lifetimes'
    # expected_cumulative_transactions does), not by its exclusive end
    last = edges - pd.Timedelta(days=_UNIT_DAYS[freq])
    out = pd.DataFrame({
        "actual": np.diff(actual_cum, prepend=0.0),
        "expected": np.diff(expected_cum, prepend=0.0),
        "actual_cumulative": actual_cum,
        "expected_cumulative": expected_cum,
    }, index=pd.DatetimeIndex(last, name="period"))
    return out


def compare_models(models: dict, calibration_holdout: pd.DataFrame) -> pd.DataFrame:
    """Compare fitted transaction models on the same calibration/holdout split.

    Parameters
    ----------
    models : dict of str to fitted model
        Name → model fitted on ``calibration_holdout``.
    calibration_holdout : pandas.DataFrame
        Output of :func:`~crmstats.clv.calibration_holdout_split`.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``log_likelihood`` (calibration), ``n_params``,
        ``bic``, the holdout ``actual``/``predicted`` totals,
        ``total_error``, ``mae`` and ``rmse`` of :func:`holdout_error`, and
        ``fit_problem`` (:func:`~crmstats.clv.fit_problem`: empty for a fit
        to trust; a fit that did not converge or sits at the edge of its
        parameter space is not to be ranked, except at the limit of one
        dropout rate for every customer, :mod:`crmstats.clv.models.limits`).
        Sorted by holdout ``mae``, the fits to rank first.
    """
    if not models:
        raise ValueError("models is empty")
    n = len(calibration_holdout)
    rows = {}
    for name, model in models.items():
        err = holdout_error(model, calibration_holdout)
        k = len(model.params_)
        ll = float(model.log_likelihood_)
        rows[name] = {"log_likelihood": ll, "n_params": k, "bic": k * np.log(n) - 2 * ll,
                      **err.to_dict(), "fit_problem": fit_problem(model) or ""}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "model"
    # a fit at its one-dropout limit predicts as a model in its own right: ranked too
    trusted = out["fit_problem"].eq("") | out["fit_problem"].map(is_one_dropout_limit)
    return (out.assign(_untrusted=~trusted).sort_values(["_untrusted", "mae"], kind="mergesort")
            .drop(columns="_untrusted"))

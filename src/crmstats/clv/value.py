"""Customer value: discounted CLV and its bootstrap interval, win-back lists, value by group.

These functions take a per-customer summary (see :func:`crmstats.clv.rfm_summary`)
and fitted models (a transaction model such as
:class:`~crmstats.clv.BetaGeoModel` and a :class:`~crmstats.clv.GammaGammaModel`)
and return per-customer frames indexed by ``customer_id``. The value pyramid,
Pareto analysis and RFM segments are in :mod:`crmstats.clv.segments` (their
names are re-exported here).

Over 500 lines (~630) on purpose: :func:`customer_lifetime_value` and
:func:`bootstrap_clv` call each other and share the CLV arithmetic
(:func:`_clv_point`, the month length, the convergence rules).

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmstats.clv.covariate_keywords import prediction_keywords, refit_keywords
from crmstats.clv.segments import (  # re-exported: segments were split from this module
    DEFAULT_TIERS,  # noqa: F401
    RFM_SEGMENTS,  # noqa: F401
    ParetoResult,
    _require_summary,
    _values,
    pareto_analysis,
    rfm_segments,
    value_tiers,
)
from crmstats.clv.units import resolve_units
from crmstats.exceptions import ConvergenceError, ConvergenceWarning, CRMStatsError, DataError
from crmstats.vocabulary import (
    interval_columns,
    renamed_arguments,
    renamed_attribute,
    with_old_column_names,
)

__all__ = [
    "BootstrapCLV",
    "ParetoResult",
    "bootstrap_clv",
    "customer_lifetime_value",
    "fit_problem",
    "lapse_threshold",
    "value_by_group",
    "pareto_analysis",
    "rfm_segments",
    "value_tiers",
    "winback_list",
]

#: Length of a month in each time unit of a summary: a calendar month on average, 365.25 / 12
#: = 30.4375 days (4.348 weeks). lifetimes' ``customer_lifetime_value`` steps 30 days
#: (4.345 weeks) a month, so its CLV of a daily summary covers 1.4 % less time: 1.46 % lower
#: mean CLV on a shop's invoice log, 0.07 % on a weekly summary.
MONTH_IN_UNITS = {"D": 365.25 / 12, "W": 365.25 / 12 / 7, "M": 1.0}

def _month_length(time_unit: str) -> float:
    try:
        return MONTH_IN_UNITS[str(time_unit).upper()]
    except KeyError:
        raise ValueError(f"time_unit must be 'D', 'W' or 'M'; got {time_unit!r}") from None


def require_converged(*models, allow_unconverged: bool = False, what: str = "") -> None:
    """Raise :class:`~crmstats.ConvergenceError` for a model whose fit did not converge.

    Parameters
    ----------
    *models
        Fitted estimators (with ``converged_``; models without it pass).
    allow_unconverged : bool
        Accept the optimiser's last iterate instead (a ``ConvergenceWarning``
        was already issued by ``fit``).
    what : str
        The caller's name, for the message.
    """
    if allow_unconverged:
        return
    for model in models:
        if getattr(model, "converged_", True) is False:
            name = type(model).__name__
            reason = getattr(model, "optimizer_message_", "")
            raise ConvergenceError(
                f"{what}: the {name} fit did not converge ({reason}); its values would rest "
                "on the optimiser's last iterate. Refit (more maxiter, another time unit, a "
                "penalizer) or pass allow_unconverged=True to accept the last iterate",
                model=name, reason=reason,
            )


def _problems(model) -> list[tuple[str, str]]:
    """Why a fit is not to be trusted: ``(short reason, clause)`` pairs (none: trusted).

    The one rule behind :func:`fit_problem` (the clause, for readers) and the
    bootstrap's count of dropped refits (the short reason).
    """
    out = []
    if getattr(model, "converged_", True) is False:
        out.append(("did not converge", "did not converge"))
    boundary = getattr(model, "boundary_", None)
    if boundary:
        out.append(("at the edge of the parameter space", str(boundary)))
    return out


def fit_problem(model) -> str | None:
    """Say in plain words why a fit should not be trusted, or return None.

    A fit is not to be trusted when its optimiser stopped without converging
    (``converged_`` False: the estimates are its last step) or when the
    estimate sits at the edge of the parameter space (``boundary_``: e.g.
    BG/NBD's b running off to 1e10, the data showing no measurable dropout).
    Such a fit is not used to rank models (:func:`compare_models`; except at
    the limit of one dropout rate for every customer, a model in its own
    right: :mod:`crmstats.clv.models.limits`) or for a study's headline, and a
    bootstrap refit like it is dropped (:func:`bootstrap_clv`).

    Parameters
    ----------
    model : fitted estimator
        Anything with ``converged_`` and/or ``boundary_`` (others pass).

    Returns
    -------
    str or None
        A clause that follows the fit's name, e.g. "did not converge and
        found no measurable dropout: ...".
    """
    return " and ".join(clause for _, clause in _problems(model)) or None


def _require_finite(out: pd.DataFrame, column: str, what: str) -> pd.DataFrame:
    """Refuse a result with missing values instead of returning NaN."""
    bad = ~np.isfinite(out[column].to_numpy(dtype=float))
    if bad.any():
        rows = list(out.index[bad][:5])
        raise CRMStatsError(
            f"{what}: {int(bad.sum())} of {len(out)} customers got a non-finite {column} "
            f"(e.g. rows {rows}); the fitted parameters cannot value them. Check the fit "
            "(summary_, converged_) and the summary's units"
        )
    return out


def discounted_purchases(cumulative: np.ndarray, discount_rate: float) -> np.ndarray:
    """Discounted purchases: each month's expected purchases over ``(1 + rate)^month``, summed.

    ``cumulative`` holds, per row, the expected purchases by the end of months
    1, 2, … (shape rows × months); the CLV of a customer is this times the
    expected spend per purchase.
    """
    cumulative = np.asarray(cumulative, dtype=float)
    per_month = np.diff(cumulative, axis=1, prepend=0.0)
    months = np.arange(1, cumulative.shape[1] + 1, dtype=float)
    return per_month @ (1.0 + discount_rate) ** -months


def _clv_point(transaction_model, spend_model, summary, horizon_months, discount_rate, month,
               covariates=None):
    """Discounted CLV: sum over months of expected purchases in the month × spend × discount."""
    t_kw, s_kw = prediction_keywords((transaction_model, spend_model), covariates, "CLV")
    spend = np.asarray(spend_model.expected_spend(summary, **s_kw), dtype=float)
    cumulative = np.column_stack([
        np.asarray(transaction_model.predict_purchases(summary, i * month, **t_kw),
                   dtype=float)
        for i in range(1, int(horizon_months) + 1)
    ]) if int(horizon_months) > 0 else np.zeros((len(summary), 0))
    return discounted_purchases(cumulative, discount_rate) * spend


def _refit_problem(models) -> str | None:
    """Why a bootstrap refit is not usable (:func:`fit_problem`'s first short reason), or None."""
    for model in models:
        found = _problems(model)
        if found:
            return found[0][0]
    return None


@dataclass(frozen=True)
class BootstrapCLV:
    """Result of :func:`bootstrap_clv`.

    Attributes
    ----------
    lower, upper : pandas.Series
        Per customer, the interval (NaN when withheld):
        ``0 <= lower <= estimate <= upper``; named ``clv_lower_<pct>`` and
        ``clv_upper_<pct>`` for the level (``clv_lower_90`` at 0.9).
    estimate : pandas.Series
        The point CLV the interval is built around.
    level : float
        Its coverage (``ci`` is its old name, deprecated).
    n_bootstrap : int
        Refits asked for.
    n_used : int
        Refits the interval is built from.
    n_dropped : int
        Refits dropped: ``n_bootstrap - n_used``.
    dropped : pandas.Series
        Refits dropped, by reason ("did not converge", "at the edge of the
        parameter space", "failed", "gave non-finite or negative values").
    withheld : str or None
        Why the interval is withheld (fewer than half the refits usable), or
        None.
    """

    lower: pd.Series
    upper: pd.Series
    estimate: pd.Series
    level: float
    n_bootstrap: int
    n_used: int
    n_dropped: int
    dropped: pd.Series
    withheld: str | None

    ci = renamed_attribute("level", "ci")


@renamed_arguments(ci="level")
def bootstrap_clv(
    transaction_model,
    spend_model,
    summary: pd.DataFrame,
    *,
    n_bootstrap: int = 50,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    level: float = 0.9,
    time_unit: str | None = None,
    allow_unconverged: bool = False,
    seed: int = 13,
    covariates: pd.DataFrame | None = None,
) -> BootstrapCLV:
    """Percentile bootstrap interval of every customer's CLV; failed refits dropped and counted.

    Customers are resampled with replacement and both models refitted
    ``n_bootstrap`` times, each as it was fitted (a model with covariates with
    its covariates, on the same processes:
    :func:`~crmstats.clv.covariate_keywords.refit_keywords`). A refit that
    raises, does not converge, sits at the edge of its parameter space
    (``boundary_``: e.g. BG/NBD's b driven to 1e8-1e10, the no-dropout limit,
    which a real shop's log gave on 5 of 50 resamples) or gives a non-finite
    or negative CLV is dropped and counted by reason, with a
    :class:`~crmstats.ConvergenceWarning`. The interval is the percentile
    interval of the other refits, widened where needed to contain the point
    estimate (a percentile interval need not) and never below 0. With fewer
    than half the refits usable (and at least two) it is withheld: NaN, with
    the reason.

    Parameters
    ----------
    transaction_model, spend_model, summary, horizon_months, discount_rate, time_unit,
    allow_unconverged, covariates
        As for :func:`customer_lifetime_value` (the point estimate).
    n_bootstrap : int
        Number of refits (at least 1).
    level : float
        Coverage of the interval (``ci`` is its old name, deprecated).
    seed : int
        Seed of the resampling.

    Returns
    -------
    BootstrapCLV
    """
    from crmstats.exceptions import CRMStatsError

    if int(n_bootstrap) < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not 0 < float(level) < 1:
        raise ValueError(f"level is a coverage in (0, 1), got {level}")
    point = customer_lifetime_value(transaction_model, spend_model, summary,
                                    horizon_months=horizon_months, discount_rate=discount_rate,
                                    time_unit=time_unit, allow_unconverged=allow_unconverged,
                                    covariates=covariates)
    t_refit = refit_keywords(transaction_model, covariates, what="bootstrap_clv")
    s_refit = refit_keywords(spend_model, covariates, what="bootstrap_clv")
    units = resolve_units(summary, transaction_model, spend_model, time_unit=time_unit,
                          what="bootstrap_clv")
    month = _month_length(units.time_unit)
    n_bootstrap = int(n_bootstrap)
    rng = np.random.default_rng(seed)
    n = len(summary)
    draws, dropped = [], {}
    for _ in range(n_bootstrap):
        sample = summary.iloc[rng.integers(0, n, n)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                tm = copy.deepcopy(transaction_model).fit(sample, **t_refit)
                sm = copy.deepcopy(spend_model).fit(sample, **s_refit)
            except (CRMStatsError, ValueError, FloatingPointError):
                tm = sm = None
        reason = "failed" if tm is None else _refit_problem((tm, sm))
        if reason is None:
            draw = _clv_point(tm, sm, summary, horizon_months, discount_rate, month,
                              covariates)
            if not np.all(np.isfinite(draw)) or (draw < 0).any():
                reason = "gave non-finite or negative values"
        if reason is None:
            draws.append(draw)
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    n_used = len(draws)
    why = ", ".join(f"{k}: {v}" for k, v in dropped.items())
    estimate = point["clv"]
    withheld = None
    if n_used < max(2, -(-n_bootstrap // 2)):
        withheld = f"only {n_used} of {n_bootstrap} bootstrap refits were usable ({why})"
        warnings.warn(f"bootstrap_clv: the CLV interval is withheld: {withheld}",
                      ConvergenceWarning, stacklevel=3)
        lower = upper = np.full(n, np.nan)
    else:
        if dropped:
            warnings.warn(f"bootstrap_clv: {n_bootstrap - n_used} of {n_bootstrap} bootstrap "
                          f"refits were dropped ({why}); the interval uses the other {n_used}",
                          ConvergenceWarning, stacklevel=3)
        tail = (1.0 - float(level)) / 2.0
        stacked = np.vstack(draws)
        est = estimate.to_numpy(dtype=float)
        lower = np.maximum(np.minimum(np.quantile(stacked, tail, axis=0), est), 0.0)
        upper = np.maximum(np.quantile(stacked, 1.0 - tail, axis=0), est)
    index = estimate.index
    lower_name, upper_name = interval_columns("clv", level)
    return BootstrapCLV(
        lower=pd.Series(lower, index=index, name=lower_name),
        upper=pd.Series(upper, index=index, name=upper_name),
        estimate=estimate, level=float(level), n_bootstrap=n_bootstrap, n_used=n_used,
        n_dropped=n_bootstrap - n_used,
        dropped=pd.Series(dropped, dtype="int64", name="refits").rename_axis("reason"),
        withheld=withheld)


@renamed_arguments(ci="level")
def customer_lifetime_value(
    transaction_model,
    spend_model,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    time_unit: str | None = None,
    allow_unconverged: bool = False,
    n_bootstrap: int = 0,
    level: float = 0.9,
    seed: int = 13,
    covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Discounted customer lifetime value over a horizon, per customer.

    CLV is the sum over the next ``horizon_months`` months of the expected
    number of purchases in the month (from the transaction model, conditional
    on the customer's history), times the customer's expected spend per
    purchase (Gamma-Gamma), discounted at ``discount_rate`` per month to the
    end of observation [1]_.

    A month is an average calendar month, 365.25 / 12 = 30.4375 days
    (4.348 weeks; :data:`MONTH_IN_UNITS`). lifetimes' ``customer_lifetime_value``
    takes 30 days (4.345 weeks): on a daily summary its CLV is about 1.4 %
    lower (1.46 % in mean on a shop's invoice log) for that reason alone; on
    a weekly summary the two differ by under 0.1 %.

    Parameters
    ----------
    transaction_model : fitted BetaGeoModel, ParetoNBDModel or ModifiedBetaGeoModel
        Anything with ``predict_purchases(summary, t)``.
    spend_model : fitted GammaGammaModel
        Anything with ``expected_spend(summary)``.
    summary : pandas.DataFrame
        Output of :func:`~crmstats.clv.rfm_summary` (with ``monetary_value``).
    horizon_months : int
        Number of months ahead.
    discount_rate : float
        Monthly discount rate (0.01 ≈ 12.7 % a year).
    time_unit : {"W", "D", "M"}, optional
        Unit of the summary's recency and T. Read from the summary (and the
        models) when they record it (:func:`~crmstats.clv.rfm_summary` does);
        needed only for a summary without a unit label. A value that
        contradicts the summary or the models is an error.
    allow_unconverged : bool
        Value customers with a model whose fit did not converge (its last
        iterate) instead of raising :class:`~crmstats.ConvergenceError`.
    n_bootstrap : int
        When > 0, the bootstrap interval of :func:`bootstrap_clv`: customers
        resampled with replacement, both models refitted, every customer's
        CLV recomputed, ``n_bootstrap`` times. Refits that fail, do not
        converge, sit at the edge of the parameter space (``boundary_``) or
        give a negative or non-finite CLV are dropped and counted (a
        ``ConvergenceWarning`` says how many and why; :func:`bootstrap_clv`
        returns the counts); the interval is withheld (NaN) when fewer than
        half are usable.
    level : float
        Coverage of the bootstrap interval (``ci`` is its old name, deprecated).
    seed : int
        Seed of the bootstrap resampling.
    covariates : pandas.DataFrame, optional
        Each customer's covariates (:func:`~crmstats.clv.covariate_frame`),
        for models fitted with covariates: passed to those of the two that
        have covariate coefficients (a model loaded from a file keeps no
        customer rows and needs them; a model fitted here uses the rows kept
        from its fit when this is not given). Given with models that have no
        covariates, a :class:`~crmstats.DataError`.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id``; columns ``expected_purchases`` (over the
        horizon, undiscounted), ``expected_spend`` (per purchase), ``clv``
        (discounted), and with a bootstrap ``clv_lower_<pct>`` /
        ``clv_upper_<pct>``, named for the level (``clv_lower_90``,
        ``clv_upper_90`` at the default 0.9; ``0 <= clv_lower_90 <= clv <=
        clv_upper_90``: the percentile interval of the usable refits, widened
        to contain the estimate where it does not). Their old names
        ``clv_lower``/``clv_upper`` still read them for one release (with a
        DeprecationWarning).

    Raises
    ------
    DataError
        If the summary, the models and ``time_unit`` disagree on the unit, or
        none of them records it.
    ConvergenceError
        If a model's fit did not converge (unless ``allow_unconverged``).
    CRMStatsError
        If any customer's CLV would be non-finite.
    """
    _require_summary(summary, ["frequency", "recency", "T", "monetary_value"])
    if int(horizon_months) < 1:
        raise ValueError(f"horizon_months must be at least 1, got {horizon_months}")
    if not 0 <= float(discount_rate) < 1:
        raise ValueError(f"discount_rate is a monthly rate in [0, 1), got {discount_rate}")
    units = resolve_units(summary, transaction_model, spend_model, time_unit=time_unit,
                          what="customer_lifetime_value")
    require_converged(transaction_model, spend_model, allow_unconverged=allow_unconverged,
                      what="customer_lifetime_value")
    month = _month_length(units.time_unit)
    t_kw, s_kw = prediction_keywords((transaction_model, spend_model), covariates,
                                     "customer_lifetime_value")
    out = pd.DataFrame(index=summary.index.copy())
    out["expected_purchases"] = np.asarray(
        transaction_model.predict_purchases(summary, horizon_months * month, **t_kw),
        dtype=float)
    out["expected_spend"] = np.asarray(spend_model.expected_spend(summary, **s_kw), dtype=float)
    out["clv"] = _clv_point(
        transaction_model, spend_model, summary, horizon_months, discount_rate, month,
        covariates)
    if n_bootstrap and int(n_bootstrap) > 0:
        boot = bootstrap_clv(transaction_model, spend_model, summary,
                             n_bootstrap=n_bootstrap, horizon_months=horizon_months,
                             discount_rate=discount_rate, level=level, time_unit=time_unit,
                             allow_unconverged=allow_unconverged, seed=seed,
                             covariates=covariates)
        out[boot.lower.name], out[boot.upper.name] = boot.lower.to_numpy(), boot.upper.to_numpy()
        out = with_old_column_names(out, {"clv_lower": boot.lower.name,
                                          "clv_upper": boot.upper.name})
    return _require_finite(out, "clv", "customer_lifetime_value")


def lapse_threshold(summary: pd.DataFrame, default: float | None = None) -> float:
    """Default time without a purchase after which a customer counts as lapsed.

    Twice the median time between purchases of repeat customers
    (``recency / frequency``), in the summary's time unit.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`~crmstats.clv.rfm_summary`.
    default : float, optional
        Returned when no customer has a repeat purchase (else an error).

    Returns
    -------
    float

    Raises
    ------
    DataError
        If no customer has a repeat purchase and no ``default`` is given.
    """
    _require_summary(summary, ["frequency", "recency", "T"])
    repeat = summary[summary["frequency"] > 0]
    if repeat.empty and default is not None:
        return float(default)
    if repeat.empty:
        raise DataError("summary: no repeat customers to derive lapsed_after from; "
                        "pass lapsed_after", table="summary", column="frequency")
    return 2.0 * float((repeat["recency"] / repeat["frequency"]).median())


def winback_list(
    transaction_model,
    spend_model,
    summary: pd.DataFrame,
    *,
    lapsed_after: float | None = None,
    horizon_months: int = 12,
    time_unit: str | None = None,
    high_priority_share: float = 0.2,
    allow_unconverged: bool = False,
    covariates: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Former customers worth winning back, ranked by P(alive) × value if active.

    Parameters
    ----------
    transaction_model, spend_model
        Fitted models, as in :func:`customer_lifetime_value`.
    summary : pandas.DataFrame
        Output of :func:`~crmstats.clv.rfm_summary` with ``monetary_value``.
    lapsed_after : float, optional
        Time without a purchase (``T - recency``, in the summary's unit) after
        which a customer counts as lapsed. Default :func:`lapse_threshold`:
        twice the median time between purchases of repeat customers.
    horizon_months : int
        Horizon of the value if the customer is active.
    time_unit : {"W", "D", "M"}, optional
        Unit of the summary's recency and T; read from the summary and the
        models when they record it, as in :func:`customer_lifetime_value`.
    high_priority_share : float
        Share of the lapsed customers (the best-scored) labelled high priority.
    allow_unconverged, covariates
        As in :func:`customer_lifetime_value`.

    Returns
    -------
    pandas.DataFrame
        Lapsed customers only, best first; index ``customer_id``; columns
        ``time_since_purchase``, ``p_alive``, ``value_if_active`` (expected
        spend over the horizon if the customer is still active: expected
        purchases ÷ P(alive) × expected spend), ``score`` (P(alive) ×
        value_if_active) and ``priority`` ("former customer, high priority" /
        "former customer, low priority"). Customer ids only — no personal data.
    """
    _require_summary(summary, ["frequency", "recency", "T", "monetary_value"])
    units = resolve_units(summary, transaction_model, spend_model, time_unit=time_unit,
                          what="winback_list")
    require_converged(transaction_model, spend_model, allow_unconverged=allow_unconverged,
                      what="winback_list")
    month = _month_length(units.time_unit)
    t_kw, s_kw = prediction_keywords((transaction_model, spend_model), covariates,
                                     "winback_list")
    since = summary["T"] - summary["recency"]
    if lapsed_after is None:
        lapsed_after = lapse_threshold(summary)
    lapsed = summary[since >= lapsed_after]
    cols = ["time_since_purchase", "p_alive", "value_if_active", "score", "priority"]
    if lapsed.empty:
        return pd.DataFrame(columns=cols, index=pd.Index([], name=summary.index.name))
    p_alive = np.asarray(transaction_model.probability_alive(lapsed, **t_kw), dtype=float)
    purchases = np.asarray(
        transaction_model.predict_purchases(lapsed, horizon_months * month, **t_kw),
        dtype=float)
    spend = np.asarray(spend_model.expected_spend(lapsed, **s_kw), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if_active = np.where(p_alive > 0, purchases / p_alive, 0.0) * spend
    out = pd.DataFrame(
        {"time_since_purchase": since.loc[lapsed.index].to_numpy(), "p_alive": p_alive,
         "value_if_active": if_active, "score": p_alive * if_active},
        index=lapsed.index,
    ).sort_values("score", ascending=False, kind="mergesort")
    _require_finite(out, "score", "winback_list")
    n_high = int(np.ceil(high_priority_share * len(out) - 1e-9))
    out["priority"] = ["former customer, high priority"] * n_high + [
        "former customer, low priority"
    ] * (len(out) - n_high)
    return out[cols]


def value_by_group(
    values,
    customers,
    *,
    by: str = "acquisition_channel",
    customer_id_col: str | None = None,
) -> pd.DataFrame:
    """Summarise customer value per group of the customers table (e.g. acquisition channel).

    Parameters
    ----------
    values : pandas.Series or DataFrame
        Value per customer (the frame of :func:`customer_lifetime_value` uses
        its ``clv`` column), indexed by ``customer_id``.
    customers : DataFrame, path or ibis.Table
        Canonical customers table.
    by : str
        Column of the customers table to group by.
    customer_id_col : str, optional
        The caller's name of the ``customer_id`` column.

    Returns
    -------
    pandas.DataFrame
        Index: the groups; columns ``customers``, ``mean``, ``median``,
        ``total`` and ``value_share``. Valued customers missing from the
        customers table form the group ``"(unknown)"``.
    """
    from crmstats.backend import execute
    from crmstats.validation import as_table

    s = _values(values)
    t = as_table(customers, "customers", columns={"customer_id": customer_id_col})
    if by not in t.columns:
        raise DataError(f"customers table: no column {by!r} to group by; columns: "
                        f"{', '.join(t.columns)}", table="customers", column=by)
    groups = execute(t.select("customer_id", by)).drop_duplicates("customer_id")
    groups = groups.set_index("customer_id")[by]
    groups.index = groups.index.astype(str)
    key = pd.Series(s.index.astype(str), index=s.index).map(groups).fillna("(unknown)")
    grouped = s.groupby(key.to_numpy())
    out = pd.DataFrame({"customers": grouped.size(), "mean": grouped.mean(),
                        "median": grouped.median(), "total": grouped.sum()})
    out["value_share"] = out["total"] / out["total"].sum()
    out.index.name = by
    return out.sort_values("mean", ascending=False)

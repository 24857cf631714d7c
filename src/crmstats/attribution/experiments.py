"""Holdout experiments: what a channel adds, measured by withholding it at random.

A holdout test withholds a channel from a random share of the journeys it
would reach (the ``holdout`` group; the others are the ``treatment`` group).
Because the split is random, the difference of the two groups' conversion
rates is an unbiased estimate of the channel's lift on those journeys — which
observational attribution models, reading who was present in winning
journeys, can miss by a wide margin [1]_.

:func:`lift_test` gives, per channel, the two conversion rates, the absolute
lift with the Newcombe hybrid-score interval [2]_, the relative lift with the
log-ratio (Katz) interval [3]_, the two-sided pooled z-test p-value and the
incremental conversions scaled to the treated population.
:func:`holdout_size` plans a test: the units needed to detect a lift with a
given power (arcsine effect size, [4]_) or to measure it within a margin.

References
----------
.. [1] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.
.. [2] Newcombe, R. G. (1998). Interval estimation for the difference between
   independent proportions: comparison of eleven methods. Statistics in
   Medicine 17(8), 873-890 (method 10).
.. [3] Katz, D., Baptista, J., Azen, S. P. and Pike, M. C. (1978). Obtaining
   confidence intervals for the risk ratio in cohort studies. Biometrics
   34(3), 469-474.
.. [4] Cohen, J. (1988). Statistical Power Analysis for the Behavioral
   Sciences, 2nd ed., chapter 6 (differences between proportions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataError
from crmstats.validation import as_table

if TYPE_CHECKING:
    from crmstats.crmdata import CRMData

__all__ = ["experiment_data", "holdout_plan", "holdout_size", "lift_test", "untouched_journeys"]

_Z95 = 1.959963984540054


def _norm_sf(z):
    from scipy.special import ndtr

    return ndtr(-np.asarray(z, dtype=float))


def _norm_ppf(q):
    from scipy.special import ndtri

    return ndtri(np.asarray(q, dtype=float))


def _wilson(x, n, z=_Z95):
    """Wilson score interval of a proportion (vectorised)."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    p = x / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return centre - half, centre + half


def lift_test(
    experiments: Any,
    conversions: Any,
    *,
    journey_id_col: str | None = None,
    channel_col: str | None = None,
) -> pd.DataFrame:
    """Per channel: conversion rates of treatment and holdout, lift with 95 % intervals.

    Parameters
    ----------
    experiments : DataFrame, path or ibis.Table
        Canonical experiments table (``journey_id``, ``channel``, ``group`` =
        ``treatment`` | ``holdout`` [, ``started_at``]). One row per unit and
        channel under test.
    conversions : DataFrame, path or ibis.Table
        Canonical conversions table; a unit converted when its ``journey_id``
        has a conversion (at or after ``started_at`` when the experiments carry it).
    journey_id_col, channel_col : str, optional
        The caller's names of the experiments table's columns (the ``group``
        column keeps its canonical name; a data source's column mapping,
        ``crmstats.yml``, can rename it).

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; columns ``treatment_units``, ``holdout_units``,
        ``treatment_conversions``, ``holdout_conversions``, ``treatment_rate``,
        ``holdout_rate``; ``lift`` (absolute, treatment rate - holdout rate),
        ``std_err`` (unpooled), ``lower_95`` / ``upper_95`` (Newcombe hybrid
        score interval), ``p_value`` (two-sided pooled z-test of equal rates);
        ``relative_lift`` (lift / holdout rate) with ``relative_lower_95`` /
        ``relative_upper_95`` (log-ratio interval; NaN without holdout
        conversions); ``incremental_conversions`` (lift x treatment units: the
        conversions the channel added among the treated) with its
        ``incremental_std_err``, ``incremental_lower_95`` and ``incremental_upper_95``.

    Raises
    ------
    DataError
        When a channel has no unit in one of its groups (no comparison is possible).
    """
    e = as_table(experiments, "experiments", columns={"journey_id": journey_id_col,
                                                     "channel": channel_col})
    c = as_table(conversions, "conversions", columns={"journey_id": journey_id_col})
    conv = c.group_by(journey_id=c.journey_id.cast("string")).aggregate(
        converted_at=c.timestamp.min())
    units = e.mutate(journey_id=e.journey_id.cast("string"))
    joined = units.left_join(conv, "journey_id")
    hit = joined.converted_at.notnull()
    if "started_at" in units.columns:
        hit = hit & (joined.started_at.isnull() | (joined.converted_at >= joined.started_at))
    counts = execute(
        joined.group_by([joined.channel.cast("string").name("channel"), "group"]).aggregate(
            units=joined.count(), conversions=hit.ifelse(1, 0).sum())
    )
    wide = counts.pivot_table(index="channel", columns="group", values=["units", "conversions"],
                              aggfunc="sum", fill_value=0)
    for g in ("treatment", "holdout"):
        for v in ("units", "conversions"):
            if (v, g) not in wide.columns:
                wide[(v, g)] = 0
    n_t = wide[("units", "treatment")].astype(float)
    n_h = wide[("units", "holdout")].astype(float)
    x_t = wide[("conversions", "treatment")].astype(float)
    x_h = wide[("conversions", "holdout")].astype(float)
    empty = (n_t == 0) | (n_h == 0)
    if empty.any():
        bad = list(n_t.index[empty])
        raise DataError(
            f"experiments table: channel(s) {', '.join(map(repr, bad[:5]))} have no unit in the "
            "treatment or in the holdout group; a lift needs both",
            table="experiments", column="group", rows=bad[:5])
    return _two_proportions(x_t, n_t, x_h, n_h).rename_axis("channel")


def _two_proportions(x_t, n_t, x_h, n_h) -> pd.DataFrame:
    """Two-proportion inference for aligned Series of counts (treatment vs holdout)."""
    p_t, p_h = x_t / n_t, x_h / n_h
    lift = p_t - p_h
    se = np.sqrt(p_t * (1 - p_t) / n_t + p_h * (1 - p_h) / n_h)
    lt, ut = _wilson(x_t, n_t)
    lh, uh = _wilson(x_h, n_h)
    lower = lift - np.sqrt((p_t - lt) ** 2 + (uh - p_h) ** 2)
    upper = lift + np.sqrt((ut - p_t) ** 2 + (p_h - lh) ** 2)
    pooled = (x_t + x_h) / (n_t + n_h)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_h))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se0 > 0, lift / se0, 0.0)
        p_value = 2 * _norm_sf(np.abs(z))
        ratio = p_t / p_h
        se_log = np.sqrt(1 / x_t - 1 / n_t + 1 / x_h - 1 / n_h)
        ok = (x_t > 0) & (x_h > 0)
        rel = np.where(p_h > 0, ratio - 1, np.nan)
        rel_lo = np.where(ok, ratio * np.exp(-_Z95 * se_log) - 1, np.nan)
        rel_hi = np.where(ok, ratio * np.exp(_Z95 * se_log) - 1, np.nan)
    out = pd.DataFrame({
        "treatment_units": n_t.astype("int64"),
        "holdout_units": n_h.astype("int64"),
        "treatment_conversions": x_t.astype("int64"),
        "holdout_conversions": x_h.astype("int64"),
        "treatment_rate": p_t,
        "holdout_rate": p_h,
        "lift": lift,
        "std_err": se,
        "lower_95": lower,
        "upper_95": upper,
        "p_value": p_value,
        "relative_lift": rel,
        "relative_lower_95": rel_lo,
        "relative_upper_95": rel_hi,
        "incremental_conversions": lift * n_t,
        "incremental_std_err": se * n_t,
        "incremental_lower_95": lower * n_t,
        "incremental_upper_95": upper * n_t,
    })
    return out


def holdout_size(
    baseline_rate,
    lift,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    holdout_share: float = 0.5,
    margin=None,
) -> pd.DataFrame:
    """Units a holdout test needs: to detect a lift, or to measure it within a margin.

    Parameters
    ----------
    baseline_rate : float or array-like
        Conversion rate without the channel (the holdout's rate), in (0, 1).
    lift : float or array-like
        Absolute lift to plan for (treatment rate - baseline rate); the
        treatment rate must stay below 1.
    alpha : float
        Two-sided significance level.
    power : float
        Probability of a significant result when the lift is real (power
        planning: arcsine effect size ``h = 2 asin sqrt(p1) - 2 asin sqrt(p0)``,
        ``n_holdout = (1 + 1/ratio) ((z_{1-alpha/2} + z_power) / h)^2 / ...``, as
        :class:`statsmodels.stats.power.NormalIndPower`).
    holdout_share : float
        Share of the units in the holdout (0-1).
    margin : float or array-like, optional
        Instead of power: the half-width wanted for the lift's
        ``1 - alpha`` interval (Wald), in absolute rate points.

    Returns
    -------
    pandas.DataFrame
        One row per input (broadcast): ``baseline_rate``, ``lift``,
        ``holdout_units``, ``treatment_units`` and ``total_units`` (rounded up).
    """
    p0 = np.atleast_1d(np.asarray(baseline_rate, dtype=float))
    d = np.atleast_1d(np.asarray(lift, dtype=float))
    p0, d = np.broadcast_arrays(p0, d)
    p1 = p0 + d
    if not 0 < float(holdout_share) < 1:
        raise ValueError(f"holdout_share must be in (0, 1), got {holdout_share}")
    if not 0 < float(alpha) < 1 or not 0 < float(power) < 1:
        raise ValueError("alpha and power must be in (0, 1)")
    if np.any((p0 <= 0) | (p0 >= 1) | (p1 <= 0) | (p1 >= 1)):
        raise ValueError("baseline_rate and baseline_rate + lift must lie in (0, 1)")
    share = float(holdout_share)
    ratio = (1 - share) / share  # treatment units per holdout unit
    z_a = float(_norm_ppf(1 - float(alpha) / 2))
    with np.errstate(divide="ignore"):
        if margin is None:
            h = np.abs(2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p0)))
            z_b = float(_norm_ppf(float(power)))
            n_h = ((z_a + z_b) / h) ** 2 * (1 + 1 / ratio)
        else:
            m = np.broadcast_to(np.asarray(margin, dtype=float), p0.shape)
            if np.any(m <= 0):
                raise ValueError("margin must be positive")
            n_h = (z_a / m) ** 2 * (p1 * (1 - p1) / ratio + p0 * (1 - p0))
    n_h = np.ceil(n_h)
    n_t = np.ceil(n_h * ratio)
    return pd.DataFrame({"baseline_rate": p0, "lift": d, "holdout_units": n_h,
                         "treatment_units": n_t, "total_units": n_h + n_t})


def holdout_plan(lifts: pd.DataFrame, *, margin: float = 0.01, holdout_share: float = 0.1,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Units each channel's next holdout test needs to measure its lift within ``margin``.

    Parameters
    ----------
    lifts : pandas.DataFrame
        Output of :func:`lift_test`: its holdout rates and lifts are the planning
        values (a negative measured lift is planned as no lift).
    margin : float
        Wanted half-width of the lift's interval, in conversion-rate points
        (0.01 = plus or minus one point).
    holdout_share : float
        Share of the units to withhold.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``: ``units_now`` (treatment + holdout units of the
        test), ``margin_now`` (half-width of its interval), ``holdout_units``,
        ``treatment_units`` and ``total_units`` needed.
    """
    base = lifts["holdout_rate"].clip(1e-4, 1 - 1e-4)
    lift = lifts["lift"].clip(lower=0.0)
    lift = np.minimum(lift, 0.999 - base)
    plan = holdout_size(base.to_numpy(), lift.to_numpy(), alpha, holdout_share=holdout_share,
                        margin=margin)
    plan.index = lifts.index
    out = pd.DataFrame({
        "units_now": lifts["treatment_units"] + lifts["holdout_units"],
        "margin_now": (lifts["upper_95"] - lifts["lower_95"]) / 2,
    }, index=lifts.index)
    return out.join(plan[["holdout_units", "treatment_units", "total_units"]].astype("int64"))


def experiment_data(source: Any = "demo", *, demo_holdout_share: float = 0.1) -> CRMData:
    """Load a data source for an incrementality study: it must hold an experiments table.

    Parameters
    ----------
    source : str, path or CRMData
        Any data source of :func:`crmstats.load_crm`. A simulated demo source
        (``"demo"``, ``"demo:seed=3,..."``) without a ``holdout_share`` option
        gets ``holdout_share=demo_holdout_share``, so the demo runs real
        holdout experiments.
    demo_holdout_share : float
        Share of journeys withheld from each channel in a demo source.

    Returns
    -------
    CRMData
        With ``touchpoints``, ``conversions`` and ``experiments``.

    Raises
    ------
    DataError
        When the source has no experiments (or touchpoints / conversions) table.
    """
    from crmstats.sources import load_crm

    if isinstance(source, str) and source.strip().partition(":")[0] == "demo" \
            and "holdout_share" not in source:
        text = source.strip()
        sep = "," if ":" in text and text.partition(":")[2] else ""
        source = (text if ":" in text else text + ":") + f"{sep}holdout_share={demo_holdout_share}"
    crm = load_crm(source)
    crm.require("touchpoints", "conversions", "experiments")
    return crm


def untouched_journeys(
    experiments: Any,
    touchpoints: Any,
    conversions: Any,
    *,
    contacts: Any = None,
    by: list[str] | tuple[str, ...] | None = None,
    journey_id_col: str | None = None,
) -> pd.DataFrame:
    """Count the experiments' journeys that no channel reached, with their conversions.

    A holdout test that withholds every channel a journey would have had
    leaves it without a touch: it is not among the paths
    (:func:`~crmstats.attribution.build_paths` counts touched journeys), yet
    it shows how often a contact converts with no channel at all — what
    :class:`~crmstats.attribution.IncrementalityModel` otherwise extrapolates
    (``fit(paths, untouched=...)``).

    Parameters
    ----------
    experiments : DataFrame, path or ibis.Table
        Canonical experiments table (its ``journey_id``: every journey under test).
    touchpoints, conversions : DataFrame, path or ibis.Table
        Canonical tables; a journey under test is untouched when it has no
        touchpoint, converting when it has a conversion.
    contacts : DataFrame, path or ibis.Table, optional
        Canonical contacts table, whose ``by`` columns describe each journey
        (a journey's id is its contact's id), as in ``build_paths``.
    by : list of str, optional
        Contacts columns to count the journeys by (the model's ``covariates``).
    journey_id_col : str, optional
        The caller's name of the ``journey_id`` column (in every table).

    Returns
    -------
    pandas.DataFrame
        One row per combination of the ``by`` values (one row without ``by``):
        the ``by`` columns, ``conversions``, ``value`` (their summed value) and
        ``nulls`` (untouched journeys without a conversion). No rows when every
        journey was touched.
    """
    cols = {"journey_id": journey_id_col}
    u = as_table(experiments, "experiments", columns=cols)
    t = as_table(touchpoints, "touchpoints", columns=cols)
    c = as_table(conversions, "conversions", columns=cols)
    ids = u.select(journey_id=u.journey_id.cast("string")).distinct()
    touched = t.select(journey_id=t.journey_id.cast("string")).distinct()
    alone = ids.anti_join(touched, "journey_id")
    conv = c.group_by(journey_id=c.journey_id.cast("string")).aggregate(
        value=c.value.sum() if "value" in c.columns else c.journey_id.count() * 0.0)
    frame = alone.left_join(conv, "journey_id").select(alone.journey_id, conv.value)
    by = list(by or [])
    if by:
        if contacts is None:
            raise DataError("untouched_journeys: by= needs the contacts table (contacts=...)",
                            table="contacts")
        k = as_table(contacts, "contacts")
        missing = [b for b in by if b not in k.columns]
        if missing:
            raise DataError(f"contacts table: no column(s) {', '.join(map(repr, missing))} for "
                            f"by=; columns present: {', '.join(k.columns)}", table="contacts",
                            column=missing[0])
        k = k.select(*[k[b] for b in by], journey_id=k.contact_id.cast("string"))
        frame = frame.left_join(k, "journey_id").select(frame.journey_id, frame.value,
                                                         *[k[b] for b in by])
    hit = frame.value.notnull()
    counted = frame.group_by(by) if by else frame
    agg = dict(conversions=hit.ifelse(1, 0).sum(), nulls=hit.ifelse(0, 1).sum(),
               value=frame.value.fill_null(0.0).sum())
    out = execute(counted.aggregate(**agg))
    out = out[[*by, "conversions", "value", "nulls"]]
    out = out[(out["conversions"] + out["nulls"]) > 0].reset_index(drop=True)
    return out.astype({"conversions": "int64", "nulls": "int64", "value": "float64"})

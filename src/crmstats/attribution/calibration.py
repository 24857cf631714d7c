"""Attribution calibrated by experiments: model credit moved toward measured lift.

:func:`calibrate` combines a model's credit per channel with the incremental
conversions that holdout tests measured (:func:`~crmstats.attribution.lift_test`).

The method, stated
------------------
Both are put on one scale, incremental conversions per channel ``theta_c``.
The experiment measures it without bias: ``l_c = theta_c + error`` with
variance ``s_c**2``: its ``incremental_std_err``, or, when the lift test's
95 % interval (Newcombe's, ``incremental_lower_95`` / ``incremental_upper_95``)
is wider than that standard error says, the interval's half-width over 1.96
(:func:`_lift_std_err`: a Wald standard error collapses when a group has no
or only conversions — 0 of 15 holdout journeys converting has standard error
0 — and one such experiment would pass for the most precise of all). The model's estimate ``m_c``
— the incremental conversions of an
:class:`~crmstats.attribution.IncrementalityModel` with its bootstrap standard
error ``e_c``, or any other credit taken as it is (standard error 0) — is read
as ``kappa m_c = theta_c - b_c + error`` (variance ``kappa**2 e_c**2``), where

* ``kappa`` is a **common scale**: 1 for an incremental model (it is on the
  lift's scale); estimated for other credit (a journey model's credit sums to
  all conversions, not to what the channels add), so its untested channels
  are put on the lift's scale too; and
* ``b_c`` is the model's **bias** on the channel (confounded exposure,
  misspecification), a random effect with standard deviation
  ``tau kappa m_c`` — a relative error ``tau`` shared by the channels.

The two errors are correlated when the model was fitted on the experiments'
own journeys (``shared_journeys``, the default): then the covariance is taken
as the smaller of the two variances — an efficient estimator's covariance
with any other unbiased estimator of the same quantity (Hausman [1]_), so that
``var(l_c - kappa m_c) = |s_c**2 - kappa**2 e_c**2|`` when the model is right
(checked on the simulator: the spread of the differences over seeds matches
it, where independence overstates it). ``kappa`` (when estimated) and
``tau`` come from the tested channels by restricted maximum likelihood of
``l_c - kappa m_c ~ N(0, var(l_c - kappa m_c) + tau**2 kappa**2 m_c**2)``, the
random-effects meta-analysis model [2]_ [3]_. Each tested channel then gets
``kappa m_c + w_c (l_c - kappa m_c)`` with the weight that minimises the mean
squared error, ``w_c = (B_c + V_c - C_c) / (B_c + V_c + S_c - 2 C_c)``
(``B`` the bias variance, ``V`` the model's and ``S`` the experiment's
variance, ``C`` their covariance), and its standard error from the same
decomposition plus the uncertainty of ``kappa``; an untested channel gets
``kappa m_c`` with variance ``B_c + V_c + m_c**2 var(kappa)`` — the
correction learnt from the tested channels reaches it only through the scale.
Intervals are normal.

**Too few sales to estimate.** The calibrated total (the sum over channels)
gets a standard error too (the model's own replicates when it has them —
its channels' errors are correlated —, else the channels' variances summed;
the experiments' errors are independent between channels). When the total's
95 % interval reaches zero the data cannot tell
whether the channels add any sales at all, so each channel's part of that
total is not an estimate: ``share`` is left empty (NaN) rather than printing
a ratio of two noises (on 2,000 contacts shares of -600 % to +600 %).

What it can and cannot do: when the model agrees with the experiments up to
their noise (``tau = 0``) a model fitted on the same journeys already holds the
experiments' information and is kept as it is (with independent experiments,
the result is the plain precision-weighted mean); a bias shows only when it
is large against ``|s**2 - e**2|``, so small experiments correct only large
biases.

References
----------
.. [1] Hausman, J. A. (1978). Specification tests in econometrics.
   Econometrica 46(6), 1251-1271 (Lemma 2.1: an efficient estimator's
   difference from another consistent one is uncorrelated with it).
.. [2] DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials.
   Controlled Clinical Trials 7(3), 177-188.
.. [3] Viechtbauer, W. (2005). Bias and efficiency of meta-analytic variance
   estimators in the random-effects model. Journal of Educational and
   Behavioral Statistics 30(3), 261-293 (REML).
.. [4] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.
.. [5] Newcombe, R. G. (1998). Interval estimation for the difference between
   independent proportions: comparison of eleven methods. Statistics in
   Medicine 17(8), 873-890.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["calibrate"]

_Z95 = 1.959963984540054


def _lift_std_err(lift_results: pd.DataFrame) -> pd.Series:
    """Return each lift test's standard error of its incremental conversions (robust).

    The larger of ``incremental_std_err`` (Wald) and the half-width of the
    test's 95 % interval over 1.96, when the interval columns are there
    (:func:`~crmstats.attribution.lift_test`'s Newcombe interval [5]_ stays
    honest where the Wald standard error is 0 or tiny: no or only conversions
    in a group). On large tests both agree.
    """
    se = lift_results["incremental_std_err"].astype(float)
    if {"incremental_lower_95", "incremental_upper_95"} <= set(lift_results.columns):
        half = (lift_results["incremental_upper_95"].astype(float)
                - lift_results["incremental_lower_95"].astype(float)) / (2 * _Z95)
        se = se.where(~(half > se), half)
    return se


def _model_scale(model_or_shares: Any):
    """Return (estimate, std_err, value per conversion, on the lift scale) per channel."""
    credit = getattr(model_or_shares, "attribution_", model_or_shares)
    if isinstance(credit, pd.Series):
        s = credit.astype(float)
        return s, pd.Series(0.0, index=s.index), None, False
    if not isinstance(credit, pd.DataFrame) or "conversions" not in credit.columns:
        raise DataError("calibrate: expected a fitted attribution model, its credit DataFrame "
                        f"(column conversions) or a Series of shares; got "
                        f"{type(model_or_shares).__name__}")
    conv = credit["conversions"].astype(float)
    vpc = None
    if "value" in credit.columns:
        with np.errstate(divide="ignore", invalid="ignore"):
            vpc = (credit["value"].astype(float) / conv).replace([np.inf, -np.inf], np.nan)
    if "std_err" in credit.columns and "share" in credit.columns:  # an IncrementalityModel
        return conv, credit["std_err"].astype(float).fillna(0.0), vpc, True
    return conv, pd.Series(0.0, index=conv.index), vpc, False


def _bias_scale(m, lift):
    """Scale of the model's bias per channel: its estimate, or the lift when that is larger."""
    return np.where(m > 0, m, np.fmax(np.abs(m), np.abs(np.nan_to_num(lift))))


def _covariance(v_lift, v_model, shared):
    """Covariance of the lift's and the model's errors: ``min`` of the variances when shared."""
    return np.minimum(v_lift, v_model) if shared else np.zeros_like(v_lift)


def _difference_variance(se_lift, se_model, shared):
    """Variance of ``lift - model`` when the model is right (module)."""
    v_l, v_m = se_lift ** 2, se_model ** 2
    v = v_l + v_m - 2 * _covariance(v_l, v_m, shared)
    return np.maximum(v, 1e-9 * (v_l + v_m) + 1e-12)


def _scale_and_heterogeneity(lift, se_lift, m, se_m, size, fixed_scale, shared,
                             bias_level=1.0):
    """REML estimates of the scale ``kappa`` (unless fixed) and relative error ``tau`` (module).

    ``lift - kappa m ~ N(0, |s**2 - kappa**2 e**2| + kappa**2 tau**2 size**2)`` over the tested
    channels; returns ``(kappa, var_kappa, tau2)``.
    """
    from scipy.optimize import minimize_scalar

    n = len(lift)

    def variance(kappa, tau2):
        return (_difference_variance(se_lift, kappa * se_m, shared)
                + kappa ** 2 * tau2 * size ** 2)

    def slope(kappa, tau2):
        var = variance(kappa, tau2)
        w = 1.0 / var
        info = float(np.sum(w * m * m))
        if fixed_scale is not None:
            return float(fixed_scale), info, var
        return (float(np.sum(w * m * lift)) / info if info > 0 else 0.0), info, var

    def restricted_loglik(tau2, kappa):
        k_hat, info, var = slope(kappa, tau2)
        resid = lift - k_hat * m
        reml = 0.0 if fixed_scale is not None else np.log(max(info, 1e-300))
        return -0.5 * (np.sum(np.log(var)) + reml + np.sum(resid ** 2 / var))

    free = n - (0 if fixed_scale is not None else 1)  # residual degrees of freedom
    tau2 = 0.0
    kappa = slope(1.0, 0.0)[0]
    for _ in range(20):  # the scale without a bias term
        kappa_next, info, var = slope(max(kappa, 1e-6), 0.0)
        if abs(kappa_next - kappa) < 1e-9 * max(1.0, abs(kappa)):
            break
        kappa = kappa_next
    kappa = kappa_next
    if free >= 1:  # Cochran's Q: do the experiments contradict the model beyond their noise?
        from scipy.stats import chi2

        q_stat = float(np.sum((lift - kappa * m) ** 2 / var))
        if chi2.sf(q_stat, free) > bias_level:
            free = 0
    for _ in range(50):  # kappa enters the variances: iterate to a fixed point
        previous = (kappa, tau2)
        ref = max(kappa, 1e-6)
        if free >= 1:
            fit = minimize_scalar(lambda t, k=ref: -restricted_loglik(t, k), bounds=(0.0, 25.0),
                                  method="bounded", options={"xatol": 1e-7})
            tau2 = float(fit.x) if -fit.fun > restricted_loglik(0.0, ref) else 0.0
        kappa, info, _ = slope(ref, tau2)
        if abs(kappa - previous[0]) < 1e-9 * max(1.0, abs(kappa)) \
                and abs(tau2 - previous[1]) < 1e-9:
            break
    var_kappa = 0.0 if fixed_scale is not None else (1.0 / info if info > 0 else np.inf)
    return max(kappa, 0.0), var_kappa, tau2


def _total_variance(model, channels, model_weight, v_model, weight_lift, v_lift, cov,
                    v_bias, tested) -> float:
    """Variance of the calibrated total ``sum(model_weight m + weight_lift l)`` (module).

    The model's part from its replicates (``bootstrap_``, channels' errors
    correlated) when it has them, else the channels' variances summed; each
    lift adds its own variance and its covariance with the model's estimate of
    the same channel (the experiments are independent of each other).
    """
    draws = getattr(model, "bootstrap_", None)
    part = None
    if isinstance(draws, pd.DataFrame) and len(draws) > 1:
        d = draws.copy()
        d.columns = d.columns.astype(str)
        if set(channels) <= set(d.columns):
            part = float(np.var(d[list(channels)].to_numpy(float) @ model_weight, ddof=1))
    if part is None:
        part = float(np.sum(model_weight ** 2 * v_model))
    wl = np.where(tested, weight_lift, 0.0)
    lift_part = np.where(tested, wl ** 2 * np.where(np.isfinite(v_lift), v_lift, 0.0)
                         + 2 * wl * model_weight * cov, 0.0)
    return max(part + float(np.sum(lift_part)) + float(np.sum(v_bias)), 0.0)


def calibrate(model_or_shares: Any, lift_results: pd.DataFrame, *,
              value_per_conversion: Any = None, shared_journeys: bool = True,
              bias_level: float | None = None) -> pd.DataFrame:
    """Combine a model's channel credit with measured lifts by their precision (see module).

    Parameters
    ----------
    model_or_shares : fitted model, DataFrame or Series
        An :class:`~crmstats.attribution.IncrementalityModel` (incremental
        conversions with standard errors), another fitted model or its credit
        frame (``conversions`` per channel), or a Series of credit or shares
        per channel (its scale is estimated from the experiments).
    lift_results : pandas.DataFrame
        Output of :func:`~crmstats.attribution.lift_test` (index channel;
        ``incremental_conversions`` and ``incremental_std_err``). Channels
        without a row are untested.
    value_per_conversion : float or pandas.Series, optional
        Value of one incremental conversion per channel; by default the
        model's credited value per credited conversion when it has one.
    shared_journeys : bool
        Whether the model was fitted on the experiments' journeys (the demo's
        and :func:`~crmstats.attribution.experiment_data`'s case: the holdout
        journeys are among the model's paths), so that the model's and the
        experiments' sampling errors are correlated; ``False`` for
        experiments run apart from the model's data (independent errors).
    bias_level : float, optional
        The model's bias ``tau`` is estimated only when the experiments
        contradict the model beyond their noise: Cochran's homogeneity test
        of ``l - kappa m`` rejects at this level; otherwise ``tau = 0`` (a
        bias estimated from a few noisy experiments pulls a right model toward
        them). 1 estimates it always. Default: 0.05 for an incremental model
        (an estimate of what the experiments measure, right unless shown
        wrong), 1 for other credit (journey credit measures presence, not
        what a channel adds: its bias is expected, not tested).

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; columns ``model`` (the model's estimate as given),
        ``lift`` (measured incremental conversions, NaN when untested),
        ``tested``, ``weight_lift`` (weight of the experiment in the
        combination), ``conversions`` (calibrated incremental conversions),
        ``std_err``, ``lower_95``, ``upper_95``, ``share`` (of the calibrated
        total; NaN on every row when the total's 95 % interval reaches zero:
        too few sales to tell what the channels add, see the module),
        ``value`` (conversions x value per conversion), and, the same on
        every row, ``model_scale`` (``kappa``: incremental conversions per
        unit of the model's estimate) and ``model_bias`` (``tau``: the
        model's estimated relative error per channel beyond its own standard
        error). ``conversions`` and ``value`` make it a credit frame that
        :func:`~crmstats.attribution.channel_economics` and
        :func:`~crmstats.attribution.incremental_economics` accept.
    """
    est, se_m, vpc, incremental = _model_scale(model_or_shares)
    if not isinstance(lift_results, pd.DataFrame) or not {
            "incremental_conversions", "incremental_std_err"} <= set(lift_results.columns):
        raise DataError("calibrate: lift_results must be the DataFrame of lift_test (columns "
                        "incremental_conversions, incremental_std_err)")
    est = est.copy()
    se_m = se_m.copy()
    est.index = est.index.astype(str)
    se_m.index = est.index
    lift = lift_results["incremental_conversions"].astype(float).copy()
    se_l = _lift_std_err(lift_results).copy()
    lift.index = se_l.index = lift_results.index.astype(str)
    unknown = sorted(set(lift.index) - set(est.index))
    if unknown:
        raise DataError(f"calibrate: tested channel(s) {', '.join(unknown)} are not in the "
                        f"model's credit (channels: {', '.join(est.index)})",
                        table="experiments", column="channel", rows=unknown[:5])
    bad = [c for c in est.index if not np.isfinite(est[c])]
    if bad:
        raise DataError(f"calibrate: the model's credit is not a finite number for channel(s) "
                        f"{', '.join(bad[:5])}")
    channels = est.index
    lift = lift.reindex(channels)
    se_l = se_l.reindex(channels)
    tested = (lift.notna() & se_l.notna()).to_numpy()
    if not tested.any():
        raise DataError("calibrate: no channel of the model has a lift measurement")
    m = est.to_numpy(float)
    sm = np.nan_to_num(se_m.to_numpy(float))
    sl = se_l.to_numpy(float)
    lv = lift.to_numpy(float)
    # the model's error is taken as proportional to its estimate; a model that gives a channel
    # nothing or less (an estimate <= 0) is sized by the measured lift instead
    size = _bias_scale(m, lv)
    t = tested
    shared = bool(shared_journeys)
    level = float(bias_level) if bias_level is not None else (0.05 if incremental else 1.0)
    kappa, var_kappa, tau2 = _scale_and_heterogeneity(
        lv[t], np.maximum(sl[t], 0.0), m[t], sm[t], size[t], 1.0 if incremental else None,
        shared, level)
    prior = kappa * m
    v_bias = kappa ** 2 * tau2 * size ** 2          # the model's bias, a priori
    v_model = kappa ** 2 * sm ** 2                  # the model's sampling variance
    v_lift = np.where(t, np.nan_to_num(sl) ** 2, np.inf)
    cov = np.where(t, _covariance(v_lift, v_model, shared), 0.0)
    v_diff = np.where(t, _difference_variance(np.nan_to_num(sl), kappa * sm, shared), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the weight that minimises the mean squared error of prior + w (lift - prior)
        weight_lift = np.where(t, np.clip((v_bias + v_model - cov) / (v_bias + v_diff), 0, 1),
                               0.0)
        combined = np.where(t, prior + weight_lift * (np.nan_to_num(lv) - prior), prior)
        keep = 1.0 - weight_lift
        var = np.where(t, keep ** 2 * (v_bias + v_model) + weight_lift ** 2 * v_lift
                       + 2 * weight_lift * keep * cov, v_bias + v_model)
    var = var + (keep * m) ** 2 * var_kappa
    se = np.sqrt(np.maximum(var, 0.0))
    out = pd.DataFrame({
        "model": m, "lift": lv, "tested": t,
        "weight_lift": weight_lift,
        "conversions": combined, "std_err": se,
        "lower_95": combined - _Z95 * se, "upper_95": combined + _Z95 * se,
    }, index=pd.Index(channels, name="channel"))
    total = out["conversions"].sum()
    se_total = np.sqrt(_total_variance(model_or_shares, channels, kappa * keep, v_model,
                                       weight_lift, v_lift, cov, keep ** 2 * v_bias, t)
                       + float(np.sum(keep * m)) ** 2 * var_kappa)
    # shares of a total that cannot be told from zero are not estimates (module)
    enough = bool(total - _Z95 * se_total > 0)
    out["share"] = out["conversions"] / total if enough else np.nan
    if value_per_conversion is None:
        value_per_conversion = vpc
    if value_per_conversion is None:
        out["value"] = np.nan
    else:
        v = (value_per_conversion if np.isscalar(value_per_conversion)
             else pd.Series(value_per_conversion).reindex(channels).to_numpy(float))
        out["value"] = out["conversions"] * v
    out["model_scale"] = float(kappa)
    out["model_bias"] = float(np.sqrt(tau2))
    return out

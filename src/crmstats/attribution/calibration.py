"""Attribution calibrated by experiments: model credit moved toward measured lift.

:func:`calibrate` combines a model's credit per channel with the incremental
conversions that holdout tests measured (:func:`~crmstats.attribution.lift_test`).

The method, stated
------------------
Both are put on one scale, incremental conversions per channel:

* an :class:`~crmstats.attribution.IncrementalityModel` gives them directly,
  with bootstrap standard errors;
* any other credit (a journey model, or shares) is read as shares ``s_c``
  and scaled so that the tested channels together match their measured lift,
  ``m_c = s_c * sum_tested(l) / sum_tested(s)`` (standard error 0: its error
  is all bias).

A model can be precise and still wrong (confounded exposure), so its variance
gets a bias term: ``v_m = se_m**2 + tau**2 * m**2``, where ``tau`` — the
typical relative error of the model — is estimated from the tested channels by
the method of moments, ``tau**2 = max(0, mean(r**2 - var(r)))`` with
``r = (l - m) / m`` (as the between-study variance of a random-effects
meta-analysis [1]_). Each tested channel gets the inverse-variance weighted
mean of its lift ``l`` (variance ``se_l**2``) and model ``m``; its standard
error is ``(1/v_m + 1/se_l**2) ** -0.5`` and the interval is normal. Untested
channels keep their model estimate (variance ``v_m``); shares are taken of
the new total, so their share is their model share rescaled. When models and
experiments agree (``tau = 0``) the combination is the plain precision-weighted
mean; when they disagree, the experiments dominate.

References
----------
.. [1] DerSimonian, R. and Laird, N. (1986). Meta-analysis in clinical trials.
   Controlled Clinical Trials 7(3), 177-188.
.. [2] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["calibrate"]

_Z95 = 1.959963984540054


def _model_scale(model_or_shares: Any):
    """Return (estimate, std_err, value per conversion, is_incremental) per channel."""
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


def calibrate(model_or_shares: Any, lift_results: pd.DataFrame, *,
              value_per_conversion: Any = None) -> pd.DataFrame:
    """Combine a model's channel credit with measured lifts (inverse variance, see module).

    Parameters
    ----------
    model_or_shares : fitted model, DataFrame or Series
        An :class:`~crmstats.attribution.IncrementalityModel` (incremental
        conversions with standard errors), another fitted model or its credit
        frame (``conversions`` per channel, read as shares), or a Series of
        shares per channel.
    lift_results : pandas.DataFrame
        Output of :func:`~crmstats.attribution.lift_test` (index channel;
        ``incremental_conversions`` and ``incremental_std_err``). Channels
        without a row are untested.
    value_per_conversion : float or pandas.Series, optional
        Value of one incremental conversion per channel; by default the
        model's credited value per credited conversion when it has one.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; columns ``model`` (model estimate of incremental
        conversions, on the lift scale), ``lift`` (measured incremental
        conversions, NaN when untested), ``tested``, ``weight_lift`` (weight
        of the experiment in the combination), ``conversions`` (calibrated
        incremental conversions), ``std_err``, ``lower_95``, ``upper_95``,
        ``share`` (of the calibrated total), ``value`` (conversions x value
        per conversion) and ``model_bias`` (the estimated relative error
        ``tau`` of the model, the same on every row). ``conversions`` and
        ``value`` make it a credit frame that
        :func:`~crmstats.attribution.channel_economics` and
        :func:`~crmstats.attribution.incremental_economics` accept.
    """
    est, se_m, vpc, incremental = _model_scale(model_or_shares)
    if not isinstance(lift_results, pd.DataFrame) or not {
            "incremental_conversions", "incremental_std_err"} <= set(lift_results.columns):
        raise DataError("calibrate: lift_results must be the DataFrame of lift_test (columns "
                        "incremental_conversions, incremental_std_err)")
    est.index = est.index.astype(str)
    se_m.index = est.index
    lift = lift_results["incremental_conversions"].astype(float)
    se_l = lift_results["incremental_std_err"].astype(float)
    lift.index = se_l.index = lift_results.index.astype(str)
    unknown = sorted(set(lift.index) - set(est.index))
    if unknown:
        raise DataError(f"calibrate: tested channel(s) {', '.join(unknown)} are not in the "
                        f"model's credit (channels: {', '.join(est.index)})",
                        table="experiments", column="channel", rows=unknown[:5])
    channels = est.index
    tested = channels.isin(lift.index) & lift.reindex(channels).notna().to_numpy()
    if not tested.any():
        raise DataError("calibrate: no channel of the model has a lift measurement")
    lift = lift.reindex(channels)
    se_l = se_l.reindex(channels)
    if not incremental:
        total = est.sum()
        shares = est / total if total > 0 else est * 0.0
        scale = lift[tested].sum() / shares[tested].sum() if shares[tested].sum() > 0 else 0.0
        est = shares * scale
        se_m = se_m * 0.0
    m = est.to_numpy(float)
    sm = se_m.to_numpy(float)
    sl = se_l.to_numpy(float)
    lv = lift.to_numpy(float)
    # the model's error is taken as proportional to its estimate; a model that gives a channel
    # nothing or less (an estimate <= 0) is scaled by the measured lift instead
    size = np.where(m > 0, m, np.fmax(np.abs(m), np.abs(np.nan_to_num(lv))))
    ok = tested & (size > 0)
    if ok.any():
        r = (lv[ok] - m[ok]) / size[ok]
        var_r = (sl[ok] ** 2 + sm[ok] ** 2) / size[ok] ** 2
        tau2 = max(0.0, float(np.mean(r ** 2 - var_r)))
    else:
        tau2 = np.inf
    v_m = sm ** 2 + tau2 * size ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        w_m = np.where(v_m > 0, 1.0 / v_m, np.inf)
        w_l = np.where(tested, np.where(sl > 0, 1.0 / sl ** 2, np.inf), 0.0)
        both_inf = np.isinf(w_m) & np.isinf(w_l)
        weight_lift = np.where(both_inf, 0.5,
                               np.where(np.isinf(w_l), 1.0,
                                        np.where(np.isinf(w_m), 0.0, w_l / (w_m + w_l))))
        combined = np.where(tested, weight_lift * np.nan_to_num(lv) + (1 - weight_lift) * m, m)
        var = np.where(tested, 1.0 / (w_m + w_l), v_m)
    var = np.where(np.isfinite(var), var, np.nan)
    se = np.sqrt(np.where(np.isnan(var), np.nan, var))
    if np.isinf(tau2):
        se = np.where(tested, se, np.nan)
    out = pd.DataFrame({
        "model": m, "lift": lv, "tested": tested,
        "weight_lift": np.where(tested, weight_lift, 0.0),
        "conversions": combined, "std_err": se,
        "lower_95": combined - _Z95 * se, "upper_95": combined + _Z95 * se,
    }, index=pd.Index(channels, name="channel"))
    total = out["conversions"].sum()
    out["share"] = out["conversions"] / total if total != 0 else np.nan
    if value_per_conversion is None:
        value_per_conversion = vpc
    if value_per_conversion is None:
        out["value"] = np.nan
    else:
        v = (value_per_conversion if np.isscalar(value_per_conversion)
             else pd.Series(value_per_conversion).reindex(channels).to_numpy(float))
        out["value"] = out["conversions"] * v
    out["model_bias"] = float(np.sqrt(tau2)) if np.isfinite(tau2) else np.nan
    return out

"""`MediaMixModel`: what each channel's spend returns, where it saturates, how to split a budget.

A marketing-mix model (MMM) reads the weekly outcome beside weekly spend per
channel (:func:`crmstats.attribution.media_table`). Each channel's spend is
carried over in time (geometric adstock, or a delayed Weibull one) and
saturates (a Hill curve) [1]_; a baseline holds the level, a trend, yearly
Fourier seasonality and the controls. The model is fitted in seconds by
penalised maximum likelihood — normal priors on carry-over, saturation and
effect size on their unconstrained scales — and its uncertainty comes from
the curvature at the optimum (the Laplace approximation; see
:mod:`crmstats.attribution.mmmcore`), propagated to ROAS, marginal ROAS,
contributions, response curves and the budget's gain by drawing parameters.
Lift tests enter the likelihood as measurements (:meth:`MediaMixModel.fit`).

What an MMM cannot tell [2]_: a channel whose spend never varies, or always
moves with another channel, has no information in the data; its ROAS is the
prior's. Such channels get a :class:`~crmstats.DataWarning` and wide
intervals; a lift test is the remedy.

References
----------
.. [1] Jin, Y., Wang, Y., Sun, Y., Chan, D. and Koehler, J. (2017). Bayesian
   methods for media mix modeling with carryover and shape effects. Google
   Inc. technical report.
.. [2] Chan, D. and Perry, M. (2017). Challenges and opportunities in media
   mix modeling. Google Inc. technical report.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from crmstats.attribution.budget import BudgetPlan
from crmstats.attribution.mmmcore import MediaCore
from crmstats.attribution.mmmdata import (
    baseline_design,
    identifiability,
    lift_measurements,
    weekly_input,
)
from crmstats.attribution.mmmkeep import KeptMediaMix
from crmstats.estimator import Estimator, summary_table
from crmstats.exceptions import DataWarning

__all__ = ["MediaMixModel"]

_ADSTOCKS = ("geometric", "weibull")


def _quantiles(draws: np.ndarray, axis=0):
    lo, hi = np.nanquantile(draws, [0.025, 0.975], axis=axis)
    return lo, hi


class MediaMixModel(KeptMediaMix, Estimator):
    """Media-mix model: adstock, Hill saturation, baseline; fitted by penalised likelihood.

    Parameters
    ----------
    outcome : {"conversions", "conversion_value", "revenue"}
        What :meth:`fit` reads from a ``CRMData`` (:func:`media_table`).
    adstock : {"geometric", "weibull"}
        Carry-over: geometric decay from the week of spend, or delayed
        (Weibull-shaped lags over ``max_lag`` weeks; the effect may peak later).
    max_lag : int
        Weeks of the Weibull adstock's lags.
    n_fourier : int
        Pairs of yearly Fourier terms of the baseline.
    trend : bool
        Whether the baseline has a linear trend.
    holdout_weeks : int
        The last weeks held out for the out-of-sample check (a second fit on
        the weeks before; 0: none).
    n_draws : int
        Parameter draws from the Laplace approximation for the intervals.
    seed : int
        Seed of the draws.

    Attributes
    ----------
    params_ : pandas.Series
        Natural-scale parameters: ``intercept`` (baseline per week at the
        span's middle, average controls), ``trend`` (baseline change over the
        span), ``sin1``, ``cos1``... (seasonality), ``control[name]`` (per unit),
        and per channel ``beta[c]`` (outcome per week at full saturation),
        ``theta[c]`` (weekly carry-over; or ``weibull_shape[c]`` and
        ``weibull_scale[c]``), ``half_saturation[c]`` (weekly adstocked spend
        at half of ``beta``) and ``shape[c]``.
    summary_ : pandas.DataFrame
        ``params_`` with ``std_err`` and the 95 % interval (from the draws).
    roas_, mroas_ : pandas.DataFrame
        Per channel ``estimate``, ``std_err``, ``lower_95``, ``upper_95``:
        return on ad spend (the channel's contribution over the weeks ÷ its
        spend) and marginal ROAS (the extra outcome of 1 % more spend every
        week, per unit of that extra spend).
    contributions_ : pandas.DataFrame
        Weekly decomposition: ``baseline`` (level, trend, seasonality), one
        column per control and per channel; rows sum to ``fitted_``. A model
        that was loaded or built by :meth:`from_params` keeps no weekly data:
        it has no ``contributions_`` (nor ``fitted_``, ``contribution_share_``,
        ``diagnostics_``...; asking raises a :class:`~crmstats.NotFittedError`
        that says so), and :meth:`decompose` with the weekly table gives the
        same decomposition.
    calendar_ : dict
        What places the baseline in time: ``start`` (the first week fitted),
        ``n_weeks`` (weeks fitted; the trend runs over them) and
        ``control_means`` (each control's mean; its contribution is its
        parameter times the distance from it). Give it to :meth:`from_params`
        so that the rebuilt model can :meth:`decompose` weeks.
    contribution_share_ : pandas.DataFrame
        Per channel, its share of the outcome over the weeks, with interval.
    fitted_ : pandas.Series
        The fitted weekly outcome.
    diagnostics_ : pandas.Series
        ``r2``, ``mape`` (in sample), ``holdout_weeks``, ``holdout_mape`` and
        ``holdout_r2`` (the last weeks, predicted by a fit on the weeks before),
        ``sigma`` (residual standard deviation) and ``n_lift_tests``.
    identifiability_ : pandas.DataFrame
        Per channel ``spend_cv`` (variation of weekly spend), ``r2_others``
        (share of its spend's variation explained by the other channels and
        the baseline), ``most_collinear`` and ``flag`` ("ok", "constant",
        "collinear").
    curve_information_ : pandas.DataFrame
        Per channel and curve parameter, how much the data narrowed it beyond
        its prior (see the property).
    lift_tests_ : pandas.DataFrame or None
        The lift tests used, with the calibrated model's lift beside each.
    """

    _hyper = ("outcome", "adstock", "max_lag", "n_fourier", "trend", "holdout_weeks",
              "n_draws", "seed")

    def __init__(self, outcome: str = "conversions", adstock: str = "geometric",
                 max_lag: int = 13, n_fourier: int = 2, trend: bool = True,
                 holdout_weeks: int = 8, n_draws: int = 500, seed: int = 0):
        self.outcome = outcome
        self.adstock = adstock
        self.max_lag = max_lag
        self.n_fourier = n_fourier
        self.trend = trend
        self.holdout_weeks = holdout_weeks
        self.n_draws = n_draws
        self.seed = seed

    # ------------------------------------------------------------------ fit

    def fit(self, data: Any, *, lift_tests: Any = None, controls: pd.DataFrame | None = None,
            channels=None) -> MediaMixModel:
        """Fit the model on a ``CRMData`` or on a weekly media table.

        Parameters
        ----------
        data : CRMData or pandas.DataFrame
            A CRM with ``spend`` and the outcome's table (read by
            :func:`media_table` with ``self.outcome`` and ``controls``), or
            the weekly table itself: :func:`media_table`'s layout, or a flat
            frame indexed by week with an ``outcome`` column, spend columns
            and the controls named in ``controls``.
        lift_tests : pandas.DataFrame, optional
            Experiments' measurements of channels' incremental outcome: one
            row per test with ``channel``, ``start``, ``end`` (the weeks the
            test ran), ``lift`` (the incremental outcome over those weeks) and
            ``std_err``; or the table of :func:`lift_test` (its
            ``incremental_conversions`` and ``incremental_std_err``; the
            period is the ``experiments`` table's span of ``data``). Each is
            a measurement of the channel's contribution over the period, so
            the fitted ROAS moves toward it by its precision.
        controls : pandas.DataFrame or list of str, optional
            Weekly controls: a frame for a ``CRMData`` (see
            :func:`media_table`), the control columns' names for a flat table.
        channels : list of str, optional
            Spend columns of a flat table (default: every column but
            ``outcome`` and the controls).

        Returns
        -------
        MediaMixModel
        """
        if self.adstock not in _ADSTOCKS:
            raise ValueError(f"adstock must be one of {', '.join(_ADSTOCKS)}, "
                             f"got {self.adstock!r}")
        table, chans, ctrls = weekly_input(data, self.outcome, controls, channels)
        n, k = len(table), len(chans)
        y = table["outcome"].iloc[:, 0].to_numpy(float)
        spend = table["spend"][chans].to_numpy(float)
        self._ys = float(np.mean(np.abs(y))) or 1.0
        self._m = spend.mean(axis=0)
        X, names, self._design = baseline_design(table, ctrls, int(self.n_fourier),
                                                 bool(self.trend))
        ident = identifiability(spend, X, chans)
        for flag, what in (("constant", "its weekly spend hardly varies"),
                           ("collinear", "its spend moves with other channels' or the "
                                         "season's")):
            bad = ident.index[ident["flag"] == flag].tolist()
            if bad:
                warnings.warn(f"MediaMixModel: {', '.join(map(repr, bad))}: {what}, so the "
                              "data hold little information on its effect; its ROAS leans on "
                              "the priors (wide intervals). A lift test would pin it down.",
                              DataWarning, stacklevel=2)
        lifts, lift_frame = lift_measurements(lift_tests, data, table, chans, self._ys)
        core = MediaCore(X, spend / self._m, y / self._ys, adstock=self.adstock,
                         max_lag=self.max_lag, lifts=lifts)
        res = core.fit()
        self._core = core
        self._set_curves(res.x, core.covariance(res.x), chans, names, self._m, self._ys,
                         spend[-13:].mean(axis=0), spend.max(axis=0))
        self.table_, self.controls_ = table, ctrls
        self.calendar_ = {"start": pd.Timestamp(table.index[0]), "n_weeks": int(n),
                          "control_means": {c: float(table[("control", c)].mean())
                                            for c in ctrls}}
        self.converged_ = bool(res.success)
        self.n_obs_ = n
        self.log_likelihood_ = float(-0.5 * np.sum(((y / self._ys - core.predict(res.x))
                                                    / core.sigma) ** 2)
                                     - n * np.log(core.sigma * self._ys * np.sqrt(2 * np.pi)))
        self.identifiability_ = ident
        self._summaries(spend, y, k)
        self.diagnostics_ = self._diagnostics(X, spend, y, lifts)
        if lift_frame is not None:
            lv = core.lift_values(res.x) * self._ys
            self.lift_tests_ = lift_frame.assign(model_lift=lv)
        else:
            self.lift_tests_ = None
        return self

    # ------------------------------------------------------------------ results

    def _natural(self, u: np.ndarray) -> np.ndarray:
        core = self._core
        w, blk = core.split(u)
        lin = w * self._ys / self._design["scale"]
        out = [lin]
        out.append(np.exp(blk["log_beta"]) * self._ys)
        if self.adstock == "geometric":
            out.append(1.0 / (1.0 + np.exp(-blk["logit_theta"])))
        else:
            out += [np.exp(blk["log_weibull_shape"]), np.exp(blk["log_weibull_scale"])]
        out += [np.exp(blk["log_half"]) * self._m, np.exp(blk["log_shape"])]
        return np.concatenate(out)

    def _param_names(self) -> list[str]:
        carry = ["theta"] if self.adstock == "geometric" else ["weibull_shape", "weibull_scale"]
        per = ["beta", *carry, "half_saturation", "shape"]
        return list(self._base_names) + [f"{p}[{c}]" for p in per for c in self.channels_]

    def _channel_stats(self, u, spend):
        """ROAS, marginal ROAS and contribution totals per channel at ``u``."""
        core = self._core
        _, media, bump = core.contributions(u, bump=1.01)
        total = spend.sum(axis=0)
        contrib = media.sum(axis=0) * self._ys
        with np.errstate(divide="ignore", invalid="ignore"):
            roas = contrib / total
            mroas = (bump - media).sum(axis=0) * self._ys / (0.01 * total)
        return roas, mroas, contrib

    def _summaries(self, spend, y, k):
        core, u = self._core, self._u
        names = self._param_names()
        est = self._natural(u)
        nat = np.array([self._natural(d) for d in self._draws])
        lo, hi = _quantiles(nat)
        self.params_ = pd.Series(est, index=names, name="estimate")
        self.summary_ = summary_table(names, est, nat.std(axis=0), lower=lo, upper=hi)
        stats = [self._channel_stats(d, spend) for d in self._draws]
        roas_d = np.array([s[0] for s in stats])
        mroas_d = np.array([s[1] for s in stats])
        share_d = np.array([s[2] for s in stats]) / y.sum()
        roas, mroas, contrib = self._channel_stats(u, spend)
        idx = pd.Index(self.channels_, name="channel")

        def frame(point, draws):
            lo, hi = _quantiles(draws)
            return pd.DataFrame({"estimate": point, "std_err": np.nanstd(draws, axis=0),
                                 "lower_95": lo, "upper_95": hi}, index=idx)

        self.roas_ = frame(roas, roas_d)
        self.mroas_ = frame(mroas, mroas_d)
        self.contribution_share_ = frame(contrib / y.sum(), share_d)
        base, media = core.contributions(u)
        weeks = self.table_.index
        parts = {"baseline": self._design["base_part"](core.split(u)[0]) * self._ys}
        for j, c in enumerate(self.controls_):
            parts[c] = self._design["control_part"](core.split(u)[0], j) * self._ys
        contrib_frame = pd.DataFrame(parts, index=weeks)
        for j, c in enumerate(self.channels_):
            contrib_frame[c] = media[:, j] * self._ys
        self.contributions_ = contrib_frame
        self.fitted_ = pd.Series(core.predict(u) * self._ys, index=weeks, name="fitted")
        self._draw_stats = {"roas": roas_d, "mroas": mroas_d}

    def _diagnostics(self, X, spend, y, lifts):
        fitted = self.fitted_.to_numpy()
        r2 = 1.0 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            mape = float(np.nanmean(np.abs((y - fitted) / y)[y != 0]))
        h = int(self.holdout_weeks)
        out_mape = out_r2 = np.nan
        if 0 < h <= len(y) - 26:
            mask = np.arange(len(y)) < len(y) - h
            core = MediaCore(X, spend / self._m, y / self._ys, adstock=self.adstock,
                             max_lag=self.max_lag, fit_mask=mask)
            res = core.fit(starts=(0.4,))
            pred = core.predict(res.x)[~mask] * self._ys
            obs = y[~mask]
            with np.errstate(divide="ignore", invalid="ignore"):
                out_mape = float(np.nanmean(np.abs((obs - pred) / obs)[obs != 0]))
            ss = np.sum((obs - obs.mean()) ** 2)
            out_r2 = float(1.0 - np.sum((obs - pred) ** 2) / ss) if ss > 0 else np.nan
        return pd.Series({"r2": float(r2), "mape": mape, "holdout_weeks": h,
                          "holdout_mape": out_mape, "holdout_r2": out_r2,
                          "sigma": float(self._core.sigma * self._ys),
                          "n_lift_tests": len(lifts)}, name="value")

    _CURVE_NAMES = {"logit_theta": "theta", "log_weibull_shape": "weibull_shape",
                    "log_weibull_scale": "weibull_scale", "log_half": "half_saturation",
                    "log_shape": "shape"}

    @property
    def curve_information_(self) -> pd.DataFrame:
        """How much the data told about each channel's carry-over and saturation.

        Per channel (rows) and curve parameter (columns ``theta``, or
        ``weibull_shape`` and ``weibull_scale``; ``half_saturation``,
        ``shape``): one minus the posterior standard deviation over the
        prior's, on the model's unconstrained scale (the Laplace
        approximation). Near 0, the data said almost nothing: the estimate,
        and whatever depends on that part of the curve (the response below
        or beyond the spend seen, the budget split), is the prior's
        assumption. Near 1, the data pinned it. Lift tests add information.
        On simulated plans of three years of weekly data the saturation's
        half-point and shape typically get 0.1-0.3 and 0-0.1: the shape of
        a channel's curve is mostly assumed (benchmarks/mmm_errors.py). NaN
        for a model built by :meth:`from_params` (no covariance).
        """
        self._check_fitted()
        core = self._core
        if self._cov is None:
            sd = np.full(core.n_params, np.nan)
        else:
            sd = np.sqrt(np.clip(np.diag(np.asarray(self._cov, float)), 0.0, None))
        out = {}
        for i, block in enumerate(core.blocks):
            if block not in self._CURVE_NAMES:
                continue  # log_beta: the effect's size, not the curve's shape
            cols = slice(core.p + i * core.k, core.p + (i + 1) * core.k)
            out[self._CURVE_NAMES[block]] = np.clip(1.0 - sd[cols] / core.prior_sd[cols],
                                                    0.0, 1.0)
        return pd.DataFrame(out, index=pd.Index(self.channels_, name="channel"))

    # ------------------------------------------------------------------ curves

    def response(self, spend, *, draws: bool = False) -> np.ndarray:
        """Steady weekly outcome per channel at a steady weekly ``spend`` (one per channel).

        With ``draws=True``, one row per parameter draw (for intervals).
        """
        from crmstats.attribution.mediacurves import hill

        self._check_fitted()
        s = np.asarray(spend, dtype=float)
        us = self._draws if draws else self._u[None, :]
        core = self._core
        k, first = core.k, core.p
        block = {b: us[:, first + i * k:first + (i + 1) * k] for i, b in enumerate(core.blocks)}
        out = np.exp(block["log_beta"]) * self._ys * hill(
            s[None, :], np.exp(block["log_half"]) * self._m, np.exp(block["log_shape"]))
        return out if draws else out[0]

    def response_curves(self, n_points: int = 41, max_multiple: float = 2.0) -> pd.DataFrame:
        """Each channel's steady weekly outcome against its weekly spend, with a 95 % band.

        Parameters
        ----------
        n_points : int
            Spend levels per channel, from 0 to ``max_multiple`` × the
            channel's largest weekly spend.
        max_multiple : float
            How far beyond the observed spend the curve goes.

        Returns
        -------
        pandas.DataFrame
            Columns ``channel``, ``spend`` (weekly), ``response`` (outcome per
            week), ``response_lower_95``, ``response_upper_95``, ``mroas`` (the
            curve's slope there) and ``observed`` (whether the spend lies
            within the weekly spend the data saw).
        """
        self._check_fitted()
        spend = self.table_["spend"][self.channels_].to_numpy(float)
        top = spend.max(axis=0)
        rows = []
        for j, c in enumerate(self.channels_):
            grid = np.linspace(0.0, float(max_multiple) * top[j], int(n_points))
            mat = np.zeros((len(grid), len(self.channels_)))
            mat[:, j] = grid
            point = np.array([self.response(r)[j] for r in mat])
            dr = np.array([self.response(r, draws=True)[:, j] for r in mat])
            lo, hi = _quantiles(dr, axis=1)
            slope = np.gradient(point, grid) if len(grid) > 1 else np.full(len(grid), np.nan)
            rows.append(pd.DataFrame({"channel": c, "spend": grid, "response": point,
                                      "response_lower_95": lo, "response_upper_95": hi,
                                      "mroas": slope, "observed": grid <= top[j]}))
        return pd.concat(rows, ignore_index=True)

    def optimize_budget(self, total: float | None = None, *, bounds=None, weeks: int = 13,
                        max_extrapolation: float = 1.5, objective: str = "plugin") -> BudgetPlan:
        """Return the weekly split of a budget that maximises the expected outcome (fitted curves).

        See :func:`crmstats.attribution.budget.optimize_budget`.
        """
        from crmstats.attribution.budget import optimize_budget

        return optimize_budget(self, total, bounds=bounds, weeks=weeks,
                               max_extrapolation=max_extrapolation, objective=objective)

    # ------------------------------------------------------------------ keeping a model

    def _set_curves(self, u, cov, channels, base_names, m, ys, current, top):
        """Set the state response curves and budgets need (after fit, load or from_params)."""
        p, k = len(base_names), len(channels)
        self._core = self._core if getattr(self, "_core", None) is not None else MediaCore(
            np.zeros((1, p)), np.zeros((1, k)), np.zeros(1), adstock=self.adstock,
            max_lag=self.max_lag)
        self._u, self._cov = np.asarray(u, float), cov
        self.channels_, self._base_names = list(channels), list(base_names)
        self._m, self._ys = np.asarray(m, float), float(ys)
        self.current_spend_ = pd.Series(current, index=pd.Index(channels, name="channel"),
                                        name="spend", dtype=float)
        self.max_spend_ = pd.Series(top, index=self.current_spend_.index, name="spend",
                                    dtype=float)
        if cov is None:
            self._draws = self._u[None, :]
        else:
            rng = np.random.default_rng(self.seed)
            chol = np.linalg.cholesky(np.asarray(cov) + 1e-12 * np.eye(len(self._u)))
            self._draws = self._u + rng.standard_normal((int(self.n_draws), len(self._u))) \
                @ chol.T

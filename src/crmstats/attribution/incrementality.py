"""A counterfactual conversion model: what each channel adds to the chance of converting.

Journey-based models (rules, Markov, Shapley) credit channels for being
*present* in converting journeys. :class:`IncrementalityModel` instead models
the conversion probability of **every** journey — converting or not — on its
channel exposure, in the family of Shao & Li's logistic multi-touch model [1]_
and Dalessandro et al.'s causally motivated attribution [2]_: a logistic
regression (statsmodels binomial GLM) on each channel's presence, optionally
the log of its number of touches and a time-decayed exposure. A channel's
incremental conversions are the model's predicted conversions of the journeys
that touched it minus the predicted conversions of the same journeys with
the channel removed; its share is its part of the sum over channels.

This is a counterfactual under the model: it equals the channel's causal
effect only when exposure is as good as random given the features — when
channels are targeted at likely buyers (retargeting) it is biased upwards for
them, which is what holdout experiments (:func:`~crmstats.attribution.lift_test`)
and :func:`~crmstats.attribution.calibrate` correct [3]_.

References
----------
.. [1] Shao, X. and Li, L. (2011). Data-driven multi-touch attribution models.
   Proceedings of the 17th ACM SIGKDD, 258-264.
.. [2] Dalessandro, B., Perlich, C., Stitelman, O. and Provost, F. (2012).
   Causally motivated attribution for online advertising. Proceedings of the
   Sixth International Workshop on Data Mining for Online Advertising (ADKDD).
.. [3] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.
.. [4] Efron, B. and Tibshirani, R. J. (1993). An Introduction to the
   Bootstrap. Chapman & Hall (percentile intervals).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from crmstats.attribution.paths import PathData, _as_path_data, _encode_paths, _numeric
from crmstats.estimator import Estimator, summary_table
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError
from crmstats.vocabulary import renamed_arguments, renamed_attribute

__all__ = ["IncrementalityModel"]



class IncrementalityModel(Estimator):
    """Counterfactual conversion model of all journeys on channel exposure [1]_ [2]_.

    Parameters
    ----------
    features : {"presence", "counts"}
        ``"presence"``: one indicator per channel; ``"counts"``: also
        ``log(number of touches)`` of each channel (0 for one touch).
    half_life : float, optional
        Add a time-decayed exposure per channel: a touch ``j`` touches before
        the journey's last weighs ``0.5 ** (j / half_life)`` (paths carry the
        order of touches, not their times, so the decay is counted in touches).
    penalty : float or "auto"
        Ridge penalty (statsmodels ``fit_regularized``, ``L1_wt=0``) on the
        channel coefficients, per journey. ``"auto"`` fits the plain
        maximum-likelihood model and falls back to a ridge of ``1 / journeys``
        when a channel is thin (fewer than ``min_conversions`` conversions
        among its journeys) or the fit does not converge.
    n_bootstrap : int
        Bootstrap replicates (journeys resampled with replacement) for the
        intervals of the incremental conversions; 0 skips them.
    min_conversions : int
        See ``penalty``.
    seed : int
        Seed of the bootstrap.
    covariates : list of str, optional
        Columns of the path counts describing the contact (from
        ``build_paths(..., contacts=crm.contacts, by=[...])``) that the model
        adjusts for: numbers enter as they are (standardised), other columns as
        one indicator per level. Exposure that follows who the contact is
        (retargeting likely buyers) then no longer passes for an effect of the
        channel — as far as these columns describe the contact.
    n_boot : int, optional
        Deprecated name of ``n_bootstrap`` (a :class:`DeprecationWarning`; it
        goes in the next release).

    Attributes
    ----------
    channels_ : list of str
    attribution_ : pandas.DataFrame
        Index ``channel``: ``conversions`` (incremental conversions),
        ``value`` (incremental conversions x the mean conversion value of the
        channel's converting journeys), ``share`` (of the summed incremental
        conversions), and from the bootstrap ``std_err``, ``lower_95``,
        ``upper_95`` (percentile interval of the incremental conversions) and
        ``share_lower_95`` / ``share_upper_95``.
    summary_ : pandas.DataFrame
        The logistic model's coefficients (log-odds): ``estimate``,
        ``std_err``, ``lower_95``, ``upper_95``, ``p_value`` (NaN for a
        penalised fit, whose standard errors come from the bootstrap).
    n_obs_ : int
        Journeys (converting and not) the model was fitted on.
    conversions_ : float
        Observed conversions; ``baseline_`` the predicted conversions with
        every channel removed.
    penalised_ : bool
        Whether the ridge fit was used.
    """

    _hyper = ("features", "half_life", "penalty", "n_bootstrap", "min_conversions", "seed",
              "covariates")

    n_boot = renamed_attribute("n_bootstrap", "n_boot")

    # ------------------------------------------------------------------ keeping a model
    @classmethod
    def from_dict(cls, data, *, source: str = "model") -> IncrementalityModel:
        """Rebuild a model from :meth:`to_dict`'s data; files that say ``n_boot`` still load."""
        hyper = data.get("hyperparameters") if isinstance(data, dict) else None
        if isinstance(hyper, dict) and "n_boot" in hyper and "n_bootstrap" not in hyper:
            hyper = {("n_bootstrap" if k == "n_boot" else k): v for k, v in hyper.items()}
            data = {**data, "hyperparameters": hyper}
        return super().from_dict(data, source=source)

    @classmethod
    def from_params(cls, params) -> IncrementalityModel:
        """Refuse: this model's results are sums over the journeys it was fitted on.

        The incremental conversions (``attribution_``) compare every journey
        with and without each channel, so coefficients alone do not give them;
        keep a fitted model with :meth:`save` / :meth:`load` instead.
        """
        raise CRMStatsError("IncrementalityModel.from_params: its incremental conversions are "
                            "sums over the journeys it was fitted on, which coefficients alone "
                            "do not give; fit it, or keep a fitted one with save / load")

    def _fit_facts(self) -> dict:
        a = self.attribution_
        return {**self._common_facts(), "channels": self.channels_,
                "conversions": self.conversions_, "baseline": self.baseline_,
                "penalised": self.penalised_,
                "attribution": {c: list(a[c].astype(float)) for c in a.columns}}

    def _restore(self, params, summary, facts, variance) -> None:
        channels = facts.strings("channels")
        if list(params.index[:1]) != ["intercept"] or not set(channels) <= set(params.index):
            facts.fail("channels", "the parameters must be the intercept and the channels' terms")
        section = facts.section("attribution")
        columns = {c: section.numbers(c) for c in section.keys()}
        known = {"conversions", "value", "share", "std_err", "lower_95", "upper_95",
                 "share_lower_95", "share_upper_95"}
        for c, values in columns.items():
            if c not in known or len(values) != len(channels):
                section.fail(c, f"one value per channel expected, in {sorted(known)}")
        self._restore_common(params, summary, facts)
        self.channels_ = channels
        self.attribution_ = pd.DataFrame(columns, index=pd.Index(channels, name="channel"))
        self.conversions_ = facts.count("conversions")
        self.baseline_ = facts.count("baseline")
        self.penalised_ = facts.boolean("penalised")

    @renamed_arguments(n_boot="n_bootstrap")
    def __init__(self, features: str = "presence", *, half_life: float | None = None,
                 penalty="auto", n_bootstrap: int = 200, min_conversions: int = 20,
                 seed: int = 0, covariates: list[str] | tuple[str, ...] | None = None):
        self.features = features
        self.half_life = half_life
        self.penalty = penalty
        self.n_bootstrap = n_bootstrap
        self.min_conversions = min_conversions
        self.seed = seed
        self.covariates = covariates

    # ------------------------------------------------------------------ design
    def _design(self, data: PathData):
        if self.features not in ("presence", "counts"):
            raise ValueError(f"features must be 'presence' or 'counts', got {self.features!r}")
        k, m = len(data.channels), len(data.lengths)
        owner, codes = data.owner, data.codes
        count = np.zeros((m, k))
        np.add.at(count, (owner, codes), 1.0)
        blocks = [(count > 0).astype(float)]
        names = list(data.channels)
        if self.features == "counts":
            blocks.append(np.log(np.maximum(count, 1.0)))
            names += [f"log_touches[{c}]" for c in data.channels]
        if self.half_life is not None:
            if float(self.half_life) <= 0:
                raise ValueError(f"half_life must be positive, got {self.half_life}")
            back = (data.lengths[owner] - 1 - data.position).astype(float)
            decay = np.zeros((m, k))
            np.add.at(decay, (owner, codes), 0.5 ** (back / float(self.half_life)))
            blocks.append(decay)
            names += [f"decayed[{c}]" for c in data.channels]
        x = np.hstack(blocks)
        return x, names, len(blocks)

    # ------------------------------------------------------------------ fitting
    def _fit_glm(self, exog, conv, nulls, start=None, penalty=None):
        import statsmodels.api as sm
        from statsmodels.tools.sm_exceptions import (
            ConvergenceWarning as SMConvergenceWarning,
        )
        from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

        endog = np.column_stack([conv, nulls])
        keep = (conv + nulls) > 0
        model = sm.GLM(endog[keep], exog[keep], family=sm.families.Binomial())
        if penalty is None:
            with warnings.catch_warnings():
                warnings.simplefilter("error", SMConvergenceWarning)
                warnings.simplefilter("error", PerfectSeparationWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    res = model.fit(start_params=start, maxiter=100)
                    if np.all(np.isfinite(res.params)) and res.converged:
                        return res, False
                except (SMConvergenceWarning, PerfectSeparationWarning, np.linalg.LinAlgError,
                        ValueError):
                    pass
            penalty = 1.0 / max(float((conv + nulls).sum()), 1.0)
        alpha = np.full(exog.shape[1], float(penalty))
        alpha[0] = 0.0  # the intercept is not penalised
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit_regularized(alpha=alpha, L1_wt=0.0, start_params=start, maxiter=300)
        return res, True

    def fit(self, paths) -> IncrementalityModel:
        """Fit the conversion model on every journey and compute incremental conversions.

        Parameters
        ----------
        paths : pandas.DataFrame
            Path counts from :func:`~crmstats.attribution.build_paths` (or in
            ChannelAttribution's format): converting **and** non-converting
            journeys (``nulls``) are needed — a model of conversion needs both.

        Returns
        -------
        IncrementalityModel
            ``self``, fitted.
        """
        if self.covariates:
            data, cov, cov_names = _with_covariates(paths, list(self.covariates))
        else:
            data, cov, cov_names = _as_path_data(paths), None, []
        conv, nulls = data.conversions, data.nulls
        if conv.sum() <= 0:
            raise DataError("paths table: no conversions to attribute", table="paths",
                            column="conversions")
        if nulls.sum() <= 0:
            raise DataError("paths table: no non-converting journeys (nulls); a conversion "
                            "model needs journeys that did not convert too", table="paths",
                            column="nulls")
        x, names, n_blocks = self._design(data)
        if cov is not None:
            x = np.hstack([x, cov])
            names = names + cov_names
        k = len(data.channels)
        exog = np.column_stack([np.ones(len(x)), x])
        if self.penalty == "auto":
            thin = [(conv * (x[:, c] > 0)).sum() < int(self.min_conversions) for c in range(k)]
            penalty = 1.0 / float((conv + nulls).sum()) if any(thin) else None
        else:
            penalty = float(self.penalty)
            if penalty < 0:
                raise ValueError(f"penalty must be >= 0 or 'auto', got {self.penalty}")
            penalty = penalty or None
        res, penalised = self._fit_glm(exog, conv, nulls, penalty=penalty)
        params = np.asarray(res.params, dtype=float)
        if not np.all(np.isfinite(params)):
            warnings.warn("IncrementalityModel: the conversion model has non-finite "
                          "coefficients", ConvergenceWarning, stacklevel=2)
        trials = conv + nulls
        inc = self._increments(params, exog, trials, k, n_blocks)
        # mean conversion value of each channel's converting journeys
        has = x[:, :k] > 0
        val = np.array([data.value[has[:, c]].sum() / max(conv[has[:, c]].sum(), 1e-12)
                        for c in range(k)])

        idx = pd.Index(data.channels, name="channel")
        total = inc.sum()
        attribution = pd.DataFrame({
            "conversions": inc, "value": inc * val,
            "share": inc / total if total != 0 else np.full(k, np.nan),
        }, index=idx)
        boot = self._bootstrap(exog, conv, nulls, params, k, n_blocks, penalised, penalty)
        if boot is not None:
            shares = boot / boot.sum(axis=1, keepdims=True)
            attribution["std_err"] = boot.std(axis=0, ddof=1)
            attribution["lower_95"] = np.percentile(boot, 2.5, axis=0)
            attribution["upper_95"] = np.percentile(boot, 97.5, axis=0)
            attribution["share_lower_95"] = np.percentile(shares, 2.5, axis=0)
            attribution["share_upper_95"] = np.percentile(shares, 97.5, axis=0)
            self.bootstrap_ = pd.DataFrame(boot, columns=idx)
        self.summary_ = self._summary(res, params, ["intercept", *names], penalised)
        self.channels_ = list(data.channels)
        self.attribution_ = attribution
        self.n_obs_ = int(trials.sum())
        self.conversions_ = float(conv.sum())
        p_none = _expit(exog[:, :1] @ params[:1])
        self.baseline_ = float(np.sum(trials * p_none))
        self.penalised_ = bool(penalised)
        self.params_ = pd.Series(params, index=["intercept", *names])
        self._given_params = False
        return self

    @staticmethod
    def _increments(params, exog, trials, k, n_blocks):
        eta = exog @ params
        p_all = _expit(eta)
        inc = np.empty(k)
        for c in range(k):
            rows = exog[:, 1 + c] > 0
            cols = [1 + blk * k + c for blk in range(n_blocks)]
            # the same journeys without channel c (covariates kept as they are)
            eta_wo = eta[rows] - exog[np.ix_(rows, cols)] @ params[cols]
            inc[c] = np.sum(trials[rows] * (p_all[rows] - _expit(eta_wo)))
        return inc

    def _bootstrap(self, exog, conv, nulls, params, k, n_blocks, penalised, penalty):
        """Refit on journeys resampled with replacement (multinomial counts per path cell).

        The replicates are refitted from the full fit's coefficients (the same
        likelihood, and the same ridge penalty as statsmodels'
        ``fit_regularized`` when the full fit used it). Work that grows with
        the data is done once: path rows with the same design row (the same
        channels and covariates; their order and repeats do not enter the
        model) are merged, so a replicate's counts are summed onto the distinct
        rows; and the refit iterates with the Hessian of the full fit
        (:func:`_newton_logit`'s ``hessian``), one product with the design per
        step instead of a new Hessian, to the same optimum and tolerance.
        """
        b = int(self.n_bootstrap)
        if b <= 0:
            return None
        rng = np.random.default_rng(self.seed)
        cells = np.concatenate([conv, nulls])
        n = int(round(cells.sum()))
        prob = cells / cells.sum()
        keep = (conv + nulls) > 0
        alpha = 0.0
        if penalised:
            alpha = float(penalty) if penalty else 1.0 / max(float((conv + nulls).sum()), 1.0)
        rows = int(keep.sum())
        unique, inverse = np.unique(exog, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        m = len(unique)
        hessian = _logit_hessian(unique, np.bincount(inverse, conv + nulls, minlength=m), params,
                                 alpha, rows)
        out = np.empty((b, k))
        for i in range(b):
            draw = rng.multinomial(n, prob).astype(float)
            cb = np.bincount(inverse, draw[: len(conv)], minlength=m)
            nb = np.bincount(inverse, draw[len(conv):], minlength=m)
            drawn = (cb + nb) > 0
            beta = _newton_logit(unique[drawn], cb[drawn], nb[drawn], params, alpha, rows=rows,
                                 hessian=hessian)
            out[i] = self._increments(beta, unique, cb + nb, k, n_blocks)
        return out

    @staticmethod
    def _summary(res, params, names, penalised):
        if penalised:
            se = np.full(len(params), np.nan)
            p = np.full(len(params), np.nan)
        else:
            se = np.asarray(res.bse, dtype=float)
            p = np.asarray(res.pvalues, dtype=float)
        return summary_table(names, params, se, p_value=p, index_name="term")

    @property
    def shares_(self) -> pd.Series:
        """Share of the incremental conversions per channel (sums to 1)."""
        self._check_fitted()
        return self.attribution_["share"]

    def __repr__(self) -> str:
        return (f"IncrementalityModel(features={self.features!r}, half_life={self.half_life}, "
                f"penalty={self.penalty!r}, n_bootstrap={self.n_bootstrap})")


def _expit(z):
    from scipy.special import expit

    return expit(z)


def _with_covariates(paths, covariates: list[str]):
    """Path counts with contact covariates: no merging of equal paths; the covariate matrix."""
    if not isinstance(paths, pd.DataFrame) or "path" not in paths.columns:
        raise DataError("paths table: covariates need the DataFrame of build_paths(..., "
                        "contacts=..., by=[...])", table="paths")
    missing = [c for c in covariates if c not in paths.columns]
    if missing:
        raise DataError(f"paths table: no covariate column(s) {', '.join(map(repr, missing))}; "
                        "count the paths by them with build_paths(..., contacts=crm.contacts, "
                        f"by={covariates!r})", table="paths", column=missing[0])
    if len(paths) == 0:
        raise DataError("paths table is empty (no rows)", table="paths")
    frame = paths[covariates]
    null = frame.isna().any(axis=1).to_numpy()
    if null.any():
        col = next(c for c in covariates if frame[c].isna().any())
        rows = list(paths.index[null][:5])
        raise DataError(f"paths table, column {col!r}: {int(null.sum())} path row(s) without a "
                        f"covariate value (journeys without a contact row?), e.g. rows {rows}",
                        table="paths", column=col, rows=rows)
    blocks, names = [], []
    for c in covariates:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.to_numpy(dtype=float)
            sd = v.std()
            blocks.append(((v - v.mean()) / (sd if sd > 0 else 1.0))[:, None])
            names.append(c)
        else:
            levels = sorted(map(str, s.astype(str).unique()))
            for level in levels[1:]:
                blocks.append((s.astype(str).to_numpy() == level).astype(float)[:, None])
                names.append(f"{c}[{level}]")
    cov = np.hstack(blocks) if blocks else np.zeros((len(paths), 0))
    codes, channels, lengths, empty = _encode_paths(paths["path"], ">")
    if empty.any():
        rows = list(paths.index[empty][:5])
        raise DataError(f"paths table, column 'path': {int(empty.sum())} empty path(s) or empty "
                        f"channel name(s), e.g. rows {rows}", table="paths", column="path",
                        rows=rows)
    data = PathData(channels=channels, codes=codes, lengths=lengths,
                    conversions=_numeric(paths, "conversions", "conversions"),
                    value=_numeric(paths, "value", "value", default=0.0),
                    nulls=_numeric(paths, "nulls", "nulls", default=0.0))
    return data, cov, names


def _logit_hessian(x, trials, beta, alpha, rows):
    """Negative Hessian of :func:`_newton_logit`'s objective (times ``rows``) at ``beta``."""
    p = _expit(x @ beta)
    pen = np.full(len(beta), float(alpha) * max(rows, 1))
    pen[0] = 0.0
    return (x * (trials * p * (1 - p))[:, None]).T @ x + np.diag(pen)


def _newton_logit(x, conv, nulls, start, alpha=0.0, max_iter=25, tol=1e-6, rows=None,
                  hessian=None):
    """Binomial logit coefficients by Newton's method from ``start``.

    Maximises ``sum(conv log p + nulls log(1 - p)) / rows - alpha / 2 * |beta[1:]|^2``
    (``rows`` = number of path rows, the scaling of statsmodels' ``fit_regularized``;
    rows with no trials add nothing to the likelihood and may be left out of ``x``).
    With ``hessian`` (e.g. :func:`_logit_hessian` of a nearby fit) the steps use it
    instead of recomputing the Hessian (a chord method: the same optimum, reached
    in more but far cheaper steps); if that does not converge within ``4 * max_iter``
    steps, full Newton steps finish the fit.
    """
    beta = np.asarray(start, dtype=float).copy()
    rows = max(len(x) if rows is None else rows, 1)
    pen = np.full(len(beta), float(alpha) * rows)
    pen[0] = 0.0
    trials = conv + nulls
    if hessian is not None:
        try:
            chol = np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None:
            start_beta = beta.copy()
            for _ in range(4 * max_iter):
                grad = x.T @ (conv - trials * _expit(x @ beta)) - pen * beta
                step = np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
                beta += step
                if not np.all(np.isfinite(beta)):
                    break
                if np.max(np.abs(step)) < tol:
                    return beta
            beta = start_beta
    for _ in range(max_iter):
        p = _expit(x @ beta)
        grad = x.T @ (conv - trials * p) - pen * beta
        w = trials * p * (1 - p)
        hess = (x * w[:, None]).T @ x + np.diag(pen)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta += step
        if np.max(np.abs(step)) < tol:
            break
    return beta

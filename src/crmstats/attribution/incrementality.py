"""A counterfactual conversion model: what each channel adds to the chance of converting.

Journey-based models (rules, Markov, Shapley) credit channels for being
*present* in converting journeys. :class:`IncrementalityModel` instead models
the conversion probability of **every** journey — converting or not — on its
channel exposure, in the family of Shao & Li's logistic multi-touch model [1]_
and Dalessandro et al.'s causally motivated attribution [2]_: a logistic
regression (binomial, fitted by Newton's method) or a noisy-OR model
(:mod:`crmstats.attribution.noisy_or`: each channel independently brings
about a conversion, among the contacts in the market at all) on each
channel's presence, optionally the log of its number of touches and a
time-decayed exposure; ``link="auto"`` keeps the one with the better AIC. A channel's
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

from crmstats.attribution.counterfactual import (
    _logit_hessian,
    _logit_loglik,
    _logit_newton,
    _noisy_or_summary,
    _ridge,
    _untouched_rows,
    _with_covariates,
    logit_fit,
)
from crmstats.attribution.noisy_or import (
    _expit,
    noisy_or_fit,
    noisy_or_increments,
    noisy_or_information,
    noisy_or_jacobian,
    noisy_or_prob,
)
from crmstats.attribution.paths import PathData, _as_path_data
from crmstats.estimator import Estimator, summary_table
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError
from crmstats.vocabulary import renamed_arguments, renamed_attribute

__all__ = ["IncrementalityModel"]

#: The conversion models (links) the model can fit; ``link="auto"`` keeps the better by AIC.
_LINKS = ("logit", "noisy_or")


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
        Ridge penalty on the channel and covariate coefficients, per path row
        (statsmodels ``fit_regularized(L1_wt=0)``'s scaling). ``"auto"`` fits the plain
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
    link : {"auto", "logit", "noisy_or"}
        The conversion model: logistic (channel effects add on the log-odds:
        they grow with the other channels' on the probability scale),
        noisy-OR (sub-additive: a channel adds less where others already
        made the conversion likely; covariates act on the chance to be in the
        market), or ``"auto"``: both, keeping the better by AIC. The
        noisy-OR's intervals come from the delta method (its Fisher
        information; ``n_bootstrap`` draws from that normal law) instead of
        refits.
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
        ``share_lower_95`` / ``share_upper_95``. When the bootstrap's 95 %
        interval of the channels' total reaches zero, the shares are left
        empty (NaN): parts of a total that cannot be told from zero are not
        estimates (as :func:`~crmstats.attribution.calibrate` does).
    summary_ : pandas.DataFrame
        The model's coefficients: ``estimate``, ``std_err``, ``lower_95``,
        ``upper_95``, ``p_value`` (NaN for a penalised fit). Logistic link:
        log-odds. Noisy-OR: ``intercept`` and the covariates are the log-odds
        of being in the market, each channel term its hazard ``lambda >= 0``
        (the channel brings about a conversion with probability
        ``1 - exp(-lambda)``), ``baseline`` the log-odds of converting
        without any channel when in the market.
    n_obs_ : int
        Journeys (converting and not) the model was fitted on.
    conversions_ : float
        Observed conversions; ``baseline_`` the predicted conversions with
        every channel removed.
    penalised_ : bool
        Whether the ridge fit was used.
    link_ : str
        The link fitted (``"logit"`` or ``"noisy_or"``); ``converged_`` and
        ``log_likelihood_`` are its fit's.
    """

    _hyper = ("features", "half_life", "penalty", "n_bootstrap", "min_conversions", "seed",
              "covariates", "link")

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
                "penalised": self.penalised_, "link": self.link_,
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
        self.link_ = facts.optional_string("link") or "logit"  # files from before the link
        if self.link_ not in _LINKS:
            facts.fail("link", f"one of {', '.join(_LINKS)} expected")

    @renamed_arguments(n_boot="n_bootstrap")
    def __init__(self, features: str = "presence", *, half_life: float | None = None,
                 penalty="auto", n_bootstrap: int = 200, min_conversions: int = 20,
                 seed: int = 0, covariates: list[str] | tuple[str, ...] | None = None,
                 link: str = "auto"):
        self.features = features
        self.half_life = half_life
        self.penalty = penalty
        self.n_bootstrap = n_bootstrap
        self.min_conversions = min_conversions
        self.seed = seed
        self.covariates = covariates
        self.link = link

    # ------------------------------------------------------------------ design
    def _n_blocks(self) -> int:
        """Blocks of channel terms: presence, log touches (``"counts"``), decayed exposure."""
        if self.features not in ("presence", "counts"):
            raise ValueError(f"features must be 'presence' or 'counts', got {self.features!r}")
        if self.half_life is not None and float(self.half_life) <= 0:
            raise ValueError(f"half_life must be positive, got {self.half_life}")
        return 1 + (self.features == "counts") + (self.half_life is not None)

    def _design(self, data: PathData, out: np.ndarray):
        """Write the path rows' channel terms into ``out`` (zeros); return their names."""
        k, m = len(data.channels), len(data.lengths)
        owner, codes = data.owner, data.codes
        count = np.zeros((m, k))
        np.add.at(count, (owner, codes), 1.0)
        out[:, :k] = count > 0
        names = list(data.channels)
        block = 1
        if self.features == "counts":
            out[:, k:2 * k] = np.log(np.maximum(count, 1.0))
            names += [f"log_touches[{c}]" for c in data.channels]
            block += 1
        if self.half_life is not None:
            back = (data.lengths[owner] - 1 - data.position).astype(float)
            np.add.at(out[:, block * k:(block + 1) * k], (owner, codes),
                      0.5 ** (back / float(self.half_life)))
            names += [f"decayed[{c}]" for c in data.channels]
        return names

    # ------------------------------------------------------------------ fitting
    def fit(self, paths, untouched: pd.DataFrame | None = None) -> IncrementalityModel:
        """Fit the conversion model on every journey and compute incremental conversions.

        Parameters
        ----------
        paths : pandas.DataFrame
            Path counts from :func:`~crmstats.attribution.build_paths` (or in
            ChannelAttribution's format): converting **and** non-converting
            journeys (``nulls``) are needed — a model of conversion needs both.
        untouched : pandas.DataFrame, optional
            Journeys that no channel reached, which paths cannot hold:
            :func:`~crmstats.attribution.untouched_journeys` (e.g. the journeys
            a holdout test withheld from every channel), with ``conversions``,
            ``nulls`` and the covariate columns. They show the conversion rate
            without any channel, which the model otherwise extrapolates.

        Returns
        -------
        IncrementalityModel
            ``self``, fitted.
        """
        if self.link not in (*_LINKS, "auto"):
            raise ValueError(f"link must be 'auto', 'logit' or 'noisy_or', got {self.link!r}")
        if self.covariates:
            data, coding = _with_covariates(paths, list(self.covariates))
            cov_names = coding.names
        else:
            data, coding, cov_names = _as_path_data(paths), None, []
        conv, nulls = data.conversions, data.nulls
        if conv.sum() <= 0:
            raise DataError("paths table: no conversions to attribute", table="paths",
                            column="conversions")
        if nulls.sum() <= 0:
            raise DataError("paths table: no non-converting journeys (nulls); a conversion "
                            "model needs journeys that did not convert too", table="paths",
                            column="nulls")
        n_blocks = self._n_blocks()
        k = len(data.channels)
        q = k * n_blocks
        n_paths = len(data.lengths)
        if untouched is not None:
            u_conv, u_nulls = _untouched_rows(untouched, list(self.covariates or []))
            conv = np.concatenate([conv, u_conv])
            nulls = np.concatenate([nulls, u_nulls])
        # the design, built once: intercept, channel terms (untouched rows: none), covariates;
        # x and cov are views of it, not copies beside it (on the 10x demo 80 MB each)
        exog = np.zeros((len(conv), 1 + q + len(cov_names)))
        exog[:, 0] = 1.0
        x, cov = exog[:, 1:1 + q], exog[:, 1 + q:]
        names = self._design(data, x[:n_paths])
        if coding is not None:
            coding.fill(cov[:n_paths], paths)
            if untouched is not None:
                coding.fill(cov[n_paths:], untouched, "untouched")
        trials = conv + nulls
        if self.penalty == "auto":
            thin = [(conv * (x[:, c] > 0)).sum() < int(self.min_conversions) for c in range(k)]
            penalty = 1.0 / float(trials.sum()) if any(thin) else None
        else:
            penalty = float(self.penalty)
            if penalty < 0:
                raise ValueError(f"penalty must be >= 0 or 'auto', got {self.penalty}")
            penalty = penalty or None
        fits = {}
        if self.link in ("logit", "auto"):
            params, se, p_value, penalised, ok = logit_fit(exog, conv, nulls, penalty=penalty)
            fits["logit"] = (params, (se, p_value), penalised,
                             _logit_loglik(params, exog, conv, nulls), ok)
        if self.link in ("noisy_or", "auto"):
            theta, ok, ll = noisy_or_fit(x, cov, conv, nulls, penalty=penalty or 0.0)
            fits["noisy_or"] = (theta, None, penalty is not None, ll, ok)
        # Akaike's criterion between the two links (the noisy-OR has one parameter more), among
        # the fits that converged (a noisy-OR run off to infinite hazards on little data has
        # the higher likelihood and no finite increments)
        usable = [name for name in fits if fits[name][4] and np.all(np.isfinite(fits[name][0]))]
        link = min(usable or list(fits), key=lambda name: len(fits[name][0]) - fits[name][3])
        params, res, penalised, loglik, converged = fits[link]
        if not np.all(np.isfinite(params)) or not converged:
            warnings.warn(f"IncrementalityModel: the {link} conversion model did not converge "
                          "(too few journeys for its coefficients?); its increments may be "
                          "missing or unreliable", ConvergenceWarning, stacklevel=2)
        self.link_ = link
        inc = self._increments_of(params, exog, trials, k, n_blocks)
        # mean conversion value of each channel's converting journeys
        has = x[:n_paths, :k] > 0
        val = np.array([data.value[has[:, c]].sum() / max(data.conversions[has[:, c]].sum(),
                                                          1e-12) for c in range(k)])
        idx = pd.Index(data.channels, name="channel")
        total = inc.sum()
        attribution = pd.DataFrame({
            "conversions": inc, "value": inc * val,
            "share": inc / total if total != 0 else np.full(k, np.nan),
        }, index=idx)
        info = None  # the noisy-OR's Fisher information: its summary's and its intervals'
        if link == "noisy_or" and (not penalised or int(self.n_bootstrap) > 0):
            info = noisy_or_information(params, x, cov, trials)
        boot = self._bootstrap(exog, conv, nulls, params, k, n_blocks, penalised, penalty, info)
        if boot is not None:
            shares = boot / boot.sum(axis=1, keepdims=True)
            attribution["std_err"] = boot.std(axis=0, ddof=1)
            attribution["lower_95"] = np.percentile(boot, 2.5, axis=0)
            attribution["upper_95"] = np.percentile(boot, 97.5, axis=0)
            attribution["share_lower_95"] = np.percentile(shares, 2.5, axis=0)
            attribution["share_upper_95"] = np.percentile(shares, 97.5, axis=0)
            if not np.percentile(boot.sum(axis=1), 2.5) > 0:
                # the channels' total cannot be told from zero: its parts are not shares
                # (as calibrate leaves them; on 2,500 contacts -58 % to +131 %)
                attribution[["share", "share_lower_95", "share_upper_95"]] = np.nan
            self.bootstrap_ = pd.DataFrame(boot, columns=idx)
        terms = ["intercept", *names, *cov_names] + (["baseline"] if link == "noisy_or" else [])
        if link == "logit":
            self.summary_ = summary_table(terms, params, res[0], p_value=res[1],
                                          index_name="term")
        else:
            self.summary_ = _noisy_or_summary(params, info, terms, penalised)
        self.channels_ = list(data.channels)
        self.attribution_ = attribution
        self.n_obs_ = int(trials.sum())
        self.conversions_ = float(conv.sum())
        self.baseline_ = float(np.sum(trials * self._bare_prob(params, exog, x.shape[1])))
        self.penalised_ = bool(penalised)
        self.converged_ = bool(converged)
        self.log_likelihood_ = float(loglik)
        self.params_ = pd.Series(params, index=terms)
        self._given_params = False
        return self

    # ------------------------------------------------------------------ the two links
    def _bare_prob(self, params, exog, q):
        """Conversion probability of every design row with its channel terms removed."""
        if self.link_ == "logit":
            return _expit(params[0] * exog[:, 0] + exog[:, 1 + q:] @ params[1 + q:])
        return noisy_or_prob(params, np.zeros((len(exog), q)), exog[:, 1 + q:])

    def _increments_of(self, params, exog, trials, k, n_blocks):
        if self.link_ == "logit":
            return self._increments(params, exog, trials, k, n_blocks)
        q = k * n_blocks
        return noisy_or_increments(params, exog[:, 1:1 + q], exog[:, 1 + q:], trials, k,
                                   n_blocks)

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

    def _bootstrap(self, exog, conv, nulls, params, k, n_blocks, penalised, penalty, info=None):
        """Refit on journeys resampled with replacement (multinomial counts per path cell).

        The replicates are refitted from the full fit's coefficients (the same
        likelihood, and the same ridge penalty as statsmodels'
        ``fit_regularized`` when the full fit used it). Work that grows with
        the data is done once: path rows with the same design row (the same
        channels and covariates; their order and repeats do not enter the
        model) are merged, so a replicate's counts are summed onto the distinct
        rows; and the refit iterates with the Hessian of the full fit
        (:func:`_logit_newton`'s ``hessian``), one product with the design per
        step instead of a new Hessian, to the same optimum and tolerance.
        """
        b = int(self.n_bootstrap)
        if b <= 0:
            return None
        if self.link_ == "noisy_or":
            return self._delta_noisy_or(exog, conv + nulls, params, k, n_blocks,
                                        penalty if penalised else None, info)
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
        pen = alpha * max(rows, 1)  # the full fit's ridge (per path row, as statsmodels')
        hessian = _logit_hessian(unique, np.bincount(inverse, conv + nulls, minlength=m),
                                 _expit(unique @ params), _ridge(len(params), pen))
        out = np.empty((b, k))
        for i in range(b):
            draw = rng.multinomial(n, prob).astype(float)
            cb = np.bincount(inverse, draw[: len(conv)], minlength=m)
            nb = np.bincount(inverse, draw[len(conv):], minlength=m)
            drawn = (cb + nb) > 0
            beta = _logit_newton(unique[drawn], cb[drawn], nb[drawn], pen, start=params,
                                 max_iter=25, tol=1e-6, hessian=hessian)[0]
            out[i] = self._increments(beta, unique, cb + nb, k, n_blocks)
        return out

    def _delta_noisy_or(self, exog, trials, theta, k, n_blocks, penalty, info):
        """Replicates of the noisy-OR increments drawn from their delta-method normal law.

        The increments' covariance is ``J I^-1 J'`` (``J`` their derivatives by the
        parameters, :func:`noisy_or_jacobian`; ``I`` the Fisher information, with the
        ridge when the fit used one): the outcomes' sampling error given the
        journeys, which is what a refit on resampled outcomes would show, at the
        cost of one information matrix instead of ``n_bootstrap`` refits (a
        noisy-OR refit is an iterative fit of its own). Draws, rather than the
        normal formulas, keep the share intervals' computation of the bootstrap.
        """
        q = k * n_blocks
        x, z = exog[:, 1:1 + q], exog[:, 1 + q:]
        info = info.copy()  # (:func:`noisy_or_information`, from fit) plus the ridge
        rows = int((trials > 0).sum())
        info[1:1 + q, 1:1 + q] += (penalty or 0.0) * rows * np.eye(q)
        jac = noisy_or_jacobian(theta, x, z, trials, k, n_blocks)
        try:
            cov = jac @ np.linalg.solve(info, jac.T)
        except np.linalg.LinAlgError:
            cov = jac @ np.linalg.pinv(info) @ jac.T
        cov = (cov + cov.T) / 2
        centre = noisy_or_increments(theta, x, z, trials, k, n_blocks)
        if not (np.all(np.isfinite(cov)) and np.all(np.isfinite(centre))):
            return None  # a degenerate fit (warned in fit): no intervals
        rng = np.random.default_rng(self.seed)
        return rng.multivariate_normal(centre, cov, size=int(self.n_bootstrap),
                                       method="eigh")

    @property
    def shares_(self) -> pd.Series:
        """Share of the incremental conversions per channel (sums to 1)."""
        self._check_fitted()
        return self.attribution_["share"]

    def __repr__(self) -> str:
        return (f"IncrementalityModel(features={self.features!r}, half_life={self.half_life}, "
                f"penalty={self.penalty!r}, n_bootstrap={self.n_bootstrap}, "
                f"link={self.link!r})")


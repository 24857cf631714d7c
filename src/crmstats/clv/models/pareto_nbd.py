"""Pareto/NBD: repeat buying with an exponential lifetime.

References
----------
.. [1] Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). Counting
   your customers: Who are they and what will they do next? Management
   Science 33(1), 1-24.
.. [2] Fader, P. S. and Hardie, B. G. S. (2005). A note on deriving the
   Pareto/NBD model and related expressions. http://brucehardie.com/notes/009/
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln

from crmstats.clv.models.base import BaseModel

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(BaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) [1]_.

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``;
    its unobserved lifetime is exponential with rate ``mu ~ Gamma(s, beta)``.
    The likelihood follows Fader & Hardie's note [2]_; its death integral
    (their hypergeometric term) and its derivatives come from the quadratures
    of :mod:`crmstats.clv.models._pareto_covariates`, accurate however far apart
    the purchase and dropout scales are, and the fit is Newton's method on
    the analytic gradient and Hessian in a box (:mod:`._bounded_newton`).

    Parameters
    ----------
    penalty, maxiter, tol
        See :class:`~crmstats.clv.models.base.BaseModel`.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha``, ``s``, ``beta``.
    log_likelihood_, summary_, variance_matrix_
        As for every model.
    """

    _param_names = ("r", "alpha", "s", "beta")
    _covariate_scales = {"purchase": "alpha", "dropout": "beta"}
    _shape_params = ("r", "s")
    #: Its covariate fit has analytic derivatives over every pattern at once
    #: (:mod:`crmstats.clv.models._pareto_covariates`).
    _analytic_covariates = True
    #: The fit is Newton's method on the analytic gradient and Hessian of
    #: :mod:`._pareto_covariates` (the data as one covariate pattern), in a box on the
    #: log-parameters (:mod:`._bounded_newton`) whose kinds these are.
    _has_gradient = True
    _has_hessian = True
    _log_kinds = ("shape", "scale", "shape", "scale")
    #: The second start only where the first fails (Newton in a box rarely does).
    _first_success_suffices = True

    #: From this ``s`` on (dropout rates varying across customers by less than 1/√s, 10 %),
    #: a fit whose likelihood cannot pin ``s`` down (no standard error, or one above ``s``)
    #: is on the ridge toward one dropout rate for every customer; from ONE_RATE_S on, any.
    ONE_RATE_MIN_S, ONE_RATE_S = 100.0, 1e4

    def _at_boundary(self):
        """Describe the edge: one dropout rate for all, no dropout, or the edge of the box.

        One rate: s → ∞ with s / β fixed (:mod:`.limits`: a model in its own
        right, said without parameter names); no dropout: s → 0 or
        s / β → 0; the box: see :mod:`._bounded_newton`.
        """
        from crmstats.clv.models.limits import one_dropout_clause

        s, beta = float(self.params_["s"]), float(self.params_["beta"])
        unit = {"D": "day", "W": "week", "M": "month"}.get(getattr(self, "time_unit_", None),
                                                           "time unit")
        se = np.nan
        summary = getattr(self, "summary_", None)
        if summary is not None and "s" in summary.index:
            se = float(summary.loc["s", "std_err"])
        loose = not getattr(self, "_given_params", False) and not se <= s  # NaN: not pinned
        dropout = s / beta >= 1e-8  # below: no measurable dropout (the case after this)
        if dropout and (s > self.ONE_RATE_S or (s > self.ONE_RATE_MIN_S and loose)):
            design = getattr(self, "_design", None)
            if design is not None and any(p != "purchase" for p, _ in design.coefs):
                return one_dropout_clause("the same dropout rate for customers who share "
                                          "their attributes")
            stop = -np.expm1(-s / beta)  # the chance that an active customer stops per unit
            return one_dropout_clause(
                f"the same dropout rate for every customer: about {_share_words(stop)} of "
                f"active customers stop buying each {unit}")
        if s < self._edge[0] or s / beta < 1e-8:
            return (f"found no measurable dropout: s / beta = {s / beta:.3g} per {unit} "
                    f"(s = {s:.3g}, beta = {beta:.3g}), so every customer counts as active "
                    "for ever")
        edge = [n for n in getattr(self, "_box_edge", None) or [] if n in self.params_.index]
        if edge and not getattr(self, "_given_params", False):
            values = ", ".join(f"{n} = {float(self.params_[n]):.3g}" for n in edge)
            return ("ran to the edge of the range the fit searches: the data cannot pin the "
                    f"model down ({values}; the likelihood keeps rising that way)")
        return super()._at_boundary()

    #: Newton's step tolerance on the subsample of :meth:`_warm_start`: its estimate is only
    #: a start, a subsample's sampling error (1e-2 to 1e-1 in log-parameters on 100,000
    #: customers) away from the full data's optimum, so iterations to 1e-8 there (each a
    #: pass over a quarter of the rows) buy nothing: the full-data run converges to its
    #: own tolerance from any nearby start, in as many iterations.
    _warm_xtol = 1e-2

    def _minimize(self, data, start, xtol: float = 1e-8):
        """Newton's method in the box of :mod:`._bounded_newton` (every fit ends)."""
        from crmstats.clv.models._bounded_newton import MAXITER, bounded_newton, box

        lower, upper = box(self._log_kinds, np.average(data["T"], weights=data["weights"]))
        return bounded_newton(self._objective(data, hessian=True), start, lower, upper,
                              maxiter=min(int(self.maxiter), MAXITER), xtol=xtol)

    def _warm_start(self, data, start):
        """Return the subsample's estimate (:meth:`Optimizers._warm_start`), to ``_warm_xtol``."""
        minimize = self._minimize
        self._minimize = lambda sub, x0: minimize(sub, x0, xtol=self._warm_xtol)
        try:
            return super()._warm_start(data, start)
        finally:
            del self._minimize

    def _initial(self, data):
        scale = max(np.average(data["T"], weights=data["weights"]) / 4, 1.0)
        return np.log(np.array([0.5, scale, 0.5, scale]))

    def _starts(self, data):
        base = self._initial(data)
        return [base, base + np.log([1.0, 1.0, 2.0, 2.0])]

    @staticmethod
    def _log_dead(r, alpha, s, beta, x, tx, T):
        """Log-likelihood of a death between the last purchase and ``T`` (-inf where t_x = T).

        ``s ∫_{t_x}^T (α+τ)^-(r+x) (β+τ)^-(s+1) dτ``: Fader & Hardie's
        ``s / (r+s+x) · A0`` [2]_, by the quadratures of
        :mod:`._pareto_covariates` rather than the hypergeometric function,
        which scipy evaluates wrongly where the dropout and purchase scales are
        far apart and ``s`` is large (on the demo's calibration period,
        ``s = 31,000``, ``β = 2.4e6``: a log-likelihood of -9,007 for -8,120).
        """
        from crmstats.clv.models._pareto_covariates import log_death

        with np.errstate(divide="ignore"):
            return np.log(s) + log_death(r, alpha, s, beta, x, tx, T)

    def _log_likelihood_rows(self, params, data):
        r, alpha, s, beta = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        dead = self._log_dead(r, alpha, s, beta, x, tx, T)
        return head + np.logaddexp(alive, np.where(np.isnan(dead), -np.inf, dead))

    def _nll(self, log_params, data, hessian: bool = False):
        """Negative log-likelihood, gradient [and Hessian] in log-parameters (analytic).

        By :func:`~._pareto_covariates.pattern_derivatives` with every row in one
        pattern (the value is :meth:`_nll_value`'s).
        """
        from crmstats.clv.models._pareto_covariates import pattern_derivatives, to_log_params

        theta = np.exp(np.asarray(log_params, dtype=float))
        f, g, h = self._recalled(data, theta, 2 if hessian else 1) or pattern_derivatives(
            self._table(data), theta[0], theta[2], theta[1:2], theta[3:4],
            order=2 if hessian else 1)
        self._remember(data, theta, (f, g, h))
        g, h = to_log_params(theta[None, :], g, h)
        if hessian:
            return -float(f[0]), -g[0], -h[0]
        return -float(f[0]), -g[0]

    #: Evaluations kept per fit (in its ``data``): the optimiser's last accepted point and
    #: the trial its line search may have rejected after it.
    _RECALL = 3

    @staticmethod
    def _recalled(data, theta, order: int):
        """Return an evaluation of this fit at ``theta`` (to rounding) of ``order``, or None.

        The fit asks for the log-likelihood and the Hessian at its optimum
        again (``log_likelihood_``, the standard errors), where Newton's last
        iteration evaluated both: two passes over every row saved. "To
        rounding" (1e-14, relative): ``exp(log(exp(x)))`` may differ from
        ``exp(x)`` in the last bits, which changes nothing computed from it.
        """
        for point, out in data.get("_pnbd_recall", ()):
            if (out[order] is not None and point.shape == theta.shape
                    and np.all(np.abs(point - theta) <= 1e-14 * np.abs(theta))):
                return out
        return None

    def _remember(self, data, theta, out) -> None:
        kept = data.setdefault("_pnbd_recall", [])
        kept.insert(0, (theta.copy(), out))
        del kept[self._RECALL:]

    def _table(self, data):
        """Return the compressed rows as one covariate pattern (cached in ``data``)."""
        from crmstats.clv.models._pareto_covariates import PairTable

        table = data.get("_pnbd_table")
        if table is None:
            table = data["_pnbd_table"] = PairTable(
                np.zeros(len(data["weights"]), dtype=np.int64), data["frequency"],
                data["recency"], data["T"], data["weights"])
        return table

    def _nll_value(self, log_params, data) -> float:
        """Negative log-likelihood alone (the same quadratures, no derivatives)."""
        from crmstats.clv.models._pareto_covariates import pattern_derivatives

        theta = np.exp(np.asarray(log_params, dtype=float))
        known = self._recalled(data, theta, 0)
        if known is not None:
            return -float(known[0][0])
        with np.errstate(all="ignore"):
            f = pattern_derivatives(self._table(data), theta[0], theta[2], theta[1:2],
                                    theta[3:4], order=0)[0]
        return -float(f[0])

    def probability_alive(self, summary: pd.DataFrame,
                          covariates: pd.DataFrame | None = None) -> pd.Series:
        """Probability that each customer is still active at the end of observation.

        ``covariates``: a model with covariates takes rows for customers it was
        not fitted on (the others' are kept from the fit).
        """
        index, d = self._as_arrays(summary)
        out = np.empty(len(index))
        for rows, params in self._groups(index, covariates):
            out[rows] = self._alive(params, d["frequency"][rows], d["recency"][rows],
                                    d["T"][rows])
        return pd.Series(out, index=index, name="p_alive")

    def _alive(self, params, x, tx, T):
        r, alpha, s, beta = params
        dead = self._log_dead(r, alpha, s, beta, x, tx, T)
        log_odds = ((r + x) * np.log(alpha + T) + s * np.log(beta + T)
                    + np.where(np.isnan(dead), -np.inf, dead))
        return expit(-log_odds)

    def expected_purchases(self, t, covariates: pd.DataFrame | None = None
                           ) -> np.ndarray | pd.Series:
        """Return the expected repeat purchases of a new customer in ``(0, t]``.

        ``covariates``: as for :meth:`BetaGeoModel.expected_purchases`.
        """
        return self._new_customers(t, covariates)

    @staticmethod
    def _new_customer(params, t):
        r, alpha, s, beta = params
        return r * beta / alpha * _lifetime_share(s, beta, t)

    def predict_purchases(self, summary: pd.DataFrame, t,
                          covariates: pd.DataFrame | None = None) -> pd.Series:
        """Return each customer's expected purchases in the next ``t`` units, given its history.

        ``covariates``: as for :meth:`probability_alive`.
        """
        index, d = self._as_arrays(summary)
        t = float(t)
        out = np.empty(len(index))
        for rows, params in self._groups(index, covariates):
            r, alpha, s, beta = params
            x, tx, T = d["frequency"][rows], d["recency"][rows], d["T"][rows]
            rate = (r + x) * (beta + T) / (alpha + T)
            out[rows] = rate * _lifetime_share(s, beta + T, t) * self._alive(params, x, tx, T)
        return pd.Series(out, index=index, name="expected_purchases")


def _share_words(p: float) -> str:
    """Format a share for a sentence: ``"1.3 %"``, ``"below 0.01 %"``."""
    return "below 0.01 %" if p < 1e-4 else f"{100 * p:.2g} %"


def _lifetime_share(s, beta, t):
    """``(1 - (β / (β + t))^(s - 1)) / (s - 1)``, without cancellation, for every s > 0.

    Written as ``L · exprel(-(s - 1) L)`` with ``L = log(1 + t / β)``: the
    same number, but positive and accurate where ``s`` is near 1 (0 / 0 in
    the plain form) and where ``β`` is huge (a fit at the no-dropout
    boundary, ``1 - (1 - ε)`` in the plain form).
    """
    from scipy.special import exprel

    log_growth = np.log1p(t / beta)
    return log_growth * exprel(-(s - 1) * log_growth)

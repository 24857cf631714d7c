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
from scipy.special import expit, gammaln, hyp2f1

from crmstats.clv.models.base import BaseModel, vdot

__all__ = ["ParetoNBDModel"]


class ParetoNBDModel(BaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) [1]_.

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``;
    its unobserved lifetime is exponential with rate ``mu ~ Gamma(s, beta)``.
    The likelihood follows Fader & Hardie's note [2]_, with the Gaussian
    hypergeometric term chosen by whether ``alpha >= beta`` and evaluated in
    logs for stability.

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

    def _at_boundary(self):
        """No dropout (s → 0 or s / β → 0), or the same dropout rate for everyone (s → ∞)."""
        s, beta = float(self.params_["s"]), float(self.params_["beta"])
        unit = {"D": "day", "W": "week", "M": "month"}.get(getattr(self, "time_unit_", None),
                                                           "time unit")
        if s > 1e4:
            return (f"found the same dropout rate for every customer: s and beta grow without "
                    f"bound (s = {s:.3g}, beta = {beta:.3g}) and the model tends to one dropout "
                    f"rate s / beta = {s / beta:.3g} per {unit}")
        if s < self._edge[0] or s / beta < 1e-8:
            return (f"found no measurable dropout: s / beta = {s / beta:.3g} per {unit} "
                    f"(s = {s:.3g}, beta = {beta:.3g}), so every customer counts as active "
                    "for ever")
        return super()._at_boundary()

    def _initial(self, data):
        scale = max(np.average(data["T"], weights=data["weights"]) / 4, 1.0)
        return np.log(np.array([0.5, scale, 0.5, scale]))

    def _starts(self, data):
        base = self._initial(data)
        return [base, base + np.log([1.0, 1.0, 2.0, 2.0])]

    @staticmethod
    def _log_f(r, alpha, s, beta, x, u):
        """Log of Fader & Hardie's 2F1 term at time ``u`` (t_x or T) for ``x`` repeat purchases."""
        rsx = r + s + x
        if np.ndim(alpha) or np.ndim(beta):  # per-customer scales (covariates)
            ge = np.asarray(alpha >= beta)
            big, second = np.where(ge, alpha, beta), np.where(ge, s + 1, r + x)
        elif alpha >= beta:
            big, second = alpha, s + 1
        else:
            big, second = beta, r + x
        z = np.abs(alpha - beta) / (big + u)
        return np.log(hyp2f1(rsx, second, rsx + 1, z)) - rsx * np.log(big + u)

    @classmethod
    def _log_a0(cls, r, alpha, s, beta, x, tx, T):
        """Log of A0 in Fader & Hardie's note (the integral over a death before T)."""
        return cls._a0_from_terms(cls._log_f(r, alpha, s, beta, x, tx),
                                  cls._log_f(r, alpha, s, beta, x, T))

    @staticmethod
    def _a0_from_terms(log_f_tx, log_f_T):
        """``log(F(t_x) - F(T))`` from the logs of the two 2F1 terms."""
        with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
            return log_f_tx + np.log1p(-np.exp(log_f_T - log_f_tx))

    def _log_likelihood_rows(self, params, data):
        r, alpha, s, beta = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        dead = np.log(s) - np.log(r + s + x) + self._log_a0(r, alpha, s, beta, x, tx, T)
        return head + np.logaddexp(alive, np.where(np.isnan(dead), -np.inf, dead))

    def _pairs(self, data):
        """Distinct (x, t_x) and (x, T) pairs of the compressed rows (cached in ``data``).

        The hypergeometric terms depend on x with t_x, or x with T, and those
        pairs are far fewer than the rows (on a million customers' daily
        summary: 46k and 27k pairs for 764k rows), so they are evaluated once
        per pair and gathered.
        """
        cached = data.get("_pnbd")
        if cached is None:
            xu, xi = self._distinct(data, "frequency")
            out = {"xu": xu, "Wx": np.bincount(xi, weights=data["weights"], minlength=len(xu))}
            for col in ("recency", "T"):
                values, vi = self._distinct(data, col)
                keys, inverse = np.unique(xi.astype(np.int64) * len(values) + vi,
                                          return_inverse=True)
                out[col] = (xu[keys // len(values)], values[keys % len(values)], inverse)
            cached = data["_pnbd"] = out
        return cached

    def _nll(self, log_params, data):
        r, alpha, s, beta = np.exp(log_params)
        c = self._pairs(data)
        x_tx, tx, i_tx = c["recency"]
        x_T, T, i_T = c["T"]
        log_f_tx = self._log_f(r, alpha, s, beta, x_tx, tx)
        log_f_T = self._log_f(r, alpha, s, beta, x_T, T)
        alive = -(r + x_T) * np.log(alpha + T) - s * np.log(beta + T)
        scale = np.log(s) - np.log(r + s + x_tx)  # per (x, t_x) pair, as log_f_tx
        dead = scale[i_tx] + self._a0_from_terms(log_f_tx[i_tx], log_f_T[i_T])
        rows = np.logaddexp(alive[i_T], np.where(np.isnan(dead), -np.inf, dead))
        xu, Wx = c["xu"], c["Wx"]
        head = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        return -(vdot(Wx, head) + vdot(data["weights"], rows))

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
        log_a0 = self._log_a0(r, alpha, s, beta, x, tx, T)
        log_odds = (np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T)
                    + s * np.log(beta + T) + np.where(np.isnan(log_a0), -np.inf, log_a0))
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

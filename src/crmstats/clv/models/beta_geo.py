"""BG/NBD and MBG/NBD: repeat buying with dropout after purchases.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Batislam, E. P., Denizel, M. and Filiztekin, A. (2007). Empirical
   validation and comparison of models for customer base analysis.
   International Journal of Research in Marketing 24(3), 201-209.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, hyp2f1, psi

from crmstats.clv.models.base import BaseModel

__all__ = ["BetaGeoModel", "ModifiedBetaGeoModel"]


class BetaGeoModel(BaseModel):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005) [1]_.

    While active, a customer buys at Poisson rate ``lambda``, heterogeneous
    across customers as ``Gamma(r, alpha)``; after each repeat purchase the
    customer drops out with probability ``p``, heterogeneous as ``Beta(a, b)``.

    The log-likelihood and its gradient are written out analytically and
    vectorised over the compressed summary (identical rows weighted), which is
    what makes fitting fast on millions of customers.

    Parameters
    ----------
    penalizer, maxiter, tol
        See :class:`~crmstats.clv.models.base.BaseModel`.

    Attributes
    ----------
    params_ : pandas.Series
        ``r``, ``alpha``, ``a``, ``b``.
    log_likelihood_ : float
        Total log-likelihood at the estimate.
    summary_ : pandas.DataFrame
        Estimate, standard error and 95 % interval per parameter.
    variance_matrix_ : pandas.DataFrame
        Inverse observed information.

    Examples
    --------
    >>> from crmstats.clv import BetaGeoModel, rfm_summary  # doctest: +SKIP
    >>> model = BetaGeoModel().fit(rfm_summary(tx, time_unit="W"))  # doctest: +SKIP
    """

    _param_names = ("r", "alpha", "a", "b")
    _has_gradient = True
    _first_success_suffices = True

    def _initial(self, data):
        return np.log(np.array([0.5, max(np.average(data["T"], weights=data["weights"]) / 4, 1.0),
                                1.0, 2.0]))

    def _starts(self, data):
        base = self._initial(data)
        return [base, base + np.log([1.0, 0.25, 0.5, 1.5])]

    def _terms(self, r, alpha, a, b, x, tx, T):
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        repeat = x > 0
        a4 = np.where(
            repeat,
            np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)) - (r + x) * np.log(alpha + tx),
            -np.inf,
        )
        return a1, a2, a3, a4, repeat

    def _log_likelihood_rows(self, params, data):
        r, alpha, a, b = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a1, a2, a3, a4, _ = self._terms(r, alpha, a, b, x, tx, T)
        return a1 + a2 + np.logaddexp(a3, a4)

    @staticmethod
    def _lookups(data):
        """Index the compressed rows by their distinct x, T and t_x (cached in ``data``).

        The transcendental parts of the likelihood depend on one of x, T or
        t_x alone, and each takes far fewer distinct values than there are
        rows; they are evaluated once per distinct value and gathered.
        """
        cached = data.get("_bgnbd")
        if cached is not None:
            return cached
        x, tx, T, w = data["frequency"], data["recency"], data["T"], data["weights"]
        xu, xi = np.unique(x, return_inverse=True)
        Tu, Ti = np.unique(T, return_inverse=True)
        rep = x > 0
        tu, ti = np.unique(tx[rep], return_inverse=True)
        cached = {
            "xu": xu, "Wx": np.bincount(xi, weights=w, minlength=len(xu)),
            "Tu": Tu, "WT": np.bincount(Ti, weights=w, minlength=len(Tu)),
            "XWT": np.bincount(Ti, weights=w * x, minlength=len(Tu)),
            "tu": tu, "ti": ti, "Ti_rep": Ti[rep], "xi_rep": xi[rep],
            "x_rep": x[rep], "w_rep": w[rep], "n": float(w.sum()),
        }
        data["_bgnbd"] = cached
        return cached

    def _nll(self, log_params, data):
        r, alpha, a, b = np.exp(log_params)
        c = self._lookups(data)
        xu, Wx, Tu, WT, XWT = c["xu"], c["Wx"], c["Tu"], c["WT"], c["XWT"]
        xr, wr = c["x_rep"], c["w_rep"]
        # terms in x alone (summed with the weight of each distinct x)
        lx = (gammaln(r + xu) - gammaln(r) + gammaln(a + b) + gammaln(b + xu) - gammaln(b)
              - gammaln(a + b + xu))
        ll = np.dot(Wx, lx) + r * np.log(alpha) * c["n"]
        # -(r + x) log(alpha + T), summed by distinct T
        log_aT = np.log(alpha + Tu)
        ll -= np.dot(r * WT + XWT, log_aT)
        # repeat buyers: log(1 + exp(d)), d = log a - log(b+x-1) + (r+x)(log(a+T) - log(a+tx))
        log_atx = np.log(alpha + c["tu"])
        diff = log_aT[c["Ti_rep"]] - log_atx[c["ti"]]
        inv_bx = np.where(xu > 0, 1.0 / np.where(xu > 0, b + xu - 1, 1.0), 0.0)
        d = (np.log(a) + np.log(np.where(xu > 0, inv_bx, 1.0)))[c["xi_rep"]] + (r + xr) * diff
        # softplus(d) = log(1 + e^d) and logistic(d), from one exp(-|d|)
        e = np.exp(-np.abs(d))
        ll += np.dot(wr, np.maximum(d, 0.0) + np.log1p(e))
        inv = 1.0 / (1.0 + e)
        share = wr * np.where(d >= 0, inv, e * inv)  # weight x logistic(d)
        # gradient
        psi_r, psi_ab = psi(r + xu), psi(a + b)
        g_r = (np.dot(Wx, psi_r) - c["n"] * (psi(r) - np.log(alpha))
               - np.dot(WT, log_aT) + np.dot(share, diff))
        inv_aT = 1.0 / (alpha + Tu)
        inv_atx = 1.0 / (alpha + c["tu"])
        g_alpha = (c["n"] * r / alpha - np.dot(r * WT + XWT, inv_aT)
                   + np.dot(share * (r + xr), inv_aT[c["Ti_rep"]] - inv_atx[c["ti"]]))
        s_total = share.sum()
        psi_abx = psi(a + b + xu)
        g_a = np.dot(Wx, psi_ab - psi_abx) + s_total / a
        g_b = (np.dot(Wx, psi_ab + psi(b + xu) - psi(b) - psi_abx)
               - np.dot(share, inv_bx[c["xi_rep"]]))
        grad = -np.array([r * g_r, alpha * g_alpha, a * g_a, b * g_b])
        return -ll, grad

    # ------------------------------------------------------------------ predictions

    def expected_purchases(self, t) -> np.ndarray:
        """Return the expected repeat purchases of a new customer in ``(0, t]``: E[X(t)].

        Parameters
        ----------
        t : float or array-like
            Time since the first purchase, in the model's unit.

        Returns
        -------
        numpy.ndarray
        """
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def _alive_odds(self, r, alpha, a, b, x, tx, T):
        """Odds against being alive: δ(x>0) · a/(b+x-1) · ((α+T)/(α+tx))^(r+x)."""
        repeat = x > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (a / np.where(repeat, b + x - 1, 1.0)) * np.exp(
                (r + x) * (np.log(alpha + T) - np.log(alpha + tx)))
        return np.where(repeat, odds, 0.0)

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at the end of observation.

        Parameters
        ----------
        summary : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.

        Returns
        -------
        pandas.Series
            Indexed like ``summary``.
        """
        r, alpha, a, b = self._p()
        index, d = self._as_arrays(summary)
        odds = self._alive_odds(r, alpha, a, b, d["frequency"], d["recency"], d["T"])
        return pd.Series(1.0 / (1.0 + odds), index=index, name="p_alive")

    def predict_purchases(self, summary: pd.DataFrame, t) -> pd.Series:
        """Return each customer's expected purchases in the next ``t`` units, given its history.

        Parameters
        ----------
        summary : pandas.DataFrame
            ``frequency``, ``recency``, ``T`` per customer.
        t : float
            Horizon, in the model's unit.

        Returns
        -------
        pandas.Series
            Indexed like ``summary``.
        """
        r, alpha, a, b = self._p()
        index, d = self._as_arrays(summary)
        x, tx, T = d["frequency"], d["recency"], d["T"]
        t = float(t)
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x,
                                                                       a + b + x - 1, z)
        odds = self._alive_odds(r, alpha, a, b, x, tx, T)
        return pd.Series(head * body / (1.0 + odds), index=index, name="expected_purchases")


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007) [2]_.

    Like BG/NBD, but a customer may also drop out right after the first
    purchase, so one-time buyers can be inactive. Parameters ``r``, ``alpha``,
    ``a``, ``b``; same attributes and methods as :class:`BetaGeoModel`.
    """

    _has_gradient = False
    _first_success_suffices = False

    def _log_likelihood_rows(self, params, data):
        r, alpha, a, b = params
        x, tx, T = data["frequency"], data["recency"], data["T"]
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x + 1) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
        return a1 + a2 + np.logaddexp(a3, a4)

    def _nll(self, log_params, data):
        ll = self._log_likelihood_rows(np.exp(log_params), data)
        return -np.dot(data["weights"], ll)

    def expected_purchases(self, t) -> np.ndarray:
        """Return the expected repeat purchases of a new customer in ``(0, t]``."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, z))

    def _alive_odds(self, r, alpha, a, b, x, tx, T):
        return (a / (b + x)) * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + tx)))

    def predict_purchases(self, summary: pd.DataFrame, t) -> pd.Series:
        """Return each customer's expected purchases in the next ``t`` units, given its history."""
        r, alpha, a, b = self._p()
        index, d = self._as_arrays(summary)
        x, tx, T = d["frequency"], d["recency"], d["T"]
        t = float(t)
        z = t / (alpha + T + t)
        head = (a + b + x) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x + 1,
                                                                       a + b + x, z)
        odds = self._alive_odds(r, alpha, a, b, x, tx, T)
        return pd.Series(head * body / (1.0 + odds), index=index, name="expected_purchases")

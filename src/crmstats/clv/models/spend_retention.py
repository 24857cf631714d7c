"""Gamma-Gamma spend, BG/BB discrete-time repeat buying, and sBG contractual retention.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430; and Fader & Hardie (2013), "The Gamma-Gamma model of
   monetary value", http://brucehardie.com/notes/025/
.. [2] Fader, P. S., Hardie, B. G. S. and Shang, J. (2010). Customer-base
   analysis in a discrete-time noncontractual setting. Marketing Science
   29(6), 1086-1108.
.. [3] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
.. [4] Fader, P. S. and Hardie, B. G. S. (2010). Customer-base valuation in a
   contractual setting: The perils of ignoring heterogeneity. Marketing
   Science 29(1), 85-93.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, hyp2f1, polygamma, psi

from crmstats.clv.models.base import BaseModel, _bad_rows
from crmstats.exceptions import DataError, DataWarning

__all__ = ["BetaGeoBetaBinomModel", "GammaGammaModel", "ShiftedBetaGeoModel"]


class GammaGammaModel(BaseModel):
    """Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005) [1]_.

    Each purchase's value is ``Gamma(p, nu)``; the customer's scale ``nu`` is
    ``Gamma(q, v)`` across customers, so a customer's mean spend is ``p / nu``
    and the population mean is ``p v / (q - 1)``. Fitted on repeat customers
    only (``frequency > 0``): ``monetary_value`` must be the mean of the repeat
    purchases (as :func:`~crmstats.clv.rfm_summary` computes it).

    Attributes
    ----------
    params_ : pandas.Series
        ``p``, ``q``, ``v``.
    n_customers_ : float
        Repeat customers the model was fitted on.
    n_ignored_ : int
        Customers left out of the fit: those without a repeat purchase, and
        repeat customers whose mean spend is zero (a ``DataWarning`` says how many).
    """

    _param_names = ("p", "q", "v")
    _columns = ("frequency", "monetary_value")
    _has_gradient = True
    _has_hessian = True

    def _prepare(self, summary):
        data = self._validate(summary)
        repeat = data["frequency"] > 0
        self.n_ignored_ = int((~repeat).sum())
        if not repeat.any():
            raise DataError("summary table: no customer has a repeat purchase; the Gamma-Gamma "
                            "model is fitted on repeat customers only", table="summary",
                            column="frequency")
        zero = repeat & (data["monetary_value"] <= 0)
        if zero.any():
            warnings.warn(
                f"{int(zero.sum())} repeat customer(s) with zero mean spend (free orders only) "
                f"were left out of the Gamma-Gamma fit, e.g. rows "
                f"{_bad_rows(summary, zero.to_numpy())}", DataWarning, stacklevel=3)
            self.n_ignored_ += int(zero.sum())
            repeat &= ~zero
            if not repeat.any():
                raise DataError("summary table, column 'monetary_value': no repeat customer "
                                "with a positive mean spend", table="summary",
                                column="monetary_value")
        return self._compress(data[repeat], None)

    def _initial(self, data):
        m = np.average(data["monetary_value"], weights=data["weights"])
        return np.log(np.array([2.0, 3.0, max(m, 1e-3)]))

    def _starts(self, data):
        base = self._initial(data)
        return [base, base + np.log([3.0, 1.5, 1.0])]

    def _log_likelihood_rows(self, params, data):
        p, q, v = params
        x, m = data["frequency"], data["monetary_value"]
        return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
                + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + x * m))

    def _lookups(self, data):
        """Per-x weights and the parameter-free sums of the likelihood (cached in ``data``)."""
        cached = data.get("_gg")
        if cached is None:
            x, m, w = data["frequency"], data["monetary_value"], data["weights"]
            xu, xi = self._distinct(data, "frequency")
            cached = data["_gg"] = {
                "xu": xu, "Wx": np.bincount(xi, weights=w, minlength=len(xu)),
                "n": float(w.sum()), "x": x, "m": m, "w": w, "wx": w * x,
                "x_log_mx": np.dot(w * x, np.log(m * x)), "log_m": np.dot(w, np.log(m)),
            }
        return cached

    def _nll(self, log_params, data, hessian=False):
        """Negative log-likelihood, gradient and (optionally) Hessian in log-parameters.

        Per customer, ``l = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln v + (px-1) ln m
        + px ln x - (px+q) ln(v + m x)``; the gamma-function terms depend on x
        alone and are summed over distinct x, so each evaluation visits the
        rows only for ``ln(v + m x)``.
        """
        return self._memoized(data, log_params, hessian,
                              lambda: self._nll_eval(log_params, data, hessian))

    def _nll_eval(self, log_params, data, hessian):
        theta = np.exp(log_params)
        p, q, v = theta
        c = self._lookups(data)
        xu, Wx, n, w, wx = c["xu"], c["Wx"], c["n"], c["w"], c["wx"]
        px = p * xu
        u = v + c["m"] * c["x"]
        log_u, inv_u = np.log(u), 1.0 / u
        s_wx_lu, s_w_lu = np.dot(wx, log_u), np.dot(w, log_u)
        ll = (np.dot(Wx, gammaln(px + q) - gammaln(px)) - n * gammaln(q) + n * q * np.log(v)
              + p * c["x_log_mx"] - c["log_m"] - p * s_wx_lu - q * s_w_lu)
        psi_pq, psi_px = psi(px + q), psi(px)
        s_wx_iu, s_w_iu = np.dot(wx, inv_u), np.dot(w, inv_u)
        grad = np.array([
            np.dot(Wx * xu, psi_pq - psi_px) + c["x_log_mx"] - s_wx_lu,
            np.dot(Wx, psi_pq) - n * psi(q) + n * np.log(v) - s_w_lu,
            n * q / v - p * s_wx_iu - q * s_w_iu,
        ])
        if not hessian:
            return -ll, self._to_log_scale(theta, grad)
        t_pq, t_px = polygamma(1, px + q), polygamma(1, px)
        inv_u2 = inv_u * inv_u
        hess = np.empty((3, 3))
        hess[0, 0] = np.dot(Wx * xu * xu, t_pq - t_px)
        hess[0, 1] = hess[1, 0] = np.dot(Wx * xu, t_pq)
        hess[0, 2] = hess[2, 0] = -s_wx_iu
        hess[1, 1] = np.dot(Wx, t_pq) - n * polygamma(1, q)
        hess[1, 2] = hess[2, 1] = n / v - s_w_iu
        hess[2, 2] = -n * q / v**2 + p * np.dot(wx, inv_u2) + q * np.dot(w, inv_u2)
        return -ll, *self._to_log_scale(theta, grad, hess)

    def expected_spend(self, summary: pd.DataFrame) -> pd.Series:
        """Return each customer's expected spend per purchase, given its purchases so far.

        Customers without a repeat purchase get the population mean ``p v / (q - 1)``.
        """
        p, q, v = self._p()
        index, d = self._as_arrays(summary)
        x, m = d["frequency"], d["monetary_value"]
        cond = p * (v + x * m) / (p * x + q - 1)
        return pd.Series(np.where(x > 0, cond, p * v / (q - 1)), index=index,
                         name="expected_spend")

    def population_mean(self) -> float:
        """Mean spend per purchase across customers, ``p v / (q - 1)``."""
        p, q, v = self._p()
        return p * v / (q - 1)


class BetaGeoBetaBinomModel(BaseModel):
    """BG/BB model of discrete-time repeat buying (Fader, Hardie & Shang 2010) [2]_.

    In each of ``n`` transaction opportunities an active customer buys with
    probability ``p ~ Beta(alpha, beta)`` and, at the start of each later
    opportunity, becomes inactive with probability ``theta ~ Beta(gamma, delta)``.

    The summary has ``frequency`` (repeat transactions), ``recency`` (the
    opportunity of the last one, 0 if none) and ``periods`` (opportunities
    ``n``), with an optional ``weights`` column (the donations data's form).

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha``, ``beta``, ``gamma``, ``delta``.
    """

    _param_names = ("alpha", "beta", "gamma", "delta")
    _columns = ("frequency", "recency", "periods")

    @classmethod
    def _check_consistency(cls, data, summary, what):
        x, tx, n = (data[c].to_numpy() for c in cls._columns)
        bad = (x % 1 != 0) | (tx % 1 != 0) | (n % 1 != 0) | (x > tx) | (tx > n) | ((x > 0) & (
            tx == 0))
        if bad.any():
            raise DataError(
                f"{what} table: frequency, recency and periods must be integers with "
                f"frequency <= recency <= periods (and recency > 0 when frequency > 0), e.g. "
                f"rows {_bad_rows(summary, bad)}", table=what, column="recency",
                rows=_bad_rows(summary, bad))

    def _initial(self, data):
        return np.zeros(4)

    def _starts(self, data):
        return [np.zeros(4), np.log([0.5, 0.5, 0.5, 2.0])]

    def _log_likelihood_rows(self, params, data):
        alpha, beta, gamma, delta = params
        x, tx, n = data["frequency"], data["recency"], data["periods"]
        base = betaln(alpha, beta)
        baseg = betaln(gamma, delta)
        alive = betaln(alpha + x, beta + n - x) - base + betaln(gamma, delta + n) - baseg
        terms = [alive]
        max_i = int(np.max(n - tx)) if len(n) else 0
        for i in range(max_i):
            valid = i <= n - tx - 1
            term = (betaln(alpha + x, beta + tx - x + i) - base
                    + betaln(gamma + 1, delta + tx + i) - baseg)
            terms.append(np.where(valid, term, -np.inf))
        return np.logaddexp.reduce(np.vstack(terms), axis=0)

    def _nll(self, log_params, data):
        return -np.dot(data["weights"], self._log_likelihood_rows(np.exp(log_params), data))

    def probability_alive(self, summary: pd.DataFrame) -> pd.Series:
        """Probability of being active in the next opportunity (``periods + 1``)."""
        alpha, beta, gamma, delta = self._p()
        index, d = self._as_arrays(summary)
        x, n = d["frequency"], d["periods"]
        ll = self._log_likelihood_rows((alpha, beta, gamma, delta), d)
        num = (betaln(alpha + x, beta + n - x) - betaln(alpha, beta)
               + betaln(gamma, delta + n + 1) - betaln(gamma, delta))
        return pd.Series(np.exp(num - ll), index=index, name="p_alive")

    def expected_purchases(self, n) -> np.ndarray:
        """Return the expected transactions of a new customer in the first ``n`` opportunities."""
        alpha, beta, gamma, delta = self._p()
        n = np.asarray(n, dtype=float)
        ratio = np.exp(gammaln(gamma + delta) - gammaln(1 + delta)
                       + gammaln(1 + delta + n) - gammaln(gamma + delta + n))
        return alpha / (alpha + beta) * delta / (gamma - 1) * (1 - ratio)

    def predict_purchases(self, summary: pd.DataFrame, n) -> pd.Series:
        """Return each customer's expected transactions in the next ``n`` opportunities."""
        alpha, beta, gamma, delta = self._p()
        index, d = self._as_arrays(summary)
        x, periods = d["frequency"], d["periods"]
        n = float(n)
        ll = self._log_likelihood_rows((alpha, beta, gamma, delta), d)
        lead = np.exp(betaln(alpha + x + 1, beta + periods - x) - betaln(alpha, beta) - ll)
        tail = np.exp(gammaln(gamma + delta) - gammaln(1 + delta)) * (
            np.exp(gammaln(1 + delta + periods) - gammaln(gamma + delta + periods))
            - np.exp(gammaln(1 + delta + periods + n) - gammaln(gamma + delta + periods + n)))
        return pd.Series(lead * delta / (gamma - 1) * tail, index=index,
                         name="expected_purchases")


class ShiftedBetaGeoModel(BaseModel):
    """sBG model of contractual retention (Fader & Hardie 2007) [3]_.

    Each customer renews every period with a constant churn probability
    ``theta ~ Beta(alpha, beta)``; retention rates rise over tenure because the
    churn-prone leave first.

    ``fit`` takes the number of customers alive at ``t = 0, 1, ..., n`` of one
    cohort (a sequence or Series), or a per-customer frame with ``duration``
    (periods survived) and ``churned`` (1 if the churn was observed, 0 if the
    customer is still active after ``duration`` periods).

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha``, ``beta``.
    """

    _param_names = ("alpha", "beta")
    _columns = ("duration", "churned")
    _needs_repeat = False

    def _prepare(self, survivors):
        if isinstance(survivors, pd.DataFrame):
            data = self._validate(survivors, what="survivors")
            churned = data["churned"].to_numpy()
            if not np.isin(churned, [0, 1]).all():
                raise DataError("survivors table, column 'churned': must be 0 or 1",
                                table="survivors", column="churned")
            dur = data["duration"].to_numpy()
            if (dur % 1 != 0).any():
                raise DataError("survivors table, column 'duration': whole periods expected",
                                table="survivors", column="duration")
            if ((churned == 1) & (dur < 1)).any():
                raise DataError("survivors table: a churn is observed at duration >= 1",
                                table="survivors", column="duration")
            return self._compress(data, None)
        counts = np.asarray(survivors, dtype=float)
        if counts.ndim != 1 or len(counts) < 2:
            raise DataError("survivors: expected the counts alive at t = 0, 1, ..., n "
                            "(at least two values)", table="survivors")
        if not np.all(np.isfinite(counts)) or (counts < 0).any() or (np.diff(counts) > 0).any():
            raise DataError("survivors: counts must be finite, non-negative and non-increasing "
                            f"over time; got {counts.tolist()}", table="survivors")
        if counts[0] <= 0:
            raise DataError("survivors: the cohort is empty at t = 0", table="survivors")
        lost = -np.diff(counts)
        n = len(counts) - 1
        dur = np.concatenate([np.arange(1, n + 1), [n]]).astype(float)
        churned = np.concatenate([np.ones(n), [0.0]])
        weights = np.concatenate([lost, [counts[-1]]])
        keep = weights > 0
        return {"duration": dur[keep], "churned": churned[keep], "weights": weights[keep]}

    def _log_likelihood_rows(self, params, data):
        alpha, beta = params
        t, churned = data["duration"], data["churned"]
        log_pmf = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
        log_surv = betaln(alpha, beta + t) - betaln(alpha, beta)
        return np.where(churned == 1, log_pmf, log_surv)

    def _nll(self, log_params, data):
        return -np.dot(data["weights"], self._log_likelihood_rows(np.exp(log_params), data))

    def _initial(self, data):
        return np.log(np.array([1.0, 3.0]))

    def fit(self, survivors) -> ShiftedBetaGeoModel:
        """Fit on a cohort's survivor counts or a per-customer duration frame; return self."""
        return super().fit(survivors)

    def survival(self, t) -> np.ndarray:
        """Share of a new cohort still active after ``t`` periods, ``S(t)``."""
        alpha, beta = self._p()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))

    def churn_probability(self, t) -> np.ndarray:
        """Probability that a new customer churns exactly in period ``t`` (t >= 1)."""
        alpha, beta = self._p()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta))

    def retention_rate(self, t) -> np.ndarray:
        """Return the share of those active at ``t - 1`` who renew at ``t``.

        ``r(t) = (beta + t - 1) / (alpha + beta + t - 1)``, rising with tenure.
        """
        alpha, beta = self._p()
        t = np.asarray(t, dtype=float)
        return (beta + t - 1) / (alpha + beta + t - 1)

    def expected_lifetime(self) -> float:
        """Mean number of renewals of a new customer, sum of S(t) for t >= 1 (inf if alpha <= 1)."""
        alpha, beta = self._p()
        return beta / (alpha - 1) if alpha > 1 else float("inf")

    def derl(self, discount_rate: float, renewals: int = 0) -> float:
        """Discounted expected residual lifetime (Fader & Hardie 2010) [4]_.

        The expected number of further payments, discounted at ``discount_rate``
        per period, of a customer who has made ``renewals`` renewals so far
        (``n - 1`` in the paper) and now faces renewal ``n``: the sum over
        ``t >= n`` of ``S(t) / S(n - 1) / (1 + d) ** (t - n)``, the payment at
        the coming renewal undiscounted, as in the paper. Multiplying by the
        per-period margin gives the customer's residual value.

        Parameters
        ----------
        discount_rate : float
            Per-period discount rate ``d`` (> 0, or 0 when alpha > 1).
        renewals : int
            Renewals made so far (0: a customer in its first period).

        Returns
        -------
        float
        """
        alpha, beta = self._p()
        d = float(discount_rate)
        if d < 0 or (d == 0 and alpha <= 1):
            raise ValueError("discount_rate must be positive (or zero when alpha > 1)")
        n = int(renewals) + 1
        ratio = np.exp(betaln(alpha, beta + n) - betaln(alpha, beta + n - 1))
        return float(ratio * hyp2f1(1, beta + n, alpha + beta + n, 1 / (1 + d)))

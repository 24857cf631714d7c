"""Gamma-Gamma model of spend per purchase.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430; and Fader & Hardie (2013), "The Gamma-Gamma model of
   monetary value", http://brucehardie.com/notes/025/
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import gammaln, polygamma, psi

from crmstats.clv.models.base import BaseModel, _bad_rows, vdot
from crmstats.exceptions import DataError, DataWarning

__all__ = ["GammaGammaModel"]


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
    n_obs_ : float
        Repeat customers the model was fitted on.
    n_ignored_ : int
        Customers left out of the fit: those without a repeat purchase, and
        repeat customers whose mean spend is zero (a ``DataWarning`` says how many).
    """

    _param_names = ("p", "q", "v")
    _shape_params = ("p", "q")
    _columns = ("frequency", "monetary_value")
    _has_gradient = True
    _has_hessian = True

    def _fit_facts(self) -> dict:
        return {**super()._fit_facts(), "n_ignored": getattr(self, "n_ignored_", None)}

    def _restore(self, params, summary, facts, variance) -> None:
        super()._restore(params, summary, facts, variance)
        self.n_ignored_ = int(facts.integer("n_ignored")) if facts.has("n_ignored") else None

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
                "x_log_mx": vdot(w * x, np.log(m * x)), "log_m": vdot(w, np.log(m)),
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
        s_wx_lu, s_w_lu = vdot(wx, log_u), vdot(w, log_u)
        ll = (vdot(Wx, gammaln(px + q) - gammaln(px)) - n * gammaln(q) + n * q * np.log(v)
              + p * c["x_log_mx"] - c["log_m"] - p * s_wx_lu - q * s_w_lu)
        psi_pq, psi_px = psi(px + q), psi(px)
        s_wx_iu, s_w_iu = vdot(wx, inv_u), vdot(w, inv_u)
        grad = np.array([
            vdot(Wx * xu, psi_pq - psi_px) + c["x_log_mx"] - s_wx_lu,
            vdot(Wx, psi_pq) - n * psi(q) + n * np.log(v) - s_w_lu,
            n * q / v - p * s_wx_iu - q * s_w_iu,
        ])
        if not hessian:
            return -ll, self._to_log_scale(theta, grad)
        t_pq, t_px = polygamma(1, px + q), polygamma(1, px)
        inv_u2 = inv_u * inv_u
        hess = np.empty((3, 3))
        hess[0, 0] = vdot(Wx * xu * xu, t_pq - t_px)
        hess[0, 1] = hess[1, 0] = vdot(Wx * xu, t_pq)
        hess[0, 2] = hess[2, 0] = -s_wx_iu
        hess[1, 1] = vdot(Wx, t_pq) - n * polygamma(1, q)
        hess[1, 2] = hess[2, 1] = n / v - s_w_iu
        hess[2, 2] = -n * q / v**2 + p * vdot(wx, inv_u2) + q * vdot(w, inv_u2)
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

"""BG/BB: discrete-time repeat buying (one transaction opportunity per period).

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Shang, J. (2010). Customer-base
   analysis in a discrete-time noncontractual setting. Marketing Science
   29(6), 1086-1108.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln

from crmstats.clv.models.base import BaseModel, _bad_rows, vdot
from crmstats.exceptions import DataError

__all__ = ["BetaGeoBetaBinomModel"]


class BetaGeoBetaBinomModel(BaseModel):
    """BG/BB model of discrete-time repeat buying (Fader, Hardie & Shang 2010) [1]_.

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
    _shape_params = ("alpha", "beta", "gamma", "delta")
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
        return -vdot(data["weights"], self._log_likelihood_rows(np.exp(log_params), data))

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

"""Shifted-beta-geometric (sBG) model of contractual retention, and its likelihood.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
.. [2] Fader, P. S. and Hardie, B. G. S. (2010). Customer-base valuation in a
   contractual setting: The perils of ignoring heterogeneity. Marketing
   Science 29(1), 85-93.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import betaln, hyp2f1

from crmstats.clv.models.base import BaseModel, vdot
from crmstats.exceptions import DataError

__all__ = ["ShiftedBetaGeoModel", "sbg_log_likelihood"]


def sbg_log_likelihood(alpha: float, beta: float, before, exposure, churned) -> np.ndarray:
    """Per-customer log-likelihood of the sBG model, with exposure for hazard drivers.

    A customer's churn propensity is ``theta ~ Beta(alpha, beta)``; surviving
    an exposure ``C`` (``C`` periods, or with proportional-hazards drivers
    ``sum_t exp(x_t' b)``) has probability ``E[(1 - theta)^C] =
    B(alpha, beta + C) / B(alpha, beta)``. A customer who churned in the
    period that took its exposure from ``before`` to ``exposure`` contributes
    ``[B(alpha, beta + before) - B(alpha, beta + exposure)] / B(alpha, beta)``,
    one still active ``B(alpha, beta + exposure) / B(alpha, beta)`` [1]_. For a
    step of exactly one period the churn term is the closed form
    ``B(alpha + 1, beta + before) / B(alpha, beta)`` of the plain sBG.

    This is the one sBG likelihood of the package: :class:`ShiftedBetaGeoModel`
    (exposure = periods) and :class:`crmstats.churn.ShiftedBetaGeoHazardModel`
    (exposure from drivers) both evaluate it.

    Parameters
    ----------
    alpha, beta : float
        The Beta distribution of the churn propensity.
    before, exposure : array-like
        Cumulative exposure before the last period and at its end.
    churned : array-like of bool
        Whether the customer churned in its last period.

    Returns
    -------
    numpy.ndarray
        Log-likelihood per customer.
    """
    before = np.asarray(before, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    churned = np.asarray(churned).astype(bool)
    base = betaln(alpha, beta)
    lb_total = betaln(alpha, beta + exposure)
    lb_before = betaln(alpha, beta + before)
    unit = exposure - before == 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(B(a, b + before) - B(a, b + exposure)), stably
        diff = lb_before + np.log(-np.expm1(np.minimum(lb_total - lb_before, -1e-300)))
    churn_term = np.where(unit, betaln(alpha + 1, beta + before), diff)
    return np.where(churned, churn_term, lb_total) - base


class ShiftedBetaGeoModel(BaseModel):
    """sBG model of contractual retention (Fader & Hardie 2007) [1]_.

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
    _shape_params = ("alpha", "beta")
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
        return sbg_log_likelihood(alpha, beta, t - 1, t, churned == 1)

    def _nll(self, log_params, data):
        return -vdot(data["weights"], self._log_likelihood_rows(np.exp(log_params), data))

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

    def churn_in_period(self, t) -> np.ndarray:
        """Probability that a new customer churns exactly in period ``t`` (t >= 1)."""
        alpha, beta = self._p()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta))

    def churn_probability(self, t=None, *, horizon=None) -> np.ndarray:
        """Probability that a new customer churns within ``horizon`` periods: ``1 - S(horizon)``.

        ``horizon`` defaults to 1, the first period.

        ``churn_probability(t)`` (positional) is the old meaning, the probability
        of churning exactly *in* period ``t``: it still returns that for one
        release, with a :class:`DeprecationWarning` — use :meth:`churn_in_period`.
        """
        self._check_fitted()
        if t is not None:
            if horizon is not None:
                raise TypeError("churn_probability: pass horizon= only")
            warnings.warn("ShiftedBetaGeoModel.churn_probability(t) (the probability of "
                          "churning in period t) is renamed churn_in_period(t); "
                          "churn_probability(horizon=h) is the probability of churning within "
                          "h periods", DeprecationWarning, stacklevel=2)
            return self.churn_in_period(t)
        return 1.0 - self.survival(1 if horizon is None else horizon)

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
        """Discounted expected residual lifetime (Fader & Hardie 2010) [2]_.

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

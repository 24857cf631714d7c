"""Churn drivers inside the sBG model: a shifted-beta-geometric model with proportional hazards.

The Cox model (:class:`crmstats.churn.CoxModel`, this model's sibling) assumes every account
with the same covariates has the same hazard. Contractual churn is not like
that: accounts differ in a churn propensity nobody records, and the
shifted-beta-geometric (sBG) model [1]_ describes exactly that heterogeneity.
Ignoring it biases hazard ratios toward 1, because the accounts that survive
a risk factor are the ones with a low propensity (the frailty effect).

:class:`ShiftedBetaGeoHazardModel` puts covariates into the sBG by
proportional hazards [2]_ [3]_: each account has ``theta ~ Beta(alpha, beta)``
and, in period ``t`` of its tenure with covariates ``x_t``,

    P(churn in period t | still active, theta) = 1 - (1 - theta) ** exp(x_t' b).

With ``C(t) = sum_{s<=t} exp(x_s' b)``, surviving ``t`` periods has
probability ``E[(1 - theta)^C(t)] = B(alpha, beta + C(t)) / B(alpha, beta)``,
so the likelihood is closed-form for covariates that change every period:
a churn at ``n`` contributes ``[B(alpha, beta + C(n-1)) - B(alpha, beta + C(n))]
/ B(alpha, beta)`` and an account still active after ``n`` periods
``B(alpha, beta + C(n)) / B(alpha, beta)``. With no covariates it is the sBG;
with ``x_t = 0`` the survival is the baseline sBG curve.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
.. [2] Cox, D. R. (1972). Regression models and life-tables. Journal of the
   Royal Statistical Society B 34(2), 187-220.
.. [3] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models. Note, brucehardie.com
   (the proportional-hazards approach to covariates in these mixture models).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from crmstats.churn.survival import _hazard_ratio_table
from crmstats.clv.models.shifted_beta_geo import sbg_log_likelihood
from crmstats.estimator import (
    Estimator,
    given_column,
    given_count,
    given_params,
    numerical_hessian,
    summary_table,
)
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError

__all__ = ["ShiftedBetaGeoHazardModel"]


class ShiftedBetaGeoHazardModel(Estimator):
    """Shifted-beta-geometric churn with proportional-hazards drivers (see the module docstring).

    Parameters
    ----------
    maxiter : int
        Maximum optimiser iterations.

    Attributes
    ----------
    params_ : pandas.Series
        ``alpha``, ``beta`` (the baseline sBG) and one log hazard ratio per
        covariate.
    summary_ : pandas.DataFrame
        Index: the parameters; ``estimate``, ``std_err`` (alpha and beta by
        the delta method), ``lower_95``, ``upper_95`` (alpha and beta's
        intervals on the log scale) and ``p_value`` (coefficients: Wald test
        of no effect) — the schema of :mod:`crmstats.estimator`.
    table : pandas.DataFrame
        The covariates' ``coef``, ``hazard_ratio``, ``lower``, ``upper`` and
        ``p_value``, as :class:`crmstats.churn.CoxModel` has them (so
        :func:`crmstats.churn.plot_hazard_ratios` draws it).
    log_likelihood_ : float
    n_obs_ : int
        Accounts; ``events_``: churns.
    converged_ : bool
        Whether the optimiser reached a point of zero gradient.
    """

    _hyper = ("maxiter",)

    def __init__(self, maxiter: int = 1000):
        self.maxiter = maxiter

    # ------------------------------------------------------------------ keeping a model

    @classmethod
    def from_params(cls, params, *, std_err=None, p_value=None, variance_matrix=None,
                    n_obs=None, events=None, maxiter: int = 1000) -> ShiftedBetaGeoHazardModel:
        """Return the model at given parameters: ``alpha``, ``beta`` and log hazard ratios.

        Parameters
        ----------
        params : mapping or pandas.Series
            ``alpha`` and ``beta`` (positive) and one log hazard ratio per
            covariate (any other name).
        std_err, p_value : mapping, optional
            By parameter name; missing ones are NaN.
        variance_matrix : array-like, optional
            Covariance of the parameters in the order alpha, beta, covariates.
        n_obs, events : int, optional
            Accounts and churns of the fit the parameters come from.
        maxiter : int
            Used only by a later ``fit``.

        Returns
        -------
        ShiftedBetaGeoHazardModel
            Its ``survival`` and ``churn_probability`` work; ``fitted_here_`` False.
        """
        raw = given_params(cls, params, positive=("alpha", "beta"))
        missing = [n for n in ("alpha", "beta") if n not in raw.index]
        if missing:
            raise DataError(f"{cls.__name__}.from_params: params lack {', '.join(missing)}",
                            table="params", column=missing[0])
        covariates = [n for n in raw.index if n not in ("alpha", "beta")]
        names = ["alpha", "beta", *covariates]
        p = raw[names]
        se = given_column(cls, std_err, names, "std_err")
        pv = given_column(cls, p_value, names, "p_value")
        pv[:2] = np.nan
        model = cls(maxiter=maxiter)
        model._given(p, summary_table(names, p, se, p_value=pv,
                                      positive=[True, True] + [False] * len(covariates)),
                     n_obs=n_obs)
        k = len(names)
        cov = np.full((k, k), np.nan) if variance_matrix is None else np.asarray(
            variance_matrix, dtype=float)
        if cov.shape != (k, k) or (variance_matrix is not None and not np.isfinite(cov).all()):
            raise DataError(f"{cls.__name__}.from_params: variance_matrix must be a finite "
                            f"{k} x {k} matrix", table="variance_matrix")
        model.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        model.covariates_ = covariates
        model.events_ = None if events is None else int(given_count(events, "events"))
        return model

    def _fit_facts(self) -> dict:
        return {**self._common_facts(), "covariates": self.covariates_, "events": self.events_}

    def _restore(self, params, summary, facts, variance) -> None:
        covariates = facts.strings("covariates")
        if list(params.index) != ["alpha", "beta", *covariates]:
            facts.fail("covariates", "the parameters must be alpha, beta and the covariates")
        if not (params["alpha"] > 0 and params["beta"] > 0):
            facts.fail("params", "alpha and beta are positive", top=True)
        self._restore_common(params, summary, facts, variance)
        self.covariates_ = covariates
        self.events_ = int(facts.integer("events")) if facts.has("events") else None

    # ------------------------------------------------------------------ data

    @staticmethod
    def _prepare(panel, id_col, duration_col, event_col, covariates):
        what = "panel"
        if not isinstance(panel, pd.DataFrame):
            raise DataError(f"{what}: expected a DataFrame with one row per account and period "
                            f"(see crmstats.churn.account_months), got {type(panel).__name__}",
                            table=what)
        needed = [id_col, duration_col, event_col, *covariates]
        missing = [c for c in needed if c not in panel.columns]
        if missing:
            raise DataError(f"{what} table: missing column(s) {', '.join(missing)}",
                            table=what, column=missing[0])
        if panel.empty:
            raise DataError(f"{what} table is empty", table=what)
        x = panel[list(covariates)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            col = list(covariates)[int(np.flatnonzero(~np.isfinite(x).all(axis=0))[0])]
            rows = list(panel.index[bad][:5])
            raise DataError(f"{what} table, column {col!r}: missing or non-numeric covariate "
                            f"values, e.g. rows {rows}", table=what, column=col, rows=rows)
        t = pd.to_numeric(panel[duration_col], errors="coerce").to_numpy(float)
        e = pd.to_numeric(panel[event_col], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(t) | (t < 1) | (t % 1 != 0)
        if bad.any():
            rows = list(panel.index[bad][:5])
            raise DataError(f"{what} table, column {duration_col!r}: periods must be whole "
                            f"numbers from 1, e.g. rows {rows}", table=what,
                            column=duration_col, rows=rows)
        bad = ~np.isin(e, (0.0, 1.0))
        if bad.any():
            rows = list(panel.index[bad][:5])
            raise DataError(f"{what} table, column {event_col!r}: events must be 0 or 1, e.g. "
                            f"rows {rows}", table=what, column=event_col, rows=rows)
        ids = panel[id_col].to_numpy()
        order = np.lexsort((t, pd.factorize(ids)[0]))
        codes = pd.factorize(ids[order])[0]
        t, e, x = t[order], e[order], x[order]
        starts = np.r_[True, codes[1:] != codes[:-1]]
        rank = np.arange(len(t)) - np.maximum.accumulate(np.where(starts, np.arange(len(t)), 0))
        gaps = t != rank + 1
        if gaps.any():
            rows = list(panel.index[order][gaps][:5])
            raise DataError(f"{what} table, column {duration_col!r}: each account needs one row "
                            f"per period of its tenure, 1, 2, ..., without gaps, e.g. rows {rows}",
                            table=what, column=duration_col, rows=rows)
        last = np.r_[codes[1:] != codes[:-1], True]
        early = (e == 1) & ~last
        if early.any():
            rows = list(panel.index[order][early][:5])
            raise DataError(f"{what} table, column {event_col!r}: a churn must be an account's "
                            f"last period, e.g. rows {rows}", table=what, column=event_col,
                            rows=rows)
        return {"x": x, "codes": codes, "last": last, "event": e[last].astype(bool),
                "n": int(codes.max()) + 1}

    # ------------------------------------------------------------------ likelihood

    @staticmethod
    def _loglik(theta, data):
        """Total log-likelihood: the sBG likelihood of :mod:`crmstats.clv` with exposure."""
        log_a, log_b, coef = theta[0], theta[1], theta[2:]
        a, b = np.exp(log_a), np.exp(log_b)
        c = np.exp(data["x"] @ coef) if len(coef) else np.ones(len(data["x"]))
        total = np.bincount(data["codes"], weights=c, minlength=data["n"])
        before = total - c[data["last"]]
        return float(sbg_log_likelihood(a, b, before, total, data["event"]).sum())

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        panel: pd.DataFrame,
        *,
        covariates: Sequence[str] = (),
        id_col: str | None = None,
        duration_col: str | None = None,
        event_col: str | None = None,
        entry_col: str | None = None,
    ) -> ShiftedBetaGeoHazardModel:
        """Fit by maximum likelihood on a per-account, per-period panel.

        Parameters
        ----------
        panel : pandas.DataFrame
            One row per account and period at risk, ``1, 2, ..., n`` (e.g.
            :func:`crmstats.churn.account_months`); the churn flag is 1 on the
            period an account churned in (its last row).
        covariates : sequence of str
            Numeric drivers, which may change from period to period.
        id_col, duration_col, event_col : str, optional
            The caller's names of the ``account_id``, ``exit`` (period of
            tenure) and ``churned`` columns.
        entry_col : str, optional
            The caller's name of the ``entry`` column. Not needed here (the
            periods are ``1, 2, ..., n`` per account); taken so that the Cox
            and the sBG hazard model are fitted with the same arguments.

        Returns
        -------
        ShiftedBetaGeoHazardModel
            ``self``, fitted.
        """
        covariates = list(covariates)
        id_col, duration_col, event_col = _canonical(id_col, duration_col, event_col)
        data = self._prepare(panel, id_col, duration_col, event_col, covariates)
        if data["event"].sum() < len(covariates) + 2:
            raise DataError(f"panel table: {int(data['event'].sum())} churn(s) cannot estimate "
                            f"alpha, beta and {len(covariates)} hazard ratio(s)",
                            table="panel", column=event_col)

        def nll(theta):
            with np.errstate(all="ignore"):
                value = -self._loglik(theta, data)
            return value if np.isfinite(value) else 1e300

        from scipy import optimize  # on first fit: importing the package stays light

        start = np.zeros(2 + len(covariates))
        result = optimize.minimize(nll, start, method="BFGS",
                                   options={"maxiter": int(self.maxiter), "gtol": 1e-6})
        if not np.isfinite(result.fun) or result.fun >= 1e300:
            raise CRMStatsError("ShiftedBetaGeoHazardModel: the likelihood could not be "
                                "evaluated at any parameter tried")
        theta = result.x
        if not result.success:
            # BFGS often stops on "precision loss" at the optimum itself; polish, then judge
            # by the gradient (central differences) rather than by the message
            polish = optimize.minimize(nll, theta, method="Nelder-Mead",
                                       options={"maxiter": 200 * len(theta), "xatol": 1e-8,
                                                "fatol": 1e-10})
            if polish.fun <= result.fun:
                theta = polish.x
            grad = _gradient(nll, theta)
            if np.linalg.norm(grad, np.inf) > 1e-2:
                warnings.warn(f"ShiftedBetaGeoHazardModel: {result.message} (gradient "
                              f"{np.linalg.norm(grad, np.inf):.2g})", ConvergenceWarning,
                              stacklevel=2)
        converged = bool(result.success or np.linalg.norm(grad, np.inf) <= 1e-2)
        cov = np.linalg.pinv(numerical_hessian(nll, theta, 1e-4 * np.maximum(1.0, np.abs(theta))))
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        names = ["alpha", "beta", *covariates]
        est = np.r_[np.exp(theta[:2]), theta[2:]]
        se_natural = np.r_[est[:2] * se[:2], se[2:]]  # delta method for alpha, beta
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.r_[np.nan, np.nan, 2 * special.ndtr(-np.abs(theta[2:] / se[2:]))]
        self.params_ = pd.Series(est, index=names, name="estimate")
        # alpha and beta are positive: their intervals on the log scale
        self.summary_ = summary_table(names, est, se_natural, p_value=p,
                                      positive=[True, True] + [False] * len(covariates))
        self.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        self.log_likelihood_ = float(-nll(theta))
        self.n_obs_ = data["n"]
        self.events_ = int(data["event"].sum())
        self.covariates_ = covariates
        self.converged_ = converged
        self._given_params = False
        return self

    @property
    def table(self) -> pd.DataFrame:
        """Hazard ratios of the covariates with 95 % intervals and p-values."""
        self._check_fitted()
        return _hazard_ratio_table(self.summary_, self.covariates_)

    def survival(self, t, covariates: dict[str, float] | None = None) -> np.ndarray:
        """Share of new accounts still active after ``t`` periods, at constant covariates.

        Parameters
        ----------
        t : array-like
            Periods of tenure (0 gives 1).
        covariates : dict, optional
            Covariate values held over the tenure; omitted ones are 0, and no
            covariates gives the baseline sBG survival.
        """
        self._check_fitted()
        x = np.array([(covariates or {}).get(c, 0.0) for c in self.covariates_], float)
        rate = float(np.exp(x @ self.params_[self.covariates_].to_numpy(float)))
        a, b = self.params_["alpha"], self.params_["beta"]
        t = np.asarray(t, float)
        return np.exp(special.betaln(a, b + rate * t) - special.betaln(a, b))

    def churn_probability(self, panel: pd.DataFrame, *, horizon: int = 1, accounts=None,
                          id_col: str | None = None, duration_col: str | None = None,
                          event_col: str | None = None) -> pd.Series:
        """Probability that each account still at risk churns within the next ``horizon`` periods.

        An account that survived its panel's periods, with cumulative hazard
        multiplier ``C = sum_t exp(x_t' b)``, has the posterior
        ``E[(1 - theta)^C]``-weighted propensity, so its probability of churn
        by ``horizon`` periods ahead, each with multiplier ``c``, is
        ``1 - B(alpha, beta + C + horizon c) / B(alpha, beta + C)``. The next
        periods' covariates are taken as the account's last row's (the drivers
        known at the date).

        Parameters
        ----------
        panel : pandas.DataFrame
            As given to :meth:`fit` (e.g. :func:`crmstats.churn.account_months`).
        horizon : int
            Periods ahead (at least 1; 1 is the next period).
        accounts : sequence, optional
            Accounts to score. Those without any row (in their first period)
            get ``C = 0`` and the panel's mean covariates. Default: every
            account of the panel.
        id_col, duration_col, event_col : str, optional
            As for :meth:`fit`.

        Returns
        -------
        pandas.Series
            Index: account; name ``churn_probability``. NaN for accounts whose
            last row is a churn (no longer at risk).
        """
        self._check_fitted()
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon is a whole number of periods >= 1, got {horizon!r}")
        cov = list(self.covariates_)
        coef = self.params_[cov].to_numpy(float)
        id_col, duration_col, event_col = _canonical(id_col, duration_col, event_col)
        data = self._prepare(panel, id_col, duration_col, event_col, cov)
        mult = np.exp(data["x"] @ coef) if cov else np.ones(len(data["x"]))
        ids = pd.factorize(panel[id_col].to_numpy()[
            np.lexsort((pd.to_numeric(panel[duration_col]).to_numpy(float),
                        pd.factorize(panel[id_col].to_numpy())[0]))])[1]
        cum = pd.Series(np.bincount(data["codes"], weights=mult, minlength=data["n"]), index=ids)
        last = pd.Series(mult[data["last"]], index=ids)
        churned = pd.Series(data["event"], index=ids)
        if accounts is not None:
            accounts = pd.Index(accounts)
            mean_mult = float(np.exp(data["x"].mean(axis=0) @ coef)) if cov else 1.0
            cum = cum.reindex(accounts).fillna(0.0)
            last = last.reindex(accounts).fillna(mean_mult)
            churned = churned.reindex(accounts).fillna(False).astype(bool)
        a, b = float(self.params_["alpha"]), float(self.params_["beta"])
        c, nxt = cum.to_numpy(float), last.to_numpy(float)
        p = -np.expm1(special.betaln(a, b + c + int(horizon) * nxt) - special.betaln(a, b + c))
        p[churned.to_numpy(bool)] = np.nan
        return pd.Series(p, index=cum.index, name="churn_probability")


def _canonical(id_col, duration_col, event_col):
    """Return the panel's column names: the caller's, or account_months' canonical ones."""
    return id_col or "account_id", duration_col or "exit", event_col or "churned"


def _gradient(f, x, step=1e-6):
    """Central-difference gradient of a scalar function."""
    h = step * np.maximum(1.0, np.abs(x))
    return np.array([(f(x + h[i] * e) - f(x - h[i] * e)) / (2 * h[i])
                     for i, e in enumerate(np.eye(len(x)))])

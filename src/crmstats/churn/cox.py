"""Cox proportional hazards of churn, an estimator beside the sBG hazard model.

:class:`CoxModel` and :class:`~crmstats.churn.ShiftedBetaGeoHazardModel` are
siblings on the shared estimator base (:mod:`crmstats.estimator`): the same
``fit(panel, covariates=...)``, ``summary_`` schema, ``table`` of hazard
ratios, ``n_obs_`` and ``events_``. Cox assumes every account with the same
covariates has the same hazard; the sBG model adds the unrecorded churn
propensity, which Cox's hazard ratios are attenuated by.

References
----------
.. [1] Cox, D. R. (1972). Regression models and life-tables. JRSS B 34(2), 187-220.
.. [2] Grambsch, P. M. and Therneau, T. M. (1994). Proportional hazards tests and
   diagnostics based on weighted residuals. Biometrika 81(3), 515-526.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from crmstats.churn.survival import _durations, _frame, _hazard_ratio_table
from crmstats.estimator import (
    Estimator,
    given_column,
    given_count,
    given_params,
    summary_table,
)
from crmstats.exceptions import ConvergenceWarning, DataError

__all__ = ["CoxModel"]


class CoxModel(Estimator):
    """Cox proportional-hazards model of churn: hazard ratios with CIs and p-values [1]_.

    Fitted by partial likelihood (statsmodels ``PHReg``, Efron ties), with
    drivers that change over time in counting-process form (one row per
    account and period, e.g. :func:`crmstats.churn.account_months`).

    Parameters
    ----------
    standardize : bool
        Scale each covariate to unit standard deviation, so hazard ratios are
        per standard deviation.

    Attributes
    ----------
    params_ : pandas.Series
        Log hazard ratio per covariate.
    summary_ : pandas.DataFrame
        Index: covariate; ``estimate`` (log hazard ratio), ``std_err``,
        ``lower_95``, ``upper_95`` and ``p_value`` (Wald test of no effect) —
        the schema of :mod:`crmstats.estimator`.
    table : pandas.DataFrame
        ``coef``, ``hazard_ratio``, ``lower``, ``upper`` (95 % interval of the
        ratio) and ``p_value`` per covariate, as the sBG hazard model has them.
    ph_test_ : pandas.DataFrame
        Index: covariate; ``rho`` (correlation of the scaled Schoenfeld
        residuals with the rank of the event times) and ``p_value``: a small
        p-value means the covariate's effect changes over time, i.e. the
        proportional-hazards assumption fails for it [2]_.
    log_likelihood_ : float
        Log partial likelihood.
    n_obs_ : int
        Rows used (customers, or account-periods in counting-process form);
        ``events_``: churn events.
    converged_ : bool
        Whether the optimiser reported convergence.
    """

    _hyper = ("standardize",)

    def __init__(self, standardize: bool = False):
        self.standardize = standardize

    @classmethod
    def from_params(cls, params, *, std_err=None, p_value=None, n_obs=None, events=None,
                    standardize: bool = False) -> CoxModel:
        """Return the model at given log hazard ratios (e.g. a published Cox fit).

        Parameters
        ----------
        params : mapping or pandas.Series
            Log hazard ratio per covariate.
        std_err, p_value : mapping, optional
            By covariate; missing ones are NaN (so are the intervals).
        n_obs, events : int, optional
            Rows and churn events of the fit the parameters come from.
        standardize : bool
            Whether the ratios are per standard deviation (as ``fit`` would say).

        Returns
        -------
        CoxModel
            ``fitted_here_`` False, ``converged_`` None, ``ph_test_`` NaN.
        """
        p = given_params(cls, params)
        names = list(p.index)
        se = given_column(cls, std_err, names, "std_err")
        pv = given_column(cls, p_value, names, "p_value")
        model = cls(standardize=standardize)
        model._given(p, summary_table(names, p, se, p_value=pv, index_name="covariate"),
                     n_obs=n_obs)
        model.covariates_ = names
        model.events_ = None if events is None else int(given_count(events, "events"))
        model.ph_test_ = pd.DataFrame({"rho": np.nan, "p_value": np.nan},
                                      index=pd.Index(names, name="covariate"))
        return model

    def _fit_facts(self) -> dict:
        return {**self._common_facts(), "covariates": self.covariates_, "events": self.events_,
                "ph_test": {"rho": list(self.ph_test_["rho"]),
                            "p_value": list(self.ph_test_["p_value"])}}

    def _restore(self, params, summary, facts, variance) -> None:
        covariates = facts.strings("covariates")
        if covariates != list(params.index):
            facts.fail("covariates", "must name the parameters, in order")
        self._restore_common(params, summary, facts)
        self.covariates_ = covariates
        self.events_ = int(facts.integer("events")) if facts.has("events") else None
        ph = facts.section("ph_test")
        self.ph_test_ = pd.DataFrame({"rho": ph.numbers("rho"), "p_value": ph.numbers("p_value")},
                                     index=pd.Index(covariates, name="covariate"))

    def fit(
        self,
        panel: pd.DataFrame,
        *,
        covariates: Sequence[str] = (),
        id_col: str | None = None,
        duration_col: str | None = None,
        event_col: str | None = None,
        entry_col: str | None = None,
    ) -> CoxModel:
        """Fit by partial likelihood.

        Parameters
        ----------
        panel : pandas.DataFrame
            One row per account and period at risk, with the columns of
            :func:`crmstats.churn.account_months`: ``entry`` and ``exit`` (the
            interval), ``churned`` (1 churned, 0 censored) and the drivers.
            Without an ``entry`` column each row is one customer observed from
            time 0 to ``exit`` (counting-process form is then not used).
        covariates : sequence of str
            Numeric driver columns (encode categories as indicators first); at
            least one.
        id_col : str, optional
            The caller's name of the ``account_id`` column. Not needed here
            (each row is its own interval); taken so that the Cox and the sBG
            hazard model are fitted with the same arguments.
        duration_col, event_col, entry_col : str, optional
            The caller's names of the ``exit``, ``churned`` and ``entry``
            columns (e.g. ``duration_col="duration"`` for
            :func:`crmstats.churn.account_lifetimes`).

        Returns
        -------
        CoxModel
            ``self``, fitted.
        """
        from statsmodels.duration.hazard_regression import PHReg

        covariates = list(covariates)
        if not covariates:
            raise ValueError("CoxModel.fit needs at least one covariate")
        duration_col, event_col = duration_col or "exit", event_col or "churned"
        if entry_col is None and isinstance(panel, pd.DataFrame) and "entry" in panel.columns:
            entry_col = "entry"
        needed = [duration_col, event_col, *covariates] + ([entry_col] if entry_col else [])
        data = _frame(panel, needed, "panel")
        d, e = _durations(data, duration_col, event_col, "panel")
        entry = None
        if entry_col:
            entry = pd.to_numeric(data[entry_col], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(entry) | (entry < 0) | (entry >= d)
            if bad.any():
                rows = list(data.index[bad][:5])
                raise DataError(f"panel table, column {entry_col!r}: an interval must start "
                                f"at or after 0 and before its end, e.g. rows {rows}",
                                table="panel", column=entry_col, rows=rows)
        x = data[covariates].apply(pd.to_numeric, errors="coerce")
        bad = ~np.isfinite(x.to_numpy(dtype=float)).all(axis=1)
        if bad.any():
            col = x.columns[~np.isfinite(x.to_numpy(dtype=float)).all(axis=0)][0]
            rows = list(data.index[bad][:5])
            raise DataError(f"panel table, column {col!r}: missing or non-numeric covariate "
                            f"values, e.g. rows {rows}", table="panel", column=col, rows=rows)
        if e.sum() < len(covariates) + 1:
            raise DataError(f"panel table: {int(e.sum())} churn event(s) cannot estimate "
                            f"{len(covariates)} hazard ratio(s)", table="panel",
                            column=event_col)
        xv = x.to_numpy(dtype=float)
        if self.standardize:
            sd = xv.std(axis=0, ddof=1)
            xv = (xv - xv.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = PHReg(d, xv, status=e, entry=entry, ties="efron").fit()
        converged = True
        for w in caught:
            if "converge" in str(w.message).lower():
                converged = False
                warnings.warn(f"CoxModel: {w.message}", ConvergenceWarning, stacklevel=2)
        coef = np.asarray(result.params, float)
        se = np.asarray(result.bse, float)
        self.params_ = pd.Series(coef, index=covariates, name="estimate")
        self.summary_ = summary_table(covariates, coef, se,
                                      p_value=np.asarray(result.pvalues, float),
                                      index_name="covariate")
        self.ph_test_ = _ph_test(result, d, e, covariates)
        self.log_likelihood_ = float(result.llf)
        self.n_obs_ = int(len(d))
        self.events_ = int(e.sum())
        self.covariates_ = covariates
        self.converged_ = converged
        self._given_params = False
        return self

    @property
    def table(self) -> pd.DataFrame:
        """Hazard ratios of the covariates with 95 % intervals and p-values."""
        self._check_fitted()
        return _hazard_ratio_table(self.summary_, self.covariates_)


def _ph_test(result, d, e, covariates) -> pd.DataFrame:
    """Grambsch-Therneau style check: scaled Schoenfeld residuals vs rank of event time."""
    from scipy import stats  # only here: importing crmstats.churn stays light

    resid = np.asarray(result.schoenfeld_residuals, float)
    events = e == 1
    ranks = stats.rankdata(d[events])
    rows = []
    for j, name in enumerate(covariates):
        r = resid[events, j]
        ok = np.isfinite(r)
        if ok.sum() > 2 and np.std(r[ok]) > 0:
            rho, p = stats.pearsonr(ranks[ok], r[ok])
        else:
            rho, p = np.nan, np.nan
        rows.append({"covariate": name, "rho": float(rho), "p_value": float(p)})
    return pd.DataFrame(rows).set_index("covariate")

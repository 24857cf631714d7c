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

from crmstats.clv.models._spend_covariates import (
    _clear_covariates,
    _covariate_log_likelihood,
    _customer_design,
    _fit_with_covariates,
    coefficient_names,
    columns_of,
    lr_test,
    norm_sf,
)
from crmstats.clv.models._spend_covariates import objective as covariate_objective
from crmstats.clv.models.base import BaseModel, _bad_rows, vdot
from crmstats.estimator import given_column, given_params, summary_table
from crmstats.exceptions import DataError, DataWarning
from crmstats.vocabulary import renamed_arguments

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
        ``p``, ``q``, ``v`` (with covariates: ``v`` is the scale of a customer
        whose covariates are all 0, e.g. of the reference levels) and the
        spend coefficients ``"spend:<column>"``.
    covariates_ : pandas.DataFrame or None
        The covariates the model was fitted with (its predictions' default).
    lr_test_ : pandas.Series or None
        Likelihood-ratio test of the covariates against the model without
        them: ``statistic``, ``df``, ``p_value``, ``log_likelihood``,
        ``log_likelihood_null``.
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
        facts = {**super()._fit_facts(), "n_ignored": getattr(self, "n_ignored_", None)}
        names = list(getattr(self, "_spend_cols", ()))
        if names:
            facts["covariates"] = names
            lr = getattr(self, "lr_test_", None)
            if lr is not None:
                facts["lr_test"] = {k: float(v) for k, v in lr.items()}
        return facts

    def _restore(self, params, summary, facts, variance) -> None:
        names = facts.strings("covariates") if facts.has("covariates") else []
        if list(params.index) != [*self._param_names, *coefficient_names(names)]:
            facts.fail("params", "the parameters must be p, q, v and the covariates' "
                       "coefficients", top=True)
        base = list(self._param_names)
        super()._restore(params[base], summary, facts, None if variance is None
                         else variance.loc[base, base])
        self.params_, self.summary_ = params, summary
        if variance is not None:
            self.variance_matrix_ = variance
        elif names:
            self.variance_matrix_ = pd.DataFrame(np.nan, index=params.index,
                                                 columns=params.index)
        self.n_ignored_ = int(facts.integer("n_ignored")) if facts.has("n_ignored") else None
        _clear_covariates(self)
        self._spend_cols = tuple(names)
        if names and facts.has("lr_test"):
            lr = facts.section("lr_test")
            self.lr_test_ = lr_test(lr.number("log_likelihood"),
                                    lr.number("log_likelihood_null"), len(names))

    @classmethod
    @renamed_arguments(freq="period")
    def from_params(cls, params, *, time_unit: str | None = None, period: str | None = None,
                    std_err=None, variance_matrix=None, n_obs=None, penalty: float = 0.0,
                    maxiter: int = 2000, tol: float = 1e-8) -> GammaGammaModel:
        """Return the model evaluable at given parameters (see :meth:`BaseModel.from_params`).

        Parameters other than ``p``, ``q``, ``v`` are spend coefficients,
        ``"spend:<column>"`` for the covariate column they multiply (as in a
        fitted model's ``params_``); predictions then need a ``covariates=``
        frame with those columns. With every coefficient 0 the
        model gives the likelihood and predictions of the model without them.
        """
        meta = {"time_unit": time_unit, "period": period, "n_obs": n_obs, "penalty": penalty,
                "maxiter": maxiter, "tol": tol}
        given = params.to_dict() if isinstance(params, pd.Series) else params
        extra = [str(k) for k in (given if isinstance(given, dict) else {})
                 if str(k) not in cls._param_names]
        if not extra:
            model = super().from_params(params, std_err=std_err,
                                        variance_matrix=variance_matrix, **meta)
            _clear_covariates(model)
            return model
        base = {k: given[k] for k in cls._param_names if k in given}
        model = super().from_params(base, **meta)
        columns = columns_of(extra, f"{cls.__name__}.from_params")
        coefs = given_params(cls, {k: given[k] for k in extra}, extra)
        names = [*cls._param_names, *extra]
        model.params_ = pd.concat([model.params_, coefs]).rename("estimate")
        se = given_column(cls, std_err, names, "std_err")
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(model.params_.to_numpy() / se)
        pval = np.where(np.arange(len(names)) >= 3, 2 * norm_sf(z), np.nan)
        model.summary_ = summary_table(names, model.params_, se, p_value=pval,
                                       positive=[n in cls._param_names for n in names])
        cov = np.full((len(names), len(names)), np.nan)
        if variance_matrix is not None:
            cov = np.asarray(variance_matrix, dtype=float)
            if cov.shape != (len(names), len(names)) or not np.all(np.isfinite(cov)):
                raise DataError(f"{cls.__name__}.from_params: variance_matrix must be a finite "
                                f"{len(names)} x {len(names)} matrix", table="variance_matrix")
        model.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        _clear_covariates(model)
        model._spend_cols = tuple(columns)
        return model

    def _objective(self, data, hessian=False):
        if "Z" in data:  # a fit with covariates
            return covariate_objective(self, data, hessian)
        return super()._objective(data, hessian)

    def _repeat_rows(self, summary) -> pd.DataFrame:
        """Return the validated columns of the rows the model is fitted on; set ``n_ignored_``.

        Those rows are the repeat buyers with a positive mean spend. (A
        ``weights`` column is not read: every row is one customer.)
        """
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
                f"{_bad_rows(summary, zero.to_numpy())}", DataWarning, stacklevel=4)
            self.n_ignored_ += int(zero.sum())
            repeat &= ~zero
            if not repeat.any():
                raise DataError("summary table, column 'monetary_value': no repeat customer "
                                "with a positive mean spend", table="summary",
                                column="monetary_value")
        return data[repeat]

    def _prepare(self, summary):
        return self._compress(self._repeat_rows(summary), None)

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

    # ------------------------------------------------------------------ covariates

    def fit(self, summary: pd.DataFrame,
            covariates: pd.DataFrame | None = None) -> GammaGammaModel:
        """Fit the model by maximum likelihood, optionally with covariates on the spend scale.

        Parameters
        ----------
        summary : pandas.DataFrame
            Per-customer summary with ``frequency`` and ``monetary_value``
            (see :func:`crmstats.clv.rfm_summary`).
        covariates : pandas.DataFrame, optional
            Numeric covariates indexed like ``summary`` (by customer id), one
            column per coefficient, e.g. the indicators of
            :func:`crmstats.clv.covariate_frame`. Given, each customer's scale
            is ``v_i = v exp(γ'x_i)``, so ``exp(γ_j)`` multiplies the mean spend
            per purchase. ``params_`` and ``summary_`` (with a ``p_value``) gain
            one row ``"spend:<column>"`` per coefficient, ``covariates_``
            keeps the frame for the predictions, and ``lr_test_`` compares
            the fit with the model without covariates.

        Returns
        -------
        self
        """
        if covariates is None:
            _clear_covariates(self)
            return BaseModel.fit(self, summary)
        return _fit_with_covariates(self, summary, covariates)

    def refit_options(self) -> dict:
        """Return the keywords with which ``fit`` repeats this fit's covariates on other data.

        ``{"covariates": covariates_}`` for a model fitted with covariates (the
        bootstrap of :func:`~crmstats.clv.bootstrap_clv` refits so), ``{}``
        without.
        """
        self._check_fitted()
        if not self._spend_columns():
            return {}
        if getattr(self, "covariates_", None) is None:
            raise DataError("GammaGammaModel: the customers' covariates are not kept "
                            "(parameters given, or a model file); refit it with covariates=",
                            table="covariates")
        return {"covariates": self.covariates_}

    def _spend_columns(self) -> list[str]:
        """Return the covariate columns of the spend coefficients (none: no covariates)."""
        self._check_fitted()
        return list(getattr(self, "_spend_cols", ()))

    def _scales(self, index: pd.Index, covariates, what: str) -> np.ndarray:
        """Each customer's ``v_i`` (the fitted ``v`` for a model without covariates)."""
        v = float(self.params_["v"])
        names = self._spend_columns()
        if not names:
            return np.full(len(index), v)
        gamma = self.params_[coefficient_names(names)].to_numpy(dtype=float)
        design = _customer_design(self, index, covariates, what)
        return v * np.exp(design @ gamma)

    def expected_spend(self, summary: pd.DataFrame,
                       covariates: pd.DataFrame | None = None) -> pd.Series:
        """Return each customer's expected spend per purchase, given its purchases so far.

        ``p (v_i + x m) / (p x + q - 1)``; customers without a repeat purchase
        get their population mean ``p v_i / (q - 1)``. With covariates,
        ``v_i = v exp(γ'x_i)`` uses each customer's row of ``covariates`` or,
        when not given, of the frame the model was fitted with.
        """
        p, q = float(self.params_["p"]), float(self.params_["q"])
        index, d = self._as_arrays(summary)
        x, m = d["frequency"], d["monetary_value"]
        v = self._scales(index, covariates, "summary")
        cond = p * (v + x * m) / (p * x + q - 1)
        return pd.Series(np.where(x > 0, cond, p * v / (q - 1)), index=index,
                         name="expected_spend")

    def conditional_expected_average_profit(self, summary: pd.DataFrame,
                                            covariates: pd.DataFrame | None = None
                                            ) -> pd.Series:
        """Lifetimes' name of :meth:`expected_spend`."""
        return self.expected_spend(summary, covariates)

    def population_mean(self, covariates: pd.DataFrame | None = None) -> float | pd.Series:
        """Mean spend per purchase across customers, ``p v / (q - 1)``.

        For a model with covariates and a ``covariates`` frame: the mean of a
        new customer with each row's covariates, ``p v_i / (q - 1)`` (a
        Series); without the frame, the mean at every covariate 0 (the
        reference customer).
        """
        p, q, v = (float(self.params_[n]) for n in ("p", "q", "v"))
        if covariates is None or not self._spend_columns():
            return p * v / (q - 1)
        if not isinstance(covariates, pd.DataFrame):
            raise DataError("covariates: expected a DataFrame indexed by customer id",
                            table="covariates")
        scales = self._scales(covariates.index, covariates, "covariates")
        return pd.Series(p * scales / (q - 1), index=covariates.index, name="mean_spend")

    def log_likelihood(self, summary: pd.DataFrame, params=None,
                       covariates: pd.DataFrame | None = None) -> float:
        """Total log-likelihood of ``summary`` under ``params`` (default: the fitted ones).

        With covariates (a model fitted or built with them), ``covariates``
        gives each customer's row (default: the frame of the fit).
        """
        names = self._spend_columns() if self.is_fitted else []
        if not names:
            return BaseModel.log_likelihood(self, summary, params)
        return _covariate_log_likelihood(self, summary, params, covariates)

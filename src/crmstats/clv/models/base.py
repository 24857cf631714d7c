"""The base class of every fitted CLV model: validation, compression, optimisation, inference.

A concrete model declares its parameter names, its input columns, a vectorised
log-likelihood of the compressed data (optionally with the gradient) and its
predictions; :class:`BaseModel` owns the rest:

* validation of the per-customer summary (a :class:`~crmstats.DataError`
  naming the column and rows; the caller's frame is never modified);
* **sufficient-statistic compression** — identical rows collapse into one
  weighted row, so fitting time grows with distinct rows, not customers;
* maximum likelihood on log-parameters: damped Newton iterations where the
  model provides an analytic Hessian, otherwise L-BFGS-B (with analytic
  gradients where the model provides them); on large data every start is
  first moved to the estimate on a systematic subsample of rows;
* ``params_``, ``log_likelihood_`` (total), ``variance_matrix_`` (inverse of
  the observed information: analytic, or by finite differences),
  ``summary_`` (``estimate``, ``std_err``, ``lower_95``, ``upper_95``: the
  schema of :mod:`crmstats.estimator`; every parameter is positive, so the
  95 % interval is on the log scale, ``θ · exp(± 1.96 se / θ)``, and never
  reaches below 0), ``n_obs_`` (customers, weights counted), ``converged_`` and
  :meth:`print_summary`;
* a :class:`~crmstats.ConvergenceWarning` carrying the optimiser's message when
  it stops without converging; never silent NaN parameters;
* ``boundary_``: None, or in plain words how the estimate sits at the edge of
  the parameter space (BG/NBD's b running off to 1e10 means the data show no
  measurable dropout), with a :class:`~crmstats.ConvergenceWarning` — such a
  fit is the limit of a simpler model and its standard errors mean nothing;
  :func:`crmstats.clv.fit_problem` names it for readers.

Validation and compression live in :mod:`.summary_rows`, the optimisers in
:mod:`.optimize` (mixins of :class:`BaseModel`), covariates in
:mod:`.covariates` and :mod:`.covariate_fit`. This module stays above 500
lines because it is one class: keeping a model (``from_params``, files),
``fit``, inference and the prediction groups all share its attributes.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import pandas as pd

from crmstats.clv.models.optimize import Optimizers
from crmstats.clv.models.summary_rows import SummaryRows, _bad_rows
from crmstats.clv.units import summary_units
from crmstats.estimator import (
    Estimator,
    given_column,
    given_params,
    numerical_hessian,
    summary_table,
)
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError
from crmstats.vocabulary import renamed_arguments, renamed_attribute

__all__ = ["BaseModel"]


def vdot(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product of two 1-D float arrays, summed by NumPy rather than by BLAS.

    OpenBLAS spreads even a vector dot product over its threads; on a 2-core
    machine shared with other work that made ``np.dot`` of two 376k-row
    vectors take 1.9 ms against 0.2 ms for ``einsum`` (and a BG/NBD fit on a
    million customers 0.6-2.9 s instead of 0.2-0.35 s). The likelihood sums are
    made of such products.
    """
    return np.einsum("i,i->", a, b)


class BaseModel(SummaryRows, Optimizers, Estimator):
    """Shared machinery of the CLV models (see the module docstring).

    Parameters
    ----------
    penalty : float
        L2 penalty on the parameters (``penalty * sum(params**2)`` is added
        to the negative log-likelihood, as lifetimes' ``penalizer``; with
        covariates also ``penalty * sum(coefficients**2)``); 0 gives the
        plain MLE.
    maxiter : int
        Maximum optimiser iterations.
    tol : float
        Optimiser tolerance on the gradient.

    ``penalizer=`` is the deprecated name of ``penalty`` (a
    :class:`DeprecationWarning`; it goes in the next release).
    """

    #: Parameter names, in order (set by each model).
    _param_names: ClassVar[tuple[str, ...]] = ()
    #: Summary columns the model reads.
    _columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: Whether the model needs at least one repeat purchase to be identified.
    _needs_repeat: ClassVar[bool] = True
    #: Whether ``_nll`` returns the gradient as well.
    _has_gradient: ClassVar[bool] = False
    #: Whether ``_nll(..., hessian=True)`` also returns the Hessian; such models are
    #: fitted by Newton's method and get exact standard errors.
    _has_hessian: ClassVar[bool] = False
    #: Above this many compressed rows, a fit starts from the estimate on a
    #: systematic subsample of the rows (see :meth:`_warm_start`).
    _warm_start_rows: ClassVar[int] = 50_000
    #: Whether later starting points are tried only when the first run fails.
    _first_success_suffices: ClassVar[bool] = False

    #: The scale parameter each process's covariates act on (``{"purchase": "alpha",
    #: "dropout": "b"}``); empty: the model takes no covariates.
    _covariate_scales: ClassVar[dict[str, str]] = {}

    _hyper = ("penalty", "maxiter", "tol")

    @renamed_arguments(penalizer="penalty")
    def __init__(self, penalty: float = 0.0, maxiter: int = 2000, tol: float = 1e-8):
        self.penalty = penalty
        self.maxiter = maxiter
        self.tol = tol

    #: Deprecated names (one release): ``penalizer`` of ``penalty``, ``freq_`` of ``period_``.
    penalizer = renamed_attribute("penalty", "penalizer")

    def _old_freq(self):
        warnings.warn(f"{type(self).__name__}.freq_ is renamed period_; the old name will be "
                      "removed in the next release", DeprecationWarning, stacklevel=2)
        return self.period_

    def _set_old_freq(self, value) -> None:  # code written for freq_ still sets the period
        self.period_ = value

    _old_freq.__renamed_to__ = "period_"  # the API convention test skips deprecated aliases
    freq_ = property(_old_freq, _set_old_freq, doc="Deprecated: the old name of ``period_``.")

    @classmethod
    def from_dict(cls, data, *, source: str = "model") -> BaseModel:
        """Rebuild a model from :meth:`to_dict`'s data; files that say ``penalizer`` still load."""
        hyper = data.get("hyperparameters") if isinstance(data, dict) else None
        if isinstance(hyper, dict) and "penalizer" in hyper and "penalty" not in hyper:
            hyper = {("penalty" if k == "penalizer" else k): v for k, v in hyper.items()}
            data = {**data, "hyperparameters": hyper}
        return super().from_dict(data, source=source)

    # ------------------------------------------------------------------ keeping a model

    @classmethod
    @renamed_arguments(freq="period")
    def from_params(cls, params, *, time_unit: str | None = None, period: str | None = None,
                    std_err=None, variance_matrix=None, n_obs=None, penalty: float = 0.0,
                    maxiter: int = 2000, tol: float = 1e-8) -> BaseModel:
        """Return the model evaluable at given parameters, e.g. a paper's estimates.

        Predictions work as after :meth:`fit`; ``fitted_here_`` is False,
        ``converged_`` None, ``log_likelihood_`` NaN, and the standard errors
        (so the intervals) NaN unless given.

        Parameters
        ----------
        params : mapping or pandas.Series
            Every parameter of the model by name (``_param_names``), positive.
        time_unit, period : {"D", "W", "M"}, optional
            The units the parameters are in (e.g. ``time_unit="W"`` for Fader,
            Hardie & Lee's weekly CDNOW estimates); given, the model refuses a
            summary labelled in other units, as a fitted model does.
        std_err : mapping, optional
            Standard errors by parameter name (missing ones are NaN).
        variance_matrix : array-like, optional
            The parameters' covariance matrix, in the order of ``params``.
        n_obs : float, optional
            Customers the parameters were estimated on (default NaN: unknown).
        penalty, maxiter, tol
            Hyperparameters (used only by a later ``fit``).

        Returns
        -------
        BaseModel

        Notes
        -----
        A model with covariates (BG/NBD, Pareto/NBD) takes its coefficients
        among ``params`` by name, ``"purchase:<column>"``,
        ``"dropout:<column>"`` or ``"shared:<column>"`` (as in its
        ``params_``); its predictions then need ``covariates=``.
        """
        base = list(cls._param_names)
        model = cls(penalty=penalty, maxiter=maxiter, tol=tol)
        given = list(params.index if isinstance(params, pd.Series) else params or [])
        extra = [str(k) for k in given if str(k) not in base]
        model._design = None
        if extra and cls._covariate_scales:
            from crmstats.clv.models.covariates import design_from_names

            model._design = design_from_names(extra, f"{cls.__name__}.from_params")
        names = base + (extra if model._design is not None else [])
        p = given_params(cls, params, names, positive=base)
        model._set_units(period, time_unit)
        se = given_column(cls, std_err, names, "std_err")
        positive = [n in base for n in names]
        model._given(p, summary_table(names, p, se, positive=positive), n_obs=n_obs)
        model.covariates_ = model._patterns = model.lr_test_ = None
        if variance_matrix is not None:
            cov = np.asarray(variance_matrix, dtype=float)
            if cov.shape != (len(names), len(names)) or not np.all(np.isfinite(cov)):
                raise DataError(f"{cls.__name__}.from_params: variance_matrix must be a finite "
                                f"{len(names)} x {len(names)} matrix", table="variance_matrix")
        else:
            cov = np.full((len(names), len(names)), np.nan)
        model.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        model.n_rows_ = None
        model.optimizer_message_ = "not fitted: parameters given"
        model.boundary_ = model._at_boundary()
        return model

    def _set_units(self, period, time_unit) -> None:
        from crmstats.clv.units import check_units

        if period is None and time_unit is None:
            self.period_ = self.time_unit_ = None
            return
        try:
            units = check_units(period or time_unit, time_unit)
        except ValueError as exc:
            raise DataError(f"{type(self).__name__}: bad time_unit / period: {exc}", table="units",
                            column="time_unit") from None
        self.period_ = units.period if period is not None else None
        self.time_unit_ = units.time_unit

    def _fit_facts(self) -> dict:
        facts = {"time_unit": self.time_unit_, "freq": self.period_, "n_obs": self.n_obs_,
                 "n_rows": self.n_rows_, "converged": self.converged_,
                 "boundary": self.boundary_, "log_likelihood": self.log_likelihood_,
                 "optimizer_message": self.optimizer_message_}
        if getattr(self, "_design", None) is not None:
            from crmstats.clv.models.covariate_fit import covariate_facts

            facts.update(covariate_facts(self))
        return facts

    def _keep_patterns(self, values: np.ndarray, weights: np.ndarray) -> None:
        """Keep the fitted customers' covariate patterns (a new customer's default population)."""
        from crmstats.clv.models.covariate_fit import MAX_KEPT_PATTERNS

        self._patterns = (np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
                          ) if len(values) <= MAX_KEPT_PATTERNS else None

    def _restore(self, params, summary, facts, variance) -> None:
        base = list(self._param_names)
        names = list(params.index)
        self._design, self.covariates_, self._patterns, self.lr_test_ = None, None, None, None
        if names[:len(base)] != base or (len(names) > len(base) and not self._covariate_scales):
            facts.fail("params", f"{type(self).__name__} has parameters {', '.join(base)}",
                       top=True)
        if len(names) > len(base):
            from crmstats.clv.models.covariate_fit import restore_covariates

            try:
                restore_covariates(self, names[len(base):], facts)
            except DataError as exc:
                facts.fail("params", str(exc), top=True)
        if not np.all(params.iloc[:len(base)].to_numpy() > 0):
            facts.fail("params", "every parameter of this model is positive", top=True)
        unit = facts.optional_string("time_unit")
        freq = facts.optional_string("freq")
        try:
            self._set_units(freq, unit)
        except DataError as exc:
            facts.fail("time_unit", str(exc))
        self.params_ = params
        self.summary_ = summary
        self.variance_matrix_ = variance if variance is not None else pd.DataFrame(
            np.nan, index=names, columns=names)  # names: with the coefficients
        self.n_obs_ = facts.count("n_obs")
        self.n_rows_ = None if not facts.has("n_rows") else int(facts.integer("n_rows"))
        self.converged_ = facts.boolean("converged") if facts.has("converged") else None
        self.boundary_ = facts.optional_string("boundary")
        self.log_likelihood_ = facts.number("log_likelihood")
        self.optimizer_message_ = facts.optional_string("optimizer_message") or ""

    # ------------------------------------------------------------------ model hooks

    def _nll(self, log_params: np.ndarray, data: dict[str, np.ndarray]):
        """Negative total log-likelihood (and its gradient in log-parameters, if provided)."""
        raise NotImplementedError

    def _initial(self, data: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros(len(self._param_names))

    def _log_likelihood_rows(self, params: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting

    def _prepare(self, summary: pd.DataFrame) -> dict[str, np.ndarray]:
        return self._compress(*self._prepare_frame(summary))

    def _prepare_frame(self, summary: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Return the validated model columns and the weights (None: one per row), uncompressed."""
        data = self._validate(summary)
        weights = None
        if "weights" in summary.columns and "weights" not in self._columns:
            weights = pd.to_numeric(summary["weights"], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(weights) | (weights < 0)
            if bad.any():
                raise DataError(
                    "summary table, column 'weights': missing or negative weights, e.g. rows "
                    f"{_bad_rows(summary, bad)}", table="summary", column="weights",
                    rows=_bad_rows(summary, bad),
                )
        if self._needs_repeat and "frequency" in data and (data["frequency"] == 0).all():
            raise DataError(
                f"summary table: no customer has a repeat purchase (every frequency is 0); "
                f"{type(self).__name__} cannot be estimated from one-time buyers only",
                table="summary", column="frequency",
            )
        return data, weights

    def fit(self, summary: pd.DataFrame, covariates: pd.DataFrame | None = None, *,
            purchase=None, dropout=None, shared=False) -> BaseModel:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        summary : pandas.DataFrame
            Per-customer summary with the model's columns (see
            :func:`crmstats.clv.rfm_summary`); an optional ``weights`` column
            counts identical customers.
        covariates : pandas.DataFrame, optional
            BG/NBD, MBG/NBD and Pareto/NBD: time-invariant covariates, one row
            per customer of ``summary`` (indexed by customer id, numbers only:
            see :func:`crmstats.clv.covariate_frame`). Each acts on the scale
            of the purchase rate and of dropout (Fader & Hardie 2007;
            :mod:`crmstats.clv.models.covariates`): ``exp(coefficient)``
            multiplies the purchase rate, or the dropout. The fit adds the
            coefficients to ``params_`` and ``summary_`` (with ``p_value``),
            keeps each customer's row in ``covariates_`` for the predictions
            and tests the covariates against the model without them
            (``lr_test_``).
        purchase, dropout : list of str, optional
            The covariate columns acting on each process (default: all, on both).
        shared : bool or list of str
            Give the columns acting on both processes one coefficient for both
            (True: every such column) instead of one each.

        Returns
        -------
        self
        """
        if covariates is not None:
            from crmstats.clv.models.covariate_fit import fit_with_covariates

            return fit_with_covariates(self, summary, covariates, purchase, dropout, shared)
        if purchase is not None or dropout is not None or shared not in (False, None):
            raise ValueError("purchase=, dropout= and shared= choose among covariates: pass "
                             "covariates= too")
        self._design, self.covariates_, self._patterns, self.lr_test_ = None, None, None, None
        units = summary_units(summary)
        data = self._prepare(summary)
        best = None
        tried: list[np.ndarray] = []
        for start in self._starts(data):
            start = self._warm_start(data, start)
            if best is not None and best.success and any(
                    np.max(np.abs(start - s)) < 1e-3 for s in tried):
                continue  # the subsample led this start to where an earlier one went
            tried.append(start)
            res = self._minimize(data, start)
            if best is None or (np.isfinite(res.fun) and res.fun < best.fun):
                best = res
            if self._first_success_suffices and best.success and best.fun < 1e299:
                break  # further starts are a fallback for failed runs only
        if not np.all(np.isfinite(best.x)) or best.fun >= 1e299:
            raise CRMStatsError(
                f"{type(self).__name__}: the optimiser found no finite likelihood "
                f"({best.message}); check the summary's time unit and values"
            )
        if not best.success:
            warnings.warn(
                f"{type(self).__name__} did not converge: {best.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._data_ = data
        self._given_params = False
        self.period_ = units.period if units is not None else None
        self.time_unit_ = units.time_unit if units is not None else None
        self.params_ = pd.Series(np.exp(best.x), index=list(self._param_names), name="estimate")
        self.log_likelihood_ = float(-self._nll_value(best.x, data))
        self.n_obs_ = float(data["weights"].sum())
        self.n_rows_ = len(data["weights"])
        self.converged_ = bool(best.success)
        self.optimizer_message_ = str(best.message)
        # the kept run's coordinates on the face of a bounded search (at_bound; none otherwise)
        self._box_edge = [n for n, b in zip(self._param_names, getattr(best, "at_bound", ()),
                                            strict=False) if b]
        self._inference(data)
        self.boundary_ = self._at_boundary()
        if self.boundary_:
            warnings.warn(f"{type(self).__name__} {self.boundary_}; its standard errors mean "
                          "nothing there", ConvergenceWarning, stacklevel=2)
        return self

    #: Dimensionless parameters (shapes) and the range outside which an estimate counts as
    #: run off to the edge of the parameter space (scales have units: no absolute range).
    _shape_params: ClassVar[tuple[str, ...]] = ()
    _edge: ClassVar[tuple[float, float]] = (1e-6, 1e6)

    def _at_boundary(self) -> str | None:
        """Describe, in plain words, an estimate at the edge of the parameter space, if it is.

        Returns a clause that follows the fit's name ("... found no
        measurable dropout ..."), or None for an interior estimate. Here: a
        shape parameter outside :attr:`_edge`, or an information matrix that
        is not positive definite (the likelihood is flat in some direction).
        Models add what the edge means for them.
        """
        lo, hi = self._edge
        edge = {n: float(self.params_[n]) for n in self._shape_params
                if not lo <= float(self.params_[n]) <= hi}
        if edge:
            values = ", ".join(f"{n} = {v:.3g}" for n, v in edge.items())
            return ("ran to the edge of its parameter space: the data cannot pin the model "
                    f"down ({values})")
        flat = list(self.summary_.index[self.summary_["std_err"].isna()])
        if flat and not getattr(self, "_given_params", False):  # given: no se is no news
            return ("cannot pin down " + " and ".join(flat) + " from these data (the likelihood "
                    "is flat at the estimate: no standard error)")
        return None

    def log_likelihood(self, summary: pd.DataFrame, params=None, covariates=None) -> float:
        """Total log-likelihood of ``summary`` under ``params`` (default: the fitted ones).

        Parameters
        ----------
        summary : pandas.DataFrame
            Per-customer summary in the form :meth:`fit` takes.
        params : mapping or pandas.Series, optional
            Parameter values by name (e.g. another fitter's estimates), so two
            estimates can be compared on the same data and the same likelihood.
            Coefficients of covariates by their names (``"purchase:x"``...).
        covariates : pandas.DataFrame, optional
            Covariates of the customers (a model with covariates; default the
            rows kept from the fit).

        Returns
        -------
        float
            The log-likelihood summed over customers (weights count).
        """
        if params is None:
            self._check_fitted()
            params = self.params_
        params = pd.Series(params, dtype=float)
        base = list(self._param_names)
        missing = [p for p in base if p not in params.index]
        if missing:
            raise CRMStatsError(f"{type(self).__name__}.log_likelihood: params lack {missing}")
        values = params[base].to_numpy(dtype=float)
        if not np.all(np.isfinite(values) & (values > 0)):
            raise CRMStatsError(f"{type(self).__name__}.log_likelihood: params must be positive")
        extra = [str(k) for k in params.index if k not in base]
        if extra or covariates is not None:
            from crmstats.clv.models.covariate_fit import likelihood_with_covariates
            from crmstats.clv.models.covariates import design_from_names

            if not extra or not self._covariate_scales:
                raise CRMStatsError(f"{type(self).__name__}.log_likelihood: covariates need "
                                    "coefficients among params (and a model that takes them)")
            design = design_from_names(extra, f"{type(self).__name__}.log_likelihood")
            return likelihood_with_covariates(self, summary, params[base + extra], design,
                                              covariates)
        return float(-self._nll_value(np.log(values), self._prepare(summary)))

    def _starts(self, data) -> list[np.ndarray]:
        return [self._initial(data)]

    def _nll_value(self, log_params, data) -> float:
        with np.errstate(all="ignore"):
            out = self._nll(log_params, data)
        return float(out[0] if self._has_gradient else out)

    def _inference(self, data) -> None:
        """Observed-information standard errors in natural parameters.

        From the analytic Hessian where the model has one, otherwise by
        central differences (of the analytic gradient, where there is one).
        """
        theta = self.params_.to_numpy(dtype=float)
        k = len(theta)

        def nll_natural(p):
            return self._nll_value(np.log(p), data)

        h = 1e-4 * np.maximum(np.abs(theta), 1e-3)
        hess = np.empty((k, k))
        if self._has_hessian:
            # exact: H_natural = diag(1/θ) (H_log - diag(g_log)) diag(1/θ)
            with np.errstate(all="ignore"):
                _, g_log, h_log = self._nll(np.log(theta), data, hessian=True)
            hess = (h_log - np.diag(g_log)) / np.outer(theta, theta)
        elif self._has_gradient:
            # central differences of the analytic gradient (2k evaluations)
            def grad_natural(p):
                with np.errstate(all="ignore"):
                    return self._nll(np.log(p), data)[1] / p

            for j in range(k):
                e = np.zeros(k)
                e[j] = h[j]
                hess[:, j] = (grad_natural(theta + e) - grad_natural(theta - e)) / (2 * h[j])
            hess = (hess + hess.T) / 2
        else:
            hess = numerical_hessian(nll_natural, theta, h)
        try:
            cov = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            cov = np.full((k, k), np.nan)
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        # NaN standard errors (an information matrix that is not positive definite) make
        # boundary_ say so, with a ConvergenceWarning (see _at_boundary)
        names = list(self._param_names)
        self.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
        self.summary_ = summary_table(names, theta, se, positive=True)  # log-scale interval

    # ------------------------------------------------------------------ helpers

    def _p(self) -> list[float]:
        """Return the model's own parameters (without covariate coefficients)."""
        self._check_fitted()
        return [float(v) for v in self.params_.to_numpy()[:len(self._param_names)]]

    def _groups(self, index: pd.Index, covariates=None) -> list:
        """Return ``[(rows, params), ...]``: customers grouped by their parameters."""
        from crmstats.clv.models.covariate_fit import prediction_groups

        self._check_fitted()
        return prediction_groups(self, index, covariates)

    def refit_options(self) -> dict:
        """Return the keywords with which ``fit`` repeats this fit's covariates on other data.

        ``copy.deepcopy(model).fit(resample, **model.refit_options())`` refits
        a model with covariates as it was fitted (the bootstrap does so);
        ``{}`` for a model without covariates.
        """
        from crmstats.clv.models.covariate_fit import refit_options

        self._check_fitted()
        return refit_options(self)

    def _new_customers(self, t, covariates=None):
        """Return ``expected_purchases``: ``_new_customer(params, t)`` over the population.

        Without covariates in the model, or without ``covariates``: weighted
        by the fitted covariate patterns (an array like ``t``); with a frame:
        a Series indexed like it (``t`` one number).
        """
        groups, index = self._population(covariates)
        if index is None:
            t = np.asarray(t, dtype=float)
            return sum(w * self._new_customer(p, t) for w, p in groups)
        return pd.Series([float(self._new_customer(p, float(t))) for _, p in groups],
                         index=index, name="expected_purchases")

    def _population(self, covariates=None):
        """Return a new customer's parameters: ``([(weight, params), ...], index or None)``."""
        from crmstats.clv.models.covariate_fit import population_groups

        self._check_fitted()
        return population_groups(self, covariates)

    def _check_units(self, summary: pd.DataFrame) -> None:
        """Refuse a summary whose recorded units differ from those the model was fitted in."""
        unit = getattr(self, "time_unit_", None)
        if unit is None:
            return
        units = summary_units(summary, check=False)
        if units is None:
            return
        if units.time_unit != unit or (self.period_ is not None and units.period != self.period_):
            raise DataError(
                f"{type(self).__name__} was fitted on a summary with period={self.period_!r}, "
                f"time_unit={unit!r}, but this summary has period={units.period!r}, "
                f"time_unit={units.time_unit!r}; predictions would be in the wrong unit",
                table="summary", column="T",
            )

    def _as_arrays(self, summary: pd.DataFrame) -> tuple[pd.Index, dict[str, np.ndarray]]:
        self._check_fitted()
        self._check_units(summary)
        data = self._validate(summary)
        return data.index, {c: data[c].to_numpy() for c in self._columns}

    def print_summary(self) -> None:
        """Print the parameter table and fit statistics."""
        self._check_fitted()
        if not self.fitted_here_:
            print(f"{type(self).__name__}: parameters given, not fitted here")
        else:
            rows = "" if self.n_rows_ is None else f" ({self.n_rows_:,} distinct rows)"
            print(f"{type(self).__name__}: {self.n_obs_:,.0f} customers{rows}, "
                  f"log-likelihood {self.log_likelihood_:,.4f}")
        print(self.summary_.round(4).to_string())

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            return f"{type(self).__name__}(fitted: {inner})"
        return f"{type(self).__name__}()"

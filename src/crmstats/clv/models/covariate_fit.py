"""Fitting, inference and prediction of the BTYD models with covariates (see :mod:`.covariates`).

The functions here take the model (a :class:`~crmstats.clv.models.base.BaseModel`
whose class names the scale parameter of each process in
``_covariate_scales``) and work on its own no-covariate likelihood, one
covariate pattern at a time (Pareto/NBD: every pattern at once, with the
analytic derivatives of :mod:`._pareto_covariates`). A little over 500
lines: fitting, inference, likelihood and prediction groups share the
``Patterns`` split and the model's keep-and-restore facts.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd

from crmstats.clv.models.covariates import (
    Design,
    align_covariates,
    check_estimable,
    check_optimum,
    design_for,
    design_from_names,
    lr_test,
    norm_sf,
    pattern_codes,
)
from crmstats.clv.units import summary_units
from crmstats.estimator import numerical_hessian, summary_table
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError

__all__ = ["fit_with_covariates", "likelihood_with_covariates", "prediction_groups",
           "population_groups"]

#: Covariate patterns kept with a model (and in its file) for a new customer's predictions.
MAX_KEPT_PATTERNS = 2000
#: Step of the central differences in log-parameters (models without analytic derivatives).
_STEP = 1e-5
#: Up to this many covariate patterns, the likelihood is the model's own, once per pattern
#: (fast: categorical covariates); above, it is evaluated row by row (numeric covariates).
MAX_PATTERN_GROUPS = 64
def _analytic(model) -> bool:
    """Whether the model's covariate fit has analytic derivatives over all patterns at once.

    A model class says so with ``_analytic_covariates = True`` (Pareto/NBD: a
    Newton fit in a box, :mod:`._bounded_newton`, on the derivatives of
    :mod:`._pareto_covariates`); asking the class keeps this module free of an
    import of the models that import it.
    """
    return bool(getattr(model, "_analytic_covariates", False))


class Patterns:
    """A summary split by covariate pattern, each part compressed as the model compresses.

    With more than :data:`MAX_PATTERN_GROUPS` patterns, one table of distinct
    (pattern, x, t_x, T) rows with weights instead (``rows``; ``groups`` empty).
    """

    def __init__(self, model, frame: pd.DataFrame, weights, z: np.ndarray, design: Design):
        w = np.ones(len(frame)) if weights is None else np.asarray(weights, dtype=float)
        self.values, codes = pattern_codes(z)
        self.weights = np.bincount(codes, weights=w, minlength=len(self.values))
        self.mp, self.md = design.matrices(self.values)
        self.groups, self.rows, self.table = [], None, None
        if _analytic(model):  # every pattern at once: neither groups nor rows needed
            from crmstats.clv.models._pareto_covariates import PairTable

            self.table = PairTable(codes, *(frame[c].to_numpy(dtype=float)
                                            for c in model._columns), w)
            self.n_rows = len(self.table.w)
            return
        if len(self.values) > MAX_PATTERN_GROUPS:
            cols = list(model._columns)
            table = np.column_stack([codes] + [frame[c].to_numpy(dtype=float) for c in cols])
            uniq, inv = pattern_codes(table)
            self.rows = {c: uniq[:, j + 1] for j, c in enumerate(cols)}
            self.rows["weights"] = np.bincount(inv, weights=w, minlength=len(uniq))
            code = uniq[:, 0].astype(int)
            self.row_mp, self.row_md = self.mp[code], self.md[code]
            self.n_rows = len(uniq)
            return
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(self.values) + 1))
        for p in range(len(self.values)):
            rows = order[bounds[p]:bounds[p + 1]]
            self.groups.append(model._compress(frame.iloc[rows], w[rows]))
        self.n_rows = int(sum(len(g["weights"]) for g in self.groups))


def _indices(model) -> tuple[int, int]:
    names = list(model._param_names)
    scales = model._covariate_scales
    return names.index(scales["purchase"]), names.index(scales["dropout"])


def _pattern_derivs(model, phi, data, order: int):
    """Value [, gradient [, Hessian]] of one pattern's negative log-likelihood in log-params."""
    with np.errstate(all="ignore"):
        if order == 2 and model._has_hessian:
            return model._nll(phi, data, hessian=True)
        if order == 0:
            return (model._nll_value(phi, data),)
        if model._has_gradient:
            f, g = model._nll(phi, data)
        else:
            f = model._nll_value(phi, data)
            g = np.empty(len(phi))
            for i in range(len(phi)):
                e = np.zeros(len(phi))
                e[i] = _STEP
                g[i] = (model._nll_value(phi + e, data)
                        - model._nll_value(phi - e, data)) / (2 * _STEP)
        if order == 1:
            return f, g
        h = numerical_hessian(lambda p: model._nll_value(p, data), phi, _STEP * 10)
        return f, g, (h + h.T) / 2


def _row_ll(model, phi_rows: np.ndarray, rows) -> np.ndarray:
    """Each row's log-likelihood at its own log-parameters (``phi_rows``: rows x k)."""
    with np.errstate(all="ignore"):
        out = model._log_likelihood_rows(tuple(np.exp(phi_rows.T)), rows)
    return np.where(np.isnan(out), -np.inf, out)


def _total_rows(model, theta, pats: Patterns, order: int):
    """:func:`_total` row by row, with each row's derivatives by central differences."""
    k = len(model._param_names)
    ip, idr = _indices(model)
    rows, w = pats.rows, pats.rows["weights"]
    phi = np.tile(theta[:k], (len(w), 1))
    phi[:, ip] -= pats.row_mp @ theta[k:]
    phi[:, idr] -= pats.row_md @ theta[k:]

    def grad(at):
        g = np.empty((len(w), k))
        for j in range(k):
            up, down = at.copy(), at.copy()
            up[:, j] += _STEP
            down[:, j] -= _STEP
            g[:, j] = (_row_ll(model, up, rows) - _row_ll(model, down, rows)) / (2 * _STEP)
        return g

    f = -float(np.dot(w, _row_ll(model, phi, rows)))
    if order == 0:
        return (f,)
    m = len(theta) - k
    jac = np.zeros((len(w), k, k + m))
    jac[:, :, :k] = np.eye(k)
    jac[:, ip, k:] -= pats.row_mp
    jac[:, idr, k:] -= pats.row_md
    g_rows = -grad(phi)
    g = np.einsum("n,nk,nkl->l", w, g_rows, jac)
    if order == 1:
        return f, g
    h_rows = np.empty((len(w), k, k))
    step = 10 * _STEP
    for j in range(k):
        up, down = phi.copy(), phi.copy()
        up[:, j] += step
        down[:, j] -= step
        h_rows[:, :, j] = -(grad(up) - grad(down)) / (2 * step)
    h_rows = (h_rows + h_rows.transpose(0, 2, 1)) / 2
    h = np.einsum("n,nki,nkl,nlj->ij", w, jac, h_rows, jac)
    return f, g, h


def _total(model, theta, pats: Patterns, order: int):
    """Negative log-likelihood [, gradient [, Hessian]] in (log base params, coefficients)."""
    if pats.table is not None:
        return _total_analytic(model, theta, pats, order)
    if pats.rows is not None:
        return _total_rows(model, theta, pats, order)
    k = len(model._param_names)
    ip, idr = _indices(model)
    phi0, gamma = theta[:k], theta[k:]
    offp, offd = pats.mp @ gamma, pats.md @ gamma
    m = len(gamma)
    f = 0.0
    g = np.zeros(k + m)
    h = np.zeros((k + m, k + m))
    for p, data in enumerate(pats.groups):
        phi = phi0.copy()
        phi[ip] -= offp[p]
        phi[idr] -= offd[p]
        out = _pattern_derivs(model, phi, data, order)
        f += out[0]
        if order == 0:
            continue
        jac = np.zeros((k, k + m))
        jac[:, :k] = np.eye(k)
        jac[ip, k:] -= pats.mp[p]
        jac[idr, k:] -= pats.md[p]
        g += jac.T @ out[1]
        if order == 2:
            h += jac.T @ out[2] @ jac
    return (f,) if order == 0 else (f, g) if order == 1 else (f, g, h)


def _total_analytic(model, theta, pats: Patterns, order: int):
    """:func:`_total` from the analytic derivatives of every pattern at once (Pareto/NBD)."""
    from crmstats.clv.models._pareto_covariates import pattern_derivatives, to_log_params

    k = len(model._param_names)
    ip, idr = _indices(model)
    base = np.exp(theta[:k])
    gamma = theta[k:]
    params = np.tile(base, (len(pats.values), 1))
    params[:, ip] *= np.exp(-(pats.mp @ gamma))
    params[:, idr] *= np.exp(-(pats.md @ gamma))
    with np.errstate(all="ignore"):
        f, g, h = pattern_derivatives(pats.table, base[0], base[2], params[:, 1], params[:, 3],
                                      order=order)
        if order == 0:
            return (-float(f.sum()),)
        g, h = to_log_params(params, g, h)
    m = len(gamma)
    # d(log-params of pattern p) / d(theta): identity on the base, -loadings on the scales
    jac = np.zeros((len(params), k, k + m))
    jac[:, :, :k] = np.eye(k)
    jac[:, ip, k:] -= pats.mp
    jac[:, idr, k:] -= pats.md
    grad = -np.einsum("pk,pkl->l", g, jac)
    if order == 1:
        return -float(f.sum()), grad
    hess = -np.einsum("pki,pkl,plj->ij", jac, h, jac)
    return -float(f.sum()), grad, hess


def _objective(model, pats: Patterns, hessian: bool):
    """Penalised objective for the optimisers (non-finite values become 1e300)."""
    penalty = float(model.penalty)
    k = len(model._param_names)

    def fun(theta):
        theta = np.asarray(theta, dtype=float)
        out = _total(model, theta, pats, 2 if hessian else 1)
        f, g = out[0], out[1]
        base = np.exp(theta[:k])
        gamma = theta[k:]
        f = f + penalty * (np.sum(base**2) + np.sum(gamma**2))
        n = len(theta)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return (1e300, np.zeros(n), np.eye(n)) if hessian else (1e300, np.zeros(n))
        pen_g = np.concatenate([2 * penalty * base**2, 2 * penalty * gamma])
        if not hessian:
            return f, g + pen_g
        pen_h = np.concatenate([4 * penalty * base**2, np.full(len(gamma), 2 * penalty)])
        return f, g + pen_g, out[2] + np.diag(pen_h)

    return fun


#: Above this many distinct rows, a covariate fit on all patterns at once starts from its
#: estimate on every SUBSAMPLE-th row (weights multiplied): a start a step or two from the
#: optimum, found at a quarter of the cost per iteration.
WARM_ROWS, SUBSAMPLE = 20_000, 4
#: Newton's step tolerance there: below the subsample's own sampling error (the full-data
#: run's first step is 1e-2 to 1e-1 on the benchmark), as ParetoNBDModel._warm_xtol.
SUB_XTOL = 1e-2
#: The warm start's levels, coarsest first: (every k-th row, Newton's step tolerance). A
#: level is used where its subsample keeps WARM_ROWS / SUBSAMPLE rows; each starts from the
#: one before. On 92,473 rows: five iterations on a 16th of the rows (10,528 distinct pairs)
#: take the coefficients from zero to the quarter's neighbourhood, which then needs three
#: iterations instead of six (39,464 pairs each): the warm start a third cheaper, the same
#: start for the full data.
WARM_LEVELS = ((16, 1e-1), (SUBSAMPLE, SUB_XTOL))


def _subsample(pats: Patterns, k: int = SUBSAMPLE):
    """Return a copy of ``pats`` on every k-th row of its table (None: too few rows for k)."""
    table = pats.table
    if table is None or len(table.w) <= WARM_ROWS * k // SUBSAMPLE:
        return None
    from crmstats.clv.models._pareto_covariates import PairTable

    sub = copy.copy(pats)
    sub.table = PairTable(table.code[::k], table.x[::k], table.tx[::k], table.T[::k],
                          table.w[::k] * k)
    sub.table.n_patterns = table.n_patterns  # every pattern keeps its row, even if unsampled
    return sub


def _prepare(model, summary, covariates, design: Design):
    frame, weights = model._prepare_frame(summary)
    z = align_covariates(covariates, frame.index, design.columns)
    w = np.ones(len(frame)) if weights is None else weights
    check_estimable(z, w, design.columns)
    return frame, weights, z


def fit_with_covariates(model, summary, covariates, purchase, dropout, shared):
    """``model.fit(summary, covariates=...)``: see :meth:`BaseModel.fit`."""
    if not getattr(model, "_covariate_scales", None):
        raise CRMStatsError(f"{type(model).__name__} does not take covariates")
    if not isinstance(covariates, pd.DataFrame):
        raise DataError("covariates: expected a DataFrame indexed by customer id (see "
                        f"crmstats.clv.covariate_frame), got {type(covariates).__name__}",
                        table="covariates")
    design = design_for(covariates.columns, purchase, dropout, shared)
    units = summary_units(summary)
    frame, weights, z = _prepare(model, summary, covariates, design)
    pats = Patterns(model, frame, weights, z, design)
    null = copy.deepcopy(model)
    null.fit(summary)
    null_params, null_ll = null.params_.to_numpy(dtype=float), float(null.log_likelihood_)
    k = len(model._param_names)
    start = np.concatenate([np.log(null_params), np.zeros(len(design.coefs))])
    res = None
    if pats.table is not None:
        from crmstats.clv.models._bounded_newton import MAXITER, bounded_newton, box

        time_scale = np.average(frame["T"].to_numpy(dtype=float),
                                weights=None if weights is None else np.maximum(weights, 1e-300))
        lower, upper = box(list(model._log_kinds) + ["coef"] * len(design.coefs), time_scale)
        for k, xtol in WARM_LEVELS:  # the first steps on a 16th, then a quarter of the rows
            sub = _subsample(pats, k)
            if sub is None:
                continue
            first = bounded_newton(_objective(model, sub, hessian=True), start, lower, upper,
                                   maxiter=min(int(model.maxiter), MAXITER), xtol=xtol)
            if first.success and np.isfinite(first.fun) and first.fun < 1e299:
                start = first.x
        res = bounded_newton(_objective(model, pats, hessian=True), start, lower, upper,
                             maxiter=min(int(model.maxiter), MAXITER))
    elif model._has_hessian and pats.rows is None:
        res = model._newton(None, start, fun=_objective(model, pats, hessian=True))
    if res is None:
        from scipy import optimize

        res = optimize.minimize(_objective(model, pats, hessian=False), start, jac=True,
                                method="L-BFGS-B",
                                options={"maxiter": int(model.maxiter), "gtol": float(model.tol),
                                         "ftol": 1e-15, "maxfun": 20 * int(model.maxiter)})
    check_optimum(res, type(model).__name__)
    names = list(model._param_names) + design.names
    theta = res.x
    model._given_params = False
    model.period_ = units.period if units is not None else None
    model.time_unit_ = units.time_unit if units is not None else None
    model.params_ = pd.Series(np.concatenate([np.exp(theta[:k]), theta[k:]]), index=names,
                              name="estimate")
    known = pats.table is not None and float(model.penalty) == 0  # Newton's last value
    model.log_likelihood_ = float(-res.fun if known else -_total(model, theta, pats, 0)[0])
    model.n_obs_ = float(pats.weights.sum())
    model.n_rows_ = pats.n_rows
    model.converged_ = bool(res.success)
    model.optimizer_message_ = str(res.message)
    model._box_edge = [n for n, b in zip(names, getattr(res, "at_bound", []), strict=False) if b]
    model._design = design
    # every row given (numbers or NaN; checked when looked up): customers not fitted on, e.g.
    # new ones from the same customers table, are predicted without covariates= again
    model.covariates_ = covariates[list(design.columns)].apply(
        pd.to_numeric, errors="coerce").astype(float)
    model._keep_patterns(pats.values, pats.weights)
    reuse = getattr(res, "hess", None) if float(model.penalty) == 0 else None
    _inference(model, theta, pats, None if reuse is None else (res.jac, reuse))
    model.lr_test_ = lr_test(model.log_likelihood_, null_ll, len(design.coefs))
    model.boundary_ = model._at_boundary()
    if model.boundary_:
        warnings.warn(f"{type(model).__name__} {model.boundary_}; its standard errors mean "
                      "nothing there", ConvergenceWarning, stacklevel=3)
    return model


def _inference(model, theta, pats: Patterns, derivs=None) -> None:
    """Observed-information standard errors: base parameters natural, coefficients as they are.

    ``derivs``: the gradient and Hessian at ``theta`` if known. With
    ``ψ = (θ_base, γ)`` and ``φ = (log θ_base, γ)``:
    ``H_ψ = D⁻¹ (H_φ - diag(g_φ on the base)) D⁻¹``, ``D = diag(θ_base, 1)``.
    """
    k = len(model._param_names)
    # the optimiser's gradient and Hessian at theta where it has them (penalty 0: the same)
    g, h = derivs if derivs is not None else _total(model, theta, pats, 2)[1:]
    d = np.concatenate([np.exp(theta[:k]), np.ones(len(theta) - k)])
    corr = np.concatenate([g[:k], np.zeros(len(theta) - k)])
    hess = (h - np.diag(corr)) / np.outer(d, d)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.full(hess.shape, np.nan)
    se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    names = list(model.params_.index)
    est = model.params_.to_numpy(dtype=float)
    p = np.full(len(est), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        p[k:] = 2 * norm_sf(np.abs(est[k:] / se[k:]))
    model.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
    model.summary_ = summary_table(names, est, se, positive=[True] * k + [False] * (len(est) - k),
                                   p_value=p)


def likelihood_with_covariates(model, summary, params: pd.Series, design: Design,
                               covariates) -> float:
    """Total log-likelihood of ``summary`` at ``params`` (base and coefficients)."""
    frame, weights = model._prepare_frame(summary)
    z = align_covariates(covariates, frame.index, design.columns,
                         fallback=getattr(model, "covariates_", None))
    pats = Patterns(model, frame, weights, z, design)
    k = len(model._param_names)
    theta = np.concatenate([np.log(params.iloc[:k].to_numpy(dtype=float)),
                            params.iloc[k:].to_numpy(dtype=float)])
    return float(-_total(model, theta, pats, 0)[0])


def _scaled(model, mp: np.ndarray, md: np.ndarray):
    """Per row of loadings, the model's parameters with the covariates' scales."""
    k = len(model._param_names)
    base = np.asarray(model._p(), dtype=float)
    gamma = model.params_.to_numpy(dtype=float)[k:]
    ip, idr = _indices(model)
    out = np.tile(base, (len(mp), 1))
    out[:, ip] = base[ip] * np.exp(-(mp @ gamma))
    out[:, idr] = base[idr] * np.exp(-(md @ gamma))
    return out


def prediction_groups(model, index: pd.Index, covariates):
    """``[(rows, params), ...]``: the customers of ``index`` by their parameters.

    Without covariates in the model: one group of every row. With them: each
    customer's row of ``covariates`` (or of the covariates kept from the fit).
    """
    design = getattr(model, "_design", None)
    if design is None:
        if covariates is not None:
            raise DataError(f"{type(model).__name__} was fitted without covariates; it takes "
                            "no covariates=", table="covariates")
        return [(slice(None), tuple(model._p()))]
    z = align_covariates(covariates, index, design.columns,
                         fallback=getattr(model, "covariates_", None))
    values, codes = pattern_codes(z)
    params = _scaled(model, *design.matrices(values))
    return [(np.flatnonzero(codes == p), tuple(params[p])) for p in range(len(values))]


def population_groups(model, covariates):
    """``([(weight, params), ...], index or None)`` for a new customer's predictions.

    Without ``covariates``: the covariate patterns of the customers fitted,
    weighted by their counts (the average new customer of that population);
    with a frame: one group per row, and the frame's index.
    """
    design = getattr(model, "_design", None)
    if design is None:
        if covariates is not None:
            raise DataError(f"{type(model).__name__} was fitted without covariates; it takes "
                            "no covariates=", table="covariates")
        return [(1.0, tuple(model._p()))], None
    if covariates is None:
        kept = getattr(model, "_patterns", None)
        if kept is None:
            raise DataError(f"{type(model).__name__}: the covariates of the customers it was "
                            "fitted on are not kept (parameters given, or too many distinct "
                            "patterns); pass covariates= for the new customers",
                            table="covariates")
        values, weights = kept
        params = _scaled(model, *design.matrices(values))
        share = weights / weights.sum()
        return [(share[p], tuple(params[p])) for p in range(len(values))], None
    z = align_covariates(covariates, covariates.index, design.columns)
    params = _scaled(model, *design.matrices(z))
    return [(1.0, tuple(row)) for row in params], covariates.index


def covariate_facts(model) -> dict:
    """Return what a model file keeps of the covariates: the fitted patterns (if few), the test."""
    facts = {}
    kept = getattr(model, "_patterns", None)
    if kept is not None:
        facts["covariate_patterns"] = {"columns": list(model._design.columns),
                                       "values": [[float(v) for v in row] for row in kept[0]],
                                       "weights": [float(w) for w in kept[1]]}
    lr = getattr(model, "lr_test_", None)
    if lr is not None:
        facts["lr_test"] = {k: float(v) for k, v in lr.items()}
    return facts


def restore_covariates(model, names, facts) -> None:
    """Set the covariate design (and kept patterns, test) of a model read from a file."""
    model._design = design_from_names(names, type(model).__name__)
    if facts.has("covariate_patterns"):
        sec = facts.section("covariate_patterns")
        if sec.strings("columns") != list(model._design.columns):
            sec.fail("columns", "must be the coefficients' columns, in order")
        rows = sec.get("values", list)
        values = np.array([sec.numbers_of(r, f"values[{i}]", finite=True)
                           for i, r in enumerate(rows)], dtype=float)
        weights = np.array(sec.numbers("weights", finite=True), dtype=float)
        if values.shape != (len(weights), len(model._design.columns)) or np.any(weights < 0):
            sec.fail("values", "one row per pattern, one value per column, weights >= 0")
        model._patterns = (values, weights)
    if facts.has("lr_test"):
        sec = facts.section("lr_test")
        model.lr_test_ = pd.Series({k: sec.number(k) for k in (
            "statistic", "df", "p_value", "log_likelihood", "log_likelihood_null")},
            name="likelihood_ratio_test")


def refit_options(model) -> dict:
    """Return the ``fit`` keywords that repeat a fit's covariates on another summary."""
    design = getattr(model, "_design", None)
    kept = getattr(model, "covariates_", None)
    if design is None:
        return {}
    if kept is None:
        raise DataError(f"{type(model).__name__}: the customers' covariates are not kept "
                        "(parameters given, or a model file); refit it with covariates=",
                        table="covariates")
    return {"covariates": kept, **process_keywords(design.coefs)}


def process_keywords(coefs) -> dict:
    """Return ``fit``'s ``purchase``/``dropout``/``shared`` for ``(process, column)`` pairs.

    A column with ``shared`` coefficients is named on both processes and in
    ``shared`` (the form ``fit`` takes to constrain them equal).
    """
    kinds = {p: [c for q, c in coefs if q == p] for p in ("purchase", "dropout", "shared")}
    return {"purchase": kinds["purchase"] + kinds["shared"],
            "dropout": kinds["dropout"] + kinds["shared"], "shared": kinds["shared"]}

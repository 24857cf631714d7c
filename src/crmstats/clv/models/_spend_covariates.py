"""Covariates on the spend scale of the Gamma-Gamma model: likelihood, fit, inference.

The Gamma-Gamma model [1]_ with time-invariant covariates in the manner of
Fader & Hardie's covariates for the BTYD models [2]_: customer ``i``'s scale
is ``v_i = v exp(γ'x_i)``. Every other part of the model is unchanged, so a
customer's mean spend per purchase ``p v_i / (q - 1)`` is the reference
customer's times ``exp(γ'x_i)``: ``exp(γ_j)`` is the multiplier on mean spend
of one unit of covariate ``j`` (of belonging to level ``j`` rather than the
reference level). With every ``γ = 0`` the model *is* the model without
covariates.

Per customer with ``x`` repeat purchases of mean value ``m`` (Hardie's note
025, with ``v`` replaced by ``v_i``)::

    l_i = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln v_i + (px-1) ln m + px ln x
          - (px+q) ln(v_i + m x)

It is maximised in ``(ln p, ln q, ln v, γ)`` by the Newton iterations of
:class:`~crmstats.clv.models.base.BaseModel` with the analytic gradient and
Hessian below, from the estimate without covariates (so the fit never has a
lower likelihood than that model), and the likelihood-ratio test against that
model is kept in ``lr_test_``.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430; Fader & Hardie (2013), "The Gamma-Gamma model of monetary
   value", http://brucehardie.com/notes/025/
.. [2] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models.
   http://brucehardie.com/notes/019/
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
from scipy.special import gammaln, polygamma, psi

from crmstats.clv.models.covariates import check_optimum, lr_test, norm_sf
from crmstats.estimator import summary_table
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError, DataWarning

_BASE = ("p", "q", "v")
#: Prefix of a spend coefficient's name (``"spend:<column>"``, as BG/NBD's ``"purchase:..."``).
PREFIX = "spend:"


def coefficient_names(columns) -> list[str]:
    """Return the coefficients' names for these covariate columns."""
    return [PREFIX + str(c) for c in columns]


def columns_of(names, where: str) -> list[str]:
    """Return the covariate columns behind coefficient names ``"spend:<column>"``."""
    out = []
    for name in names:
        name = str(name)
        if not name.startswith(PREFIX) or len(name) == len(PREFIX):
            raise DataError(f"{where}: unknown parameter {name!r}; the Gamma-Gamma model has p, "
                            "q, v and spend coefficients named 'spend:<column>'",
                            table="params", column=name)
        out.append(name[len(PREFIX):])
    if len(set(out)) != len(out):
        raise DataError(f"{where}: a coefficient is named twice", table="params")
    return out


def _penalty(model) -> float:
    return float(model.penalty if hasattr(type(model), "penalty") or "penalty" in vars(model)
                 else model.penalizer)


def _clear_covariates(model) -> None:
    """Forget the covariates of an earlier fit (a refit without them)."""
    model._spend_cols = ()
    model.covariates_ = None
    model.lr_test_ = None


def _rows(index: pd.Index, mask: np.ndarray) -> list:
    return list(index[mask][:5])


def _numeric_design(covariates, what: str, names=None) -> pd.DataFrame:
    """Check a covariates frame: a DataFrame of finite numbers with unique customer ids."""
    if not isinstance(covariates, pd.DataFrame):
        raise DataError(f"{what}: expected a DataFrame of numeric covariates indexed by "
                        f"customer id (see crmstats.clv.covariate_frame), got "
                        f"{type(covariates).__name__}", table=what)
    if covariates.shape[1] == 0:
        raise DataError(f"{what} table has no columns", table=what)
    if covariates.index.has_duplicates:
        dup = covariates.index.duplicated(keep=False)
        raise DataError(f"{what} table: customer ids appear more than once, e.g. "
                        f"{_rows(covariates.index, dup)}", table=what,
                        rows=_rows(covariates.index, dup))
    cols = [str(c) for c in covariates.columns]
    if len(set(cols)) != len(cols):
        raise DataError(f"{what} table: column names repeat", table=what)
    if names is not None:
        missing = [n for n in names if n not in cols]
        if missing:
            raise DataError(f"{what} table: missing covariate column(s) {missing}; the model "
                            f"has coefficients for {list(names)}", table=what,
                            column=missing[0])
    out = {}
    for j, col in enumerate(cols):
        if names is not None and col not in names:
            continue
        series = covariates.iloc[:, j]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            raise DataError(f"{what} table, column {col!r}: not numeric (categorical columns "
                            "become indicators with crmstats.clv.covariate_frame)",
                            table=what, column=col)
        values = series.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(f"{what} table, column {col!r}: {int(bad.sum())} missing or "
                            f"non-finite value(s), e.g. rows {_rows(covariates.index, bad)}",
                            table=what, column=col, rows=_rows(covariates.index, bad))
        out[col] = values
    frame = pd.DataFrame(out, index=covariates.index)
    return frame if names is None else frame[list(names)]


def _aligned(frame: pd.DataFrame, index: pd.Index, what: str, table: str) -> np.ndarray:
    """Return the rows of ``frame`` for the customers of ``index``, in that order."""
    pos = frame.index.get_indexer(index)
    missing = pos < 0
    if missing.any():
        raise DataError(f"{table} table: {int(missing.sum())} customer(s) of the {what} have no "
                        f"row, e.g. {_rows(index, missing)}", table=table,
                        rows=_rows(index, missing))
    return frame.to_numpy(dtype=float)[pos]


def _customer_design(model, index: pd.Index, covariates, what: str) -> np.ndarray:
    """Each customer's covariate row: from ``covariates``, else from the fit's frame."""
    names = model._spend_columns()
    if covariates is not None:
        return _aligned(_numeric_design(covariates, "covariates", names), index, what,
                        "covariates")
    kept = getattr(model, "covariates_", None)
    if kept is None:
        raise DataError(f"{type(model).__name__} has spend covariates ({', '.join(names)}) "
                        "but no frame to read them from (built by from_params or loaded "
                        "from a file): pass covariates=", table="covariates")
    return _aligned(kept, index, what, "covariates")


# ------------------------------------------------------------------ likelihood


def _nll(phi: np.ndarray, data: dict, hessian: bool = False):
    """Negative log-likelihood, gradient (and Hessian) in ``(ln p, ln q, ln v, γ)``.

    ``data``: ``frequency`` x, ``monetary_value`` m (repeat buyers), ``Z`` the
    design with a leading column of ones (so ``Z @ phi[2:]`` is ``ln v_i``).
    The gamma-function terms depend on x alone and are evaluated once per
    distinct x.
    """
    p, q = np.exp(phi[0]), np.exp(phi[1])
    x, m, Z = data["frequency"], data["monetary_value"], data["Z"]
    xu, xi = data["_xu"], data["_xi"]
    eta = Z @ phi[2:]
    v = np.exp(eta)
    u = v + m * x
    log_u = np.log(u)
    pxu = p * xu
    g_pq, g_px = gammaln(pxu + q), gammaln(pxu)
    pxq = (pxu + q)[xi]
    ll = np.sum(
        (g_pq - g_px)[xi] - gammaln(q) + q * eta + (p * x - 1) * data["_log_m"]
        + p * x * data["_log_x"] - pxq * log_u)
    ps_pq, ps_px = psi(pxu + q), psi(pxu)
    dp = x * ((ps_pq - ps_px)[xi] + data["_log_mx"] - log_u)  # ∂l/∂p per row
    dq = ps_pq[xi] - psi(q) + eta - log_u  # ∂l/∂q
    s = v / u
    deta = q - pxq * s  # ∂l/∂ln v_i
    grad = np.concatenate([[p * dp.sum(), q * dq.sum()], Z.T @ deta])
    if not hessian:
        return -ll, -grad
    t_pq, t_px = polygamma(1, pxu + q)[xi], polygamma(1, pxu)[xi]
    k = Z.shape[1]
    hess = np.empty((k + 2, k + 2))
    hess[0, 0] = p * p * np.sum(x * x * (t_pq - t_px)) + p * dp.sum()
    hess[0, 1] = hess[1, 0] = p * q * np.sum(x * t_pq)
    hess[1, 1] = q * q * np.sum(t_pq - polygamma(1, q)) + q * dq.sum()
    hess[0, 2:] = hess[2:, 0] = p * (Z.T @ (-x * s))
    hess[1, 2:] = hess[2:, 1] = q * (Z.T @ (1.0 - s))
    hess[2:, 2:] = (Z * (-pxq * s * (1.0 - s))[:, None]).T @ Z
    return -ll, -grad, -hess


def _data(rows: pd.DataFrame, design: np.ndarray) -> dict:
    x = rows["frequency"].to_numpy(dtype=float)
    m = rows["monetary_value"].to_numpy(dtype=float)
    xu, xi = np.unique(x, return_inverse=True)
    return {"frequency": x, "monetary_value": m, "weights": np.ones(len(x)),
            "Z": np.column_stack([np.ones(len(x)), design]), "_xu": xu, "_xi": xi,
            "_log_m": np.log(m), "_log_x": np.log(x), "_log_mx": np.log(m * x)}


def objective(model, data: dict, hessian: bool = False):
    """Return the penalised objective of ``BaseModel._newton`` / ``_lbfgs`` with covariates.

    The L2 penalty ``penalty * (p² + q² + v² + Σγ²)`` extends the models'
    penalty on their natural parameters to the coefficients.
    """
    pen = _penalty(model)

    def fun(phi):
        with np.errstate(all="ignore"):
            out = _nll(phi, data, hessian)
        theta = np.concatenate([np.exp(phi[:3]), phi[3:]])
        value = out[0] + pen * np.sum(theta**2)
        k = len(phi)
        if not np.isfinite(value):
            return (1e300, np.zeros(k), np.eye(k)) if hessian else (1e300, np.zeros(k))
        dpen = np.concatenate([2 * theta[:3] ** 2, 2 * theta[3:]]) * pen
        grad = out[1] + dpen
        if not hessian:
            return value, grad
        hpen = np.concatenate([4 * theta[:3] ** 2, np.full(k - 3, 2.0)]) * pen
        return value, grad, out[2] + np.diag(hpen)

    return fun


# ------------------------------------------------------------------ fit


def _fit_with_covariates(model, summary: pd.DataFrame, covariates):
    from crmstats.clv.units import summary_units

    units = summary_units(summary)
    frame = _numeric_design(covariates, "covariates")
    rows = model._repeat_rows(summary)
    design = _aligned(frame, rows.index, "summary's repeat customers", "covariates")
    names = list(frame.columns)
    clash = [n for n in names if n in _BASE]
    if clash:
        raise DataError(f"covariates table: column name(s) {clash} clash with the model's "
                        "parameters p, q, v; rename them", table="covariates", column=clash[0])
    const = np.ptp(design, axis=0) == 0
    if const.any():
        bad = [n for n, c in zip(names, const, strict=True) if c]
        raise DataError(f"covariates table: column(s) {bad} take one value across the "
                        f"{len(rows):,} repeat customers the spend model is fitted on; a "
                        "constant covariate cannot be told from the scale v — drop it",
                        table="covariates", column=bad[0])
    if np.linalg.matrix_rank(np.column_stack([np.ones(len(rows)), design])) < len(names) + 1:
        raise DataError(f"covariates table: the columns {names} are linearly dependent (with "
                        "the intercept) on the repeat customers, e.g. indicators of every "
                        "level of a category; leave one level out as the reference",
                        table="covariates")
    null = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # said once, by _repeat_rows above
        null.fit(summary)
    data = _data(rows, design)
    start = np.concatenate([np.log(null.params_.to_numpy(dtype=float)), np.zeros(len(names))])
    res = model._minimize(data, start)  # GammaGammaModel._objective dispatches on "Z"
    check_optimum(res, "GammaGammaModel")
    model._given_params = False
    model.period_ = units.period if units is not None else None
    model.time_unit_ = units.time_unit if units is not None else None
    model._spend_cols = tuple(names)
    model.covariates_ = frame
    model.params_ = pd.Series(np.concatenate([np.exp(res.x[:3]), res.x[3:]]),
                              index=[*_BASE, *coefficient_names(names)], name="estimate")
    with np.errstate(all="ignore"):
        model.log_likelihood_ = float(-_nll(res.x, data)[0])
    model.n_obs_ = float(len(rows))
    model.n_rows_ = len(rows)
    model.converged_ = bool(res.success)
    model.optimizer_message_ = str(res.message)
    _inference(model, res.x, data)
    model.lr_test_ = lr_test(model.log_likelihood_, null.log_likelihood_, len(names))
    model.boundary_ = model._at_boundary()
    if model.boundary_:
        warnings.warn(f"GammaGammaModel {model.boundary_}; its standard errors mean nothing "
                      "there", ConvergenceWarning, stacklevel=3)
    return model


def _inference(model, phi: np.ndarray, data: dict) -> None:
    """Observed-information standard errors; Wald p-values of the coefficients."""
    with np.errstate(all="ignore"):
        _, g, h = _nll(phi, data, hessian=True)
    k = len(phi)
    theta = np.concatenate([np.exp(phi[:3]), phi[3:]])
    scale = np.concatenate([theta[:3], np.ones(k - 3)])
    corr = np.concatenate([g[:3], np.zeros(k - 3)])
    # natural parameters: H = D⁻¹ (H_φ - diag(g_φ on the log-parameters)) D⁻¹
    hess = (h - np.diag(corr)) / np.outer(scale, scale)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    names = list(model.params_.index)
    pval = np.full(k, np.nan)
    pval[3:] = 2 * norm_sf(np.abs(theta[3:] / se[3:]))
    model.variance_matrix_ = pd.DataFrame(cov, index=names, columns=names)
    model.summary_ = summary_table(names, theta, se, positive=[True] * 3 + [False] * (k - 3),
                                   p_value=pval)


def _covariate_log_likelihood(model, summary, params, covariates) -> float:
    names = coefficient_names(model._spend_columns())
    if params is None:
        params = model.params_
    params = pd.Series(params, dtype=float)
    missing = [n for n in (*_BASE, *names) if n not in params.index]
    if missing:
        raise CRMStatsError(f"GammaGammaModel.log_likelihood: params lack {missing}")
    base = params[list(_BASE)].to_numpy(dtype=float)
    if not np.all(np.isfinite(base) & (base > 0)):
        raise CRMStatsError("GammaGammaModel.log_likelihood: p, q, v must be positive")
    rows = model._repeat_rows(summary)
    design = _customer_design(model, rows.index, covariates, "summary")
    phi = np.concatenate([np.log(base), params[names].to_numpy(dtype=float)])
    with np.errstate(all="ignore"):
        return float(-_nll(phi, _data(rows, design))[0])

"""Design and numerics of :class:`~crmstats.attribution.IncrementalityModel`.

The contact covariates of the path counts and of the untouched journeys, the
logistic link's Newton refits for the bootstrap, and the two links' summaries
(split from :mod:`crmstats.attribution.incrementality` to keep it readable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.attribution.noisy_or import _blocks, _expit
from crmstats.attribution.paths import PathData, _encode_paths, _numeric
from crmstats.estimator import summary_table
from crmstats.exceptions import DataError


def _with_covariates(paths, covariates: list[str]):
    """Path counts with contact covariates: no merging of equal paths; the covariates' coding.

    Returns ``(data, coding)``: the paths as :class:`PathData` and a
    :class:`_CovariateCoding` learnt from the path rows, which writes the
    covariate columns of any rows (the paths', the untouched journeys') into a
    design the caller holds, so no covariate matrix is built beside the design.
    """
    if not isinstance(paths, pd.DataFrame) or "path" not in paths.columns:
        raise DataError("paths table: covariates need the DataFrame of build_paths(..., "
                        "contacts=..., by=[...])", table="paths")
    missing = [c for c in covariates if c not in paths.columns]
    if missing:
        raise DataError(f"paths table: no covariate column(s) {', '.join(map(repr, missing))}; "
                        "count the paths by them with build_paths(..., contacts=crm.contacts, "
                        f"by={covariates!r})", table="paths", column=missing[0])
    if len(paths) == 0:
        raise DataError("paths table is empty (no rows)", table="paths")
    frame = paths[covariates]
    null = frame.isna().any(axis=1).to_numpy()
    if null.any():
        col = next(c for c in covariates if frame[c].isna().any())
        rows = list(paths.index[null][:5])
        raise DataError(f"paths table, column {col!r}: {int(null.sum())} path row(s) without a "
                        f"covariate value (journeys without a contact row?), e.g. rows {rows}",
                        table="paths", column=col, rows=rows)
    coding = _CovariateCoding(paths, covariates)
    codes, channels, lengths, empty = _encode_paths(paths["path"], ">")
    if empty.any():
        rows = list(paths.index[empty][:5])
        raise DataError(f"paths table, column 'path': {int(empty.sum())} empty path(s) or empty "
                        f"channel name(s), e.g. rows {rows}", table="paths", column="path",
                        rows=rows)
    data = PathData(channels=channels, codes=codes, lengths=lengths,
                    conversions=_numeric(paths, "conversions", "conversions"),
                    value=_numeric(paths, "value", "value", default=0.0),
                    nulls=_numeric(paths, "nulls", "nulls", default=0.0))
    return data, coding


def _is_number(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _level_codes(s: pd.Series):
    """Each value's code among the column's distinct values (as text), and those values."""
    codes, uniques = pd.factorize(s.astype(str))
    return codes, [str(u) for u in uniques]


class _CovariateCoding:
    """How the model codes contact covariates, learnt from the path counts' rows.

    A number enters standardised by the paths' mean and spread; any other
    column as one indicator per level of the paths but the first (levels
    sorted as text). The same coding serves the paths and the untouched
    journeys (:func:`_untouched_rows`), so their rows line up.
    """

    def __init__(self, paths: pd.DataFrame, covariates: list[str]):
        self.covariates = list(covariates)
        self.specs = []
        self.names = []
        for c in self.covariates:
            s = paths[c]
            if _is_number(s):
                v = s.to_numpy(dtype=float)
                sd = v.std()
                self.specs.append((c, (v.mean(), sd if sd > 0 else 1.0)))
                self.names.append(c)
            else:
                levels = sorted(_level_codes(s)[1])
                self.specs.append((c, levels))
                self.names += [f"{c}[{level}]" for level in levels[1:]]

    def fill(self, out: np.ndarray, frame: pd.DataFrame, table: str = "paths") -> None:
        """Write the covariate columns of ``frame``'s rows into ``out`` (rows x names)."""
        j = 0
        for c, how in self.specs:
            s = frame[c]
            if isinstance(how, tuple):
                mean, sd = how
                out[:, j] = (s.to_numpy(dtype=float) - mean) / sd
                j += 1
                continue
            codes, values = _level_codes(s)
            unknown = sorted(set(values) - set(how))
            if unknown:
                raise DataError(f"{table} table, column {c!r}: level(s) "
                                f"{', '.join(map(repr, unknown[:5]))} that no path has",
                                table=table, column=c)
            where = {level: i for i, level in enumerate(how)}
            index = np.array([where[v] for v in values] or [0], dtype=np.int64)[codes]
            for i in range(1, len(how)):
                out[:, j] = index == i
                j += 1


def _ridge(k: int, pen: float) -> np.ndarray:
    """Return the ridge per coefficient: ``pen`` on all but the intercept."""
    out = np.full(k, float(pen))
    out[0] = 0.0
    return out


def _logit_hessian(x, trials, p, penalty):
    """Negative Hessian of :func:`_logit_newton`'s objective (``p``: the rows' probabilities).

    Summed a block of weighted rows at a time (memory); ``penalty`` per coefficient.
    """
    out = np.diag(penalty)
    for rows in _blocks(len(x)):
        out += (x[rows] * (trials[rows] * p[rows] * (1 - p[rows]))[:, None]).T @ x[rows]
    return out


def _logit_newton(x, conv, nulls, pen, *, start=None, max_iter=100, tol=1e-9, hessian=None):
    """Maximise ``sum(conv log p + nulls log(1 - p)) - pen / 2 * |beta[1:]|^2`` by Newton's method.

    From ``start``, or from a flat start (the intercept at the observed
    rate's log-odds). Returns ``(beta, hessian, converged)``. Full Newton
    steps are halved until the objective does not fall; not converged when
    the steps do not settle within ``max_iter`` or a coefficient runs past 40
    (odds of ``e**40``: the journeys are separated and the maximum is at
    infinity). With ``hessian`` (e.g. the full fit's, for a bootstrap refit
    on resampled counts) the first steps use it instead of a new Hessian
    each (a chord method: the same optimum in more but far cheaper steps,
    one product with the design each); if that does not converge within
    ``4 * max_iter`` steps, full Newton steps finish the fit from ``start``.

    Rows with no trials add nothing and may be left out of ``x``; the one
    loop for the model's fit (:func:`logit_fit`) and the bootstrap's refits.
    """
    trials = conv + nulls
    penalty = _ridge(x.shape[1], pen)
    if start is None:
        rate = min(max(float(conv.sum()) / max(float(trials.sum()), 1e-12), 1e-9), 1 - 1e-9)
        beta = np.zeros(x.shape[1])
        beta[0] = np.log(rate / (1 - rate))
    else:
        beta = np.asarray(start, dtype=float).copy()
    if hessian is not None:
        try:
            chol = np.linalg.cholesky(hessian)
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None:
            chord = beta.copy()
            for _ in range(4 * max_iter):
                grad = x.T @ (conv - trials * _expit(x @ chord)) - penalty * chord
                step = np.linalg.solve(chol.T, np.linalg.solve(chol, grad))
                chord += step
                if not np.all(np.isfinite(chord)):
                    break
                if np.max(np.abs(step)) < tol:
                    return chord, hessian, True

    def objective(b):
        eta = x @ b
        # log p = -log(1 + e^-eta), log(1 - p) = -log(1 + e^eta)
        return float(-np.sum(conv * np.logaddexp(0.0, -eta) + nulls * np.logaddexp(0.0, eta))
                     - 0.5 * np.sum(penalty * b * b))

    f = objective(beta)
    hess = None
    for _ in range(max_iter):
        p = _expit(x @ beta)
        grad = x.T @ (conv - trials * p) - penalty * beta
        hess = _logit_hessian(x, trials, p, penalty)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        for _half in range(40):
            trial = beta + step
            f_trial = objective(trial)
            if np.isfinite(f_trial) and f_trial >= f - 1e-12 * abs(f):
                break
            step = step / 2.0
        else:
            return beta, hess, False
        beta, f = trial, f_trial
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 40.0:
            return beta, hess, False
        if np.max(np.abs(step)) < tol:
            return beta, _logit_hessian(x, trials, _expit(x @ beta), penalty), True
    return beta, hess, False


def logit_fit(exog, conv, nulls, penalty=None):
    """Fit the logistic link: return ``(params, std_err, p_value, penalised, converged)``.

    Maximum likelihood by Newton's method (:func:`_logit_newton`) on the rows
    with journeys, with standard errors from the inverse information and
    normal p-values (as statsmodels' binomial GLM gives them). When that does
    not converge (separated journeys) or ``penalty`` is given, the ridge fit
    of statsmodels' ``fit_regularized(L1_wt=0)`` instead: ``loglik / rows -
    penalty / 2 * |beta[1:]|^2`` (``rows`` = rows with journeys; the intercept
    is not penalised; default penalty ``1 / journeys``), without standard errors.
    The design is only read (no weighted copies kept beside it): the fit that
    statsmodels' IRLS did in 836 MB more than its input on the 10x demo's
    367,305 rows takes a few products with the design here.
    """
    from scipy.special import ndtr

    keep = (conv + nulls) > 0
    x, c, n = (exog, conv, nulls) if keep.all() else (exog[keep], conv[keep], nulls[keep])
    k = x.shape[1]
    if penalty is None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            beta, hess, ok = _logit_newton(x, c, n, 0.0)
        if ok:
            try:
                var = np.linalg.inv(hess)
                se = np.sqrt(np.clip(np.diag(var), 0.0, None))
            except np.linalg.LinAlgError:
                se = np.full(k, np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                p_value = 2 * ndtr(-np.abs(beta / se))
            return beta, se, p_value, False, True
        penalty = 1.0 / max(float((conv + nulls).sum()), 1.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        beta, _, ok = _logit_newton(x, c, n, float(penalty) * max(len(x), 1), max_iter=300)
    return beta, np.full(k, np.nan), np.full(k, np.nan), True, ok


def _logit_loglik(params, exog, conv, nulls) -> float:
    """Binomial log-likelihood of the logistic model (for the links' AIC)."""
    p = np.clip(_expit(exog @ params), 1e-12, 1 - 1e-12)
    return float(np.sum(conv * np.log(p) + nulls * np.log1p(-p)))


def _noisy_or_summary(theta, info, terms, penalised):
    """Coefficient table of the noisy-OR link: standard errors from its Fisher information."""
    from scipy.special import ndtr

    se = np.full(len(theta), np.nan)
    p_value = np.full(len(theta), np.nan)
    if not penalised:
        try:
            var = np.linalg.inv(info)
            se = np.sqrt(np.clip(np.diag(var), 0.0, None))
        except np.linalg.LinAlgError:
            pass
        with np.errstate(divide="ignore", invalid="ignore"):
            p_value = 2 * ndtr(-np.abs(theta / se))
    return summary_table(terms, theta, se, p_value=p_value, index_name="term")


def _untouched_rows(untouched, covariates: list[str]):
    """Check :func:`untouched_journeys`' rows; return their conversions and nulls.

    Their covariate columns are written into the design with the paths' coding
    (:meth:`_CovariateCoding.fill`), so the rows line up with the paths'.
    """
    if not isinstance(untouched, pd.DataFrame):
        raise DataError("untouched: expected the DataFrame of untouched_journeys (columns "
                        "conversions, nulls and the covariates)", table="untouched")
    need = ["conversions", "nulls", *covariates]
    missing = [c for c in need if c not in untouched.columns]
    if missing:
        raise DataError(f"untouched table: no column(s) {', '.join(map(repr, missing))}; count "
                        "them with untouched_journeys(..., contacts=crm.contacts, "
                        f"by={covariates!r})", table="untouched", column=missing[0])
    counts = []
    for col in ("conversions", "nulls"):
        v = pd.to_numeric(untouched[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            rows = list(untouched.index[bad][:5])
            raise DataError(f"untouched table, column {col!r}: {int(bad.sum())} missing, "
                            f"non-finite or negative value(s), e.g. rows {rows}",
                            table="untouched", column=col, rows=rows)
        counts.append(v)
    for c in covariates:
        s = untouched[c]
        if s.isna().any():
            rows = list(untouched.index[s.isna()][:5])
            raise DataError(f"untouched table, column {c!r}: rows without a value, e.g. rows "
                            f"{rows}", table="untouched", column=c, rows=rows)
    return counts[0], counts[1]

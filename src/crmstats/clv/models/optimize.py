"""The optimisers of :class:`~.base.BaseModel`: damped Newton steps, L-BFGS-B, warm starts.

A mixin, so that the models (and tests that override ``_minimize``) keep
calling them as methods (split from ``base.py`` to keep each module readable).
"""

from __future__ import annotations

import numpy as np

__all__ = ["Optimizers"]


class Optimizers:
    """Optimisation of the penalised negative log-likelihood in log-parameters."""

    def _objective(self, data, hessian: bool = False):
        """Return the penalised negative log-likelihood in log-parameters, for the optimiser.

        Returns ``fun(log_params)`` giving the value, the value and gradient
        (models with ``_has_gradient``) or value, gradient and Hessian
        (``hessian=True``); a non-finite value becomes 1e300 so that the
        optimiser backs off.
        """
        penalty = float(self.penalty)

        def fun(log_params):
            with np.errstate(all="ignore"):
                if hessian:
                    value, grad, hess = self._nll(log_params, data, hessian=True)
                elif self._has_gradient:
                    value, grad = self._nll(log_params, data)
                else:
                    value, grad = self._nll(log_params, data), None
            params = np.exp(log_params)
            value = value + penalty * np.sum(params**2)
            if not np.isfinite(value):
                k = len(log_params)
                if hessian:
                    return 1e300, np.zeros(k), np.eye(k)
                return (1e300, np.zeros(k)) if self._has_gradient else 1e300
            if hessian:
                pen = penalty * 2 * params**2
                return value, grad + pen, hess + np.diag(2 * pen)
            if self._has_gradient:
                return value, grad + penalty * 2 * params**2
            return value

        return fun

    def _minimize(self, data, start: np.ndarray):
        """One optimisation run from ``start`` (log-parameters); a scipy ``OptimizeResult``.

        Models with an analytic Hessian use :meth:`_newton` (a handful of
        iterations, each one pass over the rows), with L-BFGS-B as the
        fallback should Newton fail; others use L-BFGS-B.
        """
        if not self._has_hessian:
            return self._lbfgs(data, start)
        res = self._newton(data, start)
        if res.success:
            return res
        fallback = self._lbfgs(data, start)  # e.g. a start where the Hessian misleads
        return fallback if fallback.fun <= res.fun else res

    def _lbfgs(self, data, start: np.ndarray):
        """L-BFGS-B from ``start`` (analytic gradient where the model has one)."""
        from scipy import optimize  # imported on first fit: `import crmstats.clv` stays light

        return optimize.minimize(
            self._objective(data), start, jac=self._has_gradient, method="L-BFGS-B",
            options={"maxiter": int(self.maxiter), "gtol": float(self.tol),
                     "ftol": 1e-15, "maxfun": 20 * int(self.maxiter)},
        )

    def _newton(self, data, start: np.ndarray, xtol: float = 1e-8, fun=None):
        """Damped Newton iterations on the penalised negative log-likelihood.

        Each iteration evaluates value, gradient and Hessian in one pass. The
        Hessian's eigenvalues are replaced by their absolute values (bounded
        away from zero) so every step goes downhill even where the surface is
        not convex; steps are capped at 2 in log-parameters (a factor e^2)
        and halved until the value decreases. Converged when the Newton step
        is below ``xtol`` in every log-parameter (relative change of the
        parameters), or when the value can no longer decrease beyond rounding
        while the step is below 1e-6. ``fun`` replaces the model's objective
        (the fit with covariates). The loop is :func:`._bounded_newton.bounded_newton`
        without bounds and without its stall rule.
        """
        from crmstats.clv.models._bounded_newton import bounded_newton

        fun = fun or self._objective(data, hessian=True)
        unbounded = np.full(len(start), np.inf)
        return bounded_newton(fun, start, -unbounded, unbounded, maxiter=int(self.maxiter),
                              xtol=xtol, stall=False)

    def _warm_start(self, data, start: np.ndarray) -> np.ndarray:
        """Return a start near the optimum: the estimate on a systematic subsample of rows.

        Only for more than ``_warm_start_rows`` compressed rows: every k-th
        row, its weight multiplied by k, so the subsample stands for the whole.
        The optimiser then needs only a few passes over all rows; the final
        estimate is the full-data optimum whatever the start.
        """
        n_rows = len(data["weights"])
        if n_rows <= self._warm_start_rows:
            return start
        step = -(-n_rows // (self._warm_start_rows // 2))
        sub = {col: data[col][::step] for col in self._columns}
        sub["weights"] = data["weights"][::step] * step
        res = self._minimize(sub, start)
        return res.x if np.all(np.isfinite(res.x)) and res.fun < 1e299 else start


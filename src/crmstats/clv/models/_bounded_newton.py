"""Newton's method in a box: the Pareto/NBD fits, which must end on any data.

A Pareto/NBD likelihood often has its supremum at infinity: with no
measurable dropout (for everyone, or for one covariate pattern) the dropout
scale ``β`` runs off while the likelihood creeps up by less than 1e-7 per
step; with identical purchase rates ``r`` and ``α`` grow together. Newton's
method then follows the ridge for as many iterations as it is allowed. Here
the log-parameters stay in a stated box (:func:`box`), a coordinate at a
face of the box whose gradient points outward is held there (projected
Newton [1]_), the iterations are capped, and a run whose objective no longer
rises by less than :data:`STALL_GAIN` over :data:`STALL` iterations stops: the
likelihood is at its supremum to every digit that matters, and the model's
``_at_boundary`` says in plain words where that is.

References
----------
.. [1] Bertsekas, D. P. (1982). Projected Newton methods for optimization
   problems with simple constraints. SIAM Journal on Control and
   Optimization 20(2), 221-246.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

__all__ = ["box", "bounded_newton"]

#: Newton iterations at most (a fit inside the box needs 5-40).
MAXITER = 200
#: Iterations over which the log-likelihood must rise by more than STALL_GAIN to go on: a
#: likelihood ratio of e^1e-4 means nothing statistically, and a Newton run in the interior
#: converges quadratically long before ten steps of that size; on a ridge toward the edge
#: (s and beta growing together: one dropout rate for all) each step gains ~1e-5.
STALL, STALL_GAIN = 10, 1e-4
#: The box, in decades: shape parameters in [1e-8, 1e8], scales in [1e-10, 1e14] times
#: the customers' mean observation time, coefficients within ±40 (a factor e^40 on a rate).
SHAPE_RANGE, SCALE_RANGE, COEF_BOUND = (-8.0, 8.0), (-10.0, 14.0), 40.0


def box(kinds, time_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on the log-parameters (``kinds``: "shape", "scale", "coef")."""
    ln10 = np.log(10.0)
    base = np.log(max(float(time_scale), 1e-300))
    lo, hi = [], []
    for kind in kinds:
        if kind == "shape":
            lo.append(SHAPE_RANGE[0] * ln10)
            hi.append(SHAPE_RANGE[1] * ln10)
        elif kind == "scale":
            lo.append(base + SCALE_RANGE[0] * ln10)
            hi.append(base + SCALE_RANGE[1] * ln10)
        else:
            lo.append(-COEF_BOUND)
            hi.append(COEF_BOUND)
    return np.array(lo), np.array(hi)


def bounded_newton(fun, start, lower, upper, maxiter: int = MAXITER, xtol: float = 1e-8,
                   stall: bool = True):
    """Minimise ``fun`` (value, gradient, Hessian) in the box ``[lower, upper]``.

    Each step: the coordinates at a face with the gradient pushing outward
    are held; on the others, a Newton step on the Hessian with its
    eigenvalues replaced by their absolute values (bounded away from zero),
    capped at 2 in every coordinate, projected onto the box and halved until
    the value decreases (Armijo). Converged when the step is below ``xtol``
    in every coordinate, when the value can no longer decrease beyond
    rounding, or when it has moved by less than :data:`STALL_GAIN` over
    :data:`STALL` iterations. Returns what a scipy ``OptimizeResult`` has (``x``,
    ``fun``, ``jac``, ``hess``, ``success``, ``message``, ``nit``; importing
    scipy.optimize for it costs 0.7 s) and ``at_bound``: which coordinates end
    on a face. With infinite bounds and ``stall=False`` this is the plain damped
    Newton of :meth:`~crmstats.clv.models.optimize.Optimizers._newton`.
    """
    x = np.clip(np.asarray(start, dtype=float), lower, upper)
    f, g, h = fun(x)
    history = [f]
    message, success, it = "maximum number of iterations reached", False, 0
    while it < int(maxiter):
        it += 1
        if not (np.isfinite(f) and f < 1e299 and np.all(np.isfinite(h))):
            message = "non-finite likelihood at the starting point"
            break
        held = ((x <= lower) & (g > 0)) | ((x >= upper) & (g < 0))
        free = np.flatnonzero(~held)
        step = np.zeros(len(x))
        if len(free):
            vals, vecs = np.linalg.eigh(h[np.ix_(free, free)])
            floor = 1e-10 * max(1.0, float(np.abs(vals).max()))
            step[free] = -vecs @ ((vecs.T @ g[free]) / np.maximum(np.abs(vals), floor))
        size = float(np.abs(step).max()) if len(x) else 0.0
        if size < xtol:
            message, success = "Newton step below tolerance", True
            break
        if size > 2.0:
            step *= 2.0 / size
        t = 1.0
        while True:
            free_step = t * step  # t is a power of 2: exact
            trial = np.clip(x + free_step, lower, upper)
            moved = free_step if np.array_equal(trial, x + free_step) else trial - x
            f_new, g_new, h_new = fun(trial)
            if f_new <= f + 1e-4 * float(g @ moved):
                break
            if np.abs(moved).max() < 1e-6 and f_new - f <= 1e-12 * max(1.0, abs(f)):
                break  # the rest is rounding in a sum over many customers
            t /= 2
            if t < 1e-10:
                break
        if t < 1e-10:
            message = "the line search found no decrease"
            break
        if np.abs(moved).max() < 1e-6 and f_new >= f:
            message, success = "converged to rounding precision", True
            break
        x, f, g, h = trial, f_new, g_new, h_new
        history.append(f)
        if stall and len(history) > STALL and history[-STALL - 1] - f <= STALL_GAIN:
            message, success = (f"converged: the log-likelihood rose by less than {STALL_GAIN:g} "
                                f"over {STALL} iterations (a ridge toward the edge of the "
                                "parameter space)"), True
            break
    return SimpleNamespace(x=x, fun=f, jac=g, hess=h, success=success, message=message, nit=it,
                           at_bound=(x <= lower) | (x >= upper))

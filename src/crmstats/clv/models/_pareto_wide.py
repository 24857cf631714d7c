"""Pareto/NBD's death integral where its two scales are far apart: composite Gauss-Legendre.

:mod:`._pareto_covariates` writes ``J(u) = ∫_u^∞ (α+τ)^-k (β+τ)^-q dτ``
(``k = r+x``, ``q = s+1``) as a Gauss-Jacobi integral in ``ρ = (α+u)/(α+τ)``,
whose integrand has a singularity at distance ``(min(α,β)+u) / |α-β|``
from the interval: fine while the scales ``α + u`` and ``β + u`` are within
a factor of about 100, useless beyond. Far apart scales are the rule, not
the exception: a shop with slow dropout has ``β`` hundreds of times ``α``, and
a fit on data without measurable dropout sends one of them to infinity.

Here, with ``c = min(α, β)`` and ``v = log(c + τ)``, the integrand becomes
``exp(L(v))``, ``L(v) = v - k log(α+τ) - q log(β+τ)``, where one of
``α + τ``, ``β + τ`` is ``e^v`` and the other ``e^v + |α-β|``: ``L`` is
concave (the integrand unimodal), its slope runs from at most 1 down to
``1-k-q``, and its only singularities are the branch points
``log|α-β| ± iπ``, a distance π off the real line. So Gauss-Legendre panels
in ``v``, each short enough that ``L`` changes by at most :data:`STEP` over it
(``L'`` is monotone, so its two ends bound it) and no wider than a few times
its distance from the branch points, converge geometrically whatever the
ratio of the scales; the panels stop where the integrand has fallen
``e^-`` :data:`DROP` below its largest value (the rest is below rounding).

The derivatives of ``log J`` in ``(r, α, s, β)`` are integrals of the
differentiated integrand on the same nodes (the limits do not move with
them): ``∂k log F = -log(α+τ)``, ``∂α log F = -k/(α+τ)``, and the same for
``q`` and ``β``.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2005). A note on deriving the
   Pareto/NBD model and related expressions. http://brucehardie.com/notes/009/
.. [2] Davis, P. J. and Rabinowitz, P. (1984). Methods of Numerical
   Integration, 2nd ed., Academic Press: composite Gauss rules (ch. 2.7) and
   the error of Gauss rules for functions analytic in an ellipse (ch. 4.6).
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_j_terms"]

#: Gauss-Legendre nodes per panel.
N_PANEL = 12
#: Largest change of the log-integrand over one panel.
STEP = 3.0
#: Panel width in v: at most this, or half the distance to the branch points' real part.
WIDTH = 2.0
#: The panels end where the integrand is this far (in logs) below its largest value.
DROP = 50.0
#: A guard on the number of panels (the widths above need a few dozen).
MAX_PANELS = 4000

_XI, _OMEGA = np.polynomial.legendre.leggauss(N_PANEL)
_XI, _OMEGA = (_XI + 1) / 2, _OMEGA / 2  # on [0, 1]

#: The 10 distinct entries of a symmetric 4 x 4 matrix (upper triangle), row and column.
_UPPER = [(i, j) for i in range(4) for j in range(i, 4)]


def _shape(v, k, q, da, db):
    """``L(v)`` and ``L'(v)`` (``da = α - c``, ``db = β - c``, one of them 0)."""
    ev = np.exp(v)
    A, B = ev + da, ev + db
    return v - k * np.log(A) - q * np.log(B), 1 - k * ev / A - q * ev / B


def _width(v, k, q, da, db, far):
    """Panel width at ``v``: ``STEP`` over the largest slope at its two ends, capped."""
    cap = np.maximum(WIDTH, 0.5 * np.abs(v - far))
    slope0 = np.abs(_shape(v, k, q, da, db)[1])
    h = np.minimum(cap, STEP / np.maximum(slope0, 1e-300))
    slope1 = np.abs(_shape(v + h, k, q, da, db)[1])
    return np.minimum(h, STEP / np.maximum(np.maximum(slope0, slope1), 1e-300))


def log_j_terms(k, q, alpha, beta, u):
    """``log J(u)``, its gradient (n, 4) and Hessian (n, 10) in ``(r, α, s, β)`` per pair.

    ``k = r + x`` and ``q = s + 1`` (so the derivatives in ``r`` and ``s`` are
    those in ``k`` and ``q``); every argument an array of the pairs' values.
    """
    k, q, alpha, beta, u = (np.asarray(a, dtype=float) for a in np.broadcast_arrays(
        k, q, alpha, beta, u))
    n = len(k)
    c = np.minimum(alpha, beta)
    da, db = alpha - c, beta - c
    far = np.log(np.maximum(np.abs(alpha - beta), 1e-300))
    v = np.log(c + u)
    ref, _ = _shape(v, k, q, da, db)  # exp(L - ref) keeps the sums in range
    top = np.zeros(n)  # largest L - ref seen
    sums = np.zeros((n, 15))  # S0, S_j (4), S_ij (10)
    live = np.arange(n)
    for _ in range(MAX_PANELS):
        if not len(live):
            break
        kk, qq, dal, dbl = k[live], q[live], da[live], db[live]
        h = _width(v[live], kk, qq, dal, dbl, far[live])
        nodes = v[live][:, None] + h[:, None] * _XI
        ev = np.exp(nodes)
        A, B = ev + dal[:, None], ev + dbl[:, None]
        L = nodes - kk[:, None] * np.log(A) - qq[:, None] * np.log(B) - ref[live][:, None]
        E = np.exp(L) * (h[:, None] * _OMEGA)
        ia, ib = 1 / A, 1 / B
        # τ + α = A, τ + β = B
        d = (-np.log(A), -kk[:, None] * ia, -np.log(B), -qq[:, None] * ib)
        second = {(0, 1): -ia, (1, 1): kk[:, None] * ia**2, (2, 3): -ib,
                  (3, 3): qq[:, None] * ib**2}
        sums[live, 0] += E.sum(axis=1)
        for j in range(4):
            sums[live, 1 + j] += (E * d[j]).sum(axis=1)
        for idx, (i, j) in enumerate(_UPPER):
            term = d[i] * d[j]
            if (i, j) in second:
                term = term + second[i, j]
            sums[live, 5 + idx] += (E * term).sum(axis=1)
        v[live] += h
        top[live] = np.maximum(top[live], L.max(axis=1))
        end, slope = _shape(v[live], kk, qq, dal, dbl)
        done = (slope < 0) & (end - ref[live] < top[live] - DROP)
        live = live[~done]
    if len(live):  # not expected: the widths above end every integral in a few dozen panels
        sums[live] = np.nan
    S0 = sums[:, 0]
    g = sums[:, 1:5] / S0[:, None]
    hess = np.empty((n, 10))
    for idx, (i, j) in enumerate(_UPPER):
        hess[:, idx] = sums[:, 5 + idx] / S0 - g[:, i] * g[:, j]
    return ref + np.log(S0), g, hess

"""Gauss-Jacobi rules and quadratures of the death integral of :mod:`._pareto_covariates`.

``G(m, z, q) = ∫_0^1 ρ^(m-1) (1 - z t)^-q dρ`` with ``t = ρ`` (or ``1 - ρ``,
Pfaff's form) and its log-partials in ``(m, z, q)`` up to second order, for
many pairs at once: the rules (Golub-Welsch [1]_, with their derivatives in
``m`` by central differences, or kept across evaluations and shifted by
``ρ^Δ``), the number of nodes each pair needs (an error bound [2]_), and the
quadrature itself, one call per rule for the pairs that share it, or one for
many small groups with each pair's rule gathered. Split from
:mod:`._pareto_covariates`, which maps ``G`` to the likelihood.

References
----------
.. [1] Golub, G. H. and Welsch, J. H. (1969). Calculation of Gauss quadrature
   rules. Mathematics of Computation 23, 221-230.
.. [2] Trefethen, L. N. (2008). Is Gauss quadrature better than Clenshaw-Curtis?
   SIAM Review 50(1), 67-87 (Chebyshev coefficients of a function analytic in
   a Bernstein ellipse, and the error of Gauss rules that follows).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dstevd

#: Fewer nodes where the singularity is farther still (within the narrow tier above): each
#: pair gets the fewest of these whose error bound (:func:`small_tier_limits`) is below
#: SMALL_TOL, relative to G. On the 100,000-customer benchmark most pairs need 8-12.
SMALL_NODES, SMALL_TOL = (8, 10, 12, 16), 1e-11
#: Relative step in m of the central differences of the quadrature rule.
RULE_STEP = 1e-4


def _rules(m: np.ndarray, n: int):
    """Gauss-Jacobi rules for the weight ``ρ^(m-1)`` on [0, 1] (Golub-Welsch), one per ``m``."""
    b = np.asarray(m, dtype=float) - 1.0
    k = np.arange(n, dtype=float)
    s = 2 * k[None, :] + b[:, None]
    with np.errstate(all="ignore"):
        diag = b[:, None] ** 2 / (s * (s + 2))
    diag[:, 0] = b / (b + 2)
    kk, s1 = k[None, 1:], s[:, 1:]
    off = np.sqrt(4 * kk**2 * (kk + b[:, None]) ** 2 / (s1**2 * (s1 + 1) * (s1 - 1)))
    # one small tridiagonal eigenproblem at a time: LAPACK, no threaded BLAS (a
    # batched numpy.linalg.eigh of 64 x 64 matrices took 0.1-1.5 s on a loaded 2-core machine)
    lam = np.empty((len(b), n))
    first = np.empty((len(b), n))
    for i in range(len(b)):  # LAPACK's stevd, as scipy's eigh_tridiagonal calls it (less wrapping)
        lam[i], vec, info = dstevd(diag[i], off[i], compute_v=1)
        if info:
            lam[i], vec = np.nan, np.full((n, n), np.nan)  # not expected: NaN, never a wrong rule
        first[i] = vec[0]
    return (1 + lam) / 2, first**2 / (b[:, None] + 1)


def _rule_derivatives(m: np.ndarray, n: int):
    """Rules for ``m`` with their derivatives in ``m`` (central differences of the rule).

    Returns per ``m`` the weight vectors of :func:`_quadrature`: nodes ``ρ``,
    weights ``w``, ``w'``, ``w''`` and ``wρ'``, ``2w'ρ' + wρ''``, ``wρ'²``.
    """
    h = RULE_STEP * m
    rho, w = _rules(np.concatenate([m, m + h, m - h]), n)
    k = len(m)
    (r0, rp, rm), (w0, wp, wm) = np.split(rho, [k, 2 * k]), np.split(w, [k, 2 * k])
    h = h[:, None]
    w1, w2 = (wp - wm) / (2 * h), (wp - 2 * w0 + wm) / h**2
    r1, r2 = (rp - rm) / (2 * h), (rp - 2 * r0 + rm) / h**2
    return r0, w0, w1, w2, w0 * r1, 2 * w1 * r1 + w0 * r2, w0 * r1**2


#: From this m on, a rule is kept across evaluations (computed at ``m0 = c0 + x`` and
#: shifted by the factor ``ρ^(m - m0)``, derivatives in m by ``log ρ``), while ``|m - m0|``
#: stays within RULE_DRIFT; below, the factor's singularity at 0 would cost accuracy.
M_KEEP, RULE_DRIFT = 6.0, 0.25
#: ... for the rules of SMALL_NODES, from a larger m: the factor ρ^Δ (|Δ| ≤ RULE_DRIFT)
#: is not smooth at ρ = 0, and the weight ρ^(m-1) must flatten it there. Measured against
#: 96-node rules (z up to each rule's bound, q 1.02-40, both Pfaff forms): log G within
#: 1e-12 and its z and q derivatives within 1e-9 (relative) from m = 14 on (8 nodes: 20);
#: at m = 6.5, 16 nodes were off by up to 6e-12 and 9e-10 (the shift, not the rule).
M_KEEP_SMALL = {8: 20.0}
M_KEEP_SMALL_DEFAULT = 14.0


def small_tier_limits(q: float, nodes=None, tol: float | None = None) -> list:
    """``[(n, z_max), ...]``: the largest ``z`` at which ``n`` Gauss-Jacobi nodes suffice.

    The bound: ``f(t) = (1 - z t)^-q`` is analytic inside the Bernstein
    ellipse ``E_ρ`` of [0, 1] (foci 0 and 1, ``ρ`` below that of the
    singularity at ``t = 1/z``), where ``|f| ≤ M(ρ) = (1 - z (1 + a) / 2)^-q``,
    ``a = (ρ + 1/ρ) / 2``. Its Chebyshev coefficients are at most
    ``2 M ρ^-k`` [2]_; an ``n``-node Gauss rule is exact to degree ``2n - 1``
    and its positive weights sum to ``∫ρ^(m-1)``, which ``G`` exceeds
    (``f ≥ 1``): the relative error of ``G`` is at most
    ``4 M(ρ) ρ^(-2n) / (1 - 1/ρ)``, here minimised over 19 ellipses, below
    ``tol``. The derivative integrands (``f`` times powers of ``log(1 - zt)``
    and ``1 / (1 - zt)``) were checked against 96-node rules on a grid of z
    (0.01-0.95), q (1.02-40) and m (0.6-120), with :data:`SMALL_TOL`: wherever
    the bound allowed ``n`` nodes, log G was within 1e-12 and its z and q
    derivatives within 1e-9 (relative); the bound asks for ~15 % more nodes
    than those checks needed. The derivatives in m have a floor of ~1e-8
    from the differences of the rule, whatever ``n``.
    """
    nodes = SMALL_NODES if nodes is None else nodes
    tol = SMALL_TOL if tol is None else tol
    z = _Z_GRID[:, None]
    # in logs: M(ρ) overflows for a large q (a fit on the ridge toward s → ∞)
    log_bound = np.log(4 / ((1 - 1 / _R) * tol)) - q * np.log(1 - z * (1 + _A) / 2)
    need = np.min(log_bound / (2 * np.log(_R)), axis=1)
    return [(n, float(_Z_GRID[need <= n].max(initial=0.0))) for n in nodes]


#: The grid of :func:`small_tier_limits`: z, and 19 ellipses per z inside the singularity's.
_Z_GRID = np.linspace(0.0005, 0.95, 1900)
_RS = (2 / _Z_GRID - 1) + np.sqrt((2 / _Z_GRID - 1) ** 2 - 1)
_R = 1 + (_RS[:, None] - 1) * np.linspace(0.05, 0.95, 19)[None, :]
_A = (_R + 1 / _R) / 2


def _rules_for(table, c: float, n: int, x_index: np.ndarray) -> list:
    """Per distinct x of ``x_index``: the weight vectors of :func:`_quadrature` at m = c + x."""
    m = c + table.xu[x_index]
    out = [None] * len(x_index)
    keep_from = (M_KEEP_SMALL.get(n, M_KEEP_SMALL_DEFAULT) if n in SMALL_NODES else M_KEEP)
    small = np.flatnonzero(m < keep_from)
    if len(small):
        parts = _rule_derivatives(m[small], n)
        for j, i in enumerate(small):
            out[i] = tuple(p[j] for p in parts)
    cache = table.rules.setdefault(n, {})
    large = np.flatnonzero(m >= keep_from)
    stale = [i for i in large if x_index[i] not in cache
             or abs(c - cache[x_index[i]][0]) > RULE_DRIFT]
    if stale:
        rho, w = _rules(m[stale], n)
        for j, i in enumerate(stale):
            cache[x_index[i]] = (c, rho[j], w[j], np.log(rho[j]))
    for i in large:
        c0, rho, w, log_rho = cache[x_index[i]]
        w_eff = w * np.exp((c - c0) * log_rho)
        out[i] = (rho, w_eff, w_eff * log_rho, w_eff * log_rho**2, None, None, None)
    return out


#: Names of the log-partials of G (and of K below), in order.
_KEYS = ("v", "m", "z", "q", "mm", "mz", "mq", "zz", "zq", "qq")


def _quadrature(z, q, reflect, rule):
    """Log-partials of ``K = ∫ρ^(m-1) f(t) dρ``, ``f = (1 - z t)^-q``, ``t = ρ`` or ``1 - ρ``.

    ``rule``: one m's weight vectors (:func:`_rule_derivatives`, or with ``None``
    for the last three where the m-derivatives are in the weights, ``log ρ``).
    Returns ``(log K, ∂log K...)`` in the order of ``_KEYS`` (derivatives in m, z, q).
    """
    rho, w, a1, a2, b1, b2, b3 = rule
    sgn = -1.0 if reflect else 1.0
    t = 1 - rho if reflect else rho
    zc = z[:, None]
    L, f, P, Q, Lf = _integrand(zc, t, q)
    fF = f @ np.stack([w, a1, a2], axis=1)
    lF = Lf @ np.stack([w, a1], axis=1)
    K, Km, Kmm = fF[:, 0], fF[:, 1], fF[:, 2]
    Kq = -lF[:, 0]
    Kmq = -lF[:, 1]
    Kqq = (L * Lf) @ w
    if b1 is None:
        pF = P @ np.stack([t * w, t * a1], axis=1)
        Kz = q * pF[:, 0]
        Kzz = q * (q + 1) * (Q @ (t * t * w))
        Kzq = pF[:, 0] - q * ((L * P) @ (t * w))
        Kmz = q * pF[:, 1]
    else:
        pF = P @ np.stack([b1, b2, t * w, t * a1], axis=1)
        qF = Q @ np.stack([b3, t * t * w, t * b1], axis=1)
        lpF = (L * P) @ np.stack([t * w, b1], axis=1)
        Km = Km + sgn * q * z * pF[:, 0]
        Kmm = Kmm + sgn * q * z * pF[:, 1] + q * (q + 1) * z**2 * qF[:, 0]
        Kz = q * pF[:, 2]
        Kzz = q * (q + 1) * qF[:, 1]
        Kzq = pF[:, 2] - q * lpF[:, 0]
        Kmz = q * pF[:, 3] + sgn * q * (pF[:, 0] + (q + 1) * z * qF[:, 2])
        Kmq = Kmq + sgn * z * (pF[:, 0] - q * lpF[:, 1])
    return _log_partials(K, Km, Kz, Kq, Kmm, Kmz, Kmq, Kzz, Kzq, Kqq)


def _integrand(zc, t, q):
    """Return, at the nodes, L = log(1 - zt), f = (1 - zt)^-q, f / (1 - zt), f / (1 - zt)², L f."""
    one = 1 - zc * t
    L = np.log(one)
    D = 1 / one
    f = np.exp(-q * L)
    P = D * f
    return L, f, P, D * P, L * f


def _log_partials(K, Km, Kz, Kq, Kmm, Kmz, Kmq, Kzz, Kzq, Kqq):
    lm, lz, lq = Km / K, Kz / K, Kq / K
    return (np.log(K), lm, lz, lq, Kmm / K - lm * lm, Kmz / K - lm * lz, Kmq / K - lm * lq,
            Kzz / K - lz * lz, Kzq / K - lz * lq, Kqq / K - lq * lq)


#: Pairs sharing a rule below this many go to :func:`quadrature_rows` together (one call for
#: all of a tier's small groups: at ~60 µs a call, a per-rule call for 10-50 pairs costs
#: more than the arithmetic; above, one matrix product per rule is cheaper than gathering).
BATCH_BELOW = 96


def stack_rules(rules: list) -> tuple:
    """Stack rules (tuples of :func:`_quadrature`) into (K, n) arrays, zeros for absent parts."""
    out = np.zeros((7, len(rules), len(rules[0][0])))
    for i, rule in enumerate(rules):
        for j, part in enumerate(rule):
            if part is not None:
                out[j, i] = part
    return tuple(out)


def quadrature_rows(z, q, reflect, rules: tuple, k):
    """:func:`_quadrature` for pairs each with its own rule: row ``k`` of the stacked ``rules``.

    ``reflect`` per pair. The same sums as :func:`_quadrature` (with the node
    derivatives ``b`` zero for a kept rule, where its formula has no such terms),
    each pair's weights gathered from its rule's row.
    """
    rho, w, a1, a2, b1, b2, b3 = (part[k] for part in rules)
    t = np.where(reflect[:, None], 1 - rho, rho)
    sgn = np.where(reflect, -1.0, 1.0)
    L, f, P, Q, Lf = _integrand(z[:, None], t, q)
    Pt = P * t
    Qt = Q * t
    LP = L * P

    def dot(u, v):
        return np.einsum("ij,ij->i", u, v)

    K, Km, Kmm = dot(f, w), dot(f, a1), dot(f, a2)
    Kq, Kmq, Kqq = -dot(Lf, w), -dot(Lf, a1), dot(L * Lf, w)
    p0, p1, p2, p3 = dot(P, b1), dot(P, b2), dot(Pt, w), dot(Pt, a1)
    q0, q1, q2 = dot(Q, b3), dot(Qt * t, w), dot(Qt, b1)
    l0, l1 = dot(LP * t, w), dot(LP, b1)
    Km = Km + sgn * q * z * p0
    Kmm = Kmm + sgn * q * z * p1 + q * (q + 1) * z**2 * q0
    Kz = q * p2
    Kzz = q * (q + 1) * q1
    Kzq = p2 - q * l0
    Kmz = q * p3 + sgn * q * (p0 + (q + 1) * z * q2)
    Kmq = Kmq + sgn * z * (p0 - q * l1)
    return _log_partials(K, Km, Kz, Kq, Kmm, Kmz, Kmq, Kzz, Kzq, Kqq)

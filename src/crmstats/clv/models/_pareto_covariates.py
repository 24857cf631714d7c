"""Pareto/NBD with covariates: log-likelihood, gradient and Hessian over every pattern at once.

The fit with covariates (:mod:`.covariate_fit`) needs, for each covariate
pattern ``p``, the log-likelihood of its customers and its first and second
derivatives in ``(ln r, ln α_p, ln s, ln β_p)`` (the covariates scale ``α``
and ``β`` [2]_). The Pareto/NBD likelihood [1]_ of a customer with ``x``
repeat purchases, the last at ``t_x``, observed until ``T``, is::

    L = Γ(r+x) α^r β^s / Γ(r) · [ (α+T)^-(r+x) (β+T)^-s + s (J(t_x) - J(T)) ]
    J(u) = ∫_u^∞ (α+τ)^-(r+x) (β+τ)^-(s+1) dτ

(``s J`` integrates a death at ``τ`` after the last purchase). Fader & Hardie
write ``J`` with the Gaussian hypergeometric function [1]_, whose derivatives in
its parameters (``r`` and ``s`` enter them) have no closed form. Here
``ρ = (α+u)/(α+τ)`` turns ``J`` into

    J(u) = (α+u)^-m · G(m, ζ, q),   G = ∫_0^1 ρ^(m-1) (1 - ζρ)^-q dρ,

with ``m = r+s+x``, ``q = s+1`` and ``ζ = (α-β)/(α+u) < 1``; for ``ζ < 0``
Pfaff's transformation ``G = (1-ζ)^-q ∫_0^1 ρ^(m-1) (1 - z(1-ρ))^-q dρ`` with
``z = -ζ/(1-ζ)`` keeps the integrand's singularity (at ``1/z``) beyond 1 again.
Either integral is a Gauss-Jacobi quadrature with weight ``ρ^(m-1)`` [3]_: 24
nodes give it to about 1e-14 (relative) for ``z ≤ 0.9``, 64 nodes for
``z ≤ 0.99``, as long as ``(1 - zt)^-q`` is not steep (``q z / (1 - z)``
at most 15 and 80); beyond (a dropout scale 100 times the purchase scale or
the reverse, near ``u = 0``: slow dropout, a fit at the no-dropout boundary,
or a large ``s``)
``J`` and its derivatives come from composite Gauss-Legendre panels in
``log(min(α, β) + τ)`` (:mod:`._pareto_wide`), whose error does not grow as
the scales part. The derivatives of ``G`` in ``q`` and ``ζ`` are integrals
of the differentiated integrand on the same nodes; in ``m`` they are the
derivatives of the rule itself (nodes and weights move with ``m``; their
derivatives by central differences of the rule), exact for the polynomials
the rule integrates. ``J`` is needed for the distinct (pattern, x, u) triples
only, and the rest of the likelihood is elementary.

The fit's log-likelihood is this module's evaluation (the Newton optimum's),
and it gives the observed information. (An earlier version took ``z > 0.99``
to scipy's ``hyp2f1`` with central differences: 19 evaluations per pair at up to 90 µs each near
``z = 1``, so 0.3-1 s per Newton iteration on 1,000 customers at the
no-dropout boundary, and derivatives too rough there for Newton to stop.)

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2005). A note on deriving the
   Pareto/NBD model and related expressions. http://brucehardie.com/notes/009/
.. [2] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models.
   http://brucehardie.com/notes/019/
.. [3] Golub, G. H. and Welsch, J. H. (1969). Calculation of Gauss quadrature
   rules. Mathematics of Computation 23, 221-230.
.. [4] Trefethen, L. N. (2008). Is Gauss quadrature better than Clenshaw-Curtis?
   SIAM Review 50(1), 67-87 (Chebyshev coefficients of a function analytic in
   a Bernstein ellipse, and the error of Gauss rules that follows).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh_tridiagonal
from scipy.special import gammaln, polygamma, psi

from crmstats.clv.models._pareto_wide import _UPPER, log_j_terms

__all__ = ["PairTable", "log_death", "pattern_derivatives"]

#: Gauss-Jacobi nodes where the integrand's singularity is far (z ≤ Z_NARROW), and nearer.
N_NODES, N_NODES_WIDE = 24, 64
Z_NARROW, Z_WIDE = 0.9, 0.99
#: ... and where the factor ``(1 - zt)^-q`` is not too steep: its log-slope at ``t = 1``,
#: ``q z / (1 - z)``, at most these (measured: beyond them the rules' error in log J
#: passes 1e-11; at s = 79, z = 0.99 the 64-node rule was wrong by 27 in log J).
STIFF_NARROW, STIFF_WIDE = 15.0, 80.0
#: Fewer nodes where the singularity is farther still (within the narrow tier above): each
#: pair gets the fewest of these whose error bound (:func:`small_tier_limits`) is below
#: SMALL_TOL, relative to G. On the 100,000-customer benchmark most pairs need 8-12.
SMALL_NODES, SMALL_TOL = (8, 10, 12, 16), 1e-11
#: Relative step in m of the central differences of the quadrature rule.
RULE_STEP = 1e-4


class PairTable:
    """Distinct (pattern, x, t_x, T) rows with weights, and their distinct (pattern, x, u)."""

    def __init__(self, code, x, tx, T, weights):
        from crmstats.clv.models.covariates import pattern_codes

        table = np.column_stack([code, x, tx, T]).astype(float)
        rows, inv = pattern_codes(table)
        self.inverse = inv  # input row -> distinct row
        self.w = np.bincount(inv, weights=np.asarray(weights, dtype=float),
                             minlength=len(rows))
        self.code = rows[:, 0].astype(np.int64)
        self.x, self.tx, self.T = rows[:, 1], rows[:, 2], rows[:, 3]
        n = len(rows)
        both = np.concatenate([rows[:, [0, 1, 2]], rows[:, [0, 1, 3]]])
        pairs, pinv = pattern_codes(both)
        self.i_tx, self.i_T = pinv[:n], pinv[n:]
        self.xu, xi = np.unique(pairs[:, 1], return_inverse=True)
        self.row_xi = np.searchsorted(self.xu, self.x)
        order = np.argsort(xi, kind="stable")
        self.pair_order = order
        self.pair_bounds = np.searchsorted(xi[order], np.arange(len(self.xu) + 1))
        self.pair_code = pairs[:, 0].astype(np.int64)
        self.pair_xi = xi
        self.pair_u = pairs[:, 2]
        self.n_patterns = int(self.code.max()) + 1 if n else 0
        self.rules = {}  # quadrature rules kept across evaluations (see _rules_for)


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
    # one small tridiagonal eigenproblem at a time: LAPACK's stemr, no threaded BLAS (a
    # batched numpy.linalg.eigh of 64 x 64 matrices took 0.1-1.5 s on a loaded 2-core machine)
    lam = np.empty((len(b), n))
    first = np.empty((len(b), n))
    for i in range(len(b)):
        lam[i], vec = eigh_tridiagonal(diag[i], off[i])
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
    ``2 M ρ^-k`` [4]_; an ``n``-node Gauss rule is exact to degree ``2n - 1``
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
    need = np.min(np.log(4 * (1 - z * (1 + _A) / 2) ** -q / ((1 - 1 / _R) * tol))
                  / (2 * np.log(_R)), axis=1, initial=np.inf, where=_R_OK)
    return [(n, float(_Z_GRID[need <= n].max(initial=0.0))) for n in nodes]


#: The grid of :func:`small_tier_limits`: z, and 19 ellipses per z inside the singularity's.
_Z_GRID = np.linspace(0.0005, 0.95, 1900)
_RS = (2 / _Z_GRID - 1) + np.sqrt((2 / _Z_GRID - 1) ** 2 - 1)
_R = 1 + (_RS[:, None] - 1) * np.linspace(0.05, 0.95, 19)[None, :]
_A = (_R + 1 / _R) / 2
_R_OK = np.ones_like(_R, dtype=bool)


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
    one = 1 - zc * t
    L = np.log(one)
    D = 1 / one
    f = np.exp(-q * L)
    P = D * f
    Q = D * P
    Lf = L * f
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


def _log_partials(K, Km, Kz, Kq, Kmm, Kmz, Kmq, Kzz, Kzq, Kqq):
    lm, lz, lq = Km / K, Kz / K, Kq / K
    return (np.log(K), lm, lz, lq, Kmm / K - lm * lm, Kmz / K - lm * lz, Kmq / K - lm * lq,
            Kzz / K - lz * lz, Kzq / K - lz * lq, Kqq / K - lq * lq)


def _log_g(table: PairTable, r, s, alpha, beta):
    """``log G`` and its log-partials in (m, ζ, q) for every pair (see the module docstring)."""
    q = s + 1.0
    a, b = alpha[table.pair_code], beta[table.pair_code]
    zeta = (a - b) / (a + table.pair_u)
    reflect = zeta < 0
    z = np.where(reflect, -zeta / (1 - zeta), zeta)
    out = np.empty((10, len(zeta)))
    stiff = q * z / np.maximum(1 - z, 1e-300)
    narrow = (z <= Z_NARROW) & (stiff <= STIFF_NARROW)
    wide = ~narrow & (z <= Z_WIDE) & (stiff <= STIFF_WIDE)
    tiers, left = [], narrow
    for n, z_max in small_tier_limits(q):
        tier = left & (z <= z_max)
        tiers.append((n, tier))
        left = left & ~tier
    xi = table.pair_xi
    for n, tier in (*tiers, (N_NODES, left), (N_NODES_WIDE, wide)):
        used = np.unique(xi[tier])
        if not len(used):
            continue
        rules = _rules_for(table, r + s, n, used)
        for rule, x_index in zip(rules, used, strict=True):
            lo, hi = table.pair_bounds[x_index], table.pair_bounds[x_index + 1]
            idx = table.pair_order[lo:hi]
            idx = idx[tier[idx]]
            for flag in (False, True):
                sel = idx[reflect[idx] == flag]
                if len(sel):
                    out[:, sel] = _quadrature(z[sel], q, flag, rule)
    rest = ~(narrow | wide)
    out[:, rest] = 0.0  # far apart scales: J itself by :mod:`._pareto_wide` (see _pair_terms)
    # back from K (and z) to G (and ζ): G = K, or (1-ζ)^-q K(z(ζ)) where ζ < 0
    v, gm, gz, gq, hmm, hmz, hmq, hzz, hzq, hqq = out
    one = np.where(reflect, 1 - zeta, 1.0)
    dz = np.where(reflect, -1 / one**2, 1.0)
    d2z = np.where(reflect, -2 / one**3, 0.0)
    lg = np.log(one)
    v = v - q * lg
    gq_new = gq - lg
    gzeta = np.where(reflect, q / one, 0.0) + gz * dz
    hzz_new = np.where(reflect, q / one**2, 0.0) + hzz * dz**2 + gz * d2z
    hzq_new = np.where(reflect, 1 / one, 0.0) + hzq * dz
    return (v, gm, gzeta, gq_new, hmm, hmz * dz, hmq, hzz_new, hzq_new, hqq), rest


def _pair_terms(table: PairTable, r, s, alpha, beta):
    """``log J`` per pair, its gradient (n, 4), Hessian (n, 10: :data:`_UPPER`) in (r, α, s, β)."""
    (Gv, Gm, Gz, Gq, Gmm, Gmz, Gmq, Gzz, Gzq, Gqq), rest = _log_g(table, r, s, alpha, beta)
    a, b = alpha[table.pair_code], beta[table.pair_code]
    u = table.pair_u
    m = r + s + table.xu[table.pair_xi]
    A = np.log(a + u)
    a1 = 1 / (a + u)
    za = (b + u) * a1**2
    zb = -a1
    zaa = -2 * (b + u) * a1**3
    zab = a1**2
    v = -m * A + Gv
    g = np.stack([-A + Gm, -m * a1 + Gz * za, -A + Gm + Gq, Gz * zb], axis=1)
    h = np.stack([
        Gmm,                                  # r r
        -a1 + Gmz * za,                       # r α
        Gmm + Gmq,                            # r s
        Gmz * zb,                             # r β
        m * a1**2 + Gzz * za**2 + Gz * zaa,   # α α
        -a1 + (Gmz + Gzq) * za,               # α s
        Gzz * za * zb + Gz * zab,             # α β
        Gmm + 2 * Gmq + Gqq,                  # s s
        (Gmz + Gzq) * zb,                     # s β
        Gzz * zb**2,                          # β β
    ], axis=1)
    if rest.any():
        xr = table.xu[table.pair_xi[rest]]
        v[rest], g[rest], h[rest] = log_j_terms(r + xr, s + 1.0, a[rest], b[rest], u[rest])
    return v, g, h


def _upper_outer(g):
    return np.stack([g[:, i] * g[:, j] for i, j in _UPPER], axis=1)


def _sum_by(code, weights, values, P):
    """Weighted column sums of ``values`` (n, k) per pattern code: (P, k).

    ``code`` ascending (the rows and pairs of a :class:`PairTable` are sorted
    by pattern): one pass of ``numpy.add.reduceat`` over the rows instead of
    a ``bincount`` per column.
    """
    if np.any(code[1:] < code[:-1]):  # not expected (pattern_codes sorts)
        return np.stack([np.bincount(code, weights=weights * values[:, j], minlength=P)
                         for j in range(values.shape[1])], axis=1)
    starts = np.searchsorted(code, np.arange(P))
    ends = np.append(starts[1:], len(code))
    used = starts < ends
    out = np.zeros((P, values.shape[1]))
    if used.any():
        out[used] = np.add.reduceat(values * weights[:, None], starts[used], axis=0)
    return out


def _full(upper):
    """(P, 10) upper-triangle entries to (P, 4, 4) symmetric matrices."""
    out = np.empty((len(upper), 4, 4))
    for k, (i, j) in enumerate(_UPPER):
        out[:, i, j] = out[:, j, i] = upper[:, k]
    return out


def _log_k(l1, l2):
    """Return ``log(J(t_x) - J(T))`` from ``log J`` at both ends, ``R = J(T) / J(t_x)``.

    Where t_x = T there is no death term: ``log`` -inf, ``R`` 0.
    """
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):
        R = np.exp(l2 - l1)
        some = R < 1
        R = np.where(some, R, 0.0)
        return np.where(some, l1 + np.log1p(-R), -np.inf), R, some


def log_death(r, alpha, s, beta, x, tx, T) -> np.ndarray:
    """``log ∫_{t_x}^T (α+τ)^-(r+x) (β+τ)^-(s+1) dτ`` per customer (-inf where t_x = T).

    ``s`` times it is the likelihood of a death between the last purchase and
    ``T`` (the module docstring's ``J(t_x) - J(T)``). ``alpha`` and ``beta``
    one number or one per customer (covariates); ``r`` and ``s`` one number.
    """
    x, tx, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, tx, T))
    shape = x.shape
    x, tx, T = x.ravel(), tx.ravel(), T.ravel()
    alpha = np.broadcast_to(np.asarray(alpha, dtype=float), shape).ravel()
    beta = np.broadcast_to(np.asarray(beta, dtype=float), shape).ravel()
    r, s = float(np.ravel(r)[0]), float(np.ravel(s)[0])
    if not len(x):
        return np.empty(shape)
    from crmstats.clv.models.covariates import pattern_codes

    scales, code = pattern_codes(np.column_stack([alpha, beta]))
    table = PairTable(code, x, tx, T, np.ones(len(x)))
    with np.errstate(all="ignore"):
        lv = _pair_terms(table, r, s, scales[:, 0], scales[:, 1])[0]
    log_k = _log_k(lv[table.i_tx], lv[table.i_T])[0]
    return log_k[table.inverse].reshape(shape)


def pattern_derivatives(table: PairTable, r: float, s: float, alpha: np.ndarray,
                        beta: np.ndarray, order: int = 2):
    """Per pattern: log-likelihood (P,), gradient (P, 4), Hessian (P, 4, 4) in (r, α_p, s, β_p).

    ``alpha``, ``beta``: each pattern's scales. Natural parameters (see
    :func:`to_log_params`); ``order`` 0 gives the values only, 1 no Hessian
    (None). The values are the quadrature's, as the model's own evaluation.
    """
    alpha = np.asarray(alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    lv, lg, lh = _pair_terms(table, r, s, alpha, beta)
    c, x, T = table.code, table.x, table.T
    a, b = alpha[c], beta[c]
    # dead: log s + log(J(t_x) - J(T)), with R = J(T)/J(t_x) (no death term where t_x = T)
    log_k, R, some = _log_k(lv[table.i_tx], lv[table.i_T])
    ld = np.log(s) + log_k
    aT, bT = a + T, b + T
    log_aT, log_bT = np.log(aT), np.log(bT)
    rx = r + x
    la = -rx * log_aT - s * log_bT
    big = np.maximum(la, ld)
    log_e = big + np.log1p(np.exp(np.minimum(la, ld) - big))
    xr = r + table.xu
    P = table.n_patterns
    w = table.w
    w_p = np.bincount(c, weights=w, minlength=P)  # customers per pattern
    log_a, log_b = np.log(alpha[:P]), np.log(beta[:P])
    # head: Γ(r+x)/Γ(r) per row, r log α + s log β per pattern
    f = (np.bincount(c, weights=w * (log_e + (gammaln(xr) - gammaln(r))[table.row_xi]),
                     minlength=P) + w_p * (r * log_a + s * log_b))
    if order == 0:
        return f, None, None
    pi = np.where(some, np.exp(ld - log_e), 0.0)
    inv = np.where(some, 1 / (1 - R), 0.0)
    g1, g2 = lg[table.i_tx], lg[table.i_T]
    gK = (g1 - R[:, None] * g2) * inv[:, None]
    ga = np.stack([-log_aT, -rx / aT, -log_bT, -s / bT], axis=1)
    gE = (1 - pi)[:, None] * ga + pi[:, None] * gK
    gE[:, 2] += pi / s
    gE[:, 0] += (psi(xr) - psi(r))[table.row_xi]
    grad = _sum_by(c, w, gE, P)
    gE[:, 0] -= (psi(xr) - psi(r))[table.row_xi]
    grad += w_p[:, None] * np.stack([log_a, r / alpha[:P], log_b, s / beta[:P]], axis=1)
    if order == 1:
        return f, grad, None
    # Σ w [(1-π)(Ha + ga gaᵀ) + π(Hd + gd gdᵀ) - gE gEᵀ] + head, with gd = gK + e_s / s and
    # Hd = [H1 + g1 g1ᵀ - R (H2 + g2 g2ᵀ)] / (1-R) - gK gKᵀ - e_s e_sᵀ / s², so that
    # π(Hd + gd gdᵀ) = π [H1 + g1 g1ᵀ - R (H2 + g2 g2ᵀ)] / (1-R) + π (gK e_sᵀ + e_s gKᵀ) / s
    wp = w * pi * inv
    c_pair = (np.bincount(table.i_tx, weights=wp, minlength=len(lv))
              - np.bincount(table.i_T, weights=wp * R, minlength=len(lv)))
    wa = w * (1 - pi)
    hess = (_full(_sum_by(table.pair_code, c_pair, lh, P))
            + _gram_by(table.pair_code, c_pair, lg, P)
            + _gram_by(c, wa, ga, P) - _gram_by(c, w, gE, P))
    cross = _sum_by(c, w * pi / s, gK, P)  # π (gK e_sᵀ + e_s gKᵀ) / s
    hess[:, 2, :] += cross
    hess[:, :, 2] += cross
    # the rest of Ha (the alive term's own second derivatives) and the head's
    diag = _sum_by(c, w, np.stack([
        (polygamma(1, xr) - polygamma(1, r))[table.row_xi],  # r r
        -(1 - pi) / aT,                                       # r α
        (1 - pi) * rx / aT**2,                                # α α
        -(1 - pi) / bT,                                       # s β
        (1 - pi) * s / bT**2,                                 # β β
    ], axis=1), P)
    a_p, b_p = alpha[:P], beta[:P]
    hess[:, 0, 0] += diag[:, 0]
    hess[:, 1, 1] += diag[:, 2] - w_p * r / a_p**2
    hess[:, 3, 3] += diag[:, 4] - w_p * s / b_p**2
    for (i, j), k, wt in (((0, 1), 1, w_p / a_p), ((2, 3), 3, w_p / b_p)):
        hess[:, i, j] += diag[:, k] + wt
        hess[:, j, i] += diag[:, k] + wt
    return f, grad, hess


#: Up to this many patterns, :func:`_gram_by` sums per pattern with one product each.
GRAM_LOOP = 64


def _gram_by(code, weights, values, P):
    """``Σ w v vᵀ`` per pattern code (rows sorted by code, as :func:`_sum_by`): (P, 4, 4).

    A product per pattern (``einsum``: no threaded BLAS) where there are few,
    otherwise the outer products' upper triangles summed by :func:`_sum_by`.
    """
    if P > GRAM_LOOP or np.any(code[1:] < code[:-1]):
        return _full(_sum_by(code, weights, _upper_outer(values), P))
    bounds = np.searchsorted(code, np.arange(P + 1))
    out = np.zeros((P, values.shape[1], values.shape[1]))
    for p in range(P):
        lo, hi = bounds[p], bounds[p + 1]
        if hi > lo:
            v = values[lo:hi]
            out[p] = np.einsum("ni,nj->ij", v * weights[lo:hi, None], v)
    return out


def to_log_params(theta: np.ndarray, g: np.ndarray, h: np.ndarray | None):
    """Gradient and Hessian in natural parameters (rows: patterns) to log-parameters."""
    g_log = theta * g
    if h is None:
        return g_log, None
    h_log = theta[:, :, None] * h * theta[:, None, :]
    idx = np.arange(theta.shape[1])
    h_log[:, idx, idx] += g_log
    return g_log, h_log

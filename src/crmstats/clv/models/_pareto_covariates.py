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
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, polygamma, psi

from crmstats.clv.models import _pareto_quadrature as _pq
from crmstats.clv.models._pareto_quadrature import (  # noqa: F401 (tests use them from here)
    SMALL_NODES,
    _quadrature,
    _rule_derivatives,
    _rules,
    _rules_for,
    small_tier_limits,
)
from crmstats.clv.models._pareto_wide import _UPPER, log_j_terms

__all__ = ["PairTable", "log_death", "pattern_derivatives"]

#: Gauss-Jacobi nodes where the integrand's singularity is far (z ≤ Z_NARROW), and nearer.
N_NODES, N_NODES_WIDE = 24, 64
Z_NARROW, Z_WIDE = 0.9, 0.99
#: ... and where the factor ``(1 - zt)^-q`` is not too steep: its log-slope at ``t = 1``,
#: ``q z / (1 - z)``, at most these (measured: beyond them the rules' error in log J
#: passes 1e-11; at s = 79, z = 0.99 the 64-node rule was wrong by 27 in log J).
STIFF_NARROW, STIFF_WIDE = 15.0, 80.0


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
    for n, tier in (*tiers, (N_NODES, left), (N_NODES_WIDE, wide)):
        members = table.pair_order[tier[table.pair_order]]  # the tier's pairs, by x
        if not len(members):
            continue
        used, starts, counts = np.unique(table.pair_xi[members], return_index=True,
                                         return_counts=True)
        rules = _rules_for(table, r + s, n, used)
        small = counts < _pq.BATCH_BELOW
        for j in np.flatnonzero(~small):
            idx = members[starts[j]:starts[j] + counts[j]]
            for flag in (False, True):
                sel = idx[reflect[idx] == flag]
                if len(sel):
                    out[:, sel] = _quadrature(z[sel], q, flag, rules[j])
        if small.any():  # the small groups in one call, each pair with its rule
            few = np.flatnonzero(small)
            row = np.repeat(np.arange(len(few)), counts[few])
            sel = members[np.concatenate([np.arange(starts[j], starts[j] + counts[j])
                                          for j in few])]
            out[:, sel] = _pq.quadrature_rows(z[sel], q, reflect[sel],
                                              _pq.stack_rules([rules[j] for j in few]), row)
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

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
#: Fewer nodes where the singularity is farther still: (nodes, largest z, largest q z/(1-z)),
#: within Z_NARROW (measured like the thresholds above: log J within 1e-12; 12 nodes were not,
#: as a rule kept across evaluations is shifted by a factor ρ^Δ that fewer nodes integrate
#: less well). On the 100,000-customer benchmark most pairs fall here: a fifth less time.
SMALL_TIERS = ((16, 0.7, 8.0),)
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


def _rules_for(table, c: float, n: int, x_index: np.ndarray) -> list:
    """Per distinct x of ``x_index``: the weight vectors of :func:`_quadrature` at m = c + x."""
    m = c + table.xu[x_index]
    out = [None] * len(x_index)
    small = np.flatnonzero(m < M_KEEP)
    if len(small):
        parts = _rule_derivatives(m[small], n)
        for j, i in enumerate(small):
            out[i] = tuple(p[j] for p in parts)
    cache = table.rules.setdefault(n, {})
    large = np.flatnonzero(m >= M_KEEP)
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
    for n, z_max, stiff_max in SMALL_TIERS:
        tier = left & (z <= min(z_max, Z_NARROW)) & (stiff <= stiff_max)
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
    """Weighted column sums of ``values`` (n, k) per pattern code: (P, k)."""
    return np.stack([np.bincount(code, weights=weights * values[:, j], minlength=P)
                     for j in range(values.shape[1])], axis=1)


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
    la = -(r + x) * np.log(aT) - s * np.log(bT)
    big = np.maximum(la, ld)
    log_e = big + np.log1p(np.exp(np.minimum(la, ld) - big))
    xr = r + table.xu
    head = (gammaln(xr) - gammaln(r))[table.row_xi] + r * np.log(a) + s * np.log(b)
    P = table.n_patterns
    w = table.w
    f = np.bincount(c, weights=w * (head + log_e), minlength=P)
    if order == 0:
        return f, None, None
    pi = np.where(some, np.exp(ld - log_e), 0.0)
    inv = np.where(some, 1 / (1 - R), 0.0)
    g1, g2 = lg[table.i_tx], lg[table.i_T]
    gK = (g1 - R[:, None] * g2) * inv[:, None]
    ga = np.stack([-np.log(aT), -(r + x) / aT, -np.log(bT), -s / bT], axis=1)
    gE = (1 - pi)[:, None] * ga + pi[:, None] * gK
    gE[:, 2] += pi / s
    gh = np.stack([(psi(xr) - psi(r))[table.row_xi] + np.log(a), r / a, np.log(b), s / b],
                  axis=1)
    grad = _sum_by(c, w, gh + gE, P)
    if order == 1:
        return f, grad, None
    # Σ w [(1-π)(Ha + ga gaᵀ) + π(Hd + gd gdᵀ) - gE gEᵀ] + head, with gd = gK + e_s / s and
    # Hd = [H1 + g1 g1ᵀ - R (H2 + g2 g2ᵀ)] / (1-R) - gK gKᵀ - e_s e_sᵀ / s², so that
    # π(Hd + gd gdᵀ) = π [H1 + g1 g1ᵀ - R (H2 + g2 g2ᵀ)] / (1-R) + π (gK e_sᵀ + e_s gKᵀ) / s
    wp = w * pi * inv
    c_pair = (np.bincount(table.i_tx, weights=wp, minlength=len(lv))
              - np.bincount(table.i_T, weights=wp * R, minlength=len(lv)))
    upper = _sum_by(table.pair_code, c_pair, lh + _upper_outer(lg), P)
    row = -_upper_outer(gE) * w[:, None]
    wa = w * (1 - pi)
    row += _upper_outer(ga) * wa[:, None]
    cross = (w * pi / s)[:, None] * gK
    for k, (i, j) in enumerate(_UPPER):
        if i == 2 or j == 2:
            row[:, k] += cross[:, j if i == 2 else i] * (2.0 if i == j else 1.0)
    trig = (polygamma(1, xr) - polygamma(1, r))[table.row_xi]
    row[:, 0] += w * trig                                   # r r
    row[:, 1] += wa * -1 / aT + w / a                       # r α
    row[:, 4] += wa * (r + x) / aT**2 - w * r / a**2        # α α
    row[:, 8] += wa * -1 / bT + w / b                       # s β
    row[:, 9] += wa * s / bT**2 - w * s / b**2              # β β
    upper += _sum_by(c, np.ones(len(w)), row, P)
    return f, grad, _full(upper)


def to_log_params(theta: np.ndarray, g: np.ndarray, h: np.ndarray | None):
    """Gradient and Hessian in natural parameters (rows: patterns) to log-parameters."""
    g_log = theta * g
    if h is None:
        return g_log, None
    h_log = theta[:, :, None] * h * theta[:, None, :]
    idx = np.arange(theta.shape[1])
    h_log[:, idx, idx] += g_log
    return g_log, h_log

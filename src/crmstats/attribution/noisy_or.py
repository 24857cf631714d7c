"""The noisy-OR conversion model of :class:`~crmstats.attribution.IncrementalityModel`.

A journey's chance to convert is

    P = a(z) * (1 - (1 - q0) * prod_c exp(-lambda_c x_c))

* ``a(z) = expit(intercept + z'gamma)``: the chance that the contact is in the
  market at all (a share of contacts never buys, whatever reaches them — the
  "cure" fraction of a mixture cure model [2]_), on the contact's covariates;
* ``q0 = expit(baseline)``: the chance that an in-market contact converts
  with no channel;
* ``1 - exp(-lambda_c x_c)``: the chance that channel ``c`` (its presence,
  log touches or decayed exposure ``x_c``) brings about a conversion that
  would not have happened otherwise, independently of the other channels
  (the noisy-OR of Pearl [1]_; the additive-hazard form of Zhang et al.'s
  attribution model [3]_), ``lambda_c >= 0``.

Channels are sub-additive: a channel adds less to a journey that other
channels already made likely to convert, where a logistic model makes
effects grow with the other channels' (on the probability scale). Both are
assumptions; :class:`~crmstats.attribution.IncrementalityModel` with
``link="auto"`` fits both and keeps the one with the better AIC.

Parameters are fitted by maximum likelihood (projected Fisher scoring with
the bounds ``lambda >= 0``; an optional ridge on ``lambda``); the ordering of the
parameter vector follows the logistic model's design — intercept, channel
terms, covariates — with ``baseline`` last.

References
----------
.. [1] Pearl, J. (1988). Probabilistic Reasoning in Intelligent Systems.
   Morgan Kaufmann, section 4.3.2 (noisy-OR).
.. [2] Farewell, V. T. (1982). The use of mixture models for the analysis of
   survival data with long-term survivors. Biometrics 38(4), 1041-1046.
.. [3] Zhang, Y., Wei, Y. and Ren, J. (2014). Multi-touch attribution in
   online advertising with survival theory. IEEE International Conference on
   Data Mining (ICDM), 687-696.
"""

from __future__ import annotations

import numpy as np

__all__ = ["noisy_or_fit", "noisy_or_increments", "noisy_or_information", "noisy_or_jacobian",
           "noisy_or_prob"]

_TINY = 1e-12
#: A channel hazard above this (1 - exp(-30): the channel converts every in-market journey it
#: touches) marks a fit that ran off to the boundary (see :func:`noisy_or_fit`).
MAX_HAZARD = 30.0


def _expit(z):
    """Return the logistic function of ``z`` (SciPy's, imported on use: a lean import)."""
    from scipy.special import expit

    return expit(z)


#: Rows per block when the rows' derivatives are summed into a score or an information
#: matrix: two (rows x parameters) arrays of a block at a time instead of all rows' (on the
#: 10x demo's 367,305 path rows, 70 MB each; the default demo's rows are one block).
BLOCK_ROWS = 131_072


def _blocks(n: int):
    """Slices of ``n`` rows, ``BLOCK_ROWS`` at a time (views of the arrays: no copies)."""
    return [slice(i, min(i + BLOCK_ROWS, n)) for i in range(0, max(n, 1), BLOCK_ROWS)]


def _parts(theta, x, z):
    """Return ``(a, miss, e)``: in-market chance, 1 - q0, and exp(-x lambda) per row."""
    q = x.shape[1]
    lam = theta[1:1 + q]
    a = _expit(theta[0] + z @ theta[1 + q:-1]) if z.shape[1] else np.full(
        len(x), _expit(theta[0]))
    miss = _expit(-theta[-1])
    e = np.exp(-(x @ lam))
    return a, miss, e


def noisy_or_prob(theta, x, z):
    """Conversion probability per row."""
    a, miss, e = _parts(theta, x, z)
    return a * (1.0 - miss * e)


def _gradient_rows(theta, x, z):
    """``P`` per row and the derivative of ``P`` by every parameter (rows x parameters)."""
    a, miss, e = _parts(theta, x, z)
    p = a * (1.0 - miss * e)
    d_eta = p * (1.0 - a)                   # by the in-market log-odds
    d_lam = a * miss * e                    # by lambda_c, per unit of x_c
    d_base = a * e * miss * (1.0 - miss)    # by the baseline log-odds
    g = np.column_stack([d_eta, x * d_lam[:, None], z * d_eta[:, None], d_base])
    return p, g


def _objective(theta, x, z, conv, nulls, pen):
    a, miss, e = _parts(theta, x, z)
    p = np.clip(a * (1.0 - miss * e), _TINY, 1.0 - _TINY)
    q = x.shape[1]
    lam = theta[1:1 + q]
    ll = np.sum(conv * np.log(p) + nulls * np.log1p(-p)) - 0.5 * pen * np.sum(lam * lam)
    d_p = conv / p - nulls / (1.0 - p)
    d_eta = d_p * p * (1.0 - a)
    grad = np.empty_like(theta)
    grad[0] = d_eta.sum()
    grad[1:1 + q] = x.T @ (d_p * a * miss * e) - pen * lam
    grad[1 + q:-1] = z.T @ d_eta
    grad[-1] = np.sum(d_p * a * e * miss * (1.0 - miss))
    return -ll, -grad


def _starts(conv, nulls, q, p):
    rate = float(conv.sum()) / max(float((conv + nulls).sum()), 1.0)
    out = []
    for ceiling, base in ((4.0, 0.25), (2.0, 0.5)):
        a0 = min(max(ceiling * rate, 1e-3), 0.95)
        out.append(np.r_[np.log(a0 / (1 - a0)), np.full(q, 0.1), np.zeros(p),
                         np.log(base / (1 - base))])
    return out


def _scoring(theta, x, z, conv, nulls, pen, max_iter=100, tol=1e-8):
    """Projected Fisher scoring from ``theta``; returns ``(theta, converged)``.

    Each step solves the Fisher information for the free parameters (a
    ``lambda`` at its bound 0 whose score points below it is held there),
    halving the step until the penalised log-likelihood does not drop;
    converged when no parameter moves by more than ``tol``.
    """
    q = x.shape[1]
    lam = slice(1, 1 + q)
    trials = conv + nulls
    theta = np.asarray(theta, dtype=float).copy()
    theta[lam] = np.maximum(theta[lam], 0.0)
    f = _objective(theta, x, z, conv, nulls, pen)[0]
    for _ in range(max_iter):
        score = np.zeros(len(theta))
        info = np.zeros((len(theta), len(theta)))
        for rows in _blocks(len(x)):  # the rows' derivatives a block at a time (memory)
            p, g = _gradient_rows(theta, x[rows], z[rows])
            p = np.clip(p, _TINY, 1.0 - _TINY)
            score += g.T @ ((conv[rows] - trials[rows] * p) / (p * (1.0 - p)))
            info += (g * (trials[rows] / (p * (1.0 - p)))[:, None]).T @ g
        score[lam] -= pen * theta[lam]
        info[lam, lam] += pen * np.eye(q)
        held = np.zeros(len(theta), dtype=bool)
        held[lam] = (theta[lam] <= 0.0) & (score[lam] <= 0.0)
        free = ~held
        step = np.zeros(len(theta))
        try:
            step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        except np.linalg.LinAlgError:
            step[free] = np.linalg.lstsq(info[np.ix_(free, free)], score[free], rcond=None)[0]
        for _half in range(30):
            trial = theta + step
            trial[lam] = np.maximum(trial[lam], 0.0)
            f_trial = _objective(trial, x, z, conv, nulls, pen)[0]
            if np.isfinite(f_trial) and f_trial <= f + 1e-10 * abs(f):
                break
            step = step / 2.0
        else:
            return theta, False
        moved = np.max(np.abs(trial - theta))
        theta, f = trial, f_trial
        if moved < tol:
            return theta, True
    return theta, False


def noisy_or_fit(x, z, conv, nulls, *, penalty=0.0):
    """Maximum-likelihood fit; returns ``(theta, converged, loglik)``.

    Parameters
    ----------
    x : ndarray (rows x q)
        Channel terms (presence, and optionally log touches / decayed exposure), >= 0.
    z : ndarray (rows x p)
        Covariates of the in-market chance (may have 0 columns).
    conv, nulls : ndarray
        Converting and non-converting journeys per row.
    penalty : float
        Ridge on ``lambda``, per row of the fit with journeys (as the logistic
        model's ``penalty``).

    Projected Fisher scoring (:func:`_scoring`) from a start at four times
    the observed conversion rate as the in-market chance, and from a second
    start when that does not converge; L-BFGS-B with the bounds finishes a
    start that scoring does not bring to convergence. A fit with a
    hazard above :data:`MAX_HAZARD` is reported as not converged (degenerate).
    """
    from scipy.optimize import minimize

    q, p = x.shape[1], z.shape[1]
    keep = (conv + nulls) > 0
    if not keep.all():  # rows without journeys add nothing (no copies when there are none)
        x, z, conv, nulls = x[keep], z[keep], conv[keep], nulls[keep]
    pen = float(penalty) * max(len(x), 1)
    bounds = [(None, None)] + [(0.0, None)] * q + [(None, None)] * (p + 1)
    best, best_f, best_ok = None, np.inf, False
    for t0 in _starts(conv, nulls, q, p):
        theta, ok = _scoring(t0, x, z, conv, nulls, pen)
        if not ok:
            res = minimize(_objective, theta, args=(x, z, conv, nulls, pen), jac=True,
                           method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-6})
            theta, ok = np.asarray(res.x, dtype=float), bool(res.success)
        f = _objective(theta, x, z, conv, nulls, pen)[0]
        if f < best_f:
            best, best_f, best_ok = theta, f, ok
        if ok:  # the second start is for a first that does not converge
            break
    # a hazard past MAX_HAZARD makes its channel convert every in-market journey for certain:
    # the in-market chance then shrinks to the touched journeys' conversion rate and the
    # hazards run off to infinity (small data: the likelihood is flat along that ridge) — a
    # degenerate fit, not a converged one
    runaway = bool(np.any(best[1:1 + q] > MAX_HAZARD))
    return best, bool(best_ok and np.all(np.isfinite(best)) and not runaway), -float(best_f)


def noisy_or_information(theta, x, z, trials):
    """Fisher information of the parameters (binomial rows with ``trials`` journeys)."""
    info = np.zeros((len(theta), len(theta)))
    for rows in _blocks(len(x)):
        p, g = _gradient_rows(theta, x[rows], z[rows])
        w = trials[rows] / np.clip(p * (1.0 - p), _TINY, None)
        info += (g * w[:, None]).T @ g
    return info


def noisy_or_increments(theta, x, z, trials, k, n_blocks):
    """Incremental conversions per channel: predicted with minus without the channel.

    ``x``'s columns are ``n_blocks`` blocks of ``k`` channel terms (presence first), as in
    the logistic model's design.
    """
    a, miss, e = _parts(theta, x, z)
    q = x.shape[1]
    lam = theta[1:1 + q]
    out = np.empty(k)
    for c in range(k):
        rows = x[:, c] > 0
        cols = [blk * k + c for blk in range(n_blocks)]
        with np.errstate(over="ignore", invalid="ignore"):  # a degenerate fit: inf (warned)
            e_wo = e[rows] * np.exp(x[np.ix_(rows, cols)] @ lam[cols])
        out[c] = np.sum(trials[rows] * a[rows] * miss * (e_wo - e[rows]))
    return out


def noisy_or_jacobian(theta, x, z, trials, k, n_blocks):
    """Return the derivatives of :func:`noisy_or_increments` (channels x parameters)."""
    a, miss, e = _parts(theta, x, z)
    q = x.shape[1]
    lam = theta[1:1 + q]
    jac = np.zeros((k, len(theta)))
    for c in range(k):
        rows = x[:, c] > 0
        cols = [blk * k + c for blk in range(n_blocks)]
        xr = x[rows]
        e_r = e[rows]
        with np.errstate(over="ignore", invalid="ignore"):
            e_wo = e_r * np.exp(xr[:, cols] @ lam[cols])
        r = trials[rows] * a[rows] * miss
        diff = e_wo - e_r
        g_eta = r * (1.0 - a[rows]) * diff
        jac[c, 0] = g_eta.sum()
        jac[c, 1 + q:-1] = z[rows].T @ g_eta
        jac[c, -1] = -(1.0 - miss) * np.sum(r * diff)
        # e falls with every hazard; e without c with every hazard but c's own
        d_lam = xr.T @ (r * e_r) - xr.T @ (r * e_wo)
        d_lam[cols] += xr[:, cols].T @ (r * e_wo)
        jac[c, 1:1 + q] = d_lam
    return jac

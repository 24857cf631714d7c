"""The media-mix model's likelihood: penalised least squares with an analytic Jacobian.

The weekly outcome (scaled by its mean) is

``y_t = X_t w + Σ_c β_c · hill(adstock(x_c / m_c)_t; K_c, S_c) + ε_t``,
``ε_t ~ N(0, σ²)``,

with ``X`` the baseline (intercept, trend, Fourier seasonality, controls) and
``m_c`` channel ``c``'s mean weekly spend (so ``K_c`` is in units of it). The
unconstrained parameters are ``w``, ``log β``, ``logit θ`` (or the Weibull
adstock's ``log shape, log scale``), ``log K`` and ``log S``. Their priors are
normal on that scale [1]_, entered as extra residuals ``(u - m) / τ``; lift
tests enter as residuals ``(model lift - measured lift) / se`` [2]_. The
penalised maximum (a posterior mode) is found by a trust-region least-squares
solver; the curvature ``JᵀJ`` at the mode gives the Laplace approximation of
the posterior [3]_.

References
----------
.. [1] Jin, Y., Wang, Y., Sun, Y., Chan, D. and Koehler, J. (2017). Bayesian
   methods for media mix modeling with carryover and shape effects. Google.
.. [2] Zhang, Y. et al. (2023). Media mix model calibration with Bayesian
   priors. Google. (Lift tests as measurements of the media effect.)
.. [3] Bishop, C. M. (2006). Pattern Recognition and Machine Learning,
   section 4.4 (the Laplace approximation).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from crmstats.attribution.mediacurves import (
    geometric_adstock,
    geometric_adstock_grad,
    hill,
    lag_matrix,
    weibull_weights_grad,
)

#: Prior (mean, sd) on the unconstrained scale, per nonlinear parameter.
PRIORS = {
    "log_beta": (np.log(0.1), 2.0),
    "logit_theta": (np.log(0.4 / 0.6), 1.0),
    "log_weibull_shape": (np.log(2.0), 0.5),
    "log_weibull_scale": (np.log(3.0), 0.7),
    "log_half": (0.0, 0.6),
    "log_shape": (np.log(1.5), 0.35),
}
_LIN_SD = 10.0  # weak ridge on the baseline's coefficients (scaled outcome)


class MediaCore:
    """Arrays and the penalised residuals of one media-mix fit (internal)."""

    def __init__(self, X, spend, y, *, adstock="geometric", max_lag=13, fit_mask=None,
                 lifts=None):
        self.X = np.asarray(X, float)
        self.x = np.asarray(spend, float)  # spend / mean spend
        self.y = np.asarray(y, float)
        self.n, self.p = self.X.shape
        self.k = self.x.shape[1]
        self.adstock = adstock
        self.max_lag = int(max_lag)
        self.mask = np.ones(self.n, bool) if fit_mask is None else np.asarray(fit_mask, bool)
        self.lifts = lifts or []  # (channel index, week mask, lift, se), all scaled
        self.n_carry = 1 if adstock == "geometric" else 2
        self._lag_cache = None
        self.sigma = 1.0
        carry = (["logit_theta"] if adstock == "geometric"
                 else ["log_weibull_shape", "log_weibull_scale"])
        self.blocks = ["log_beta", *carry, "log_half", "log_shape"]
        m = np.array([PRIORS[b][0] for b in self.blocks])
        s = np.array([PRIORS[b][1] for b in self.blocks])
        self.prior_mean = np.concatenate([np.zeros(self.p), np.repeat(m, self.k)])
        self.prior_sd = np.concatenate([np.full(self.p, _LIN_SD), np.repeat(s, self.k)])
        if self.p:
            self.prior_sd[0] = 1e3  # the intercept is free

    @property
    def n_params(self) -> int:
        """Number of unconstrained parameters."""
        return self.p + len(self.blocks) * self.k

    def split(self, u):
        """Return ``(w, {block: array per channel})``."""
        w = u[:self.p]
        rest = u[self.p:].reshape(len(self.blocks), self.k)
        return w, dict(zip(self.blocks, rest, strict=True))

    def _lags(self, x):
        """Return the lag matrix of ``x`` (cached for the fit's own spend)."""
        if x is self.x:
            if self._lag_cache is None:
                self._lag_cache = lag_matrix(self.x, self.max_lag)
            return self._lag_cache
        return lag_matrix(x, self.max_lag)

    def adstock_all(self, u, x=None, grad=False):
        """Adstock of every channel (n × k) at ``u``; with ``grad``, also its derivatives.

        The derivatives are a list, one n × k array per carry-over block (the
        derivative of each channel's adstock with respect to its own parameter).
        """
        x = self.x if x is None else x
        _, blk = self.split(u)
        if self.adstock == "geometric":
            theta = 1.0 / (1.0 + np.exp(-blk["logit_theta"]))
            a = np.column_stack([geometric_adstock(x[:, c], theta[c]) for c in range(self.k)])
            if not grad:
                return a
            da = np.column_stack([geometric_adstock_grad(x[:, c], a[:, c], theta[c])
                                  for c in range(self.k)]) * theta * (1 - theta)
            return a, [da]
        lags = self._lags(x)
        if not grad:
            w = weibull_weights_grad(np.exp(blk["log_weibull_shape"]),
                                     np.exp(blk["log_weibull_scale"]), self.max_lag, grad=False)
            return np.einsum("tlc,lc->tc", lags, w)
        w, d_shape, d_scale = weibull_weights_grad(np.exp(blk["log_weibull_shape"]),
                                                   np.exp(blk["log_weibull_scale"]),
                                                   self.max_lag)
        a = np.einsum("tlc,lc->tc", lags, w)
        return a, [np.einsum("tlc,lc->tc", lags, d_shape),
                   np.einsum("tlc,lc->tc", lags, d_scale)]

    def channel_parts(self, u, x=None):
        """Adstock ``a`` and saturation ``h`` (n × k) at ``u``, for spend ``x``."""
        _, blk = self.split(u)
        a = self.adstock_all(u, x)
        h = hill(a, np.exp(blk["log_half"]), np.exp(blk["log_shape"]))
        return a, h

    def contributions(self, u, x=None, *, bump=None):
        """Baseline (n) and media contributions (n × k), scaled outcome.

        With ``bump`` (e.g. 1.01), also the media contributions with every
        week's spend times ``bump`` (the adstock is linear in spend, so it is
        computed once).
        """
        w, blk = self.split(u)
        a = self.adstock_all(u, x)
        half, shape, beta = (np.exp(blk[b]) for b in ("log_half", "log_shape", "log_beta"))
        media = hill(a, half, shape) * beta
        if bump is None:
            return self.X @ w, media
        return self.X @ w, media, hill(a * bump, half, shape) * beta

    def predict(self, u, x=None):
        """Fitted scaled outcome per week."""
        base, media = self.contributions(u, x)
        return base + media.sum(axis=1)

    def lift_values(self, u):
        """Return the model's lift of each lift test (scaled outcome)."""
        _, media = self.contributions(u)
        return np.array([media[m, c].sum() for c, m, _, _ in self.lifts])

    def residuals(self, u):
        """Weighted residuals: data, priors, lift tests."""
        r = (self.y - self.predict(u))[self.mask] / self.sigma
        prior = (u - self.prior_mean) / self.prior_sd
        parts = [r, prior]
        if self.lifts:
            lv = self.lift_values(u)
            parts.append(np.array([(v - lift) / se for v, (_, _, lift, se)
                                   in zip(lv, self.lifts, strict=True)]))
        return np.concatenate(parts)

    def jacobian(self, u):
        """Analytic Jacobian of :meth:`residuals` (either adstock)."""
        w, blk = self.split(u)
        n, k, p = self.n, self.k, self.p
        half, shape, beta = (np.exp(blk[b]) for b in ("log_half", "log_shape", "log_beta"))
        a, das = self.adstock_all(u, grad=True)
        h = hill(a, half, shape)
        hh = h * (1.0 - h)
        with np.errstate(divide="ignore", invalid="ignore"):
            loga = np.where(a > 0, np.log(np.where(a > 0, a, 1.0)), 0.0)
            dh_da = np.where(a > 0, shape * hh / np.where(a > 0, a, 1.0), 0.0)
        dmu = np.zeros((n, self.n_params))
        dmu[:, :p] = self.X
        col = {b: p + i * k for i, b in enumerate(self.blocks)}
        cols = np.arange(k)
        dmu[:, col["log_beta"] + cols] = beta * h
        carry = [b for b in self.blocks if b not in ("log_beta", "log_half", "log_shape")]
        for b, da in zip(carry, das, strict=True):
            dmu[:, col[b] + cols] = beta * dh_da * da
        dmu[:, col["log_half"] + cols] = -beta * shape * hh
        dmu[:, col["log_shape"] + cols] = beta * hh * shape * (loga - np.log(half))
        jr = -dmu[self.mask] / self.sigma
        parts = [jr, np.diag(1.0 / self.prior_sd)]
        if self.lifts:
            rows = []
            for c, m, _, se in self.lifts:
                row = np.zeros(self.n_params)
                for b in self.blocks:
                    row[col[b] + c] = dmu[m, col[b] + c].sum()
                rows.append(row / se)
            parts.append(np.array(rows))
        return np.vstack(parts)

    def start(self, theta0=0.4):
        """Return a starting point: priors' centres, baseline and betas by linear least squares."""
        u = self.prior_mean.copy()
        if self.adstock == "geometric":
            u[self.p + self.k:self.p + 2 * self.k] = np.log(theta0 / (1 - theta0))
        _, h = self.channel_parts(u)
        design = np.hstack([self.X, h])[self.mask]
        coef, *_ = np.linalg.lstsq(design, self.y[self.mask], rcond=None)
        u[:self.p] = coef[:self.p]
        u[self.p:self.p + self.k] = np.log(np.clip(coef[self.p:], 1e-3, None))
        return u

    def solve(self, u0, max_nfev=200):
        """Run the trust-region least-squares solver from ``u0``."""
        jac = self.jacobian
        # Levenberg-Marquardt (MINPACK's own QR): the trust-region solver's dense SVD calls
        # a multi-threaded BLAS, which on a busy machine is 20x slower than the whole fit
        return least_squares(self.residuals, u0, jac=jac, method="lm", max_nfev=max_nfev,
                             x_scale="jac")

    def fit(self, starts=(0.25, 0.6)):
        """Penalised maximum with σ re-estimated once; the best of a few starts."""
        base, *_ = np.linalg.lstsq(np.hstack([self.X, self.x])[self.mask], self.y[self.mask],
                                   rcond=None)
        resid = self.y[self.mask] - np.hstack([self.X, self.x])[self.mask] @ base
        self.sigma = max(float(np.std(resid)), 1e-6)
        best = None
        for t0 in starts:
            res = self.solve(self.start(t0))
            if best is None or res.cost < best.cost:
                best = res
        dof = max(int(self.mask.sum()) - self.p - 2 * self.k, 1)
        rss = float(np.sum((self.y - self.predict(best.x))[self.mask] ** 2))
        self.sigma = max(np.sqrt(rss / dof), 1e-6)
        best = self.solve(best.x)
        return best

    def covariance(self, u):
        """Laplace covariance ``(JᵀJ)⁻¹`` of the unconstrained parameters at ``u``."""
        jac = self.jacobian(u)
        info = jac.T @ jac
        vals, vecs = np.linalg.eigh((info + info.T) / 2)
        vals = np.maximum(vals, 1e-10 * max(vals.max(), 1e-12))
        return (vecs / vals) @ vecs.T


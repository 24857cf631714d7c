"""The media-mix model's response curves: carry-over (adstock) and saturation (Hill).

Shared by the model (:class:`crmstats.attribution.MediaMixModel`), its budget
optimiser and the simulator's truth (:mod:`crmstats.datasets.media`), so a
curve means the same thing everywhere.

* **Geometric adstock** [1]_: ``a_t = (1 - θ) x_t + θ a_{t-1}`` (``a_0`` starts
  from nothing). Normalised: a steady weekly spend ``x`` has adstock ``x``, so
  carry-over moves the effect in time without creating any.
* **Delayed (Weibull) adstock** [1]_ [3]_: weights ``w_l ∝ pdf_Weibull(l + 1;
  shape, scale)`` for lags ``l = 0 .. max_lag - 1``, normalised to sum 1: the
  effect may peak weeks after the spend (long sales cycles).
* **Hill saturation** [1]_ [2]_: ``h(a) = a^S / (a^S + K^S)``, ``K`` the
  half-saturation spend, ``S`` the shape (``S > 1``: an S-curve).

References
----------
.. [1] Jin, Y., Wang, Y., Sun, Y., Chan, D. and Koehler, J. (2017). Bayesian
   methods for media mix modeling with carryover and shape effects. Google
   Inc. technical report.
.. [2] Hill, A. V. (1910). The possible effects of the aggregation of the
   molecules of haemoglobin on its dissociation curves. J. Physiol. 40, iv-vii.
.. [3] Meta (2021). Robyn: adstock and saturation (Weibull PDF adstock),
   project documentation.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

__all__ = ["geometric_adstock", "geometric_adstock_grad", "hill", "lag_matrix",
           "weibull_adstock", "weibull_weights", "weibull_weights_grad"]


def geometric_adstock(x, theta: float) -> np.ndarray:
    """Normalised geometric adstock along the first axis: ``a_t = (1-θ) x_t + θ a_{t-1}``."""
    x = np.asarray(x, dtype=float)
    return lfilter([1.0 - theta], [1.0, -theta], x, axis=0)


def geometric_adstock_grad(x, a, theta: float) -> np.ndarray:
    """Return d(adstock)/dθ of :func:`geometric_adstock` (given ``a`` at ``θ``).

    From ``a_t = (1-θ) x_t + θ a_{t-1}``: ``d_t = a_{t-1} - x_t + θ d_{t-1}``.
    """
    x = np.asarray(x, dtype=float)
    prev = np.zeros_like(a)
    prev[1:] = a[:-1]
    return lfilter([1.0], [1.0, -theta], prev - x, axis=0)


def weibull_weights(shape: float, scale: float, max_lag: int) -> np.ndarray:
    """Normalised Weibull-pdf lag weights for lags ``0 .. max_lag - 1`` (weeks)."""
    lag = np.arange(1, int(max_lag) + 1, dtype=float)
    z = lag / scale
    w = (shape / scale) * z ** (shape - 1.0) * np.exp(-(z ** shape))
    total = w.sum()
    if not np.isfinite(total) or total <= 0:
        w = np.zeros(int(max_lag))
        w[0] = 1.0
        return w
    return w / total


def weibull_weights_grad(shape, scale, max_lag: int, *, grad: bool = True):
    """Weibull lag weights of many channels and their derivatives, vectorised.

    ``shape`` and ``scale`` are arrays (one entry per channel). Returns
    ``(w, dw_dlog_shape, dw_dlog_scale)``, each ``max_lag × channels``: the
    weights of :func:`weibull_weights` and their derivatives with respect to
    the logs of the shape and the scale. With ``v_l`` the pdf at lag ``l + 1``
    and ``z = (l + 1) / scale``: ``∂ log v / ∂ log shape = 1 + shape · log z ·
    (1 - z^shape)`` and ``∂ log v / ∂ log scale = shape · (z^shape - 1)``; the
    normalised weights' derivative is ``(dv - w Σ dv) / Σ v``. A channel whose
    weights cannot be normalised (all underflow) gets all weight on lag 0 and
    zero derivatives, as :func:`weibull_weights`. With ``grad=False`` only
    ``w`` is returned.
    """
    k_ = np.atleast_1d(np.asarray(shape, dtype=float))[None, :]
    lam = np.atleast_1d(np.asarray(scale, dtype=float))[None, :]
    lag = np.arange(1, int(max_lag) + 1, dtype=float)[:, None]
    z = lag / lam
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        zk = z ** k_
        v = (k_ / lam) * z ** (k_ - 1.0) * np.exp(-zk)
        total = v.sum(axis=0)
        ok = np.isfinite(total) & (total > 0)
        safe = np.where(ok, total, 1.0)
        w = v / safe
        if not grad:
            first = np.zeros_like(w)
            first[0] = 1.0
            return np.where(ok, w, first)
        dv_shape = v * (1.0 + k_ * np.log(z) * (1.0 - zk))
        dv_scale = v * k_ * (zk - 1.0)
        d_shape = (dv_shape - w * dv_shape.sum(axis=0)) / safe
        d_scale = (dv_scale - w * dv_scale.sum(axis=0)) / safe
    first = np.zeros_like(w)
    first[0] = 1.0
    w = np.where(ok, w, first)
    d_shape = np.where(ok & np.isfinite(d_shape), d_shape, 0.0)
    d_scale = np.where(ok & np.isfinite(d_scale), d_scale, 0.0)
    return w, d_shape, d_scale


def lag_matrix(x, max_lag: int) -> np.ndarray:
    """Lagged copies of ``x`` (weeks × channels): ``out[t, l, c] = x[t - l, c]`` (0 before t=0).

    A distributed-lag adstock of every channel is then one contraction,
    ``einsum("tlc,lc->tc", lag_matrix(x, L), weights)`` (computed once per fit).
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    out = np.zeros((n, int(max_lag)) + x.shape[1:])
    for lag in range(min(int(max_lag), n)):
        out[lag:, lag] = x[:n - lag]
    return out


def weibull_adstock(x, shape: float, scale: float, max_lag: int = 13) -> np.ndarray:
    """Delayed adstock: ``a_t = Σ_l w_l x_{t-l}`` with :func:`weibull_weights`."""
    x = np.asarray(x, dtype=float)
    w = weibull_weights(shape, scale, max_lag)
    if x.ndim == 1:
        return np.convolve(x, w)[:len(x)]
    return lfilter(w, [1.0], x, axis=0)


def hill(a, half: float, shape: float) -> np.ndarray:
    """Hill saturation ``a^S / (a^S + K^S)`` (0 at 0, 1/2 at ``K``, towards 1)."""
    a = np.maximum(np.asarray(a, dtype=float), 0.0)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        r = (half / a) ** shape
        out = 1.0 / (1.0 + r)
    return np.where(a > 0, out, 0.0)

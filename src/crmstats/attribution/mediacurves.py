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

__all__ = ["geometric_adstock", "geometric_adstock_grad", "hill", "weibull_adstock",
           "weibull_weights"]


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

"""Shapley-value attribution by exact enumeration of channel coalitions.

The channels are players of a cooperative game whose worth ``v(S)`` for a
coalition ``S`` of channels is the conversions (or conversion value) of the
journeys whose set of channels is contained in ``S`` — what the coalition
would have produced on its own [1]_. A channel's Shapley value is its
marginal contribution averaged over every order in which the coalition can be
assembled:

``phi_i = sum over S not containing i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``.

All ``2**n`` worths come from one subset-sum (zeta) transform of the
conversions per exact channel set, and the ``n`` sums are vectorised, so the
cost is ``O(n 2**n)``: instant up to the default limit of 12 channels.

For this worth the game is a sum of unanimity games, so the Shapley value
equals the conversion-count ("simplified") Shapley value of Zhao et al. [3]_:
each converting journey's conversions split equally among its distinct
channels. The tests use that identity as a check of the enumeration. It is not
the model of Shao & Li [2]_, whose coalition worth is a conversion probability
estimated from converting and non-converting journeys alike.

References
----------
.. [1] Shapley, L. S. (1953). A value for n-person games. In Contributions to
   the Theory of Games II, 307-317.
.. [2] Shao, X. and Li, L. (2011). Data-driven multi-touch attribution models.
   Proceedings of the 17th ACM SIGKDD, 258-264.
.. [3] Zhao, K., Mahboobi, S. H. and Bagheri, S. R. (2018). Shapley value
   methods for attribution modeling in online advertising. arXiv:1804.05327.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import comb

from crmstats.attribution.paths import _path_data_once
from crmstats.estimator import Estimator
from crmstats.exceptions import DataError

__all__ = ["ShapleyAttribution"]


class ShapleyAttribution(Estimator):
    """Conversion-count (simplified) Shapley values of channels, by exact enumeration [1]_ [2]_.

    Parameters
    ----------
    max_channels : int
        Largest number of channels enumerated (``2**n`` coalitions); more raise
        a ``ValueError`` suggesting to group rare channels.

    Attributes
    ----------
    channels_ : list of str
        The channels, sorted.
    n_obs_ : float
        Journeys the model was fitted on (converting and not).
    worth_ : pandas.DataFrame
        ``conversions`` and ``value`` of every coalition, indexed by the
        coalition's bit mask (bit ``i`` = ``channels_[i]``).
    attribution_ : pandas.DataFrame
        Index ``channel``; Shapley values for ``conversions`` and ``value``.
        They sum to the totals of the paths (efficiency).

    References
    ----------
    .. [1] Shapley, L. S. (1953). A value for n-person games.
    .. [2] Zhao, K., Mahboobi, S. H. and Bagheri, S. R. (2018). Shapley value
       methods for attribution modeling in online advertising. arXiv:1804.05327.
    """

    def __init__(self, max_channels: int = 12):
        self.max_channels = max_channels

    def fit(self, paths) -> ShapleyAttribution:
        """Compute the Shapley values of every channel.

        Parameters
        ----------
        paths : pandas.DataFrame
            Path counts from :func:`~crmstats.attribution.build_paths`, or in
            ChannelAttribution's format.

        Returns
        -------
        ShapleyAttribution
            ``self``, fitted.
        """
        data = _path_data_once(paths)
        n = len(data.channels)
        if n > int(self.max_channels):
            raise DataError(
                f"exact Shapley enumeration covers 2**n coalitions; the paths have {n} channels, "
                f"more than max_channels={self.max_channels}. Group rare channels into one "
                "(e.g. 'other') or raise max_channels knowingly (cost grows as n * 2**n)")
        if data.conversions.sum() <= 0:
            raise DataError("paths table: no conversions to attribute", table="paths",
                            column="conversions")
        bits = np.left_shift(np.int64(1), data.codes)
        mask = np.bitwise_or.reduceat(bits, data.starts) if len(bits) else bits
        size = 1 << n
        worth = np.stack([
            np.bincount(mask, weights=data.conversions, minlength=size),
            np.bincount(mask, weights=data.value, minlength=size),
        ], axis=1)
        for i in range(n):  # zeta transform: v(S) = sum over T subset of S of f(T)
            view = worth.reshape(-1, 2, 1 << i, 2)
            view[:, 1] += view[:, 0]
        popcount = np.zeros(size, dtype=np.int64)
        for i in range(n):
            popcount += (np.arange(size) >> i) & 1
        weight = 1.0 / (n * comb(n - 1, np.arange(n), exact=False))  # |S|!(n-|S|-1)!/n!
        phi = np.zeros((n, 2))
        for i in range(n):
            view = worth.reshape(-1, 2, 1 << i, 2)
            sizes = popcount.reshape(-1, 2, 1 << i)[:, 0]
            gain = view[:, 1] - view[:, 0]
            phi[i] = (weight[sizes][..., None] * gain).sum(axis=(0, 1))
        idx = pd.Index(data.channels, name="channel")
        self.channels_ = list(data.channels)
        self.n_obs_ = float((data.conversions + data.nulls).sum())
        self.worth_ = pd.DataFrame(worth, columns=["conversions", "value"],
                                   index=pd.RangeIndex(size, name="coalition"))
        self.attribution_ = pd.DataFrame({"conversions": phi[:, 0], "value": phi[:, 1]},
                                         index=idx)
        return self

    @property
    def shares_(self) -> pd.Series:
        """Share of credited conversions per channel (sums to 1)."""
        self._check_fitted()
        a = self.attribution_["conversions"]
        return a / a.sum()

    def __repr__(self) -> str:
        return f"ShapleyAttribution(max_channels={self.max_channels})"

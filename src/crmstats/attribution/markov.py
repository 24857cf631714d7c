"""Markov-chain attribution with exact removal effects.

Journeys are read as walks of an absorbing Markov chain: from ``(start)``
through channel states to ``(conversion)`` or ``(null)``, with transition
probabilities estimated from the path counts (maximum likelihood: transition
counts over each state's outgoing count) [1]_. The *removal effect* of a
channel is the relative drop in the probability of reaching ``(conversion)``
from ``(start)`` when every transition into a state containing the channel is
sent to ``(null)`` instead [1]_; credited conversions are the total conversions
split in proportion to the removal effects.

Unlike simulation-based implementations (ChannelAttribution [2]_ draws random
walks), the absorption probabilities here are computed **exactly**: with ``Q``
the transitions among transient states and ``r`` the one-step conversion
probabilities, ``x = (I - Q)^{-1} r`` holds each state's conversion
probability [3]_; the system is sparse and solved with
``scipy.sparse.linalg.spsolve``, once for the full chain and once per channel
on the states that do not contain it.

References
----------
.. [1] Anderl, E., Becker, I., von Wangenheim, F. and Schumann, J. H. (2016).
   Mapping the customer journey: Lessons learned from graph-based online
   attribution modeling. International Journal of Research in Marketing
   33(3), 457-474.
.. [2] Altomare, D. and Loris, D. ChannelAttribution (R and Python package):
   ``markov_model``. https://channelattribution.io
.. [3] Kemeny, J. G. and Snell, J. L. (1960). Finite Markov Chains. Van
   Nostrand, chapter III (absorbing chains, the fundamental matrix).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from crmstats.attribution.paths import PathData, _path_data_once
from crmstats.estimator import Estimator
from crmstats.exceptions import DataError

__all__ = ["MarkovAttribution"]

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


class MarkovAttribution(Estimator):
    """Markov-chain attribution of order 1-3 with exact removal effects [1]_.

    Parameters
    ----------
    order : {1, 2, 3}
        Memory of the chain: a state is the tuple of the last ``order`` channels
        of the journey (fewer at the start of a journey: after one touch the
        state is that channel alone). Repeated channels are kept (``a > a`` is a
        self-transition of ``a`` at order 1), which leaves absorption
        probabilities unchanged.

    Attributes
    ----------
    channels_ : list of str
        The channels, sorted.
    n_obs_ : float
        Journeys the model was fitted on (converting and not).
    states_ : list of tuple
        The transient states (tuples of channels).
    transition_matrix_ : pandas.DataFrame
        Transition probabilities; rows ``(start)`` and the states (labelled
        ``"a > b"``), columns the states, ``(conversion)`` and ``(null)``.
    conversion_probability_ : float
        Probability of reaching ``(conversion)`` from ``(start)``; it equals the
        observed conversions per journey (the fitted chain reproduces the
        visit counts).
    removal_effects_ : pandas.Series
        Removal effect per channel (share of conversions lost without it).
    value_removal_effects_ : pandas.Series
        The same for conversion value: the value of a conversion is the mean
        value of conversions leaving the same state.
    attribution_ : pandas.DataFrame
        Index ``channel``; ``conversions`` = total conversions x removal effect
        / sum of removal effects, ``value`` likewise with value removal effects.

    References
    ----------
    .. [1] Anderl, E., Becker, I., von Wangenheim, F. and Schumann, J. H.
       (2016). Mapping the customer journey: Lessons learned from graph-based
       online attribution modeling. IJRM 33(3), 457-474.
    """

    def __init__(self, order: int = 1):
        self.order = order

    def fit(self, paths) -> MarkovAttribution:
        """Estimate the chain from path counts and compute the removal effects.

        Parameters
        ----------
        paths : pandas.DataFrame
            Path counts from :func:`~crmstats.attribution.build_paths`, or in
            ChannelAttribution's format (``"a > b"``, ``total_conversions``,
            ``total_conversion_value``, ``total_null``).

        Returns
        -------
        MarkovAttribution
            ``self``, fitted.
        """
        if self.order not in (1, 2, 3) or isinstance(self.order, bool):
            raise ValueError(f"order must be 1, 2 or 3, got {self.order!r}")
        data = _path_data_once(paths)
        weight = data.conversions + data.nulls
        if data.conversions.sum() <= 0:
            raise DataError("paths table: no conversions; attribution needs at least one "
                            "converting path", table="paths", column="conversions")
        keep = weight > 0
        if not keep.all():  # paths with neither conversions nor nulls carry no information
            data = _subset(data, keep)
            weight = weight[keep]
        k = len(data.channels)
        chain = _build_chain(data, weight, self.order)
        n_states = len(chain["labels"])
        out_total = chain["out_total"]
        q = sp.diags(1.0 / out_total) @ chain["counts"]
        rhs = np.column_stack([chain["conv"] / out_total, chain["value"] / out_total])
        p0 = chain["start"] / weight.sum()
        m = (sp.identity(n_states, format="csc") - q).tocsc()
        base = p0 @ _solve(m, rhs)
        contains = chain["contains"]
        removal = np.zeros((k, 2))
        for c in range(k):
            stay = ~contains[:, c]
            if stay.any():
                sub = m[stay][:, stay]
                without = p0[stay] @ _solve(sub.tocsc(), rhs[stay])
            else:
                without = np.zeros(2)
            with np.errstate(invalid="ignore", divide="ignore"):
                removal[c] = np.where(base > 0, 1.0 - without / base, 0.0)
        removal = np.clip(removal, 0.0, 1.0)
        totals = np.array([data.conversions.sum(), data.value.sum()])
        sums = removal.sum(axis=0)
        credit = np.where(sums > 0, removal / np.where(sums > 0, sums, 1.0), 0.0) * totals
        idx = pd.Index(data.channels, name="channel")
        self.channels_ = list(data.channels)
        self.n_obs_ = float(weight.sum())
        self.states_ = chain["labels"]
        self.conversion_probability_ = float(base[0])
        self.removal_effects_ = pd.Series(removal[:, 0], index=idx, name="removal_effect")
        self.value_removal_effects_ = pd.Series(removal[:, 1], index=idx,
                                                name="value_removal_effect")
        self.attribution_ = pd.DataFrame({"conversions": credit[:, 0], "value": credit[:, 1]},
                                         index=idx)
        names = [" > ".join(s) for s in chain["labels"]]
        dense = np.zeros((n_states + 1, n_states + 2))
        dense[0, :n_states] = p0
        dense[1:, :n_states] = q.toarray()
        dense[1:, n_states] = chain["conv"] / out_total
        dense[1:, n_states + 1] = chain["null"] / out_total
        self.transition_matrix_ = pd.DataFrame(
            dense, index=pd.Index([START, *names], name="from"),
            columns=pd.Index([*names, CONVERSION, NULL], name="to"))
        return self

    @property
    def shares_(self) -> pd.Series:
        """Share of credited conversions per channel (sums to 1)."""
        self._check_fitted()
        a = self.attribution_["conversions"]
        return a / a.sum()

    def __repr__(self) -> str:
        return f"MarkovAttribution(order={self.order})"


def _solve(m, rhs: np.ndarray) -> np.ndarray:
    """Solve ``m @ x = rhs`` exactly (sparse LU); ``rhs`` has one column per quantity."""
    x = spsolve(m, rhs)
    return np.asarray(x).reshape(rhs.shape)


def _subset(data: PathData, keep: np.ndarray) -> PathData:
    touch_keep = np.repeat(keep, data.lengths)
    return PathData(
        channels=data.channels, codes=data.codes[touch_keep], lengths=data.lengths[keep],
        conversions=data.conversions[keep], value=data.value[keep], nulls=data.nulls[keep])


def _build_chain(data: PathData, weight: np.ndarray, order: int) -> dict:
    """Transition counts among the states of an order-``order`` chain, vectorised.

    A state is encoded as the integer ``sum_j (c_{t-j} + 1) * B**j`` over the
    last ``order`` channels (``B`` = channels + 1; digit 0 = before the start),
    so the state ids come from a lookup table instead of a sort.
    """
    k = len(data.channels)
    b = k + 1
    pos = data.position
    code = data.codes + 1
    for j in range(1, order):
        idx = np.flatnonzero(pos >= j)
        code[idx] += (data.codes[idx - j] + 1) * b ** j
    present = np.zeros(b ** order, dtype=np.int64)
    present[code] = 1
    uniq = np.flatnonzero(present)
    lookup = np.cumsum(present) - 1
    sid = lookup[code]
    n_states = len(uniq)
    starts, ends = data.starts, data.ends
    not_last = np.ones(len(code), bool)
    not_last[ends] = False
    frm = np.flatnonzero(not_last)
    pair = sid[frm] * n_states + sid[frm + 1]
    w_touch = weight[data.owner[frm]]
    if n_states <= 4096:
        dense = np.bincount(pair, weights=w_touch, minlength=n_states * n_states)
        counts = sp.csr_matrix(dense.reshape(n_states, n_states))
    else:
        counts = sp.coo_matrix((w_touch, (sid[frm], sid[frm + 1])),
                               shape=(n_states, n_states)).tocsr()
        counts.sum_duplicates()
    last = sid[ends]
    conv = np.bincount(last, weights=data.conversions, minlength=n_states)
    null = np.bincount(last, weights=data.nulls, minlength=n_states)
    value = np.bincount(last, weights=data.value, minlength=n_states)
    start = np.bincount(sid[starts], weights=weight, minlength=n_states)
    out_total = np.asarray(counts.sum(axis=1)).ravel() + conv + null
    digits = np.stack([(uniq // b ** j) % b for j in range(order)], axis=1)  # newest first
    contains = np.zeros((n_states, k), bool)
    for j in range(order):
        d = digits[:, j]
        has = d > 0
        contains[np.flatnonzero(has), d[has] - 1] = True
    labels = [tuple(data.channels[d - 1] for d in row[::-1] if d > 0) for row in digits]
    return {"labels": labels, "counts": counts, "conv": conv, "null": null, "value": value,
            "start": start, "out_total": out_total, "contains": contains}

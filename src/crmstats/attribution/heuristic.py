"""Rule-based (heuristic) attribution: first touch, last touch, linear, time decay, position.

Each rule splits every conversion of a journey among its touches by a fixed
rule; a channel's credit is the sum over its touches (a channel touched twice
is credited twice). They need no model and are what most CRMs report, which is
why the study puts them beside the data-driven models [1]_ [2]_.

References
----------
.. [1] Kannan, P. K., Reinartz, W. and Verhoef, P. C. (2016). The path to
   purchase and attribution modeling: Introduction to special section.
   International Journal of Research in Marketing 33(3), 449-456.
.. [2] Google Analytics Help. Attribution models (first click, last click,
   linear, time decay, position based). https://support.google.com/analytics
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crmstats.attribution.paths import _path_data_once
from crmstats.exceptions import DataError

__all__ = ["HEURISTIC_MODELS", "heuristic"]

#: Names accepted by :func:`heuristic`.
HEURISTIC_MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position_based")


def heuristic(
    paths,
    model: str = "last_touch",
    *,
    position_weights: Sequence[float] = (0.4, 0.2, 0.4),
) -> pd.DataFrame:
    """Credit conversions and value to channels by a fixed rule.

    Parameters
    ----------
    paths : pandas.DataFrame
        Path counts from :func:`~crmstats.attribution.build_paths` (or in
        ChannelAttribution's format, except for ``time_decay``).
    model : {"first_touch", "last_touch", "linear", "time_decay", "position_based"}
        * ``first_touch`` / ``last_touch``: all credit to the first / last touch;
        * ``linear``: equal credit to every touch;
        * ``time_decay``: a touch ``d`` days before the conversion weighs
          ``0.5 ** (d / half_life)``, normalised per journey; needs touch times,
          so the paths must come from ``build_paths(..., half_life=...)``;
        * ``position_based`` (U-shaped): ``position_weights`` = (first, middle,
          last) shares; the middle share is split equally among the middle
          touches; a two-touch journey splits first : last, a one-touch journey
          gives its touch everything.
    position_weights : sequence of 3 floats
        (first, middle, last) shares of ``position_based``, summing to 1.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (every channel of the paths); columns ``conversions``
        and ``value`` credited. They sum to the totals of the paths.
    """
    if model not in HEURISTIC_MODELS:
        raise ValueError(f"model must be one of {', '.join(HEURISTIC_MODELS)}; got {model!r}")
    data = _path_data_once(paths)
    n_touch = len(data.codes)
    owner = data.owner
    lengths = data.lengths
    share = np.zeros(n_touch)
    if model == "first_touch":
        share[data.starts] = 1.0
    elif model == "last_touch":
        share[data.ends] = 1.0
    elif model == "linear":
        share = 1.0 / lengths[owner]
    elif model == "position_based":
        share = _position_shares(lengths, owner, data.starts, data.ends, position_weights)
    if model == "time_decay":
        if data.decay_conversions is None:
            raise DataError(
                "paths table: time_decay needs the touch times; build the paths with "
                "build_paths(touchpoints, conversions, half_life=...) so they carry the "
                "decay_conversions and decay_value columns", table="paths",
                column="decay_conversions")
        conv_w, value_w = data.decay_conversions, data.decay_value
    else:
        conv_w = share * data.conversions[owner]
        value_w = share * data.value[owner]
    k = len(data.channels)
    out = pd.DataFrame({
        "conversions": np.bincount(data.codes, weights=conv_w, minlength=k),
        "value": np.bincount(data.codes, weights=value_w, minlength=k),
    }, index=pd.Index(data.channels, name="channel"))
    return out


def _position_shares(lengths, owner, starts, ends, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (3,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"position_weights must be three non-negative shares (first, middle, "
                         f"last) summing to 1; got {tuple(weights)!r}")
    first, middle, last = w
    share = np.zeros(len(owner))
    n = lengths[owner]
    mid = n >= 3
    share[mid] = middle / (n[mid] - 2)
    long = lengths >= 3
    share[starts[long]] = first
    share[ends[long]] = last
    two = lengths == 2
    ends_two = first + last
    if two.any():
        share[starts[two]] = first / ends_two if ends_two > 0 else 0.5
        share[ends[two]] = last / ends_two if ends_two > 0 else 0.5
    share[starts[lengths == 1]] = 1.0
    return share

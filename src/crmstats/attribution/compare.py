"""Putting attribution models side by side, and scoring them against a known truth."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["credit_shares", "share_error"]


def _credit(model: Any) -> pd.DataFrame:
    frame = getattr(model, "attribution_", model)
    if not isinstance(frame, pd.DataFrame) or "conversions" not in frame.columns:
        raise ValueError("expected a fitted attribution model or the DataFrame of credit per "
                         f"channel (columns conversions, value); got {type(model).__name__}")
    return frame


def credit_shares(models: Mapping[str, Any], *, by: str = "conversions") -> pd.DataFrame:
    """Share of credit per channel under each model, one column per model.

    Parameters
    ----------
    models : mapping of str to a fitted model or a credit DataFrame
        E.g. ``{"last touch": heuristic(paths, "last_touch"), "Markov":
        MarkovAttribution().fit(paths)}``.
    by : {"conversions", "value"}
        Which credit to share out.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (union of the models' channels; a channel a model
        does not credit has share 0), one column per model; each column sums to 1,
        or is empty (NaN) for a model whose own ``share`` column is: too few
        sales to tell the channels' total from zero
        (:func:`~crmstats.attribution.calibrate`,
        :class:`~crmstats.attribution.IncrementalityModel`).
    """
    if by not in ("conversions", "value"):
        raise ValueError(f"by must be 'conversions' or 'value', got {by!r}")
    if not models:
        raise ValueError("models is empty")
    cols, empty = {}, []
    for name, model in models.items():
        frame = _credit(model)
        credit = frame[by].astype(float)
        total = credit.sum()
        if "share" in frame and not frame["share"].notna().any():
            empty.append(name)  # the model says its total is no estimate (calibrate)
        cols[name] = credit / total if total > 0 else credit * 0.0
    out = pd.DataFrame(cols).fillna(0.0)
    out[empty] = np.nan
    out.index.name = "channel"
    return out.sort_index()


def share_error(shares: pd.DataFrame, truth: pd.Series | None) -> pd.DataFrame:
    """Error of each model's credit shares against the true shares.

    Parameters
    ----------
    shares : pandas.DataFrame
        Output of :func:`credit_shares`.
    truth : pandas.Series
        True share per channel (e.g. ``crm.truth["attribution_shares"]`` of
        the simulator: each channel's incremental wins, by removing it from
        every journey, over the sum of these increments). ``None`` (data
        without a known truth, e.g. ``crm.simulated_truth(...)`` on real data)
        gives the table without rows.

    Returns
    -------
    pandas.DataFrame
        Index: the models, best first; columns ``mae`` (mean absolute error of
        the shares over channels), ``max_abs_error`` and ``worst_channel``.
    """
    if truth is None:
        out = pd.DataFrame({"mae": pd.Series(dtype=float), "max_abs_error": pd.Series(dtype=float),
                            "worst_channel": pd.Series(dtype=object)})
        out.index.name = "model"
        return out
    channels = shares.index.union(truth.index)
    s = shares.reindex(channels).fillna(0.0)
    t = truth.reindex(channels).fillna(0.0).astype(float)
    t = t / t.sum()
    err = s.sub(t, axis=0).abs()
    empty = [c for c in shares.columns if not shares[c].notna().any()]  # no shares: no error
    err[empty] = np.nan
    out = pd.DataFrame({
        "mae": err.mean(),
        "max_abs_error": err.max(),
        "worst_channel": [err[c].idxmax() if c not in empty else "" for c in err.columns],
    })
    out.index.name = "model"
    order = np.argsort(out["mae"].to_numpy(), kind="stable")
    return out.iloc[order]

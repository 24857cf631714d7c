"""Figures of the customer 360; each takes the frame its computation returns."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from crmstats.plotting import get_ax, require_columns

__all__ = ["plot_tier_by_stage"]


def plot_tier_by_stage(scores: pd.DataFrame, ax: plt.Axes | None = None, *,
                       cmap: str = "crest") -> plt.Axes:
    """Draw customers by value tier and lifecycle stage: where the value sits in the journey.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`crmstats.customer_360`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    cmap : str
        Colour map.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(scores, ["kind", "value_tier", "lifecycle_stage", "clv"], "customer_360")
    cust = scores[scores["kind"] == "customer"]
    table = pd.crosstab(cust["value_tier"], cust["lifecycle_stage"].astype(object).fillna(
        "(no contact)"))
    table.columns = [textwrap.fill(str(c), 14) for c in table.columns]
    ax = get_ax(ax, figsize=(9, 4))
    sns.heatmap(table, ax=ax, cmap=cmap, annot=table.map(lambda v: f"{v:,}"), fmt="",
                cbar_kws={"label": "customers"}, linewidths=0.5, linecolor="white")
    ax.set_xlabel("lifecycle stage")
    ax.set_ylabel("value tier")
    ax.set_title("Customers by value tier and lifecycle stage")
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=0, labelsize=8)
    return ax

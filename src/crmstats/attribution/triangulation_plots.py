"""Figures of marginal ROAS, of a budget shift and of the sources side by side."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from crmstats.plotting import get_ax, money_axis

__all__ = ["plot_budget_shift", "plot_marginal_roas", "plot_triangulation"]


def _label(channel) -> str:
    return str(channel).replace("_", " ")


def plot_marginal_roas(model, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw each channel's ROAS and marginal ROAS at current spend, with 95 % intervals.

    Parameters
    ----------
    model : MediaMixModel
        Fitted (``roas_`` and ``mroas_``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(9, 4.5))
    m = model.mroas_.sort_values("estimate")
    r = model.roas_.reindex(m.index)
    y = np.arange(len(m))
    for frame, dy, name, color in ((r, 0.18, "ROAS (average)", "tab:gray"),
                                   (m, -0.18, "marginal ROAS (next unit of spend)", "tab:blue")):
        est = frame["estimate"].to_numpy(float)
        err = np.vstack([est - frame["lower_95"].to_numpy(float),
                         frame["upper_95"].to_numpy(float) - est]).clip(min=0)
        ax.errorbar(est, y + dy, xerr=err, fmt="o", color=color, capsize=3, label=name)
    ax.set_yticks(y, [_label(c) for c in m.index])
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("outcome per unit of spend")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    ax.set_title("Return on spend per channel (95 % intervals)")
    return ax


def plot_budget_shift(plan, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw the current and the recommended weekly spend per channel.

    Parameters
    ----------
    plan : BudgetPlan
        From ``MediaMixModel.optimize_budget``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = get_ax(ax, figsize=(9, 4.5))
    a = plan.allocation.sort_values("change")
    y = np.arange(len(a))
    colors = sns.color_palette(n_colors=2)
    ax.barh(y + 0.2, a["current"].to_numpy(float), height=0.4, color=colors[0], label="current")
    ax.barh(y - 0.2, a["recommended"].to_numpy(float), height=0.4, color=colors[1],
            label="recommended")
    ax.set_yticks(y, [_label(c) for c in a.index])
    money_axis(ax, "x", "weekly spend")
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    ax.set_title("Weekly spend per channel: current and recommended split")
    return ax


def plot_triangulation(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw each source's share of the channels' total, side by side per channel.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~crmstats.attribution.triangulate`'s table.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    from crmstats.attribution.triangulation import SOURCES

    cols = [c for c in SOURCES if c in table]
    if not cols:
        raise ValueError("the table holds no source's shares (journey, lifts, media)")
    ax = get_ax(ax, figsize=(10, 4.5))
    s = table[cols].astype(float)
    order = s.mean(axis=1).sort_values(ascending=False).index
    s = s.loc[order]
    width = 0.8 / len(cols)
    x = np.arange(len(s))
    colors = sns.color_palette(n_colors=len(cols))
    for i, c in enumerate(cols):
        ax.bar(x - 0.4 + width * (i + 0.5), s[c].fillna(0).to_numpy(), width=width,
               label=SOURCES[c], color=colors[i])
    ax.set_xticks(x, [_label(c) for c in order], rotation=30, ha="right")
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_ylabel("share of the channels' total")
    ax.legend(frameon=False, fontsize="small")
    ax.set_title("Each channel's share under journeys, experiments and the media-mix model")
    return ax

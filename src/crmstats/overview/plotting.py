"""Figures of the data overview; each takes the frame its computation returns."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from crmstats.plotting import get_ax, legend_with_twin, money_axis, require_columns

__all__ = [
    "plot_monthly_activity",
    "plot_orders_per_customer",
    "plot_spend_by_channel",
    "plot_stage_counts",
]


def plot_monthly_activity(activity: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Revenue per period as bars, with active and new customers on a second axis.

    Parameters
    ----------
    activity : pandas.DataFrame
        Output of :func:`crmstats.overview.monthly_activity`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(activity, ["revenue", "customers", "new_customers"], "monthly_activity")
    ax = get_ax(ax, figsize=(9, 4))
    x = activity.index
    width = pd.Timedelta(days=20)
    ax.bar(x, activity["revenue"], width=width, color=sns.color_palette()[0], alpha=0.6,
           label="revenue")
    money_axis(ax, "y", "revenue")
    ax2 = ax.twinx()
    ax2.plot(x, activity["customers"], color=sns.color_palette()[1], marker="o", ms=3,
             label="active customers")
    ax2.plot(x, activity["new_customers"], color=sns.color_palette()[2], marker="o", ms=3,
             label="new customers")
    ax2.set_ylabel("customers")
    ax2.set_ylim(bottom=0)
    legend_with_twin(ax, ax2, loc="upper left", frameon=False, fontsize=None)
    ax.set_title("Revenue and customers per period")
    return ax


def plot_orders_per_customer(dist: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Bar chart of how many customers placed 1, 2, ... orders.

    Parameters
    ----------
    dist : pandas.DataFrame
        Output of :func:`crmstats.overview.orders_per_customer`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(dist, ["customers", "pooled"], "orders_per_customer")
    ax = get_ax(ax)
    labels = [f"{i}+" if pooled else str(i) for i, pooled in zip(dist.index, dist["pooled"],
                                                                   strict=True)]
    sns.barplot(x=labels, y=dist["customers"].to_numpy(), ax=ax, color=sns.color_palette()[0])
    ax.set_xlabel("orders per customer")
    ax.set_ylabel("customers")
    ax.set_title("Orders per customer")
    return ax


def plot_stage_counts(counts: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal bars of leads per sales-cycle stage, in funnel order.

    Parameters
    ----------
    counts : pandas.DataFrame
        Output of :func:`crmstats.overview.stage_counts`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(counts, ["leads"], "stage_counts")
    ax = get_ax(ax)
    sns.barplot(y=list(counts.index), x=counts["leads"].to_numpy(), ax=ax, orient="h",
                color=sns.color_palette()[0])
    for i, v in enumerate(counts["leads"]):
        ax.text(v, i, f" {v:,}", va="center")
    ax.set_xlabel("leads that entered the stage")
    ax.set_ylabel("")
    ax.set_title("Contacts per sales-cycle stage")
    return ax


def plot_spend_by_channel(spend: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Stacked area of marketing spend per period and channel.

    Parameters
    ----------
    spend : pandas.DataFrame
        Output of :func:`crmstats.overview.spend_by_channel`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(spend, pd.DataFrame) or spend.empty:
        raise ValueError("expected the non-empty DataFrame returned by spend_by_channel")
    ax = get_ax(ax, figsize=(9, 4))
    colors = sns.color_palette("tab10", n_colors=spend.shape[1])
    ax.stackplot(spend.index, spend.T.to_numpy(), labels=list(spend.columns), colors=colors,
                 alpha=0.85)
    money_axis(ax, "y", "spend")
    ax.set_title("Marketing spend per channel")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax

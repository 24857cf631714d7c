"""Figures of the funnel, lead-scoring and lifecycle studies; each returns its Axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import LogNorm
from matplotlib.ticker import MaxNLocator

from crmstats.plotting import get_ax, legend_with_twin, money_axis, percent_axis, require_columns

__all__ = ["plot_calibration", "plot_days_in_stage", "plot_funnel", "plot_lead_kpis",
           "plot_lifecycle", "plot_lift", "plot_pipeline", "plot_stage_flows"]


def plot_funnel(conversion: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal funnel: leads entering each stage, with conversion to the next."""
    require_columns(conversion, ["entered", "conversion_to_next"], "stage_conversion")
    if isinstance(conversion.index, pd.MultiIndex):
        raise ValueError("plot_funnel takes stage_conversion without `by`")
    ax = get_ax(ax, figsize=(8, 0.7 * len(conversion) + 1.2))
    y = np.arange(len(conversion))[::-1]
    width = conversion["entered"].to_numpy(float)
    ax.barh(y, width, left=(width.max() - width) / 2, color=sns.color_palette("Blues_r",
                                                                               len(width)))
    for yi, (stage, row) in zip(y, conversion.iterrows(), strict=True):
        text = f"{stage}: {int(row['entered']):,}"
        if pd.notna(row["conversion_to_next"]):
            text += f"  → {row['conversion_to_next']:.0%} advance"
        ax.text(width.max() / 2, yi, text, ha="center", va="center", fontsize=9)
    ax.set_yticks([])
    ax.set_xticks([])
    ax.set_title("Sales funnel: contacts reaching each stage")
    return ax


def plot_pipeline(pipe, ax: plt.Axes | None = None) -> plt.Axes:
    """Open deals by stage (funnel order, top first), stacked by age bucket.

    Parameters
    ----------
    pipe : Pipeline
        :func:`crmstats.funnel.pipeline`'s result (its ``open`` table).
    ax : matplotlib Axes, optional
    """
    table = getattr(pipe, "open", None)
    if not isinstance(table, pd.DataFrame):
        raise ValueError("plot_pipeline takes the result of funnel.pipeline")
    ax = get_ax(ax, figsize=(8, 0.6 * max(len(table), 1) + 1.6))
    if not len(table) or not table.to_numpy().sum():
        ax.text(0.5, 0.5, "No open deals", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    y = np.arange(len(table))[::-1]
    colors = sns.color_palette("crest", len(table.columns))
    left = np.zeros(len(table))
    for color, col in zip(colors, table.columns, strict=True):
        width = table[col].to_numpy(float)
        ax.barh(y, width, left=left, color="lightgrey" if col == "no date" else color,
                label=str(col))
        left += width
    ax.set_yticks(y, [str(s) for s in table.index])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("open deals")
    ax.legend(title="age", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Open deals by stage and age")
    return ax


def plot_days_in_stage(durations: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Boxplots of days spent in each stage before moving on."""
    require_columns(durations, ["stage", "days"], "stage_durations")
    stages = (list(durations["stage"].cat.categories)
              if isinstance(durations["stage"].dtype, pd.CategoricalDtype)
              else list(pd.unique(durations["stage"])))
    groups = [durations.loc[durations["stage"] == s, "days"].to_numpy(float) for s in stages]
    keep = [i for i, g in enumerate(groups) if len(g)]
    ax = get_ax(ax)
    box = ax.boxplot([groups[i] for i in keep], showfliers=False, patch_artist=True,
                     medianprops={"color": "black"})
    for patch in box["boxes"]:
        patch.set_facecolor("tab:blue")
        patch.set_alpha(0.6)
    ax.set_xticks(range(1, len(keep) + 1), [stages[i] for i in keep])
    ax.set_ylabel("days")
    ax.set_title("Days in stage before moving on (outliers hidden)")
    return ax


def plot_lead_kpis(kpis: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Per channel: cost per lead (bars) and lead → won rate (dots)."""
    require_columns(kpis, ["spend", "leads", "won"], "lead_kpis")
    per = kpis.groupby(level="channel")[["spend", "leads", "won"]].sum()
    per["cost_per_lead"] = per["spend"] / per["leads"].where(per["leads"] > 0)
    per["lead_to_won"] = per["won"] / per["leads"].where(per["leads"] > 0)
    per = per.sort_values("cost_per_lead", ascending=False)
    ax = get_ax(ax, figsize=(9, 4))
    ax.bar(per.index, per["cost_per_lead"], color="tab:blue", alpha=0.6, label="cost per lead")
    money_axis(ax, "y", "cost per lead")
    ax.tick_params(axis="x", rotation=30)
    twin = ax.twinx()
    twin.plot(per.index, per["lead_to_won"], "o", color="tab:red", label="lead → won rate")
    percent_axis(twin)
    twin.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    twin.set_ylim(0, max(0.05, float(per["lead_to_won"].max()) * 1.2))
    ax.set_title("Lead cost and lead quality by channel")
    legend_with_twin(ax, twin, loc="upper right")
    return ax


def plot_lift(model, ax: plt.Axes | None = None) -> plt.Axes:
    """Cumulative gains on the held-out leads: share of outcomes found vs share of leads called."""
    scores = getattr(model, "test_scores_", model)
    require_columns(scores, ["score", "outcome"], "LeadScoringModel.test_scores_")
    ordered = scores.sort_values("score", ascending=False)
    found = ordered["outcome"].cumsum() / max(ordered["outcome"].sum(), 1)
    share = np.arange(1, len(ordered) + 1) / len(ordered)
    ax = get_ax(ax, figsize=(5.5, 5))
    ax.plot(np.concatenate([[0], share]), np.concatenate([[0], found]), label="by score")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="at random")
    ax.set_xlabel("share of leads contacted, best scores first")
    target = getattr(model, "target_", "outcome")
    ax.set_ylabel(f"share of leads with the outcome ({target}) found")
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.set_title(f"Cumulative gains (held out; AUC {getattr(model, 'auc_', np.nan):.2f})")
    ax.legend()
    return ax


def plot_calibration(model, ax: plt.Axes | None = None) -> plt.Axes:
    """Predicted vs observed outcome rate by score bin on the held-out leads."""
    table = getattr(model, "calibration_", model)
    require_columns(table, ["predicted", "observed"], "LeadScoringModel.calibration_")
    ax = get_ax(ax, figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey")
    ax.plot(table["predicted"], table["observed"], marker="o")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed share")
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.set_title("Calibration (held-out leads, score deciles)")
    return ax


def plot_lifecycle(stages: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Contacts per lifecycle stage."""
    require_columns(stages, ["stage"], "lifecycle_stage")
    counts = stages["stage"].value_counts(sort=False)
    ax = get_ax(ax, figsize=(8, 4.5))
    ax.barh(counts.index.astype(str)[::-1], counts.to_numpy()[::-1], color="tab:blue")
    for i, v in enumerate(counts.to_numpy()[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    ax.set_xlabel("contacts")
    ax.set_title("Contacts by lifecycle stage")
    return ax


def plot_stage_flows(flows: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Heatmap of moves between lifecycle stages (period-end snapshots, summed).

    Staying put and stage pairs without any move are left blank; colours are on
    a log scale so small flows (win-backs, new evangelists) stay visible beside
    the stream of new contacts.
    """
    if not isinstance(flows, pd.DataFrame) or flows.empty:
        raise ValueError("expected the DataFrame returned by stage_flows")
    moved = flows.copy().astype(float)
    for s in moved.index.intersection(moved.columns):
        moved.loc[s, s] = np.nan  # staying put is not a flow
    moved = moved.where(moved > 0)
    ax = get_ax(ax, figsize=(9, 6))
    top = float(np.nanmax(moved.to_numpy())) if moved.notna().any().any() else 1.0
    sns.heatmap(moved, annot=True, fmt=".0f", cmap="magma_r", ax=ax, cbar=False,
                norm=LogNorm(vmin=1, vmax=max(top, 2.0)), annot_kws={"fontsize": 7},
                linewidths=0.5, linecolor="0.9")
    ax.set_xlabel("stage at the end of the period")
    ax.set_ylabel("stage at its start")
    ax.set_title("Lifecycle flows month over month (staying put left blank)")
    return ax

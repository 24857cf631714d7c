"""Figures of the churn and key-account studies; each returns its matplotlib Axes."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from crmstats.plotting import (
    get_ax,
    legend_with_twin,
    log_axis,
    money_axis,
    percent_axis,
    require_columns,
)
from crmstats.vocabulary import find_interval

__all__ = [
    "plot_churn_rate",
    "plot_cohort_heatmap",
    "plot_cross_sell",
    "plot_hazard_ratios",
    "plot_mrr_bridge",
    "plot_retention_curves",
    "plot_retention_projection",
    "plot_retention_trend",
    "plot_service_kpis",
    "plot_survival",
]


def _date_axis(ax: plt.Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _cohort_labels(index: pd.Index) -> list[str]:
    if isinstance(index, pd.DatetimeIndex):
        return [d.strftime("%Y-%m") for d in index]
    return [str(i) for i in index]


def plot_cohort_heatmap(table: pd.DataFrame, ax: plt.Axes | None = None, *,
                        title: str = "Retention by acquisition cohort",
                        percent: bool = True) -> plt.Axes:
    """Heatmap of a cohort table (rows: cohorts, columns: age)."""
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("expected the DataFrame returned by cohort_table or retention_matrix")
    ax = get_ax(ax, figsize=(10, max(3.0, 0.28 * len(table) + 1.5)))
    data = table.astype(float)
    later = data.iloc[:, 1:] if data.shape[1] > 1 else data
    # age 0 is 100 % by definition; scale the colours to the later ages
    vmax = float(np.nanmax(later.to_numpy())) if percent and np.isfinite(later).any().any() \
        else None
    sns.heatmap(data, ax=ax, cmap="viridis", annot=len(table.columns) <= 14, vmax=vmax,
                fmt=".0%" if percent else ".0f", cbar_kws={"shrink": 0.7},
                yticklabels=_cohort_labels(table.index), linewidths=0.3,
                annot_kws={"fontsize": 7})
    for text in ax.texts:  # each inside its cell: no bounding box of the layout to measure
        text.set_in_layout(False)
    ax.set_xlabel(f"periods since acquisition ({table.columns.name or 'age'})")
    ax.set_ylabel(table.index.name or "cohort")
    ax.set_title(title)
    return ax


def plot_retention_curves(retention: pd.DataFrame, ax: plt.Axes | None = None, *,
                          max_cohorts: int = 8) -> plt.Axes:
    """Retention curves of the largest-age cohorts, one line each, plus the average."""
    if not isinstance(retention, pd.DataFrame) or retention.empty:
        raise ValueError("expected the DataFrame returned by retention_matrix")
    ax = get_ax(ax)
    shown = retention.iloc[:: max(1, len(retention) // max_cohorts)]
    for label, row in zip(_cohort_labels(shown.index), shown.itertuples(index=False),
                          strict=True):
        ax.plot(retention.columns, np.asarray(row, float), lw=1, alpha=0.6, label=label)
    ax.plot(retention.columns, retention.mean(axis=0, skipna=True), color="black", lw=2.5,
            label="average")
    percent_axis(ax)
    ax.set_xlabel("periods since acquisition")
    ax.set_ylabel("customers buying")
    ax.set_title("Retention curves by cohort")
    ax.legend(fontsize=7, ncol=2)
    return ax


def plot_survival(curves, ax: plt.Axes | None = None, *, truth: pd.Series | None = None,
                  title: str = "Survival (Kaplan-Meier) with 95 % bands") -> plt.Axes:
    """Kaplan-Meier step curves with simultaneous 95 % bands per group (and a true curve)."""
    frame = getattr(curves, "curves", curves)
    require_columns(frame, ["group", "time", "survival"], "survival_curves")
    try:  # the simultaneous band, else the pointwise interval (README "Glossary")
        lo, hi, _ = find_interval(frame, "survival_band")
    except KeyError:
        lo, hi, _ = find_interval(frame, "survival")
    ax = get_ax(ax)
    for group, c in frame.groupby("group", sort=False):
        line = ax.step(c["time"], c["survival"], where="post", label=str(group))[0]
        ax.fill_between(c["time"], c[lo], c[hi], step="post", alpha=0.2,
                        color=line.get_color())
    if truth is not None:
        ax.step(truth.index, truth.to_numpy(), where="post", color="black", ls="--",
                label="true survival (simulator)")
    ax.set_ylim(0, 1.02)
    percent_axis(ax)
    ax.set_xlabel("tenure (periods)")
    ax.set_ylabel("still active")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_hazard_ratios(drivers, ax: plt.Axes | None = None, *,
                       title: str = "Churn drivers (Cox proportional hazards)") -> plt.Axes:
    """Forest plot of hazard ratios with 95 % intervals (log scale).

    Takes a fitted :class:`~crmstats.churn.CoxModel` or
    :class:`~crmstats.churn.ShiftedBetaGeoHazardModel`, or their ``table``.
    """
    table = getattr(drivers, "table", drivers)
    require_columns(table, ["hazard_ratio", "p_value"], "hazard ratios")
    lo, hi, _ = find_interval(table, "hazard_ratio")
    ax = get_ax(ax, figsize=(7, 0.5 * len(table) + 1.5))
    y = np.arange(len(table))[::-1]
    ax.errorbar(table["hazard_ratio"], y,
                xerr=[table["hazard_ratio"] - table[lo],
                      table[hi] - table["hazard_ratio"]],
                fmt="o", color="tab:red", capsize=3)
    ax.axvline(1.0, color="grey", ls="--")
    log_axis(ax, "x")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{i}  (p={p:.3g})" for i, p in zip(table.index, table["p_value"],
                                                               strict=True)])
    ax.set_xlabel("hazard ratio (> 1: churns sooner)")
    ax.set_title(title)
    return ax


def plot_mrr_bridge(bridge: pd.DataFrame, ax: plt.Axes | None = None, *,
                    last: int | None = 12) -> plt.Axes:
    """Waterfall from starting to ending MRR over the last ``last`` observable periods.

    Periods whose start is not observed (the data's first: NaN in
    :func:`~crmstats.churn.mrr_bridge`) are not drawn.
    """
    require_columns(bridge, ["start", "new", "expansion", "contraction", "churned",
                             "reactivated", "end"], "mrr_bridge")
    part = bridge[bridge["start"].notna()]
    if part.empty:
        raise ValueError("mrr_bridge has no period with an observed start (one period of data)")
    part = part.iloc[-last:] if last else part
    steps = [("start", part["start"].iloc[0]), ("new", part["new"].sum()),
             ("expansion", part["expansion"].sum()), ("reactivated", part["reactivated"].sum()),
             ("contraction", -part["contraction"].sum()), ("churned", -part["churned"].sum())]
    ax = get_ax(ax, figsize=(9, 4))
    level = 0.0
    for i, (_, value) in enumerate(steps):
        if i == 0:
            ax.bar(i, value, color="tab:grey")
            level = value
            continue
        color = "tab:green" if value >= 0 else "tab:red"
        ax.bar(i, value, bottom=level, color=color)
        level += value
    ax.bar(len(steps), part["end"].iloc[-1], color="tab:blue")
    ax.set_xticks(range(len(steps) + 1))
    ax.set_xticklabels([s for s, _ in steps] + ["end"])
    first, final = part.index[0], part.index[-1]
    fmt = (lambda d: d.strftime("%Y-%m")) if isinstance(part.index, pd.DatetimeIndex) else str
    ax.set_title(f"MRR bridge {fmt(first)} to {fmt(final)}")
    money_axis(ax, "y", "MRR")
    return ax


def plot_retention_trend(bridge: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Net and gross revenue retention per period."""
    require_columns(bridge, ["nrr", "grr"], "mrr_bridge")
    ax = get_ax(ax)
    ax.plot(bridge.index, bridge["nrr"], marker="o", label="NRR (net revenue retention)")
    ax.plot(bridge.index, bridge["grr"], marker="o", label="GRR (gross revenue retention)")
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    percent_axis(ax)
    ax.set_title("Revenue retention per period")
    if isinstance(bridge.index, pd.DatetimeIndex):
        _date_axis(ax)
    ax.legend()
    return ax


def plot_retention_projection(projection: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Observed survival vs the sBG projection, per cohort (fit ages marked)."""
    require_columns(projection, ["cohort", "age", "observed", "projected", "fitted"],
                    "project_retention")
    ax = get_ax(ax)
    for cohort, c in projection.groupby("cohort"):
        label = pd.Timestamp(cohort).strftime("%Y-%m") if not isinstance(cohort, str) else cohort
        line = ax.plot(c["age"], c["projected"], ls="--", lw=1.2)[0]
        ax.plot(c["age"], c["observed"], marker="o", ms=3, lw=0, color=line.get_color(),
                label=label)
        fit = c[c["fitted"]]
        ax.plot(fit["age"], fit["observed"], marker="o", ms=6, lw=0, mfc="none",
                color=line.get_color())
    percent_axis(ax)
    ax.set_xlabel("age (months)")
    ax.set_ylabel("accounts still active")
    ax.set_title("sBG projection (dashed) vs observed (dots); circled: calibration")
    ax.legend(fontsize=7, ncol=2, title="cohort")
    return ax


def plot_churn_rate(rates: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Active customers (bars) and the churn rate (line) per period.

    The data's first periods, whose churn is not observable yet (NaN in
    :func:`~crmstats.churn.churn_rate`), are shaded.
    """
    require_columns(rates, ["active_start", "churned", "churn_rate"], "churn_rate")
    ax = get_ax(ax)
    ax.bar(rates.index, rates["active_start"], width=20 if len(rates) < 60 else 5,
           color="tab:blue", alpha=0.35, label="active at period start")
    ax.set_ylabel("active customers")
    twin = ax.twinx()
    twin.plot(rates.index, rates["churn_rate"], color="tab:red", marker="o", ms=3,
              label="churn rate")
    percent_axis(twin)
    twin.set_ylabel("churn rate")
    twin.set_ylim(0, max(0.05, float(rates["churn_rate"].max(skipna=True) or 0) * 1.2))
    # the data's first periods, where nobody can be seen to churn yet (NaN), are shaded
    unseen = rates["churn_rate"].isna() & rates["churned"].isna()
    lead = int(np.argmin(unseen.to_numpy())) if not unseen.all() else len(rates)
    if lead and isinstance(rates.index, pd.DatetimeIndex) and len(rates) > 1:
        step = rates.index[1] - rates.index[0]
        ax.axvspan(rates.index[0] - step / 2, rates.index[lead - 1] + step / 2, color="grey",
                   alpha=0.12, lw=0, label="churn not observable yet")
    ax.set_title("Active customers and churn per period")
    if isinstance(rates.index, pd.DatetimeIndex):
        _date_axis(ax)
    legend_with_twin(ax, twin, loc="upper left")
    return ax


def plot_cross_sell(cross: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Cross-sell and upsell rates per period, with categories per account."""
    require_columns(cross, ["cross_sell_rate", "upsell_rate", "categories_per_account"],
                    "cross_sell")
    ax = get_ax(ax)
    ax.plot(cross.index, cross["cross_sell_rate"], marker="o", ms=3, label="cross-sell rate")
    ax.plot(cross.index, cross["upsell_rate"], marker="o", ms=3, label="upsell rate")
    percent_axis(ax)
    twin = ax.twinx()
    twin.plot(cross.index, cross["categories_per_account"], color="grey", ls="--",
              label="categories per account")
    if "breadth" in cross:
        twin.plot(cross.index, cross["breadth"], color="grey", ls=":",
                  label="categories ever held")
    twin.set_ylabel("categories per account")
    ax.set_title("Cross-sell and upsell of key accounts")
    if isinstance(cross.index, pd.DatetimeIndex):
        _date_axis(ax)
    legend_with_twin(ax, twin, loc="upper left")
    return ax


def plot_service_kpis(service: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Tickets per period (bars) and the share resolved within target (line)."""
    require_columns(service, ["tickets", "within_target", "median_hours"], "service_kpis")
    ax = get_ax(ax)
    ax.bar(service.index, service["tickets"], width=20 if len(service) < 60 else 5,
           color="tab:purple", alpha=0.35, label="tickets opened")
    ax.set_ylabel("tickets")
    twin = ax.twinx()
    twin.plot(service.index, service["within_target"], color="tab:green", marker="o", ms=3,
              label="resolved within target")
    twin.set_ylim(0, 1.05)
    percent_axis(twin)
    ax.set_title("Service: tickets and resolution within target")
    if isinstance(service.index, pd.DatetimeIndex):
        _date_axis(ax)
    legend_with_twin(ax, twin, loc="upper left")
    return ax

"""Figures of the CLV study; each takes the frame its computation returns."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from crmstats.plotting import get_ax, money_axis, percent_axis, require_columns

__all__ = [
    "plot_channel_value",
    "plot_clv_distribution",
    "plot_customer_effects",
    "plot_frequency_recency",
    "plot_holdout_comparison",
    "plot_lorenz",
    "plot_tracking",
    "plot_value_bridge",
    "plot_value_migration",
    "plot_value_pyramid",
]


def plot_frequency_recency(grid: pd.DataFrame, ax: plt.Axes | None = None, *,
                           title: str | None = None, cmap: str = "viridis") -> plt.Axes:
    """Heatmap of P(alive) or expected purchases over frequency × recency.

    Parameters
    ----------
    grid : pandas.DataFrame
        Output of :func:`crmstats.clv.frequency_recency_grid`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    title : str, optional
        Figure title.
    cmap : str
        Colour map.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(grid, pd.DataFrame) or grid.index.name != "frequency":
        raise ValueError("expected the DataFrame returned by frequency_recency_grid")
    ax = get_ax(ax, figsize=(8, 5))
    sns.heatmap(grid.iloc[::-1], ax=ax, cmap=cmap, cbar=True,
                xticklabels=max(1, grid.shape[1] // 10), yticklabels=max(1, grid.shape[0] // 10))
    ax.set_xlabel("recency (time of last purchase)")
    ax.set_ylabel("frequency (repeat purchases)")
    ax.set_title(title or "Model over frequency and recency")
    return ax


def plot_holdout_comparison(comparison: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Actual vs predicted mean holdout purchases per calibration frequency.

    Parameters
    ----------
    comparison : pandas.DataFrame
        Output of :func:`crmstats.clv.holdout_comparison`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(comparison, ["actual", "predicted", "pooled"], "holdout_comparison")
    ax = get_ax(ax)
    labels = [f"{i}+" if p else str(i) for i, p in zip(comparison.index, comparison["pooled"],
                                                        strict=True)]
    x = np.arange(len(comparison))
    ax.plot(x, comparison["actual"], marker="o", label="actual")
    ax.plot(x, comparison["predicted"], marker="s", linestyle="--", label="predicted")
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Holdout: actual vs predicted")
    ax.legend(frameon=False)
    return ax


def plot_tracking(track: pd.DataFrame, ax: plt.Axes | None = None, *,
                  cumulative: bool = True, calibration_end=None) -> plt.Axes:
    """Repeat transactions over time, actual vs expected.

    Parameters
    ----------
    track : pandas.DataFrame
        Output of :func:`crmstats.clv.tracking`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    cumulative : bool
        Cumulative curves (default) or per step.
    calibration_end : timestamp-like, optional
        Draws a vertical line at the end of calibration.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(track, ["actual", "expected", "actual_cumulative", "expected_cumulative"],
                    "tracking")
    ax = get_ax(ax, figsize=(9, 4))
    suffix = "_cumulative" if cumulative else ""
    ax.plot(track.index, track["actual" + suffix], label="actual")
    ax.plot(track.index, track["expected" + suffix], linestyle="--", label="model")
    if calibration_end is not None:
        ax.axvline(pd.Timestamp(calibration_end), color="grey", linewidth=1)
        ax.annotate(" end of calibration", (pd.Timestamp(calibration_end), ax.get_ylim()[1]),
                    va="top", fontsize=8, color="grey")
    ax.set_ylabel(("cumulative " if cumulative else "") + "repeat transactions")
    ax.set_title("Repeat transactions: actual vs model")
    ax.legend(frameon=False)
    return ax


def plot_clv_distribution(clv: pd.DataFrame, ax: plt.Axes | None = None, *,
                          by: pd.Series | None = None, clip_quantile: float = 0.99) -> plt.Axes:
    """Histogram of customer lifetime values (optionally one curve per group).

    Parameters
    ----------
    clv : pandas.DataFrame
        Output of :func:`crmstats.clv.customer_lifetime_value`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    by : pandas.Series, optional
        Group per customer (e.g. acquisition channel), aligned on the index.
    clip_quantile : float
        Values above this quantile are clipped so the long tail stays readable.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(clv, ["clv"], "customer_lifetime_value")
    ax = get_ax(ax)
    cap = clv["clv"].quantile(clip_quantile)
    data = pd.DataFrame({"clv": clv["clv"].clip(upper=cap)})
    if by is not None:
        data["group"] = pd.Series(by).reindex(clv.index).to_numpy()
        sns.histplot(data, x="clv", hue="group", ax=ax, element="step", stat="density",
                     common_norm=False, bins=40)
    else:
        sns.histplot(data, x="clv", ax=ax, bins=40)
    money_axis(ax, "x", f"CLV (clipped at the {clip_quantile:.0%} quantile, {cap:,.0f})")
    ax.set_ylabel("customers" if by is None else "density")
    ax.set_title("Customer lifetime value")
    return ax


def plot_lorenz(pareto, ax: plt.Axes | None = None) -> plt.Axes:
    """Lorenz curve of value with the top-20 % share and the Gini coefficient.

    Parameters
    ----------
    pareto : ParetoResult
        Output of :func:`crmstats.clv.pareto_analysis`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not hasattr(pareto, "lorenz"):
        raise ValueError("expected the ParetoResult returned by pareto_analysis")
    ax = get_ax(ax, figsize=(5, 5))
    lor = pareto.lorenz
    ax.plot(lor["customer_share"], lor["value_share"], label="Lorenz curve")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="equal value")
    x = 1 - pareto.top_fraction
    y = 1 - pareto.top_share
    ax.plot([x, x], [0, y], color="grey", linewidth=0.8)
    ax.annotate(f"top {pareto.top_fraction:.0%}: {pareto.top_share:.0%} of value",
                (x, y), xytext=(-10, 10), textcoords="offset points", ha="right")
    ax.set_xlabel("share of customers (least valuable first)")
    ax.set_ylabel("share of value")
    percent_axis(ax, "x")
    percent_axis(ax, "y")
    ax.set_title(f"Value concentration (Gini {pareto.gini:.2f})")
    ax.legend(frameon=False, loc="upper left")
    return ax


def plot_value_pyramid(tiers: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw the customer value pyramid: customers and value share per tier.

    Parameters
    ----------
    tiers : pandas.DataFrame
        Output of :func:`crmstats.clv.value_tiers`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(tiers, ["value", "tier"], "value_tiers")
    ax = get_ax(ax, figsize=(7, 4))
    grouped = tiers.groupby("tier", observed=False)["value"]
    summary = pd.DataFrame({"customers": grouped.size(), "value": grouped.sum()})
    summary["value_share"] = summary["value"] / summary["value"].sum()
    n = len(summary)
    colors = sns.color_palette("crest", n)
    for i, (name, row) in enumerate(summary.iterrows()):
        width = (i + 1) / n
        ax.barh(n - 1 - i, width, left=(1 - width) / 2, color=colors[i], edgecolor="white")
        ax.text(0.5, n - 1 - i, f"{name}: {int(row['customers']):,} customers, "
                f"{row['value_share']:.0%} of value", ha="center", va="center", fontsize=9,
                color="white" if i > n / 2 else "black")
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title("Customer value pyramid")
    return ax


def _check_migration(migration) -> None:
    from crmstats.clv.migration import ValueMigration

    if not isinstance(migration, ValueMigration):
        raise ValueError("expected the ValueMigration returned by crmstats.clv.value_migration, "
                         f"got {type(migration).__name__}")


def plot_value_migration(migration, ax: plt.Axes | None = None, *,
                         cmap: str = "crest") -> plt.Axes:
    """Heatmap of the tier migration matrix: customers from each start tier to each end tier.

    Cells show customers; the colour is the share of the start tier's customers
    (each row sums to 100 %), so small top tiers read as clearly as the large
    bottom one.

    Parameters
    ----------
    migration : ValueMigration
        Output of :func:`crmstats.clv.value_migration`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    cmap : str
        Colour map.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_migration(migration)
    counts = migration.counts
    shares = counts.div(counts.sum(axis=1).where(lambda s: s > 0), axis=0).fillna(0.0)
    ax = get_ax(ax, figsize=(7, 4.5))
    labels = counts.map(lambda v: f"{v:,}")
    sns.heatmap(shares, ax=ax, cmap=cmap, vmin=0, vmax=1, annot=labels, fmt="",
                cbar_kws={"label": "share of the start tier's customers",
                          "format": plt.FuncFormatter(lambda v, _: f"{v:.0%}")},
                linewidths=0.5, linecolor="white")
    ax.set_xlabel(f"tier on {migration.end:%Y-%m-%d}")
    ax.set_ylabel(f"tier on {migration.start:%Y-%m-%d}")
    ax.set_title("How customers moved between value tiers (customers)")
    ax.tick_params(axis="y", rotation=0)
    return ax


def plot_value_bridge(migration, ax: plt.Axes | None = None) -> plt.Axes:
    """Waterfall from total CLV at the start to the end: new, upgrades, downgrades, same tier, lost.

    Parameters
    ----------
    migration : ValueMigration
        Output of :func:`crmstats.clv.value_migration`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    _check_migration(migration)
    d = migration.decomposition
    steps = [(name, float(d[name])) for name in d.index if name not in ("start", "end")]
    ax = get_ax(ax, figsize=(9, 4))
    ax.bar(0, d["start"], color="tab:grey")
    level = float(d["start"])
    for i, (_, value) in enumerate(steps, start=1):
        ax.bar(i, value, bottom=level, color="tab:green" if value >= 0 else "tab:red")
        level += value
    ax.bar(len(steps) + 1, d["end"], color="tab:blue")
    ax.set_xticks(range(len(steps) + 2))
    ax.set_xticklabels([f"{migration.start:%Y-%m-%d}", *[s for s, _ in steps],
                        f"{migration.end:%Y-%m-%d}"])
    money_axis(ax, "y", "total customer lifetime value")
    ax.set_title("Where the change in customer value came from")
    return ax


def covariate_label(column: str) -> str:
    """Return a covariate column in words: ``segment[key_account]`` -> "key account (segment)"."""
    name, sep, level = str(column).partition("[")
    if sep and level.endswith("]"):
        return f"{level[:-1].replace('_', ' ')} ({name.replace('_', ' ')})"
    return str(column).replace("_", " ")


#: Candidate ticks of a multiplier axis (log scale).
_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 10.0)


def plot_customer_effects(effects: pd.DataFrame, ax=None) -> np.ndarray:
    """Plot each attribute's multiplier on purchase rate, dropout and spend, with its interval.

    Parameters
    ----------
    effects : pandas.DataFrame
        :func:`customer_effects` (or ``fit_channel_value(...).effects``).
    ax : sequence of matplotlib Axes, optional
        One axes per process; default a new figure.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    need = {"process", "covariate", "multiplier", "multiplier_lower_95", "multiplier_upper_95"}
    if not isinstance(effects, pd.DataFrame) or not need <= set(effects.columns):
        raise ValueError("effects: expected the table of crmstats.clv.customer_effects")
    processes = list(dict.fromkeys(effects["process"]))
    covs = list(dict.fromkeys(effects["covariate"]))
    if ax is None:
        _, ax = plt.subplots(1, max(len(processes), 1), sharey=True,
                             figsize=(3.2 * max(len(processes), 1) + 1.5, 0.35 * len(covs) + 1.5))
    axes = np.atleast_1d(ax)
    y = {c: i for i, c in enumerate(reversed(covs))}
    for a, process in zip(axes, processes, strict=False):
        part = effects[effects["process"] == process]
        ys = [y[c] for c in part["covariate"]]
        m = part["multiplier"].to_numpy(dtype=float)
        lo = part["multiplier_lower_95"].to_numpy(dtype=float)
        hi = part["multiplier_upper_95"].to_numpy(dtype=float)
        a.errorbar(m, ys, xerr=[m - lo, hi - m], fmt="o", color="C0", ecolor="0.5", capsize=2)
        a.axvline(1.0, color="0.3", lw=0.8, ls="--")
        a.set_xscale("log")
        lo_x, hi_x = a.get_xlim()
        ticks = [t for t in _TICKS if lo_x <= t <= hi_x]
        while len(ticks) > 5:
            ticks = ticks[::2] if 1.0 in ticks[::2] else ticks[1::2]
        a.xaxis.set_major_locator(FixedLocator(ticks))
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        a.xaxis.set_minor_formatter(NullFormatter())
        a.set_title(str(process).capitalize(), fontsize=10)
        a.set_xlabel("multiplier")
    axes[0].set_yticks(list(y.values()), [covariate_label(c) for c in y])
    return axes


def plot_channel_value(values: pd.DataFrame, ax=None) -> Any:
    """Plot the expected CLV of a new customer per channel with its 95 % interval.

    Parameters
    ----------
    values : pandas.DataFrame
        :func:`channel_value` (``clv``, ``clv_lower_95``, ``clv_upper_95``).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(values, pd.DataFrame) or "clv" not in values.columns:
        raise ValueError("values: expected the table of crmstats.clv.channel_value")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.4 * len(values) + 1.5))
    if len(values) == 0:
        ax.set_title("No channel could be valued (see the text above)")
        ax.set_axis_off()
        return ax
    order = values.sort_values("clv")
    clv = order["clv"].to_numpy(dtype=float)
    lo = order.get("clv_lower_95", order["clv"]).to_numpy(dtype=float)
    hi = order.get("clv_upper_95", order["clv"]).to_numpy(dtype=float)
    err = np.nan_to_num(np.vstack([clv - lo, hi - clv]), nan=0.0)
    labels = [str(i).replace("_", " ") for i in order.index]
    ax.barh(labels, clv, xerr=err, color="C0", ecolor="0.3", capsize=3)
    ax.set_xlabel("expected value of a new customer (repeat purchases, discounted)")
    return ax

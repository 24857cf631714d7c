"""Figures of channel attribution and channel economics."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from crmstats.plotting import get_ax, log_axis, money_axis, require_columns

__all__ = [
    "plot_cac_ltv",
    "plot_credit_shares",
    "plot_lift_tests",
    "plot_new_customer_ltv_cac",
    "plot_removal_effects",
    "plot_transition_matrix",
]


def plot_credit_shares(shares: pd.DataFrame, truth: pd.Series | None = None,
                       ax: plt.Axes | None = None) -> plt.Axes:
    """Draw grouped bars of each channel's share of credit under every model.

    Parameters
    ----------
    shares : pandas.DataFrame
        Output of :func:`crmstats.attribution.credit_shares`.
    truth : pandas.Series, optional
        True shares per channel, drawn as black markers.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(shares, pd.DataFrame) or shares.shape[1] == 0:
        raise ValueError("expected the DataFrame returned by credit_shares")
    ax = get_ax(ax, figsize=(10, 4.5))
    order = shares.mean(axis=1).sort_values(ascending=False).index
    s = shares.loc[order]
    n_models = s.shape[1]
    width = 0.8 / n_models
    x = np.arange(len(s))
    colors = sns.color_palette(n_colors=n_models)
    for i, col in enumerate(s.columns):
        ax.bar(x - 0.4 + width * (i + 0.5), s[col].to_numpy(), width=width, label=str(col),
               color=colors[i])
    if truth is not None:
        t = truth.reindex(order).astype(float)
        ax.scatter(x, t.to_numpy(), marker="D", color="black", zorder=3, label="true share")
    ax.set_xticks(x, [str(c) for c in order], rotation=30, ha="right")
    ax.set_ylabel("share of credited conversions")
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, ncols=min(n_models + 1, 4), fontsize="small")
    ax.set_title("Credit share per channel under each model")
    return ax


def plot_transition_matrix(model, ax: plt.Axes | None = None, *,
                           max_states: int = 20) -> plt.Axes:
    """Heatmap of a Markov model's transition probabilities.

    Parameters
    ----------
    model : fitted MarkovAttribution or its ``transition_matrix_``
        The chain to draw.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    max_states : int
        For higher-order chains with many states, only the ``max_states``
        states entered most often from ``(start)`` and other states are shown.

    Returns
    -------
    matplotlib.axes.Axes
    """
    matrix = getattr(model, "transition_matrix_", model)
    if not isinstance(matrix, pd.DataFrame) or "(conversion)" not in matrix.columns:
        raise ValueError("expected a fitted MarkovAttribution or its transition_matrix_")
    states = [c for c in matrix.columns if c not in ("(conversion)", "(null)")]
    if len(states) > max_states:
        inflow = matrix[states].sum(axis=0).sort_values(ascending=False)
        states = list(inflow.index[:max_states])
    rows = ["(start)", *states]
    cols = [*states, "(conversion)", "(null)"]
    m = matrix.loc[rows, cols]
    ax = get_ax(ax, figsize=(0.5 * len(cols) + 3, 0.45 * len(rows) + 2))
    sns.heatmap(m, ax=ax, cmap="Blues", vmin=0, vmax=1, annot=len(cols) <= 12, fmt=".2f",
                cbar_kws={"label": "transition probability"}, annot_kws={"fontsize": 7})
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    ax.set_title("Markov chain: transition probabilities")
    return ax


def plot_removal_effects(model, ax: plt.Axes | None = None) -> plt.Axes:
    """Bars of each channel's removal effect (share of conversions lost without it).

    Parameters
    ----------
    model : fitted MarkovAttribution or a Series of removal effects
        The model (its ``removal_effects_``) or the Series itself.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    effects = getattr(model, "removal_effects_", model)
    if not isinstance(effects, pd.Series):
        raise ValueError("expected a fitted MarkovAttribution or its removal_effects_")
    effects = effects.sort_values()
    ax = get_ax(ax, figsize=(8, 0.35 * len(effects) + 1.5))
    ax.barh([str(i) for i in effects.index], effects.to_numpy(), color=sns.color_palette()[0])
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("conversions lost if the channel is removed")
    ax.set_title("Removal effect per channel")
    return ax


def plot_cac_ltv(economics: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Scatter CAC against LTV per channel (log scales), sized by spend, with LTV = k x CAC lines.

    Parameters
    ----------
    economics : pandas.DataFrame
        Output of :func:`crmstats.attribution.channel_economics` (the
        ``total`` row is left out).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(economics, ["cac", "ltv", "spend"], "channel_economics")
    e = economics.drop(index="total", errors="ignore")
    cac, ltv = e["cac"].astype(float), e["ltv"].astype(float)
    e = e[np.isfinite(cac) & np.isfinite(ltv) & (cac > 0) & (ltv > 0)]
    ax = get_ax(ax, figsize=(8, 5))
    if len(e) == 0:
        ax.set_title("CAC vs LTV: no channel has both figures")
        return ax
    size = 60 + 1200 * e["spend"] / max(float(e["spend"].max()), 1e-12)
    ax.scatter(e["cac"], e["ltv"], s=size, alpha=0.6, color=sns.color_palette()[0],
               edgecolor="black")
    for name, row in e.iterrows():
        ax.annotate(str(name), (row["cac"], row["ltv"]), fontsize=8, xytext=(6, 6),
                    textcoords="offset points")
    values = np.concatenate([e["cac"].to_numpy(float), e["ltv"].to_numpy(float)])
    lo, hi = float(values.min()) / 2, float(values.max()) * 2
    grid = np.geomspace(lo, hi, 50)
    ax.plot(grid, grid, color="grey", ls="--", lw=1, label="LTV = CAC")
    ax.plot(grid, 3 * grid, color="grey", ls=":", lw=1, label="LTV = 3 x CAC")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    money_axis(ax, "x", "customer acquisition cost (CAC)")
    money_axis(ax, "y", "lifetime value per customer (LTV)")
    ax.legend(frameon=False, loc="upper left")
    ax.set_title("CAC vs LTV per channel (bubble size = spend)")
    return ax


def plot_lift_tests(lifts: pd.DataFrame, truth: pd.Series | None = None,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Draw each channel's measured lift (relative to its holdout) with its 95 % interval.

    Parameters
    ----------
    lifts : pandas.DataFrame
        Output of :func:`crmstats.attribution.lift_test`.
    truth : pandas.Series, optional
        True relative lift per channel (simulated data), drawn as black markers.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(lifts, ["lift", "lower_95", "upper_95", "holdout_rate"], "lift_test")
    ax = get_ax(ax, figsize=(8, 0.5 * len(lifts) + 1.5))
    order = lifts["lift"].sort_values().index
    d = lifts.loc[order]
    base = d["holdout_rate"].where(d["holdout_rate"] > 0)
    rel, lo, hi = d["lift"] / base, d["lower_95"] / base, d["upper_95"] / base
    y = np.arange(len(d))
    ax.errorbar(rel, y, xerr=[rel - lo, hi - rel], fmt="o", color="#1f77b4", capsize=3,
                label="measured lift, 95 % interval")
    if truth is not None:
        t = truth.reindex(order)
        ax.scatter(t, y, marker="D", color="black", zorder=3, label="true lift")
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, list(order))
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:+.0%}"))
    ax.set_xlabel("conversion rate with the channel vs without it (holdout)")
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_new_customer_ltv_cac(economics: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Draw each channel's LTV:CAC: its customers' and its next customer's (95 % interval).

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`crmstats.attribution.channel_economics` with ``new_customer_value=``
        (or :func:`crmstats.attribution.new_customer_economics`); the
        ``total`` row is left out, and so are channels whose ratios are not
        finite and positive (no spend, or no customers).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made otherwise.

    Returns
    -------
    matplotlib.axes.Axes
    """
    require_columns(economics, ["ltv_cac", "new_ltv_cac", "new_ltv_cac_lower_95",
                                "new_ltv_cac_upper_95"], "channel_economics(new_customer_value=)")
    e = economics.drop(index="total", errors="ignore")
    obs = e["ltv_cac"].astype(float)
    new = e["new_ltv_cac"].astype(float)
    shown = (np.isfinite(obs) & (obs > 0)) | (np.isfinite(new) & (new > 0))
    e = e[shown.to_numpy()]
    ax = get_ax(ax, figsize=(8, 0.45 * len(e) + 1.8))
    if len(e) == 0:
        ax.set_title("LTV:CAC: no channel has a finite ratio")
        return ax
    e = e.assign(_order=e["new_ltv_cac"].fillna(e["ltv_cac"])).sort_values("_order")
    y = np.arange(len(e))
    colors = sns.color_palette(n_colors=2)
    o = e["ltv_cac"].astype(float).where(lambda s: np.isfinite(s) & (s > 0))
    ax.scatter(o, y + 0.12, marker="s", color=colors[0], zorder=3,
               label="its customers so far (observed history)")
    n = e["new_ltv_cac"].astype(float).where(lambda s: np.isfinite(s) & (s > 0))
    lo = e["new_ltv_cac_lower_95"].astype(float).clip(lower=1e-9)
    hi = e["new_ltv_cac_upper_95"].astype(float)
    err = np.nan_to_num(np.vstack([n - lo, hi - n]), nan=0.0).clip(min=0)
    ax.errorbar(n, y - 0.12, xerr=err, fmt="o", color=colors[1], ecolor="0.4", capsize=3,
                label="its next customer (model), 95 % interval")
    ax.axvline(1, color="grey", lw=1, ls="--", label="LTV = CAC")
    ax.axvline(3, color="grey", lw=1, ls=":", label="LTV = 3 x CAC")
    log_axis(ax, "x", suffix="x")
    ax.set_yticks(y, [str(c).replace("_", " ") for c in e.index])
    ax.set_xlabel("LTV:CAC (lifetime value over acquisition cost)")
    ax.legend(fontsize=8, loc="lower right", frameon=False)
    return ax

"""Figures of marginal ROAS, of a budget shift and of the sources side by side; their tables.

The side-by-side table (:func:`~crmstats.attribution.triangulation_view`, nine
columns) is too wide for a book page: :func:`triangulation_shares` and
:func:`triangulation_returns` split it into two narrow tables with short headers;
:func:`budget_table` is the budget plan's allocation in four columns;
:func:`curve_table` says how much the data told about each channel's curve;
:func:`returns_table` and :func:`fit_table` are the model's returns and fit in
words. Returns on a page are quoted per an amount of spend that reads easily
(:func:`crmstats.formatting.per_spend`: 6.6 conversions per $100, not 0.066 per
$1), chosen from the model's ROAS so that every table and figure of a page uses
the same amount; such a table names the amount in its headers.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from crmstats.formatting import fmt_count, fmt_money, fmt_number, fmt_pct, per_spend
from crmstats.plotting import get_ax, log_axis, money_axis

__all__ = ["budget_table", "curve_table", "fit_table", "outcome_amount", "outcome_words",
           "plot_budget_shift",
           "plot_marginal_roas", "plot_triangulation", "returns_table",
           "triangulation_returns", "triangulation_shares"]

#: Short headers of the sources' shares (a book page has room for about six columns).
SHORT_SOURCES = {"journey_share": "journeys", "lift_share": "experiments",
                 "mmm_share": "model"}


def _label(channel) -> str:
    return str(channel).replace("_", " ")


def outcome_words(outcome: str | None) -> str:
    """Say a media-mix model's outcome in words: ``"conversion_value"`` -> "conversion value"."""
    return _label(outcome or "outcome")


#: Outcomes counted in money (the others are counts, e.g. conversions).
_MONEY_OUTCOMES = ("revenue", "conversion_value")


def outcome_amount(value: float, outcome: str | None, sig: int = 3, named: bool = True) -> str:
    """Say an amount of a media-mix model's outcome: "62.6 conversions", "$1,230 of revenue".

    ``named=False`` leaves the outcome's name out (an interval's bounds).
    """
    words = outcome_words(outcome)
    if outcome in _MONEY_OUTCOMES:
        return fmt_money(value) + (f" of {words}" if named else "")
    return fmt_number(value, sig) + (f" {words}" if named else "")


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
    amount, words = per_spend(r["estimate"])
    y = np.arange(len(m))
    for frame, dy, name, color in ((r, 0.18, "ROAS (average)", "tab:gray"),
                                   (m, -0.18, "marginal ROAS (the next spend)", "tab:blue")):
        est = amount * frame["estimate"].to_numpy(float)
        err = amount * np.vstack([frame["estimate"] - frame["lower_95"],
                                  frame["upper_95"] - frame["estimate"]]).astype(float).clip(min=0)
        ax.errorbar(est, y + dy, xerr=err, fmt="o", color=color, capsize=3, label=name)
    ax.set_yticks(y, [_label(c) for c in m.index])
    lows = amount * pd.concat([r["lower_95"], m["lower_95"]]).astype(float)
    if bool((lows > 0).all()):  # intervals of positive returns are wide upward: log axis
        log_axis(ax, "x")
    else:
        ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel(f"{outcome_words(getattr(model, 'outcome', None))} {words}")
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


def triangulation_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Return the first half of the side-by-side table: spend and each source's share.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~crmstats.attribution.triangulate`'s table.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``spend``, ``journeys``, ``experiments``,
        ``model`` (each source's share of the channels' total — journey
        credit, holdout tests, the media-mix model; NaN where a source is
        missing) and ``apart`` (the source that stands apart from
        the other two, in the same short words; empty when none or unknown).
        The returns are in :func:`triangulation_returns`.
    """
    from crmstats.attribution.triangulation import SOURCES, triangulation_view

    view = triangulation_view(table)
    out = view[["spend", *SHORT_SOURCES]].rename(columns=SHORT_SOURCES)
    short = {SOURCES[c]: name for c, name in SHORT_SOURCES.items()}
    out["apart"] = [short.get(str(v), str(v)) for v in view["odd_source"]]
    return out


def triangulation_returns(table: pd.DataFrame) -> pd.DataFrame:
    """Return the second half of the side-by-side table: what a channel's spend returns.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~crmstats.attribution.triangulate`'s table.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``ROAS per <amount>`` (the media-mix model's) and
        ``calibrated per <amount>`` (the model calibrated with the holdout
        tests), e.g. ``ROAS per $100``: the outcome per that amount of spend
        (:func:`crmstats.formatting.per_spend` of the ROAS, as
        :func:`returns_table`); ``CAC`` (spend per conversion credited by
        journeys) and ``CAC incremental`` (spend per conversion the holdout
        test says the channel adds). NaN where a source is missing.
    """
    from crmstats.attribution.triangulation import triangulation_view

    view = triangulation_view(table)
    amount, _ = per_spend(view["roas"])
    per = _per(amount)
    return pd.DataFrame({f"ROAS {per}": amount * view["roas"],
                         f"calibrated {per}": amount * view["calibrated_roas"],
                         "CAC": view["cac"], "CAC incremental": view["incremental_cac"]})


def budget_table(plan) -> pd.DataFrame:
    """Return a budget plan's split for a page: four columns instead of the allocation's seven.

    Parameters
    ----------
    plan : BudgetPlan
        From ``MediaMixModel.optimize_budget``.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``current`` and ``recommended`` weekly spend,
        ``change`` (recommended - current) and ``extra <outcome>`` (e.g.
        ``extra conversions``: the expected outcome a week of the recommended
        spend minus the current one's, under the fitted curves). The bounds
        and the outcomes themselves stay in ``plan.allocation``.
    """
    a = plan.allocation
    out = a[["current", "recommended", "change"]].copy()
    extra = f"extra {outcome_words(getattr(plan, 'outcome', None))}"
    out[extra] = a["recommended_outcome"] - a["current_outcome"]
    return out


#: Reader's names of the curve parameters in :func:`curve_table`.
CURVE_LABELS = {"theta": "carry-over", "half_saturation": "saturation point",
                "shape": "curve shape"}


def curve_table(model) -> pd.DataFrame:
    """Return how much the data told about each channel's response curve, for a page.

    Parameters
    ----------
    model : MediaMixModel
        Fitted (its ``curve_information_``).

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``carry-over`` (how long spend keeps working),
        ``saturation point`` (the weekly spend at half the channel's most)
        and ``curve shape`` (how it bends toward that): the share of the
        prior's uncertainty the data removed, 0-1 (near 0: the model's
        assumption). With the delayed (Weibull) adstock, ``carry-over`` is
        the mean of its two parameters' shares.
    """
    info = model.curve_information_
    out = pd.DataFrame(index=info.index)
    if "theta" in info:
        out[CURVE_LABELS["theta"]] = info["theta"]
    else:
        out[CURVE_LABELS["theta"]] = info[["weibull_shape", "weibull_scale"]].mean(axis=1)
    for name in ("half_saturation", "shape"):
        out[CURVE_LABELS[name]] = info[name]
    return out


def returns_table(model) -> pd.DataFrame:
    """Return each channel's marginal ROAS with its interval for a page, best first.

    The average ROAS is in :func:`triangulation_returns`, beside the calibrated
    one and CAC, per the same amount of spend.

    Parameters
    ----------
    model : MediaMixModel
        Fitted (``mroas_`` and ``roas_``).

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``marginal per <amount>`` (what the next spend at
        today's level brings, e.g. ``marginal per $100``) with its 95 %
        interval ``lower 95`` / ``upper 95``: the model's outcome per that
        amount of spend (:func:`crmstats.formatting.per_spend` of the ROAS,
        so that every table of the page uses one amount).
    """
    amount, _ = per_spend(model.roas_["estimate"])
    marginal = f"marginal {_per(amount)}"
    m = model.mroas_
    out = pd.DataFrame({marginal: m["estimate"], "lower 95": m["lower_95"],
                        "upper 95": m["upper_95"]}).astype(float) * amount
    return out.sort_values(marginal, ascending=False)


def _per(amount: int) -> str:
    """``"per $100"``: a header's words for an amount of spend in the study's currency."""
    return f"per {fmt_money(amount, decimals=0)}"


def fit_table(model) -> pd.DataFrame:
    """Return how well a media-mix model fits the weeks, in words, for a page.

    Parameters
    ----------
    model : MediaMixModel
        Fitted (its ``diagnostics_``).

    Returns
    -------
    pandas.DataFrame
        One column ``value`` of text, one row per figure of ``diagnostics_``
        said in words (the figures themselves stay in ``diagnostics_``).
    """
    d = model.diagnostics_
    unit = outcome_words(getattr(model, "outcome", None))
    held = int(d["holdout_weeks"]) if np.isfinite(d["holdout_weeks"]) else 0
    rows = {
        "Variation explained (R²)": fmt_pct(d["r2"]),
        "Typical error of a week": fmt_pct(d["mape"]),
        f"Noise per week ({unit})": outcome_amount(d["sigma"], model.outcome, named=False),
        "Holdout tests used": fmt_count(d["n_lift_tests"]),
    }
    if held and np.isfinite(d["holdout_mape"]):
        rows[f"Last {held} weeks, predicted unseen: typical error"] = fmt_pct(d["holdout_mape"])
        rows[f"Last {held} weeks: variation explained (R²)"] = fmt_pct(d["holdout_r2"])
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})

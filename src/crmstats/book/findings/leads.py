"""Findings of the lead studies: funnel, lead scoring, lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crmstats.book.findings._common import (
    _finite,
    _keep,
    _label,
    _term,
    _top,
)
from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
)

__all__ = [
    "funnel",
    "funnel_kpis",
    "lead_scoring",
    "lead_scoring_kpis",
    "lifecycle",
    "lifecycle_kpis",
]


def funnel(
    conversion: pd.DataFrame | None,
    channels: pd.DataFrame | None,
    pipeline_summary: pd.Series | Mapping[str, Any],
    by_owner: pd.DataFrame | None = None,
    window_days: float | None = None,
) -> list[str]:
    """Write the key findings of the lead generation and funnel study.

    Parameters
    ----------
    conversion : DataFrame or None
        :func:`crmstats.funnel.stage_conversion` (stages; ``entered``,
        ``conversion_to_next``); None for a source without stage history.
    channels : DataFrame or None
        :func:`crmstats.funnel.lead_kpis` with ``period=None`` (per channel);
        None for a source without stage history or spend.
    pipeline_summary : Series
        ``funnel.pipeline(...).summary``.
    by_owner : DataFrame, optional
        ``funnel.pipeline(...).by["owner"]`` (``won``, ``lost``, ``win_rate``).
    window_days : float, optional
        The pipeline's look-back window (named in the text).

    Returns
    -------
    list of str
    """
    out = []
    if channels is not None and len(channels):
        totals = channels[["spend", "leads", "won"]].sum()
        out.append(
            f"{fmt_count(totals['leads'])} leads became {fmt_count(totals['won'])} "
            f"customers: {fmt_pct(totals['won'] / totals['leads'])} of leads, at "
            f"{fmt_money(totals['spend'] / totals['leads'])} of spend per lead."
        )
    steps = conversion["conversion_to_next"].dropna() if conversion is not None else []
    if len(steps):
        worst = steps.idxmin()
        out.append(
            f"The largest drop is after the {_label(worst)} stage: only "
            f"{fmt_pct(steps.loc[worst])} move on to the next stage."
        )
    if channels is not None and len(channels):
        cpl = channels["cost_per_lead"].replace([np.inf, -np.inf], np.nan).dropna()
        won = channels["lead_to_won"].dropna()
        if len(cpl) >= 2 and len(won) >= 2:
            out.append(
                f"{_label(cpl.idxmin()).capitalize()} brings the cheapest leads "
                f"({fmt_money(cpl.min())} each); {_label(won.idxmax())} leads turn into "
                f"customers most often ({fmt_pct(won.max())})."
            )
    s = pipeline_summary
    window = f"in the last {fmt_count(window_days)} days" if _finite(window_days) else "recently"
    if s.get("source") == "deals":
        undated = int(s.get("open_undated") or 0)
        line = f"{fmt_count(s.get('open_deals'))} deals are open"
        if undated:
            line += f" ({fmt_count(undated)} of them without a date yet)"
        if _finite(s.get("open_value")):
            line += f", worth {fmt_money(s.get('open_value'))} where an amount is recorded"
        out.append(line + ".")
        if _finite(s.get("win_rate")):
            line = (
                f"Of the {fmt_count(s.get('closed_in_window'))} deals closed {window}, "
                f"{fmt_pct(s.get('win_rate'))} were won"
            )
            if _finite(s.get("average_deal_size")):
                line += f", for {fmt_money(s.get('average_deal_size'))} on average"
            if _finite(s.get("cycle_days_median")):
                line += (
                    f"; half of the won deals closed within "
                    f"{fmt_number(s.get('cycle_days_median'), 2)} days of their start"
                )
            out.append(line + ".")
    elif _finite(s.get("win_rate")):
        out.append(
            f"{fmt_count(s.get('open_opportunities'))} opportunities are open; "
            f"{fmt_pct(s.get('win_rate'))} of recently closed ones were won, for a sales "
            f"velocity of {fmt_money(s.get('sales_velocity_per_month'))} per month."
        )
    if by_owner is not None and {"won", "lost", "win_rate"} <= set(by_owner.columns):
        closed = by_owner["won"] + by_owner["lost"]
        rates = by_owner["win_rate"][closed >= 10].dropna()
        if len(rates) >= 2 and rates.max() > rates.min():
            out.append(
                f"Win rates by owner range from {fmt_pct(rates.min())} to "
                f"{fmt_pct(rates.max())} (owners with at least 10 closed deals)."
            )
    return _keep(out)


def lead_scoring(
    auc: float, coefficients: pd.DataFrame, band_rates: pd.Series, target: str = "qualified"
) -> list[str]:
    """Write the key findings of the lead scoring study.

    Parameters
    ----------
    auc : float
        Held-out AUC of the score.
    coefficients : DataFrame
        ``LeadScoringModel.coefficients_`` (``odds_ratio``, ``p_value`` by term).
    band_rates : Series
        Outcome rate by score band (A best).
    target : str
        The outcome scored.

    Returns
    -------
    list of str
    """
    quality = (
        "strong"
        if auc >= 0.8
        else "useful"
        if auc >= 0.7
        else "weak"
        if auc >= 0.6
        else "no better than chance"
    )
    out = [
        f"The lead score ranks leads with an AUC of {fmt_number(auc, 2)} on leads it was not "
        f"fitted on: a {quality} ranking of who ends {_label(target)}."
    ]
    coef = coefficients.drop(
        index=[i for i in coefficients.index if str(i).lower() in ("intercept", "const")],
        errors="ignore",
    )
    if "p_value" in coef and "odds_ratio" in coef:
        sig = coef[coef["p_value"] < 0.05]
        if len(sig):
            strength = np.log(sig["odds_ratio"].astype(float)).abs()
            top = list(strength.sort_values(ascending=False, kind="stable").index[:2])
            parts = [
                f"{_term(t)} (odds × {fmt_number(sig.loc[t, 'odds_ratio'], 3)} "
                + ("against the base level)" if "[" in str(t) else "per unit)")
                for t in top
            ]
            out.append("The strongest significant signals are " + " and ".join(parts) + ".")
    rates = band_rates.dropna()
    if len(rates) >= 2:
        out.append(
            f"Leads in band {rates.index[0]} end {_label(target)} "
            f"{fmt_pct(rates.iloc[0])} of the time, against {fmt_pct(rates.iloc[-1])} "
            f"in band {rates.index[-1]}: call band {rates.index[0]} first."
        )
    return _keep(out)


def lifecycle(counts: pd.Series, flows: pd.DataFrame | None = None) -> list[str]:
    """Write the key findings of the customer lifecycle study.

    Parameters
    ----------
    counts : Series
        Contacts per lifecycle stage.
    flows : DataFrame, optional
        :func:`crmstats.funnel.stage_flows` (moves between stages; a
        ``contacts`` column or a from-by-to matrix).

    Returns
    -------
    list of str
    """
    total = counts.sum()
    get = lambda name: float(counts.get(name, 0))  # noqa: E731
    former = get("former customer, high priority") + get("former customer, low priority")
    customers = get("customer") + get("evangelist")
    out = [
        f"Of {fmt_count(total)} contacts, {fmt_count(customers)} are active customers "
        f"({fmt_pct(customers / total)}) and {fmt_count(former)} are former customers."
    ]
    if former:
        out.append(
            f"{fmt_count(get('former customer, high priority'))} former customers are "
            "high priority for win-back: likely still reachable and valuable."
        )
    if get("evangelist"):
        out.append(
            f"{fmt_count(get('evangelist'))} customers are evangelists: they referred "
            "at least one contact."
        )
    largest = _top(counts)[0]
    out.append(
        f"The largest group is {_label(largest)} ({fmt_pct(counts[largest] / total)} of contacts)."
    )
    return _keep(out)


def funnel_kpis(summary: Mapping[str, Any], channels: pd.DataFrame | None = None) -> dict[str, Any]:
    """Return the funnel study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The pipeline's win rate and sales velocity (``Pipeline.summary``) and, when
    the source has lead channels (:func:`crmstats.funnel.lead_kpis`), the lead
    to customer rate and the cost per lead over all channels.
    """
    kpis: dict[str, Any] = {
        "win_rate": {
            "value": summary["win_rate"],
            "kind": "share",
            "label": "Win rate of opportunities (look-back window)",
        },
        "sales_velocity": {
            "value": summary["sales_velocity_per_month"],
            "kind": "money",
            "label": "Sales velocity per month",
        },
    }
    if channels is not None:
        totals = channels[["spend", "leads", "won"]].sum()
        kpis["lead_to_customer_rate"] = totals["won"] / totals["leads"]
        kpis["cost_per_lead"] = {
            "value": totals["spend"] / totals["leads"],
            "kind": "money",
            "label": "Cost per lead",
        }
    return kpis


def lead_scoring_kpis(auc: float) -> dict[str, dict[str, Any]]:
    """Return the lead-scoring study's headline KPI (the held-out AUC) for ``record_kpis``."""
    return {
        "lead_score_auc": {"value": auc, "label": "Lead score AUC (held out)", "kind": "number"}
    }


def lifecycle_kpis(counts: pd.Series) -> dict[str, dict[str, Any]]:
    """Return the lifecycle study's headline KPIs for :func:`crmstats.book.record_kpis`.

    From the contacts per stage: former customers to win back first, and the
    evangelists (customers who referred others).
    """
    return {
        "former_customers_high_priority": {
            "value": counts["former customer, high priority"],
            "kind": "count",
            "label": "Former customers to win back (high priority)",
        },
        "evangelists": {
            "value": counts["evangelist"],
            "kind": "count",
            "label": "Evangelists (customers who referred others)",
        },
    }

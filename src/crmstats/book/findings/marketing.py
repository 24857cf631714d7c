"""Findings of the marketing studies: attribution, incrementality, where the next euro should go."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.book.findings._common import (
    _finite,
    _keep,
    _label,
    _top,
    _worth,
)
from crmstats.book.report import (
    fmt_money,
    fmt_pct,
    fmt_ratio,
    per_spend,
)

__all__ = ["attribution", "incrementality", "incrementality_kpis", "next_euro", "next_euro_kpis"]


def attribution(
    shares: pd.DataFrame,
    economics: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
    model: str = "Markov (order 1)",
) -> list[str]:
    """Write the key findings of the channel attribution study.

    Parameters
    ----------
    shares : DataFrame
        :func:`crmstats.attribution.credit_shares` (channels by models).
    economics : DataFrame, optional
        :func:`crmstats.attribution.channel_economics` (with a ``total`` row);
        called with ``new_customer_value=``, the LTV:CAC of a channel's next
        customer (with its interval) is named beside its customers'.
    accuracy : DataFrame, optional
        :func:`crmstats.attribution.share_error` against the true shares.
    model : str
        The model the economics use.

    Returns
    -------
    list of str
    """
    table = shares if model in shares.columns else shares.T
    if model not in table.columns:
        model = table.columns[-1]
    ranked = _top(table[model], 2)
    if ranked:
        out: list[str | None] = [
            f"By the {model} model, {_label(ranked[0])} earns the largest share of conversions "
            f"({fmt_pct(table.loc[ranked[0], model])})"
            + (
                f", ahead of {_label(ranked[1])} ({fmt_pct(table.loc[ranked[1], model])})."
                if len(ranked) > 1
                else "."
            )
        ]
    else:
        out = [f"The {model} model gives no shares here: the data cannot tell the channels' "
               "total added sales from zero (too few sales)."]
    shown = table.loc[:, table.notna().any()]  # models with shares
    spread = shown.max(axis=1) - shown.min(axis=1)
    widest = _top(spread)
    if shown.shape[1] > 1 and widest and spread[widest[0]] > 0:
        out.append(
            f"The models disagree most on {_label(widest[0])}: from "
            f"{fmt_pct(shown.loc[widest[0]].min())} to {fmt_pct(shown.loc[widest[0]].max())} of "
            "the credit, so its value depends on how journeys are read."
        )
    if accuracy is not None and "mae" in accuracy and accuracy["mae"].notna().any():
        acc = accuracy["mae"].dropna()
        best = acc.idxmin()
        out.append(
            f"Against the simulator's true incremental shares, {best} comes closest "
            f"(mean absolute error {fmt_pct(acc.loc[best])} per channel)."
        )
    if economics is not None and "total" in economics.index:
        total = economics.loc["total"]
        line = f"Across channels, a customer costs {fmt_money(total.get('cac'))} to acquire"
        if _finite(total.get("ltv_cac")):
            line += f" and returns {fmt_ratio(total.get('ltv_cac'))} that cost (LTV:CAC)"
        out.append(line + ".")
        per = economics.drop(index="total")
        if "ltv_cac" in per and per["ltv_cac"].notna().sum() >= 2:
            order = per["ltv_cac"].replace([np.inf, -np.inf], np.nan).dropna().sort_values()

            def said(name):
                text = fmt_ratio(per.loc[name, "ltv_cac"])
                if _finite(per.loc[name].get("new_ltv_cac")):
                    text += ("; a new customer from it "
                             f"{_worth(per.loc[name], 'new_ltv_cac', fmt_ratio, parens=False)}")
                return text

            out.append(
                f"{_label(order.index[-1]).capitalize()} pays back best "
                f"({said(order.index[-1])}), {_label(order.index[0])} worst "
                f"({said(order.index[0])})."
            )
    return _keep(out)


def incrementality_kpis(
    calibrated: pd.DataFrame, economics: pd.DataFrame, conversions: Any
) -> dict[str, dict[str, Any]]:
    """Return the incrementality study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The number of channels that add sales (calibrated incremental
    conversions with a 95 % interval above zero; always given), the share of
    all sales the channels add (calibrated incremental conversions over the
    ``conversions`` table's rows) and the blended incremental CAC
    (``economics``' ``total`` row). The share and the CAC are left out when
    :func:`~crmstats.attribution.calibrate` found too few sales to estimate
    (its shares empty). The CAC is left out when
    the channels add no conversions in total (zero or, on small noisy data, a
    negative estimate): spend per added sale has no value then, and the
    study's findings say so instead of a headline.
    """
    kpis: dict[str, dict[str, Any]] = {}
    if "lower_95" in calibrated:
        kpis["channels_adding_sales"] = {
            "value": int((calibrated["lower_95"] > 0).sum()),
            "label": "Channels that add sales (95 % interval above zero)",
            "kind": "count",
        }
    if not _measured(calibrated):
        return kpis  # too few sales to estimate a share: the findings say so instead
    n = len(conversions) if isinstance(conversions, pd.DataFrame) else conversions.count().execute()
    kpis = {
        **kpis,
        "incremental_sales_share": {
            "value": calibrated["conversions"].sum() / n,
            "label": "Share of sales the channels add (calibrated)",
            "kind": "share",
        },
    }
    cac = economics.loc["total", "incremental_cac"]
    if _finite(cac) and cac > 0:
        kpis["incremental_cac"] = {"value": cac, "label": "Incremental CAC (blended)",
                                   "kind": "money"}
    return kpis


def incrementality(
    lifts: pd.DataFrame,
    calibrated: pd.DataFrame,
    economics: pd.DataFrame | None = None,
    journey_shares: pd.Series | None = None,
    truth_error: pd.Series | None = None,
) -> list[str]:
    """Write the key findings of the incrementality study.

    Parameters
    ----------
    lifts : pandas.DataFrame
        :func:`crmstats.attribution.lift_test` (one row per tested channel).
    calibrated : pandas.DataFrame
        :func:`crmstats.attribution.calibrate`.
    economics : pandas.DataFrame, optional
        :func:`crmstats.attribution.incremental_economics` (with a ``total`` row).
    journey_shares : pandas.Series, optional
        One journey model's credit shares, to say where it misjudges most.
    truth_error : pandas.Series, optional
        Mean absolute share error per model against a known truth (simulated data).

    Returns
    -------
    list of str
    """
    out: list[str | None] = []
    measured = _measured(calibrated)
    if not measured:
        out.append(
            "Too few sales to estimate what each channel adds: the experiments and the model "
            "cannot tell the channels' total added sales from zero, so no channel's share of "
            "it is given. More journeys, or longer tests, are needed."
        )
    if len(lifts):
        sig = lifts[(lifts["p_value"] < 0.05) & (lifts["lift"] > 0)]
        best = _top(lifts["relative_lift"])[0]
        verb = "raises" if len(sig) == 1 else "raise"
        out.append(
            f"Of {len(lifts)} channels tested with holdouts, {len(sig)} {verb} conversion "
            f"significantly (5 % level); the largest relative lift is {_label(best)}: "
            f"{fmt_pct(lifts.loc[best, 'relative_lift'], signed=True)} (95 % interval "
            f"{fmt_pct(lifts.loc[best, 'relative_lower_95'], signed=True)} to "
            f"{fmt_pct(lifts.loc[best, 'relative_upper_95'], signed=True)})."
        )
        flat = [_label(c) for c in lifts.index[lifts["lower_95"] <= 0]]
        if flat:
            out.append(
                "No lift can be told from zero yet for "
                + ", ".join(flat[:4])
                + (" and others" if len(flat) > 4 else "")
                + ": their holdouts are too small, or they add little."
            )
    ranked = _top(calibrated["share"], 2)
    if len(ranked) == 2:
        out.append(
            f"Calibrated by the experiments, {_label(ranked[0])} adds the most "
            f"conversions ({fmt_pct(calibrated.loc[ranked[0], 'share'])} of all "
            f"incremental conversions), then {_label(ranked[1])} "
            f"({fmt_pct(calibrated.loc[ranked[1], 'share'])})."
        )
    if journey_shares is not None and measured:
        credit = journey_shares.reindex(calibrated.index).fillna(0.0)
        diff = calibrated["share"] - credit
        c = diff.abs().idxmax()
        word = "under" if diff[c] > 0 else "over"
        adds = calibrated.loc[c, "share"]
        # a calibrated share at or below zero is "nothing measurable", not "-0.036 %"
        adds_text = (
            f"{fmt_pct(adds)} of what the channels add"
            if adds >= 0.001
            else "next to none of what the channels add"
        )
        out.append(
            f"Journey-based credit {word}-rates {_label(c)} most: "
            f"{fmt_pct(credit[c])} of the credit against {adds_text}."
        )
    if measured and economics is not None and "incremental_cac" in economics:
        eco = economics.drop(index="total", errors="ignore")
        eco = eco[np.isfinite(eco["incremental_cac"]) & (eco["incremental_cac"] > 0)]
        if len(eco) >= 2:
            cheap, dear = eco["incremental_cac"].idxmin(), eco["incremental_cac"].idxmax()
            out.append(
                f"Per customer it adds, {_label(cheap)} is the cheapest channel "
                f"({fmt_money(eco.loc[cheap, 'incremental_cac'])}) and {_label(dear)} "
                f"the dearest ({fmt_money(eco.loc[dear, 'incremental_cac'])})."
            )
    if truth_error is not None and len(truth_error.dropna()):
        err = truth_error.dropna()
        best = err.idxmin()
        out.append(
            f"Against the simulator's known truth, {best} comes closest "
            f"({fmt_pct(err[best])} off per channel on average)."
        )
    return _keep(out)


def _measured(calibrated: pd.DataFrame) -> bool:
    """Whether calibrate could give shares (NaN on every row: too few sales to estimate)."""
    return "share" not in calibrated or bool(calibrated["share"].notna().any())


def next_euro(model: Any, plan: Any, triangulation: pd.DataFrame | None = None) -> list[str]:
    """Write the key findings of the study "Where the next euro should go".

    Parameters
    ----------
    model : MediaMixModel
        Fitted (its ``mroas_``: marginal ROAS at current spend, with intervals).
    plan : BudgetPlan
        ``model.optimize_budget(...)``: the recommended split and its expected gain.
    triangulation : pandas.DataFrame, optional
        :func:`crmstats.attribution.triangulate`'s table, to say where the
        sources disagree.

    Returns
    -------
    list of str
    """
    from crmstats.attribution.triangulation import triangulation_finding
    from crmstats.attribution.triangulation_plots import outcome_amount

    out: list[str | None] = []
    outcome = model.outcome
    m = model.mroas_.sort_values("estimate", ascending=False)
    if len(m):
        best, worst = m.index[0], m.index[-1]
        amount, _ = per_spend(model.roas_["estimate"])  # the amount the page's tables use

        def said(c):
            lo, est, hi = (amount * float(m.loc[c, k]) for k in ("lower_95", "estimate",
                                                                  "upper_95"))
            return (f"{_label(c)} ({outcome_amount(est, outcome, 2)}, 95 % interval "
                    f"{outcome_amount(lo, outcome, 2, named=False)} to "
                    f"{outcome_amount(hi, outcome, 2, named=False)})")

        out.append(
            f"At today's spend, the next {fmt_money(amount, decimals=0)} brings most in "
            f"{said(best)} and least in {said(worst)}."
        )
    a = plan.allocation
    up = a[a["change"] > 0].sort_values("change", ascending=False)
    down = a[a["change"] < 0].sort_values("change")
    if len(up) and len(down):
        moved = float(up["change"].sum())
        out.append(
            f"Recommended shift: move {fmt_money(moved)} a week "
            f"({fmt_pct(moved / plan.total)} of the weekly budget of {fmt_money(plan.total)}) "
            f"from {', '.join(_label(c) for c in down.index[:3])} to "
            f"{', '.join(_label(c) for c in up.index[:3])}."
        )
        out.append(
            f"Expected gain over {plan.weeks} weeks: {outcome_amount(plan.gain, outcome)} "
            f"(95 % interval {outcome_amount(plan.gain_lower_95, outcome, named=False)} to "
            f"{outcome_amount(plan.gain_upper_95, outcome, named=False)}), "
            f"{fmt_pct(plan.relative_gain, signed=True)} on "
            "what media bring now"
            + (
                "; the interval includes no gain, so the shift is a bet, not a sure thing."
                if not plan.gain_lower_95 > 0
                else "."
            )
        )
    else:
        out.append(
            "The current split is already where the fitted curves put the budget: no "
            "shift is recommended."
        )
    if triangulation is not None and "share_spread" in triangulation:
        out.append(triangulation_finding(triangulation))
    return _keep(out)


def next_euro_kpis(model: Any, plan: Any) -> dict[str, dict[str, Any]]:
    """Return the next-euro study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The best channel's marginal ROAS and the recommended split's expected gain
    (share of what media bring now).
    """
    from crmstats.attribution.triangulation_plots import outcome_words

    m = model.mroas_["estimate"]
    amount, _ = per_spend(model.roas_["estimate"])  # the amount the page quotes returns per
    return {
        "best_marginal_roas": {
            "value": float(m.max()),
            "kind": "number",
            "per": amount,
            "label": f"Best marginal ROAS, {_label(m.idxmax())} ("
                     f"{outcome_words(model.outcome)} per {fmt_money(amount, decimals=0)} "
                     "of spend)",
        },
        "budget_shift_gain": {
            "value": float(plan.relative_gain),
            "kind": "share",
            "label": "Expected gain of the recommended budget split",
        },
    }

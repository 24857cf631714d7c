"""Key findings of each study, written from its own results.

One function per study template. Each takes the results the study computed
and returns 3-5 plain sentences for :meth:`crmstats.book.report.StudyPage.finish`,
which shows them at the top of the study's page. Every number in a sentence
comes from the arguments (formatted with :mod:`crmstats.book.report`); nothing
is typed in, so the findings change with the data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_pvalue,
    fmt_ratio,
)

__all__ = ["attribution", "churn", "churn_kpis", "clv", "clv_kpis", "data_overview",
           "data_overview_kpis", "data_quality", "funnel", "funnel_kpis", "incrementality",
           "incrementality_kpis", "key_accounts", "key_accounts_kpis", "lead_scoring",
           "lead_scoring_kpis", "lifecycle", "lifecycle_kpis", "next_euro", "next_euro_kpis",
           "value_migration", "value_migration_kpis", "customer_effects"]


def _label(name: Any) -> str:
    return str(name).replace("_", " ")


def _term(term: Any) -> str:
    """Name a model term for readers: ``industry[software]`` as ``industry = software``."""
    text = str(term)
    if "[" in text and text.endswith("]"):
        name, level = text[:-1].split("[", 1)
        return f"{_label(name)} = {level.removeprefix('T.')}"
    return _label(text)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _date(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%B %Y")


def _top(series: pd.Series, n: int = 1) -> list:
    clean = pd.to_numeric(series, errors="coerce").dropna()
    return list(clean.sort_values(ascending=False, kind="stable").index[:n])


def _keep(sentences: list[str | None]) -> list[str]:
    out = [s for s in sentences if s]
    return out[:5]


def _counted(n: int, noun: str) -> str:
    """Return '1 table' or '2,000 tables'."""
    return f"{fmt_count(n)} {noun}{'' if n == 1 else 's'}"


def data_quality(quality: pd.DataFrame) -> list[str]:
    """Write the key findings of the data-quality page.

    Parameters
    ----------
    quality : DataFrame
        :func:`crmstats.data_quality` (one row per table: ``rows_read``,
        ``rows_dropped``, ``dropped_because``, ``flags``, ``first``, ``last``,
        ``mapping``).

    Returns
    -------
    list of str
    """
    read = int(quality["rows_read"].sum())
    dropped = int(quality["rows_dropped"].sum())
    out = [f"{_counted(len(quality), 'table')} {'was' if len(quality) == 1 else 'were'} read, "
           f"{_counted(read, 'row')} in all."]
    if dropped:
        worst = quality["rows_dropped"].idxmax()
        out.append(f"{fmt_count(dropped)} rows ({fmt_pct(dropped / read)}) were left out; most "
                   f"in {_label(worst)} ({fmt_count(quality.loc[worst, 'rows_dropped'])}: "
                   f"{quality.loc[worst, 'dropped_because'] or 'see the table'}).")
    else:
        out.append("No row was left out: every row read is used by the studies.")
    flags = quality["flags"].fillna("").astype(str).str.strip()
    flagged = [str(t) for t in quality.index[flags != ""]]
    out.append(f"Flagged for a look: {', '.join(_label(t) for t in flagged)} (see the table)."
               if flagged else "No table carries a flag.")
    first, last = pd.to_datetime(quality["first"]).min(), pd.to_datetime(quality["last"]).max()
    if pd.notna(first) and pd.notna(last):
        out.append(f"The data run from {_date(first)} to {_date(last)}.")
    mapped = quality["mapping"].fillna("").astype(str)
    n_mapped = int((~mapped.str.startswith("canonical") & (mapped != "")).sum())
    out.append(f"{_counted(n_mapped, 'table')} {'is' if n_mapped == 1 else 'are'} mapped from "
               "the export's own names by the source file." if n_mapped else
               "The tables use crmstats' canonical names: no mapping was needed.")
    return _keep(out)


def data_overview(activity: pd.DataFrame, orders: pd.DataFrame, revenue: pd.Series,
                  top_share: float) -> list[str]:
    """Write the key findings of the data overview.

    Parameters
    ----------
    activity : DataFrame
        :func:`crmstats.overview.monthly_activity` (its ``window`` gives the
        data's first and last day and the partial period left out, if any).
    orders : DataFrame
        :func:`crmstats.overview.orders_per_customer`.
    revenue : Series
        :func:`crmstats.overview.customer_revenue` (net revenue per customer).
    top_share : float
        Revenue share of the top 20 % of customers.

    Returns
    -------
    list of str
    """
    window = getattr(activity, "window", None)
    first = window.start if window is not None else activity.index.min()
    last = window.end if window is not None else activity.index.max()
    once = orders["share"].iloc[0] if len(orders) else float("nan")
    out = [
        f"The source records {fmt_count(len(revenue))} customers who bought, for a net revenue "
        f"of {fmt_money(revenue.sum())} (refunds deducted) from {_date(first)} to {_date(last)}.",
        f"The top 20 % of customers bring {fmt_pct(top_share)} of that revenue.",
    ]
    if _finite(once):
        out.append(f"{fmt_pct(once)} of customers bought only once; the lifetime-value "
                   "studies build on the repeat buyers.")
    if len(activity) >= 2:
        busiest = _top(activity["revenue"])[0]
        out.append(f"The busiest period was {_date(busiest)}, with "
                   f"{fmt_money(activity.loc[busiest, 'revenue'])} of revenue from "
                   f"{fmt_count(activity.loc[busiest, 'customers'])} customers.")
    out.append(_left_out(activity).strip() or None)
    return _keep(out)


def clv(comparison: pd.DataFrame | None, values: pd.DataFrame, pareto: Any,
        spend_params: Mapping[str, float] | pd.Series | None = None,
        horizon_months: int = 12, *, fits: Mapping[str, Any] | None = None) -> list[str]:
    """Write the key findings of the customer lifetime value study.

    A fit that did not converge or sits at the edge of its parameter space
    (:func:`crmstats.clv.fit_problem`) is named in plain words — which fit and
    what it means — and is not used: a holdout fit with a problem is left out
    of the ranking, and values resting on a whole-period fit with a problem
    are not headlined.

    Parameters
    ----------
    comparison : DataFrame or None
        :func:`crmstats.clv.compare_models` on the holdout (index model,
        columns ``mae`` and ``fit_problem``), or None when there was no
        holdout test.
    values : DataFrame
        :func:`crmstats.clv.customer_lifetime_value` (column ``clv``).
    pareto : ParetoResult
        :func:`crmstats.clv.pareto_analysis` of the values (``top_share``).
    spend_params : mapping, optional
        Gamma-Gamma's ``p``, ``q``, ``v``: the mean spend per purchase is
        ``p v / (q - 1)``.
    horizon_months : int
        The CLV horizon.
    fits : mapping of str to fitted model, optional
        The whole-period models the values rest on, by the names readers
        know, e.g. ``{"BG/NBD": fit.transaction_model, "Gamma-Gamma":
        fit.spend_model}``.

    Returns
    -------
    list of str
    """
    clv_values = values["clv"]
    problems = _fit_problems(fits, "on the whole period")
    out = list(problems)
    if not problems:
        out += [
            f"The average customer is worth {fmt_money(clv_values.mean())} over the next "
            f"{horizon_months} months (discounted); all {fmt_count(len(clv_values))} customers "
            f"together {fmt_money(clv_values.sum())}.",
            f"The top 20 % of customers hold {fmt_pct(pareto.top_share)} of that expected "
            "value.",
        ]
    if comparison is not None and len(comparison) >= 1 and "mae" in comparison:
        flagged = (comparison["fit_problem"].fillna("").astype(str) if "fit_problem" in comparison
                   else pd.Series("", index=comparison.index))
        for name in comparison.index[flagged.ne("")]:
            out.append(f"The {name} fit of the holdout test {flagged[name]}; its holdout ranking "
                       "is not used.")
        trusted = comparison[flagged.eq("")]
        if len(trusted):
            best = trusted["mae"].idxmin()
            line = (f"On the holdout period, {best} predicted each customer's purchases best "
                    f"(mean absolute error {fmt_number(trusted.loc[best, 'mae'], 3)} purchases")
            if {"actual", "predicted"} <= set(trusted.columns):
                line += (f"; {fmt_number(trusted.loc[best, 'predicted'], 3)} predicted against "
                         f"{fmt_count(trusted.loc[best, 'actual'])} made")
            out.append(line + ").")
    if spend_params is not None:
        p, q, v = (float(spend_params[k]) for k in ("p", "q", "v"))
        if q > 1:
            out.append(f"A repeat customer spends {fmt_money(p * v / (q - 1))} per purchase on "
                       "average (Gamma-Gamma model).")
    dormant = float((clv_values < 0.01 * clv_values.mean()).mean()) if len(clv_values) else 0.0
    if dormant > 0:
        out.append(f"{fmt_pct(dormant)} of customers are expected to be worth almost nothing "
                   "(under 1 % of the average customer).")
    return _keep(out)


def _untrusted(fits: Mapping[str, Any] | None) -> dict[str, str]:
    """Return ``{name: problem}`` for each fit of ``fits`` not to be trusted.

    The problem is :func:`crmstats.clv.fit_problem`'s clause.
    """
    from crmstats.clv import fit_problem

    return {name: problem for name, model in (fits or {}).items()
            if (problem := fit_problem(model))}


def _fit_problems(fits: Mapping[str, Any] | None, where: str) -> list[str]:
    """Name each fit of ``fits`` not to be trusted, in a sentence for readers."""
    return [f"The {name} fit {where} {problem}; the customer values on this page rest on it, "
            "so they are shown but not used as headline figures."
            for name, problem in _untrusted(fits).items()]


def clv_kpis(values: pd.DataFrame, pareto: Any,
             fits: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Return the CLV study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The average CLV and the top-20 % share of expected value — unless one of
    ``fits`` (the whole-period models the values rest on, as for :func:`clv`)
    did not converge or sits at the edge of its parameter space
    (:func:`crmstats.clv.fit_problem`): then only the number of customers
    valued, its label saying why, so that no value from a fit not to be
    trusted reaches the book's summary.
    """
    untrusted = list(_untrusted(fits))
    if untrusted:
        return {"customers_valued": {
            "value": len(values), "kind": "count",
            "label": f"Customers valued (no average value: the {' and '.join(untrusted)} fit "
                     "is not to be trusted, see the CLV study)"}}
    return {"average_clv": {"value": float(values["clv"].mean())},
            "top20_clv_share": {"value": float(pareto.top_share), "kind": "share",
                                "label": "Expected value share of the top 20 % of customers"}}


def attribution(shares: pd.DataFrame, economics: pd.DataFrame | None = None,
                accuracy: pd.DataFrame | None = None,
                model: str = "Markov (order 1)") -> list[str]:
    """Write the key findings of the channel attribution study.

    Parameters
    ----------
    shares : DataFrame
        :func:`crmstats.attribution.credit_shares` (channels by models).
    economics : DataFrame, optional
        :func:`crmstats.attribution.channel_economics` (with a ``total`` row).
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
    out = [f"By the {model} model, {_label(ranked[0])} earns the largest share of conversions "
           f"({fmt_pct(table.loc[ranked[0], model])})"
           + (f", ahead of {_label(ranked[1])} ({fmt_pct(table.loc[ranked[1], model])})."
              if len(ranked) > 1 else ".")]
    spread = table.max(axis=1) - table.min(axis=1)
    widest = _top(spread)[0]
    out.append(f"The models disagree most on {_label(widest)}: from "
               f"{fmt_pct(table.loc[widest].min())} to {fmt_pct(table.loc[widest].max())} of "
               "the credit, so its value depends on how journeys are read.")
    if accuracy is not None and "mae" in accuracy and accuracy["mae"].notna().any():
        acc = accuracy["mae"].dropna()
        best = acc.idxmin()
        out.append(f"Against the simulator's true incremental shares, {best} comes closest "
                   f"(mean absolute error {fmt_pct(acc.loc[best])} per channel).")
    if economics is not None and "total" in economics.index:
        total = economics.loc["total"]
        line = f"Across channels, a customer costs {fmt_money(total.get('cac'))} to acquire"
        if _finite(total.get("ltv_cac")):
            line += f" and returns {fmt_ratio(total.get('ltv_cac'))} that cost (LTV:CAC)"
        out.append(line + ".")
        per = economics.drop(index="total")
        if "ltv_cac" in per and per["ltv_cac"].notna().sum() >= 2:
            order = per["ltv_cac"].replace([np.inf, -np.inf], np.nan).dropna().sort_values()
            out.append(f"{_label(order.index[-1]).capitalize()} pays back best "
                       f"({fmt_ratio(order.iloc[-1])}), {_label(order.index[0])} worst "
                       f"({fmt_ratio(order.iloc[0])}).")
    return _keep(out)


_UNITS = {"W": "week", "M": "month", "Q": "quarter", "Y": "year", "D": "day"}


def _span(values: pd.Series, unit: str) -> str:
    """Name the periods behind a figure: 'the last 9 months, March 2011 to November 2011'."""
    n = len(values)
    if n == 0:
        return f"no {unit}"
    what = f"the last {unit}" if n == 1 else f"the last {n} {unit}s"
    if isinstance(values.index, pd.DatetimeIndex):
        first, last = values.index[0], values.index[-1]
        what += f", {_date(first)}" if n == 1 else f", {_date(first)} to {_date(last)}"
    return what


def _left_out(frame: pd.DataFrame) -> str:
    """Return ' December 2011 is left out ...': the partial period a KPI frame dropped, if any."""
    window = getattr(frame, "window", None)
    note = window.note() if window is not None else ""
    return f" {note}" if note else ""


def churn_kpis(rates: pd.DataFrame, churned_after: int, period: str = "M",
               n: int = 12) -> dict[str, dict[str, Any]]:
    """Return the churn study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The churn rate is the mean of the last ``n`` observable periods (missing
    ones are neither averaged in nor counted: :mod:`crmstats._windows`), and
    its label says how many there were, as :func:`churn` does.
    """
    from crmstats._windows import recent

    unit = _UNITS.get(period, "period")
    last = recent(rates["churn_rate"], n)
    periods = f"{len(last)} {unit}" + ("" if len(last) == 1 else "s")
    return {
        "churn_rate": {"value": last.mean(), "kind": "share",
                       "label": f"Churn rate per {unit} (inactive {churned_after} {unit}s; "
                                f"mean of the last {periods})"},
        "active_customers": {"value": rates["active_end"].dropna().iloc[-1],
                             "label": f"Active customers (end of {_date(rates.index[-1])})",
                             "kind": "count"},
    }


def churn(rates: pd.DataFrame, retention: pd.DataFrame, churned_after: int,
          period: str = "M") -> list[str]:
    """Write the key findings of the cohort retention and churn study.

    Only observable periods count (:mod:`crmstats._windows`): the average and
    the "last three against before" comparison skip the periods whose churn
    cannot be seen (the data's first ``churned_after``), and the text names
    how many periods it averaged, as :func:`churn_kpis` labels the KPI.

    Parameters
    ----------
    rates : DataFrame
        :func:`crmstats.churn.churn_rate` (``churn_rate``, ``active_end``).
    retention : DataFrame
        :func:`crmstats.churn.retention_matrix` (cohorts by age, fractions).
    churned_after : int
        Periods without a purchase that make a customer churned.
    period : str
        The period (``"W"``, ``"M"``, ``"Q"``).

    Returns
    -------
    list of str
    """
    from crmstats._windows import recent

    unit = _UNITS.get(period, "period")
    last = recent(rates["churn_rate"], 12)
    out = [f"On average {fmt_pct(last.mean())} of active customers churned per {unit} over "
           f"{_span(last, unit)} (no purchase for {churned_after} {unit}s counts as "
           "churned).",
           f"{fmt_count(rates['active_end'].iloc[-1])} customers were active at the end of "
           f"{_date(rates.index[-1])}." + _left_out(rates)]
    unseen = rates.index[rates["churn_rate"].isna() & rates["churned"].isna()]
    if len(unseen) and unseen[0] == rates.index[0]:
        out.append(f"The data's first {fmt_count(len(unseen))} {unit}s show no churn figure: "
                   f"nobody can be seen to go {churned_after} {unit}s without a purchase "
                   "before the data are that old.")
    if len(last) >= 6:
        recent3, before = last.tail(3).mean(), last.iloc[:-3].mean()
        trend = "higher" if recent3 > before else "lower"
        out.append(f"Churn in the last three {unit}s ({fmt_pct(recent3)}) is {trend} than in "
                   f"the {len(last) - 3} {unit}s before ({fmt_pct(before)}).")
    curve = retention.mean(axis=0, skipna=True)
    ages = [a for a in curve.dropna().index if a not in (0, "0")]
    if ages:
        first = ages[0]
        after = f"one {unit}" if str(first) == "1" else f"{first} {unit}s"
        line = (f"On average {fmt_pct(curve.loc[first])} of a cohort buys again {after} "
                "after its first purchase")
        if len(ages) > 1:
            line += f", {fmt_pct(curve.loc[ages[-1]])} after {ages[-1]} {unit}s"
        out.append(line + ".")
    return _keep(out)


def key_accounts_kpis(bridge: pd.DataFrame, period: str = "M",
                      n: int = 12) -> dict[str, dict[str, Any]]:
    """Return the key-account study's headline KPIs for :func:`crmstats.book.record_kpis`.

    NRR, GRR and logo churn are means over the last ``n`` periods whose start
    is observed (the bridge's first period is not: :mod:`crmstats._windows`);
    the labels say how many, as :func:`key_accounts` does.
    """
    unit = _UNITS.get(period, "period")
    last = _observed_bridge(bridge, n)
    periods = f"{len(last)} {unit}" + ("" if len(last) == 1 else "s")
    names = {"nrr": "Net revenue retention (NRR)", "grr": "Gross revenue retention (GRR)",
             "logo_churn_rate": "Key-account logo churn"}
    return {key: {"value": last[key].mean(), "kind": "share",
                  "label": f"{label} per {unit}, mean of the last {periods}"}
            for key, label in names.items()}


def _observed_bridge(bridge: pd.DataFrame, n: int) -> pd.DataFrame:
    """Return the last ``n`` periods of an MRR bridge whose start is observed."""
    from crmstats._windows import recent

    return bridge.loc[recent(bridge["start"], n).index]


def key_accounts(bridge: pd.DataFrame, medians: pd.DataFrame | None = None,
                 drivers: pd.DataFrame | None = None, months: int = 12,
                 period: str = "M") -> list[str]:
    """Write the key findings of the key accounts study.

    Averages use the last ``months`` periods whose start is observed (the
    bridge's first period is not), and the text says how many, as
    :func:`key_accounts_kpis` labels the KPIs.

    Parameters
    ----------
    bridge : DataFrame
        :func:`crmstats.churn.mrr_bridge` (``end``, ``nrr``, ``grr``, ``logo_churn_rate``).
    medians : DataFrame, optional
        Survival medians (``survival_curves(...).medians``: ``median``).
    drivers : DataFrame, optional
        A hazard model's ``summary_`` (``estimate``, ``p_value`` per driver).
    months : int
        Periods averaged.
    period : str
        The bridge's period (``"M"`` or ``"Q"``).

    Returns
    -------
    list of str
    """
    unit = _UNITS.get(period, "period")
    last = _observed_bridge(bridge, months)
    out = [f"Monthly recurring revenue stood at {fmt_money(bridge['end'].iloc[-1])} at the end "
           f"of {_date(bridge.index[-1])}."]
    if len(last):
        out[0] = out[0][:-1] + (f", against {fmt_money(last['start'].iloc[0])} at the start "
                                f"of {_date(last.index[0])}.")
        out.append(f"Net revenue retention averaged {fmt_pct(last['nrr'].mean())} per {unit} "
                   f"over {_span(last['nrr'], unit)}, and gross revenue retention "
                   f"{fmt_pct(last['grr'].mean())}; {fmt_pct(last['logo_churn_rate'].mean())} "
                   f"of accounts left per {unit}.")
    if medians is not None and len(medians) and "median" in medians:
        median = medians["median"].iloc[0]
        if _finite(median):
            out.append(f"Half of the key accounts stay {fmt_number(median, 2)} months or "
                       "longer (Kaplan-Meier median).")
        else:
            out.append("More than half of the key accounts are still with the company: their "
                       "median lifetime is beyond the data.")
    if drivers is not None and "p_value" in drivers:
        sig = drivers[drivers["p_value"] < 0.05]
        if len(sig):
            name = sig["estimate"].abs().idxmax()
            effect = math.exp(float(sig.loc[name, "estimate"]))
            out.append(f"{_label(name).capitalize()} is the strongest significant driver of "
                       f"churn: hazard ratio {fmt_number(effect, 3)} per unit (p = "
                       f"{fmt_number(sig.loc[name, 'p_value'], 2)}).")
        else:
            out.append("No service driver of churn is significant at the 5 % level in these "
                       "data.")
    return _keep(out)


def funnel(conversion: pd.DataFrame | None, channels: pd.DataFrame | None,
           pipeline_summary: pd.Series | Mapping[str, Any],
           by_owner: pd.DataFrame | None = None, window_days: float | None = None) -> list[str]:
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
        out.append(f"{fmt_count(totals['leads'])} leads became {fmt_count(totals['won'])} "
                   f"customers: {fmt_pct(totals['won'] / totals['leads'])} of leads, at "
                   f"{fmt_money(totals['spend'] / totals['leads'])} of spend per lead.")
    steps = conversion["conversion_to_next"].dropna() if conversion is not None else []
    if len(steps):
        worst = steps.idxmin()
        out.append(f"The largest drop is after the {_label(worst)} stage: only "
                   f"{fmt_pct(steps.loc[worst])} move on to the next stage.")
    if channels is not None and len(channels):
        cpl = channels["cost_per_lead"].replace([np.inf, -np.inf], np.nan).dropna()
        won = channels["lead_to_won"].dropna()
        if len(cpl) >= 2 and len(won) >= 2:
            out.append(f"{_label(cpl.idxmin()).capitalize()} brings the cheapest leads "
                       f"({fmt_money(cpl.min())} each); {_label(won.idxmax())} leads turn into "
                       f"customers most often ({fmt_pct(won.max())}).")
    s = pipeline_summary
    window = (f"in the last {fmt_count(window_days)} days" if _finite(window_days)
              else "recently")
    if s.get("source") == "deals":
        undated = int(s.get("open_undated") or 0)
        line = f"{fmt_count(s.get('open_deals'))} deals are open"
        if undated:
            line += f" ({fmt_count(undated)} of them without a date yet)"
        if _finite(s.get("open_value")):
            line += f", worth {fmt_money(s.get('open_value'))} where an amount is recorded"
        out.append(line + ".")
        if _finite(s.get("win_rate")):
            line = (f"Of the {fmt_count(s.get('closed_in_window'))} deals closed {window}, "
                    f"{fmt_pct(s.get('win_rate'))} were won")
            if _finite(s.get("average_deal_size")):
                line += f", for {fmt_money(s.get('average_deal_size'))} on average"
            if _finite(s.get("cycle_days_median")):
                line += (f"; half of the won deals closed within "
                         f"{fmt_number(s.get('cycle_days_median'), 2)} days of their start")
            out.append(line + ".")
    elif _finite(s.get("win_rate")):
        out.append(f"{fmt_count(s.get('open_opportunities'))} opportunities are open; "
                   f"{fmt_pct(s.get('win_rate'))} of recently closed ones were won, for a sales "
                   f"velocity of {fmt_money(s.get('sales_velocity_per_month'))} per month.")
    if by_owner is not None and {"won", "lost", "win_rate"} <= set(by_owner.columns):
        closed = by_owner["won"] + by_owner["lost"]
        rates = by_owner["win_rate"][closed >= 10].dropna()
        if len(rates) >= 2 and rates.max() > rates.min():
            out.append(f"Win rates by owner range from {fmt_pct(rates.min())} to "
                       f"{fmt_pct(rates.max())} (owners with at least 10 closed deals).")
    return _keep(out)


def lead_scoring(auc: float, coefficients: pd.DataFrame, band_rates: pd.Series,
                 target: str = "qualified") -> list[str]:
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
    quality = ("strong" if auc >= 0.8 else "useful" if auc >= 0.7 else
               "weak" if auc >= 0.6 else "no better than chance")
    out = [f"The lead score ranks leads with an AUC of {fmt_number(auc, 2)} on leads it was not "
           f"fitted on: a {quality} ranking of who ends {_label(target)}."]
    coef = coefficients.drop(index=[i for i in coefficients.index
                                    if str(i).lower() in ("intercept", "const")], errors="ignore")
    if "p_value" in coef and "odds_ratio" in coef:
        sig = coef[coef["p_value"] < 0.05]
        if len(sig):
            strength = np.log(sig["odds_ratio"].astype(float)).abs()
            top = list(strength.sort_values(ascending=False, kind="stable").index[:2])
            parts = [f"{_term(t)} (odds × {fmt_number(sig.loc[t, 'odds_ratio'], 3)} "
                     + ("against the base level)" if "[" in str(t) else "per unit)")
                     for t in top]
            out.append("The strongest significant signals are " + " and ".join(parts) + ".")
    rates = band_rates.dropna()
    if len(rates) >= 2:
        out.append(f"Leads in band {rates.index[0]} end {_label(target)} "
                   f"{fmt_pct(rates.iloc[0])} of the time, against {fmt_pct(rates.iloc[-1])} "
                   f"in band {rates.index[-1]}: call band {rates.index[0]} first.")
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
    out = [f"Of {fmt_count(total)} contacts, {fmt_count(customers)} are active customers "
           f"({fmt_pct(customers / total)}) and {fmt_count(former)} are former customers."]
    if former:
        out.append(f"{fmt_count(get('former customer, high priority'))} former customers are "
                   "high priority for win-back: likely still reachable and valuable.")
    if get("evangelist"):
        out.append(f"{fmt_count(get('evangelist'))} customers are evangelists: they referred "
                   "at least one contact.")
    largest = _top(counts)[0]
    out.append(f"The largest group is {_label(largest)} ({fmt_pct(counts[largest] / total)} "
               "of contacts).")
    return _keep(out)


def value_migration(migration: Any, top_n: int = 15) -> list[str]:
    """Write the key findings of the value-migration study ("How customer value moves").

    Parameters
    ----------
    migration : ValueMigration
        :func:`crmstats.clv.value_migration`.
    top_n : int
        Length of the study's list of accounts to act on.

    Returns
    -------
    list of str
    """
    d = migration.decomposition
    start, end = float(d["start"]), float(d["end"])
    change = end - start
    c = migration.customers
    present = c["clv_start"].notna()
    fell = int((c["tier_move"] < 0).sum())
    when = (f"from {pd.Timestamp(migration.start):%d %B %Y} to "
            f"{pd.Timestamp(migration.end):%d %B %Y}")
    direction = "rose" if change >= 0 else "fell"
    problems = _fit_problems(getattr(migration, "fits", None), "used to value customers")
    out = [*problems, None if problems or start <= 0 else
           f"Expected customer value (discounted CLV of every customer) {direction} "
           f"{when}, from {fmt_money(start)} to {fmt_money(end)} "
           f"({fmt_pct(change / start, signed=True)})."]
    net = migration.net_migration
    out.append(f"New customers added {fmt_money(d['new'])}; the customers already there "
               f"{'gained' if net >= 0 else 'lost'} {fmt_money(abs(net))} net: "
               f"{fmt_money(d['upgrades'])} from upgrades, {fmt_money(d['downgrades'])} from "
               f"downgrades, {fmt_money(d['unchanged tier'])} within unchanged tiers and "
               f"{fmt_money(d['lost'])} from customers who lapsed.")
    if present.any():
        out.append(f"{fmt_count(fell)} of the {fmt_count(int(present.sum()))} customers "
                   f"({fmt_pct(fell / present.sum())}) fell one value tier or more; they held "
                   f"{fmt_pct(migration.share_value_moved_down)} of the value at the start.")
    lost = int(c["lost"].sum())
    if lost:
        out.append(f"{fmt_count(lost)} customers active at the start have since gone twice "
                   "the usual time between purchases without buying (counted as lost).")
    f = migration.fallers
    if len(f):
        top = f["value_lost"].head(int(top_n))
        out.append(f"The {fmt_count(len(top))} accounts at the top of the list to act on lost "
                   f"{fmt_money(top.sum())} of expected value between them "
                   f"({fmt_pct(top.sum() / f['value_lost'].clip(lower=0).sum())} of all the "
                   "value lost by customers who fell a tier).")
    return _keep(out)


def value_migration_kpis(migration: Any) -> dict[str, dict[str, Any]]:
    """Return the value-migration study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The value share of customers who fell a tier or more and the net value
    migration of existing customers — unless a fit the values rest on is not
    to be trusted (:func:`crmstats.clv.fit_problem`, as for :func:`clv_kpis`):
    then only the number of customers valued, its label saying why.
    """
    untrusted = list(_untrusted(getattr(migration, "fits", None)))
    if untrusted:
        return {"customers_valued_migration": {
            "value": len(migration.customers), "kind": "count",
            "label": f"Customers valued (no value change: the {' and '.join(untrusted)} fit "
                     "is not to be trusted, see the value-migration study)"}}
    return {"value_share_moved_down": {"value": migration.share_value_moved_down,
                                       "label": "Value share of customers who fell a tier or more",
                                       "kind": "share"},
            "net_value_migration": {"value": migration.net_migration,
                                    "label": "Net value migration of existing customers",
                                    "kind": "money"}}



def data_overview_kpis(revenue: pd.Series, top_share: float) -> dict[str, Any]:
    """Return the data-overview study's headline KPIs for :func:`crmstats.book.record_kpis`.

    Customers who bought, their net revenue and the revenue share of the top
    fifth, from :func:`crmstats.overview.customer_revenue` (one value per
    customer) and :func:`crmstats.clv.pareto_analysis`'s ``top_share``.

    Examples
    --------
    >>> data_overview_kpis(pd.Series([10.0, 30.0, -5.0]), 0.8)
    {'customers': 3, 'revenue': 35.0, 'top20_revenue_share': 0.8}
    """
    return {"customers": len(revenue), "revenue": float(revenue.sum()),
            "top20_revenue_share": top_share}


def funnel_kpis(summary: Mapping[str, Any],
                channels: pd.DataFrame | None = None) -> dict[str, Any]:
    """Return the funnel study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The pipeline's win rate and sales velocity (``Pipeline.summary``) and, when
    the source has lead channels (:func:`crmstats.funnel.lead_kpis`), the lead
    to customer rate and the cost per lead over all channels.
    """
    kpis: dict[str, Any] = {
        "win_rate": {"value": summary["win_rate"], "kind": "share",
                     "label": "Win rate of opportunities (look-back window)"},
        "sales_velocity": {"value": summary["sales_velocity_per_month"], "kind": "money",
                           "label": "Sales velocity per month"}}
    if channels is not None:
        totals = channels[["spend", "leads", "won"]].sum()
        kpis["lead_to_customer_rate"] = totals["won"] / totals["leads"]
        kpis["cost_per_lead"] = {"value": totals["spend"] / totals["leads"], "kind": "money",
                                 "label": "Cost per lead"}
    return kpis


def incrementality_kpis(calibrated: pd.DataFrame, economics: pd.DataFrame,
                        conversions: Any) -> dict[str, dict[str, Any]]:
    """Return the incrementality study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The share of all sales the channels add (calibrated incremental
    conversions over the ``conversions`` table's rows) and the blended
    incremental CAC (``economics``' ``total`` row).
    """
    n = len(conversions) if isinstance(conversions, pd.DataFrame) else conversions.count().execute()
    return {"incremental_sales_share": {"value": calibrated["conversions"].sum() / n,
                                        "label": "Share of sales the channels add (calibrated)",
                                        "kind": "share"},
            "incremental_cac": {"value": economics.loc["total", "incremental_cac"],
                                "label": "Incremental CAC (blended)", "kind": "money"}}


def lead_scoring_kpis(auc: float) -> dict[str, dict[str, Any]]:
    """Return the lead-scoring study's headline KPI (the held-out AUC) for ``record_kpis``."""
    return {"lead_score_auc": {"value": auc, "label": "Lead score AUC (held out)",
                               "kind": "number"}}


def lifecycle_kpis(counts: pd.Series) -> dict[str, dict[str, Any]]:
    """Return the lifecycle study's headline KPIs for :func:`crmstats.book.record_kpis`.

    From the contacts per stage: former customers to win back first, and the
    evangelists (customers who referred others).
    """
    return {"former_customers_high_priority": {
                "value": counts["former customer, high priority"], "kind": "count",
                "label": "Former customers to win back (high priority)"},
            "evangelists": {"value": counts["evangelist"], "kind": "count",
                            "label": "Evangelists (customers who referred others)"}}

def incrementality(lifts: pd.DataFrame, calibrated: pd.DataFrame,
                   economics: pd.DataFrame | None = None,
                   journey_shares: pd.Series | None = None,
                   truth_error: pd.Series | None = None) -> list[str]:
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
    if len(lifts):
        sig = lifts[(lifts["p_value"] < 0.05) & (lifts["lift"] > 0)]
        best = _top(lifts["relative_lift"])[0]
        verb = "raises" if len(sig) == 1 else "raise"
        out.append(
            f"Of {len(lifts)} channels tested with holdouts, {len(sig)} {verb} conversion "
            f"significantly (5 % level); the largest relative lift is {_label(best)}: "
            f"{fmt_pct(lifts.loc[best, 'relative_lift'], signed=True)} (95 % interval "
            f"{fmt_pct(lifts.loc[best, 'relative_lower_95'], signed=True)} to "
            f"{fmt_pct(lifts.loc[best, 'relative_upper_95'], signed=True)}).")
        flat = [_label(c) for c in lifts.index[lifts["lower_95"] <= 0]]
        if flat:
            out.append("No lift can be told from zero yet for " + ", ".join(flat[:4])
                       + (" and others" if len(flat) > 4 else "")
                       + ": their holdouts are too small, or they add little.")
    ranked = _top(calibrated["share"], 2)
    if len(ranked) == 2:
        out.append(f"Calibrated by the experiments, {_label(ranked[0])} adds the most "
                   f"conversions ({fmt_pct(calibrated.loc[ranked[0], 'share'])} of all "
                   f"incremental conversions), then {_label(ranked[1])} "
                   f"({fmt_pct(calibrated.loc[ranked[1], 'share'])}).")
    if journey_shares is not None:
        credit = journey_shares.reindex(calibrated.index).fillna(0.0)
        diff = calibrated["share"] - credit
        c = diff.abs().idxmax()
        word = "under" if diff[c] > 0 else "over"
        adds = calibrated.loc[c, "share"]
        # a calibrated share at or below zero is "nothing measurable", not "-0.036 %"
        adds_text = (f"{fmt_pct(adds)} of what the channels add" if adds >= 0.001
                     else "next to none of what the channels add")
        out.append(f"Journey-based credit {word}-rates {_label(c)} most: "
                   f"{fmt_pct(credit[c])} of the credit against {adds_text}.")
    if economics is not None and "incremental_cac" in economics:
        eco = economics.drop(index="total", errors="ignore")
        eco = eco[np.isfinite(eco["incremental_cac"]) & (eco["incremental_cac"] > 0)]
        if len(eco) >= 2:
            cheap, dear = eco["incremental_cac"].idxmin(), eco["incremental_cac"].idxmax()
            out.append(f"Per customer it adds, {_label(cheap)} is the cheapest channel "
                       f"({fmt_money(eco.loc[cheap, 'incremental_cac'])}) and {_label(dear)} "
                       f"the dearest ({fmt_money(eco.loc[dear, 'incremental_cac'])}).")
    if truth_error is not None and len(truth_error.dropna()):
        err = truth_error.dropna()
        best = err.idxmin()
        out.append(f"Against the simulator's known truth, {best} comes closest "
                   f"({fmt_pct(err[best])} off per channel on average).")
    return _keep(out)


#: Plain words for a multiplier above / below 1, by process (crmstats.clv.customer_effects).
_EFFECT_WORDS = {"purchase rate": ("buy more often", "buy less often"),
                 "dropout": ("drop out sooner", "drop out later"),
                 "purchase rate and dropout": ("buy more often and drop out sooner",
                                               "buy less often and drop out later"),
                 "spend per purchase": ("spend more per purchase", "spend less per purchase")}


def customer_effects(channel_fit: Any, horizon_months: int = 12, level: float = 0.05,
                     top: int = 3) -> list[str]:
    """Write which customer attributes move purchase rate, dropout and spend, in plain words.

    Parameters
    ----------
    channel_fit : ChannelValue
        :func:`crmstats.clv.fit_channel_value` (``tests``, ``effects``,
        ``reference``, ``values``).
    horizon_months : int
        The horizon of its values.
    level : float
        Significance level: only effects with a p-value below it are named.
    top : int
        At most this many effects named per direction and process.

    Returns
    -------
    list of str
    """
    names = {"BetaGeoModel": "BG/NBD", "ModifiedBetaGeoModel": "MBG/NBD",
             "ParetoNBDModel": "Pareto/NBD", "GammaGammaModel": "Gamma-Gamma"}
    fits = {names.get(type(m).__name__, type(m).__name__): m
            for m in (channel_fit.transaction_model, channel_fit.spend_model)}
    out = [f"The {name} fit with these attributes {problem}: read its figures with care."
           for name, problem in _untrusted(fits).items()]
    refs = {k: v for k, v in channel_fit.reference.items() if v is not None}
    tests = channel_fit.tests
    what = {"Gamma-Gamma": "spend per purchase"}
    parts = []
    for model, row in tests.iterrows():
        p = float(row["p_value"])
        shown = fmt_pvalue(p)
        parts.append(f"{what.get(model, 'purchase rate and dropout')} ({model}, "
                     f"{int(row['df'])} coefficients): p {'' if shown.startswith('<') else '= '}"
                     f"{shown}")
    if parts:
        names = ", ".join(_label(c) for c in channel_fit.reference) or "the attributes"
        real = (tests["p_value"] < level).all()
        out.append(f"Who the customer is ({names}) {'matters' if real else 'may not matter'}: "
                   "a likelihood-ratio test against the same models without these attributes "
                   "gives " + "; ".join(parts) + ".")
    reference = ", ".join(f"{_label(v)} ({_label(k)})" for k, v in refs.items())
    effects = channel_fit.effects
    for process, (up_words, down_words) in _EFFECT_WORDS.items():
        part = effects[(effects["process"] == process) & (effects["p_value"] < level)]
        if part.empty:
            continue
        up = part[part["multiplier"] > 1].sort_values("multiplier", ascending=False).head(top)
        down = part[part["multiplier"] < 1].sort_values("multiplier").head(top)

        def listed(rows):
            items = [f"{_level(r.covariate)} {fmt_ratio(r.multiplier)}"
                     for r in rows.itertuples()]
            return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

        clauses = [f"{listed(rows)} {words}" for rows, words in ((up, up_words),
                                                                  (down, down_words))
                   if len(rows)]
        against = f" (against {reference})" if reference else ""
        out.append(f"{process.capitalize()}{against}: " + "; ".join(clauses) + ".")
    values = channel_fit.values
    if len(values) >= 2 and values["clv"].notna().any():
        best, worst = values["clv"].idxmax(), values["clv"].idxmin()

        def worth(name):
            row = values.loc[name]
            text = fmt_money(row["clv"])
            if _finite(row.get("clv_lower_95")) and _finite(row.get("clv_upper_95")):
                text += (f", 95 % interval {fmt_money(row['clv_lower_95'])} to "
                         f"{fmt_money(row['clv_upper_95'])}")
            return text

        out.append(f"A new customer's repeat purchases over {horizon_months} months are worth "
                   f"most from {_label(best)} ({worth(best)}) and least from {_label(worst)} "
                   f"({worth(worst)}).")
    return out


def _level(column: Any) -> str:
    """Return the level of an indicator column ``name[level]`` in words (else the column)."""
    name, sep, level = str(column).partition("[")
    return _label(level[:-1] if sep and level.endswith("]") else column)


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

    out: list[str | None] = []
    unit = str(getattr(model, "outcome", "outcome")).replace("_", " ")
    m = model.mroas_.sort_values("estimate", ascending=False)
    if len(m):
        best, worst = m.index[0], m.index[-1]

        def said(c):
            return (f"{_label(c)} ({fmt_number(m.loc[c, 'estimate'], 2)} {unit} per unit of "
                    f"spend, 95 % interval {fmt_number(m.loc[c, 'lower_95'], 2)} to "
                    f"{fmt_number(m.loc[c, 'upper_95'], 2)})")

        out.append(f"The next unit of spend returns most in {said(best)} and least in "
                   f"{said(worst)}.")
    a = plan.allocation
    up = a[a["change"] > 0].sort_values("change", ascending=False)
    down = a[a["change"] < 0].sort_values("change")
    if len(up) and len(down):
        moved = float(up["change"].sum())
        out.append(
            f"Recommended shift: move {fmt_money(moved)} a week "
            f"({fmt_pct(moved / plan.total)} of the weekly budget of {fmt_money(plan.total)}) "
            f"from {', '.join(_label(c) for c in down.index[:3])} to "
            f"{', '.join(_label(c) for c in up.index[:3])}.")
        out.append(
            f"Expected gain over {plan.weeks} weeks: {fmt_number(plan.gain, 3)} {unit} "
            f"(95 % interval {fmt_number(plan.gain_lower_95, 3)} to "
            f"{fmt_number(plan.gain_upper_95, 3)}), {fmt_pct(plan.relative_gain, signed=True)} on "
            "what media bring now"
            + ("; the interval includes no gain, so the shift is a bet, not a sure thing."
               if not plan.gain_lower_95 > 0 else "."))
    else:
        out.append("The current split is already where the fitted curves put the budget: no "
                   "shift is recommended.")
    if triangulation is not None and "share_spread" in triangulation:
        out.append(triangulation_finding(triangulation))
    return _keep(out)


def next_euro_kpis(model: Any, plan: Any) -> dict[str, dict[str, Any]]:
    """Return the next-euro study's headline KPIs for :func:`crmstats.book.record_kpis`.

    The best channel's marginal ROAS and the recommended split's expected gain
    (share of what media bring now).
    """
    m = model.mroas_["estimate"]
    return {"best_marginal_roas": {"value": float(m.max()), "kind": "number",
                                   "label": f"Best marginal ROAS ({_label(m.idxmax())})"},
            "budget_shift_gain": {"value": float(plan.relative_gain), "kind": "share",
                                  "label": "Expected gain of the recommended budget split"}}

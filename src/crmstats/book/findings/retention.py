"""Findings of the retention studies: churn and key accounts."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from crmstats.book.findings._common import (
    _UNITS,
    _date,
    _finite,
    _keep,
    _label,
    _left_out,
    _p,
    _span,
)
from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
)

__all__ = ["churn", "churn_kpis", "key_accounts", "key_accounts_kpis"]


def churn_kpis(
    rates: pd.DataFrame, churned_after: int, period: str = "M", n: int = 12
) -> dict[str, dict[str, Any]]:
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
        "churn_rate": {
            "value": last.mean(),
            "kind": "share",
            "label": f"Churn rate per {unit} (inactive {churned_after} {unit}s; "
            f"mean of the last {periods})",
        },
        "active_customers": {
            "value": rates["active_end"].dropna().iloc[-1],
            "label": f"Active customers (end of {_date(rates.index[-1])})",
            "kind": "count",
        },
    }


def churn(
    rates: pd.DataFrame, retention: pd.DataFrame, churned_after: int, period: str = "M"
) -> list[str]:
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
    out = [
        f"On average {fmt_pct(last.mean())} of active customers churned per {unit} over "
        f"{_span(last, unit)} (no purchase for {churned_after} {unit}s counts as "
        "churned).",
        f"{fmt_count(rates['active_end'].iloc[-1])} customers were active at the end of "
        f"{_date(rates.index[-1])}." + _left_out(rates),
    ]
    unseen = rates.index[rates["churn_rate"].isna() & rates["churned"].isna()]
    if len(unseen) and unseen[0] == rates.index[0]:
        out.append(
            f"The data's first {fmt_count(len(unseen))} {unit}s show no churn figure: "
            f"nobody can be seen to go {churned_after} {unit}s without a purchase "
            "before the data are that old."
        )
    if len(last) >= 6:
        recent3, before = last.tail(3).mean(), last.iloc[:-3].mean()
        trend = "higher" if recent3 > before else "lower"
        out.append(
            f"Churn in the last three {unit}s ({fmt_pct(recent3)}) is {trend} than in "
            f"the {len(last) - 3} {unit}s before ({fmt_pct(before)})."
        )
    curve = retention.mean(axis=0, skipna=True)
    ages = [a for a in curve.dropna().index if a not in (0, "0")]
    if ages:
        first = ages[0]
        after = f"one {unit}" if str(first) == "1" else f"{first} {unit}s"
        line = (
            f"On average {fmt_pct(curve.loc[first])} of a cohort buys again {after} "
            "after its first purchase"
        )
        if len(ages) > 1:
            line += f", {fmt_pct(curve.loc[ages[-1]])} after {ages[-1]} {unit}s"
        out.append(line + ".")
    return _keep(out)


def key_accounts_kpis(
    bridge: pd.DataFrame, period: str = "M", n: int = 12
) -> dict[str, dict[str, Any]]:
    """Return the key-account study's headline KPIs for :func:`crmstats.book.record_kpis`.

    NRR, GRR and logo churn are means over the last ``n`` periods whose start
    is observed (the bridge's first period is not: :mod:`crmstats._windows`);
    the labels say how many, as :func:`key_accounts` does.
    """
    unit = _UNITS.get(period, "period")
    last = _observed_bridge(bridge, n)
    periods = f"{len(last)} {unit}" + ("" if len(last) == 1 else "s")
    names = {
        "nrr": "Net revenue retention (NRR)",
        "grr": "Gross revenue retention (GRR)",
        "logo_churn_rate": "Key-account logo churn",
    }
    return {
        key: {
            "value": last[key].mean(),
            "kind": "share",
            "label": f"{label} per {unit}, mean of the last {periods}",
        }
        for key, label in names.items()
    }


def _observed_bridge(bridge: pd.DataFrame, n: int) -> pd.DataFrame:
    """Return the last ``n`` periods of an MRR bridge whose start is observed."""
    from crmstats._windows import recent

    return bridge.loc[recent(bridge["start"], n).index]


def key_accounts(
    bridge: pd.DataFrame,
    medians: pd.DataFrame | None = None,
    drivers: pd.DataFrame | None = None,
    months: int = 12,
    period: str = "M",
) -> list[str]:
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
    out = [
        f"Monthly recurring revenue stood at {fmt_money(bridge['end'].iloc[-1])} at the end "
        f"of {_date(bridge.index[-1])}."
    ]
    if len(last):
        out[0] = out[0][:-1] + (
            f", against {fmt_money(last['start'].iloc[0])} at the start of {_date(last.index[0])}."
        )
        out.append(
            f"Net revenue retention averaged {fmt_pct(last['nrr'].mean())} per {unit} "
            f"over {_span(last['nrr'], unit)}, and gross revenue retention "
            f"{fmt_pct(last['grr'].mean())}; {fmt_pct(last['logo_churn_rate'].mean())} "
            f"of accounts left per {unit}."
        )
    if medians is not None and len(medians) and "median" in medians:
        median = medians["median"].iloc[0]
        if _finite(median):
            out.append(
                f"Half of the key accounts stay {fmt_number(median, 2)} months or "
                "longer (Kaplan-Meier median)."
            )
        else:
            out.append(
                "More than half of the key accounts are still with the company: their "
                "median lifetime is beyond the data."
            )
    if drivers is not None and "p_value" in drivers:
        sig = drivers[drivers["p_value"] < 0.05]
        if len(sig):
            name = sig["estimate"].abs().idxmax()
            effect = math.exp(float(sig.loc[name, "estimate"]))
            out.append(
                f"{_label(name).capitalize()} is the strongest significant driver of "
                f"churn: hazard ratio {fmt_number(effect, 3)} per unit "
                f"({_p(sig.loc[name, 'p_value'])})."
            )
        else:
            out.append("No service driver of churn is significant at the 5 % level in these data.")
    return _keep(out)

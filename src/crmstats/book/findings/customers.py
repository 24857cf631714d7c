"""Findings of the customer studies: data quality, data overview, CLV, value migration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from crmstats.book.findings._common import (
    _counted,
    _date,
    _finite,
    _fit_problems,
    _keep,
    _label,
    _left_out,
    _level,
    _new_customer_worth,
    _p,
    _top,
    _untrusted,
)
from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_ratio,
)

__all__ = [
    "clv",
    "clv_kpis",
    "customer_effects",
    "data_overview",
    "data_overview_kpis",
    "data_quality",
    "value_migration",
    "value_migration_kpis",
]


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
    out = [
        f"{_counted(len(quality), 'table')} {'was' if len(quality) == 1 else 'were'} read, "
        f"{_counted(read, 'row')} in all."
    ]
    if dropped:
        worst = quality["rows_dropped"].idxmax()
        out.append(
            f"{fmt_count(dropped)} rows ({fmt_pct(dropped / read)}) were left out; most "
            f"in {_label(worst)} ({fmt_count(quality.loc[worst, 'rows_dropped'])}: "
            f"{quality.loc[worst, 'dropped_because'] or 'see the table'})."
        )
    else:
        out.append("No row was left out: every row read is used by the studies.")
    flags = quality["flags"].fillna("").astype(str).str.strip()
    flagged = [str(t) for t in quality.index[flags != ""]]
    out.append(
        f"Flagged for a look: {', '.join(_label(t) for t in flagged)} (see the table)."
        if flagged
        else "No table carries a flag."
    )
    first, last = pd.to_datetime(quality["first"]).min(), pd.to_datetime(quality["last"]).max()
    if pd.notna(first) and pd.notna(last):
        out.append(f"The data run from {_date(first)} to {_date(last)}.")
    mapped = quality["mapping"].fillna("").astype(str)
    n_mapped = int((~mapped.str.startswith("canonical") & (mapped != "")).sum())
    out.append(
        f"{_counted(n_mapped, 'table')} {'is' if n_mapped == 1 else 'are'} mapped from "
        "the export's own names by the source file."
        if n_mapped
        else "The tables use crmstats' canonical names: no mapping was needed."
    )
    return _keep(out)


def data_overview(
    activity: pd.DataFrame, orders: pd.DataFrame, revenue: pd.Series, top_share: float
) -> list[str]:
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
        out.append(
            f"{fmt_pct(once)} of customers bought only once; the lifetime-value "
            "studies build on the repeat buyers."
        )
    if len(activity) >= 2:
        busiest = _top(activity["revenue"])[0]
        out.append(
            f"The busiest period was {_date(busiest)}, with "
            f"{fmt_money(activity.loc[busiest, 'revenue'])} of revenue from "
            f"{fmt_count(activity.loc[busiest, 'customers'])} customers."
        )
    out.append(_left_out(activity).strip() or None)
    return _keep(out)


def clv(
    comparison: pd.DataFrame | None,
    values: pd.DataFrame,
    pareto: Any,
    spend_params: Mapping[str, float] | pd.Series | None = None,
    horizon_months: int = 12,
    *,
    fits: Mapping[str, Any] | None = None,
) -> list[str]:
    """Write the key findings of the customer lifetime value study.

    A fit that did not converge or sits at the edge of its parameter space
    (:func:`crmstats.clv.fit_problem`) is named in plain words — which fit and
    what it means — and is not used: a holdout fit with a problem is left out
    of the ranking, and values resting on a whole-period fit with a problem
    are not headlined. The exception: a holdout fit at the limit of one
    dropout rate for every customer (:mod:`crmstats.clv.models.limits`: the
    data show no differences between customers in how soon they stop
    buying) is a model in its own right, said so and ranked like the others.

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
            f"The top 20 % of customers hold {fmt_pct(pareto.top_share)} of that expected value.",
        ]
    if comparison is not None and len(comparison) >= 1 and "mae" in comparison:
        flagged = (
            comparison["fit_problem"].fillna("").astype(str)
            if "fit_problem" in comparison
            else pd.Series("", index=comparison.index)
        )
        from crmstats.clv.models.limits import is_one_dropout_limit

        limit = flagged.map(is_one_dropout_limit).astype(bool)
        for name in comparison.index[flagged.ne("")]:
            if limit[name]:  # a model in its own right: its holdout error is real
                out.append(f"The {name} fit of the holdout test {flagged[name]}; it is "
                           "ranked with the others.")
            else:
                out.append(
                    f"The {name} fit of the holdout test {flagged[name]}; its holdout ranking "
                    "is not used."
                )
        trusted = comparison[flagged.eq("") | limit]
        if len(trusted):
            best = trusted["mae"].idxmin()
            line = (
                f"On the holdout period, {best} predicted each customer's purchases best "
                f"(mean absolute error {fmt_number(trusted.loc[best, 'mae'], 3)} purchases"
            )
            if {"actual", "predicted"} <= set(trusted.columns):
                line += (
                    f"; {fmt_number(trusted.loc[best, 'predicted'], 3)} predicted against "
                    f"{fmt_count(trusted.loc[best, 'actual'])} made"
                )
            out.append(line + ").")
    if spend_params is not None:
        p, q, v = (float(spend_params[k]) for k in ("p", "q", "v"))
        if q > 1:
            out.append(
                f"A repeat customer spends {fmt_money(p * v / (q - 1))} per purchase on "
                "average (Gamma-Gamma model)."
            )
    dormant = float((clv_values < 0.01 * clv_values.mean()).mean()) if len(clv_values) else 0.0
    if dormant > 0:
        out.append(
            f"{fmt_pct(dormant)} of customers are expected to be worth almost nothing "
            "(under 1 % of the average customer)."
        )
    return _keep(out)


def clv_kpis(
    values: pd.DataFrame, pareto: Any, fits: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
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
        return {
            "customers_valued": {
                "value": len(values),
                "kind": "count",
                "label": f"Customers valued (no average value: the {' and '.join(untrusted)} fit "
                "is not to be trusted, see the CLV study)",
            }
        }
    return {
        "average_clv": {"value": float(values["clv"].mean())},
        "top20_clv_share": {
            "value": float(pareto.top_share),
            "kind": "share",
            "label": "Expected value share of the top 20 % of customers",
        },
    }


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
    when = (
        f"from {pd.Timestamp(migration.start):%d %B %Y} to {pd.Timestamp(migration.end):%d %B %Y}"
    )
    direction = "rose" if change >= 0 else "fell"
    problems = _fit_problems(getattr(migration, "fits", None), "used to value customers")
    out = [
        *problems,
        None
        if problems or start <= 0
        else f"Expected customer value (discounted CLV of every customer) {direction} "
        f"{when}, from {fmt_money(start)} to {fmt_money(end)} "
        f"({fmt_pct(change / start, signed=True)}).",
    ]
    net = migration.net_migration
    out.append(
        f"New customers added {fmt_money(d['new'])}; the customers already there "
        f"{'gained' if net >= 0 else 'lost'} {fmt_money(abs(net))} net: "
        f"{fmt_money(d['upgrades'])} from upgrades, {fmt_money(d['downgrades'])} from "
        f"downgrades, {fmt_money(d['unchanged tier'])} within unchanged tiers and "
        f"{fmt_money(d['lost'])} from customers who lapsed."
    )
    if present.any():
        out.append(
            f"{fmt_count(fell)} of the {fmt_count(int(present.sum()))} customers "
            f"({fmt_pct(fell / present.sum())}) fell one value tier or more; they held "
            f"{fmt_pct(migration.share_value_moved_down)} of the value at the start."
        )
    lost = int(c["lost"].sum())
    if lost:
        out.append(
            f"{fmt_count(lost)} customers active at the start have since gone twice "
            "the usual time between purchases without buying (counted as lost)."
        )
    f = migration.fallers
    if len(f):
        top = f["value_lost"].head(int(top_n))
        out.append(
            f"The {fmt_count(len(top))} accounts at the top of the list to act on lost "
            f"{fmt_money(top.sum())} of expected value between them "
            f"({fmt_pct(top.sum() / f['value_lost'].clip(lower=0).sum())} of all the "
            "value lost by customers who fell a tier)."
        )
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
        return {
            "customers_valued_migration": {
                "value": len(migration.customers),
                "kind": "count",
                "label": f"Customers valued (no value change: the {' and '.join(untrusted)} fit "
                "is not to be trusted, see the value-migration study)",
            }
        }
    return {
        "value_share_moved_down": {
            "value": migration.share_value_moved_down,
            "label": "Value share of customers who fell a tier or more",
            "kind": "share",
        },
        "net_value_migration": {
            "value": migration.net_migration,
            "label": "Net value migration of existing customers",
            "kind": "money",
        },
    }


def data_overview_kpis(revenue: pd.Series, top_share: float) -> dict[str, Any]:
    """Return the data-overview study's headline KPIs for :func:`crmstats.book.record_kpis`.

    Customers who bought, their net revenue and the revenue share of the top
    fifth, from :func:`crmstats.overview.customer_revenue` (one value per
    customer) and :func:`crmstats.overview.top_revenue_share`.

    Examples
    --------
    >>> data_overview_kpis(pd.Series([10.0, 30.0, -5.0]), 0.8)
    {'customers': 3, 'revenue': 35.0, 'top20_revenue_share': 0.8}
    """
    return {
        "customers": len(revenue),
        "revenue": float(revenue.sum()),
        "top20_revenue_share": top_share,
    }


#: Plain words for a multiplier above / below 1, by process (crmstats.clv.customer_effects).
_EFFECT_WORDS = {
    "purchase rate": ("buy more often", "buy less often"),
    "dropout": ("drop out sooner", "drop out later"),
    "purchase rate and dropout": (
        "buy more often and drop out sooner",
        "buy less often and drop out later",
    ),
    "spend per purchase": ("spend more per purchase", "spend less per purchase"),
}


def customer_effects(
    channel_fit: Any, horizon_months: int = 12, level: float = 0.05, top: int = 3
) -> list[str]:
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
    problem = getattr(channel_fit, "problem", None)
    if problem:
        return [f"The customers' attributes could not be used on this data: {problem}."]
    names = {
        "BetaGeoModel": "BG/NBD",
        "ModifiedBetaGeoModel": "MBG/NBD",
        "ParetoNBDModel": "Pareto/NBD",
        "GammaGammaModel": "Gamma-Gamma",
    }
    fits = {
        names.get(type(m).__name__, type(m).__name__): m
        for m in (channel_fit.transaction_model, channel_fit.spend_model)
    }
    out = [
        f"The {name} fit with these attributes {problem}: read its figures with care."
        for name, problem in _untrusted(fits).items()
    ]
    refs = {k: v for k, v in channel_fit.reference.items() if v is not None}
    tests = channel_fit.tests
    what = {"Gamma-Gamma": "spend per purchase"}
    parts = []
    for model, row in tests.iterrows():
        parts.append(
            f"{what.get(model, 'purchase rate and dropout')} ({model}, "
            f"{int(row['df'])} coefficients): {_p(row['p_value'])}"
        )
    if parts:
        names = ", ".join(_label(c) for c in channel_fit.reference) or "the attributes"
        real = (tests["p_value"] < level).all()
        out.append(
            f"Who the customer is ({names}) {'matters' if real else 'may not matter'}: "
            "a likelihood-ratio test against the same models without these attributes "
            "gives " + "; ".join(parts) + "."
        )
    reference = ", ".join(f"{_label(v)} ({_label(k)})" for k, v in refs.items())
    effects = channel_fit.effects
    for process, (up_words, down_words) in _EFFECT_WORDS.items():
        part = effects[(effects["process"] == process) & (effects["p_value"] < level)]
        if part.empty:
            continue
        up = part[part["multiplier"] > 1].sort_values("multiplier", ascending=False).head(top)
        down = part[part["multiplier"] < 1].sort_values("multiplier").head(top)

        def listed(rows):
            items = [f"{_level(r.covariate)} {fmt_ratio(r.multiplier)}" for r in rows.itertuples()]
            return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

        clauses = [
            f"{listed(rows)} {words}"
            for rows, words in ((up, up_words), (down, down_words))
            if len(rows)
        ]
        against = f" (against {reference})" if reference else ""
        out.append(f"{process.capitalize()}{against}: " + "; ".join(clauses) + ".")
    line = _new_customer_worth(channel_fit.values, horizon_months)
    return out + ([line] if line else [])

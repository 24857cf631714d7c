"""Channel economics: what a channel's leads and customers cost, and what they pay back.

A channel's customers are the conversions an attribution model credits to it;
its cost is its marketing spend; its customers are worth their first order
plus their expected future value (CLV by acquisition channel, from
:mod:`crmstats.clv`). From these come the cost per lead and per opportunity,
the customer acquisition cost (CAC), the return on ad spend (ROAS), the
LTV:CAC ratio and the months a customer needs to pay its CAC back [1]_ [2]_.

References
----------
.. [1] Gupta, S., Lehmann, D. R. and Stuart, J. A. (2004). Valuing customers.
   Journal of Marketing Research 41(1), 7-18.
.. [2] Blattberg, R. C., Kim, B.-D. and Neslin, S. A. (2008). Database
   Marketing: Analyzing and Managing Customers. Springer, chapter 5
   (customer acquisition cost and lifetime value).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataError, DataWarning
from crmstats.validation import as_table

__all__ = ["channel_economics", "incremental_economics", "new_customer_economics"]

TOTAL = "total"


def _ratio(num, den) -> np.ndarray:
    """Divide elementwise: +inf when only the denominator is 0, NaN when both are."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    pos = den > 0
    np.divide(num, den, out=out, where=pos)
    out[(~pos) & (num > 0)] = np.inf
    return out


def _clv_series(clv_by_channel) -> pd.Series:
    if clv_by_channel is None:
        return pd.Series(dtype=float)
    if isinstance(clv_by_channel, pd.DataFrame):
        if "mean" not in clv_by_channel.columns:
            raise ValueError("clv_by_channel: expected a Series of mean CLV per customer by "
                             "channel, or the DataFrame of crmstats.clv.value_by_group (column "
                             "'mean')")
        clv_by_channel = clv_by_channel["mean"]
    s = pd.Series(clv_by_channel, dtype=float)
    s.index = s.index.astype(str)
    return s


def channel_economics(
    attribution: Any,
    spend: Any,
    clv_by_channel: Any = None,
    *,
    stage_events: Any = None,
    horizon_months: float = 12,
    gross_margin: float = 1.0,
    include_first_order: bool = True,
    lead_stage: str = "lead",
    opportunity_stage: str = "opportunity",
    start: Any = None,
    end: Any = None,
    total: bool = True,
    date_col: str | None = None,
    channel_col: str | None = None,
    cost_col: str | None = None,
    new_customer_value: Any = None,
) -> pd.DataFrame:
    """Leads, customers, costs and returns per channel.

    Parameters
    ----------
    attribution : fitted model or pandas.DataFrame
        Credit per channel (``conversions`` and ``value``), e.g.
        ``MarkovAttribution().fit(paths)`` or ``heuristic(paths, "linear")``.
        Credited conversions are the channel's customers.
    spend : DataFrame, path or ibis.Table
        Canonical spend table (``date``, ``channel``, ``cost``).
    clv_by_channel : pandas.Series or DataFrame, optional
        Expected future value per customer by acquisition channel: a Series,
        or the frame of :func:`crmstats.clv.value_by_group` (its ``mean``).
    stage_events : DataFrame, path or ibis.Table, optional
        Canonical stage_events with its ``channel`` column; leads and
        opportunities are the distinct leads that entered ``lead_stage`` /
        ``opportunity_stage``, by that channel (the lead's source).
    horizon_months : float
        Horizon of the CLV figures, for the payback time.
    gross_margin : float
        Share of revenue that is margin; LTV and payback use margin.
    include_first_order : bool
        Add the first order (credited value per credited customer) to the CLV
        in LTV; the CLV models value only the purchases still to come.
    lead_stage, opportunity_stage : str
        Stage names in ``stage_events``.
    start, end : timestamp-like, optional
        Restrict spend to ``start <= date <= end``.
    total : bool
        Append a ``total`` row (blended figures over all channels).
    date_col, channel_col, cost_col : str, optional
        The caller's names of the spend table's columns.
    new_customer_value : pandas.DataFrame, optional
        The expected CLV of a *new* customer per acquisition channel from the
        CLV models with covariates (:func:`crmstats.clv.channel_value`: ``clv``
        with ``clv_lower_95`` / ``clv_upper_95``, over ``horizon_months``).
        Given, the same LTV, LTV:CAC and payback are computed from it beside
        the figures of ``clv_by_channel`` (the channel's existing customers),
        each with the interval that follows from the CLV's.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (every channel with spend, credit or leads); columns
        ``spend``, ``leads``, ``opportunities``, ``customers`` (credited
        conversions), ``value`` (credited conversion value),
        ``cost_per_lead``, ``cost_per_opportunity``, ``cac`` (spend /
        customers), ``roas`` (value / spend), ``ltv`` (margin x (first order +
        CLV) per customer), ``ltv_cac`` and ``payback_months`` (months of
        expected margin, after the first order, needed to recover the CAC, at
        the CLV's average monthly rate). A ratio with a zero denominator is
        +inf (e.g. spend but no customers) or NaN (nothing over nothing).
        Spend sums to the total spend of the (restricted) spend table. With
        ``new_customer_value``: ``new_clv`` (its ``clv``) with
        ``new_clv_lower_95`` / ``new_clv_upper_95``, ``new_ltv``,
        ``new_ltv_cac`` with ``new_ltv_cac_lower_95`` / ``new_ltv_cac_upper_95``
        and ``new_payback_months`` with ``new_payback_months_lower_95`` /
        ``new_payback_months_upper_95`` (from the CLV's interval: its upper
        end gives the shorter payback); the ``total`` row blends the CLV over
        the credited customers (no interval).
    """
    if not 0 < float(gross_margin) <= 1:
        raise ValueError(f"gross_margin must be in (0, 1], got {gross_margin}")
    if float(horizon_months) <= 0:
        raise ValueError(f"horizon_months must be positive, got {horizon_months}")
    credit = getattr(attribution, "attribution_", attribution)
    if not isinstance(credit, pd.DataFrame) or not {"conversions", "value"} <= set(credit.columns):
        raise ValueError("attribution: expected a fitted attribution model or a DataFrame with "
                         "columns conversions and value per channel")
    credit = credit[["conversions", "value"]].astype(float)
    credit.index = credit.index.astype(str)

    t = as_table(spend, "spend", columns={"date": date_col, "channel": channel_col,
                                          "cost": cost_col})
    if start is not None:
        t = t.filter(t.date >= pd.Timestamp(start))
    if end is not None:
        t = t.filter(t.date <= pd.Timestamp(end))
    per = execute(t.group_by(channel=t.channel.cast("string")).aggregate(spend=t.cost.sum()))
    cost = per.set_index("channel")["spend"].astype(float)

    leads = opps = pd.Series(dtype=float)
    if stage_events is not None:
        s = as_table(stage_events, "stage_events")
        if "channel" not in s.columns:
            raise DataError("stage_events table: no 'channel' column; leads per channel need "
                            "the lead's channel", table="stage_events", column="channel")
        wanted = s.filter(s.stage.isin([lead_stage, opportunity_stage]))
        c = execute(wanted.group_by([wanted.channel.cast("string").name("channel"),
                                     "stage"]).aggregate(n=wanted.lead_id.nunique()))
        table = c.pivot_table(index="channel", columns="stage", values="n", aggfunc="sum")
        leads = table.get(lead_stage, pd.Series(dtype=float))
        opps = table.get(opportunity_stage, pd.Series(dtype=float))

    clv = _clv_series(clv_by_channel)
    new = _new_value(new_customer_value)
    unpaid = sorted(set(credit.index[credit["conversions"] > 0]) - set(cost.index))
    if unpaid:
        warnings.warn(
            f"channel_economics: channel(s) {', '.join(unpaid)} get credited customers but have "
            "no row in the spend table; their spend counts as 0 (CAC 0, ROAS inf) — check the "
            "channel names of the touchpoints against the spend table",
            DataWarning, stacklevel=2)
    channels = sorted(set(cost.index) | set(credit.index) | set(leads.index))
    out = pd.DataFrame(index=pd.Index(channels, name="channel"))
    out["spend"] = cost.reindex(channels).fillna(0.0)
    out["leads"] = leads.reindex(channels).fillna(0).astype("int64")
    out["opportunities"] = opps.reindex(channels).fillna(0).astype("int64")
    out["customers"] = credit["conversions"].reindex(channels).fillna(0.0)
    out["value"] = credit["value"].reindex(channels).fillna(0.0)
    out["_clv"] = clv.reindex(channels)
    for col in new.columns:
        out["_new_" + col] = new[col].reindex(channels)
    if total:
        cust = out["customers"]

        def blend(values):
            has = values.notna() & (cust > 0)
            return (values[has] * cust[has]).sum() / cust[has].sum() if has.any() else np.nan

        row = out[["spend", "leads", "opportunities", "customers", "value"]].sum()
        out.loc[TOTAL] = [*row.to_numpy(), blend(out["_clv"]),
                          *[blend(out["_new_" + c]) if c == "clv" else np.nan
                            for c in new.columns]]
        out["leads"] = out["leads"].astype("int64")
        out["opportunities"] = out["opportunities"].astype("int64")
    if stage_events is None:
        out["leads"] = pd.NA
        out["opportunities"] = pd.NA
        out["cost_per_lead"] = np.nan
        out["cost_per_opportunity"] = np.nan
    else:
        out["cost_per_lead"] = _ratio(out["spend"], out["leads"])
        out["cost_per_opportunity"] = _ratio(out["spend"], out["opportunities"])
    out["cac"] = _ratio(out["spend"], out["customers"])
    out["roas"] = _ratio(out["value"], out["spend"])
    first = _ratio(out["value"], out["customers"]) if include_first_order else 0.0
    first = np.nan_to_num(np.asarray(first, dtype=float), nan=0.0, posinf=0.0)
    margin = float(gross_margin)
    out["ltv"] = margin * (first + out["_clv"].to_numpy())
    out["ltv_cac"] = _ratio(out["ltv"], out["cac"])
    out["payback_months"] = _payback(out["cac"].to_numpy(), margin * first,
                                     margin * out["_clv"].to_numpy(dtype=float),
                                     float(horizon_months))
    if len(new.columns):
        cac = out["cac"].to_numpy()
        out["new_clv"] = out["_new_clv"]
        out["new_clv_lower_95"] = out["_new_clv_lower_95"]
        out["new_clv_upper_95"] = out["_new_clv_upper_95"]
        out["new_ltv"] = margin * (first + out["_new_clv"].to_numpy(dtype=float))
        payback = {}
        for suffix, col in (("", "_new_clv"), ("_lower_95", "_new_clv_lower_95"),
                            ("_upper_95", "_new_clv_upper_95")):
            clv_margin = margin * out[col].to_numpy(dtype=float)
            out["new_ltv_cac" + suffix] = _ratio(margin * first + clv_margin, cac)
            payback[suffix] = _payback(cac, margin * first, clv_margin, float(horizon_months))
        out["new_payback_months"] = payback[""]
        # more value pays back sooner: the CLV's upper end gives the payback's lower end
        out["new_payback_months_lower_95"] = payback["_upper_95"]
        out["new_payback_months_upper_95"] = payback["_lower_95"]
    return out.drop(columns=[c for c in out.columns if c.startswith("_")])


def _payback(cac, first_margin, clv_margin, horizon_months: float) -> np.ndarray:
    """Months of expected margin after the first order needed to recover the CAC."""
    remaining = np.clip(np.asarray(cac, dtype=float) - first_margin, 0.0, None)
    payback = _ratio(remaining, np.asarray(clv_margin, dtype=float) / horizon_months)
    payback[remaining == 0] = 0.0
    payback[np.isnan(clv_margin)] = np.nan
    return payback


def _new_value(table) -> pd.DataFrame:
    """Return the ``clv`` (and its interval) of :func:`crmstats.clv.channel_value`, by channel."""
    cols = ["clv", "clv_lower_95", "clv_upper_95"]
    if table is None:
        return pd.DataFrame()
    if not isinstance(table, pd.DataFrame) or "clv" not in table.columns:
        raise ValueError("new_customer_value: expected the DataFrame of "
                         "crmstats.clv.channel_value (column clv per channel)")
    out = pd.DataFrame(index=table.index.astype(str))
    for col in cols:
        out[col] = (pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
                    if col in table.columns else np.nan)
    return out


#: The readers' table of :func:`new_customer_economics`: what a channel's existing customers
#: return beside what its next customer is expected to (the covariate model).
NEW_CUSTOMER_COLUMNS = ["customers", "cac", "ltv_cac", "payback_months", "new_clv",
                        "new_clv_lower_95", "new_clv_upper_95", "new_ltv_cac",
                        "new_ltv_cac_lower_95", "new_ltv_cac_upper_95", "new_payback_months",
                        "new_payback_months_lower_95", "new_payback_months_upper_95"]


def new_customer_economics(economics: pd.DataFrame) -> pd.DataFrame:
    """Return, per channel, LTV:CAC and payback of its customers beside those of its next one.

    The observed figures (``ltv_cac``, ``payback_months``) value the channel's
    existing customers by their own histories; the ``new_*`` figures value the
    next customer the channel brings, from the CLV models with the customers'
    attributes (:func:`crmstats.clv.fit_channel_value`), with 95 % intervals.

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`channel_economics` called with ``new_customer_value=``.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (the ``total`` row last, when there is one): the
        columns of :data:`NEW_CUSTOMER_COLUMNS`, the ``new_*`` ones NaN where
        a channel has no new-customer value. Channels without credited
        customers and without a new-customer value are left out.
    """
    if not isinstance(economics, pd.DataFrame) or "ltv_cac" not in economics.columns:
        raise ValueError("economics: expected the DataFrame of channel_economics")
    out = economics.reindex(columns=NEW_CUSTOMER_COLUMNS)
    keep = (out["customers"].fillna(0) > 0) | out["new_clv"].notna()
    return out[keep.to_numpy()]


def incremental_economics(calibrated: Any, spend: Any, *, start: Any = None, end: Any = None,
                          total: bool = True, date_col: str | None = None,
                          channel_col: str | None = None,
                          cost_col: str | None = None) -> pd.DataFrame:
    """Incremental CAC and incremental ROAS per channel, with 95 % intervals.

    What a channel's spend buys in conversions it *adds* (not conversions it
    was present in): incremental CAC = spend / incremental conversions,
    incremental ROAS = incremental value / spend.

    Parameters
    ----------
    calibrated : pandas.DataFrame or fitted model
        Incremental credit per channel: the output of
        :func:`~crmstats.attribution.calibrate`, or a fitted
        :class:`~crmstats.attribution.IncrementalityModel` (``conversions``,
        ``value`` and, when present, ``lower_95`` / ``upper_95`` of the
        incremental conversions).
    spend : DataFrame, path or ibis.Table
        Canonical spend table.
    start, end, total, date_col, channel_col, cost_col
        As in :func:`channel_economics`.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``spend``, ``incremental_conversions`` (with
        ``lower_95`` and ``upper_95``), ``incremental_value``,
        ``incremental_cac`` (with ``cac_lower_95`` / ``cac_upper_95``: spend
        over the interval's upper / lower end; +inf when that end is not
        positive) and ``incremental_roas`` (with ``roas_lower_95`` /
        ``roas_upper_95``). The ``total`` row sums spend, conversions and
        value (its interval is left empty: the channels' errors are not
        independent).
    """
    credit = getattr(calibrated, "attribution_", calibrated)
    if not isinstance(credit, pd.DataFrame) or not {"conversions", "value"} <= set(credit.columns):
        raise ValueError("calibrated: expected the output of calibrate() or a fitted "
                         "IncrementalityModel (columns conversions and value per channel)")
    base = channel_economics(credit[["conversions", "value"]], spend, start=start, end=end,
                             total=total, date_col=date_col, channel_col=channel_col,
                             cost_col=cost_col)
    channels = base.index
    conv = base["customers"].astype(float)
    value = base["value"].astype(float)
    lo = credit["lower_95"].reindex(channels) if "lower_95" in credit.columns else np.nan
    hi = credit["upper_95"].reindex(channels) if "upper_95" in credit.columns else np.nan
    out = pd.DataFrame({"spend": base["spend"], "incremental_conversions": conv,
                        "lower_95": lo, "upper_95": hi, "incremental_value": value},
                       index=channels)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_conv = np.where(conv != 0, value / conv, np.nan)

    def cac(n):
        n = np.asarray(n, dtype=float)
        res = _ratio(out["spend"], np.where(n > 0, n, 0.0))
        return np.where(np.isnan(n), np.nan, res)

    out["incremental_cac"] = cac(conv)
    out["cac_lower_95"] = cac(out["upper_95"])
    out["cac_upper_95"] = cac(out["lower_95"])
    out["incremental_roas"] = _ratio(value, out["spend"])
    out["roas_lower_95"] = _ratio(per_conv * out["lower_95"].to_numpy(float), out["spend"])
    out["roas_upper_95"] = _ratio(per_conv * out["upper_95"].to_numpy(float), out["spend"])
    return out

"""The open pipeline, win rate, deal size and sales cycle, from deals or from stage events.

A CRM holds its pipeline in one of two shapes:

* a **deals** table (one row per opportunity with its *current* stage, as
  Salesforce, HubSpot and Pipedrive export it): ``won`` and ``lost`` close a
  deal (:data:`crmstats.schema.CLOSED_STAGES`), any other stage is open; a deal
  without dates is open at its stage with unknown age;
* **stage events** (one row per stage entry): a lead's stage at a date is the
  latest stage it entered by then (the funnel rule of
  :mod:`crmstats.funnel.summaries`).

:func:`pipeline` reads whichever the source has (deals first) and computes the
same KPIs from one row per deal, so both shapes of the same pipeline agree.

The funnel order of a deals table's open stages is, in this order of
precedence: the ``stages`` argument; the order in which the source file's
``values: stage:`` lists them (``crmstats source init`` writes them in their
usual order); else the usual order of the default Salesforce, HubSpot and
Pipedrive pipelines, unknown names last (alphabetically).

References
----------
.. [1] Söhnchen, F. and Albers, S. (2010). Pipeline management for the
   acquisition of industrial projects. Industrial Marketing Management 39(8),
   1356-1364.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pandas as pd

from crmstats.backend import execute
from crmstats.crmdata import CRMData
from crmstats.exceptions import DataError
from crmstats.schema import CLOSED_STAGES, usual_stage_order
from crmstats.validation import SourceTable, as_table, reuse_validated

__all__ = ["BREAKDOWNS", "Pipeline", "deal_stages", "has_tables", "pipeline"]

#: Columns the pipeline is broken down by, where the data has them.
BREAKDOWNS: tuple[str, ...] = ("owner", "product", "account", "channel")

#: Label of the age column of open deals without a date.
NO_DATE = "no date"


@dataclass(frozen=True)
class Pipeline:
    """Result of :func:`pipeline`.

    Attributes
    ----------
    open : pandas.DataFrame
        Open deals by stage (rows, funnel order) and age bucket (columns); every
        bucket shown, plus a ``"no date"`` column when open deals have no date.
    open_value : pandas.DataFrame
        The same cells holding the open deals' known amounts (0 where none is
        known; all NaN when the data carry no amount).
    summary : pandas.Series
        ``as_of``, ``source`` (``"deals"`` or ``"stage_events"``),
        ``open_opportunities``, ``open_leads_in_pipeline``, ``open_deals``,
        ``open_value``, ``open_undated``, ``closed_in_window``, ``won``,
        ``lost``, ``win_rate``, ``average_deal_size``, ``won_value``,
        ``cycle_days`` (mean), ``cycle_days_median``,
        ``sales_velocity_per_day``, ``sales_velocity_per_month``.
    by : dict of pandas.DataFrame
        Per breakdown column the data have (``owner``, ``product``,
        ``account``, ``channel``): one row per value with ``deals``,
        ``open_deals``, ``open_value``, ``won``, ``lost``, ``win_rate``,
        ``average_deal_size``, ``cycle_days``, ``cycle_days_median``.
    """

    open: pd.DataFrame
    summary: pd.Series
    open_value: pd.DataFrame = field(default_factory=pd.DataFrame)
    by: dict = field(default_factory=dict)


def deal_stages(data: Any, stages: Sequence[str] | None = None) -> list[str]:
    """Return a deals table's stages in funnel order: open stages, then ``won``, ``lost``.

    Only stages the data hold are returned (see the module's rule for the order).

    Parameters
    ----------
    data : CRMData or deals table
        A source with a ``deals`` table, or the table itself.
    stages : sequence of str, optional
        The open stages in funnel order (names not in the data are left out;
        stages in the data but not listed follow them).

    Returns
    -------
    list of str
    """
    raw = data.deals if isinstance(data, CRMData) else data
    t = data.table("deals") if isinstance(data, CRMData) else as_table(raw, "deals")
    counts = execute(t.group_by(s=t.stage.cast("string")).aggregate(n=t.count()))
    present = [s for s in counts["s"].dropna()]
    listed = list(stages or [])
    if not listed and isinstance(raw, SourceTable):
        listed = list(dict.fromkeys(str(v) for v in (raw.values.get("stage") or {}).values()))
    rest = usual_stage_order(s for s in present if s not in listed and s not in CLOSED_STAGES)
    opened = [s for s in listed if s in present and s not in CLOSED_STAGES] + rest
    return opened + [s for s in CLOSED_STAGES if s in present]


@reuse_validated()  # the events are validated once, however many queries read them
def pipeline(
    data: Any,
    *,
    as_of=None,
    deals: Any = None,
    stages: Sequence[str] | None = None,
    open_stages: Sequence[str] | None = None,
    exit_stages: Sequence[str] = ("unqualified", "lost"),
    lost_stage: str = "lost",
    window_days: float | None = 365.0,
    age_bins: Sequence[float] = (0, 30, 60, 90, 180, np.inf),
    by: Sequence[str] = BREAKDOWNS,
    lead_id_col: str | None = None,
    stage_col: str | None = None,
    entered_at_col: str | None = None,
) -> Pipeline:
    """Open pipeline by stage and age, win rate, deal size, cycle days and sales velocity.

    One row per deal: from a ``deals`` table as exported, or built from stage
    events (a lead is a deal; its stage at ``as_of`` is the latest it entered).

    * **Open** deals are those at an open stage; their **age** runs from the
      deal's date (deals: ``created_at``; stage events: the entry of its
      current stage) to ``as_of``. Deals without a date are open with unknown
      age (column ``"no date"``).
    * **Closed** deals are won or lost with a close date in the ``window_days``
      before ``as_of`` (``window_days=None``, or a deals table without
      ``closed_at``: every closed deal, dated or not).
      **Win rate** = won ÷ (won + lost); **average deal size** = mean amount of
      the won deals (those with a known amount); **cycle days** = days from the
      deal's creation (stage events: becoming a lead) to the win, mean and median.
    * **Sales velocity** [1]_ = open opportunities × win rate × average deal
      size ÷ mean cycle days (revenue per day; per month × 30.4375).

    Parameters
    ----------
    data : CRMData, or a stage_events table
        A source: its ``deals`` table when it has one, else its
        ``stage_events`` (with ``conversions`` giving won deals' values). A
        table on its own is read as stage events (wrap a deals table as
        ``CRMData(deals=table)``).
    as_of : timestamp-like, optional
        Date of the snapshot; default the data's last date (today for deals
        without any date).
    deals : table, optional
        For stage events: the conversions table (``journey_id`` = ``lead_id``,
        ``value``) giving each won deal's value; default the source's
        conversions. Without it deal size and velocity are NaN.
    stages : sequence of str, optional
        Deals: the open stages in funnel order (see :func:`deal_stages`).
        Stage events: the funnel in order, ending with the won stage; default
        the data's own stages among ``subscriber, lead, qualified,
        opportunity, won``.
    open_stages : sequence of str, optional
        Stage events: the stages in which a lead is an open deal (default
        ``qualified`` and ``opportunity``, those the data have). Deals: every
        stage but won and lost is open.
    exit_stages : sequence of str
        Stage events: stages that close a lead unwon.
    lost_stage : str
        Stage events: the exit of an opportunity (a lost deal).
    window_days : float or None
        Look-back window of the closed deals.
    age_bins : sequence of float
        Edges (days) of the age buckets of open deals.
    by : sequence of str
        Breakdown columns (those the data have are used).
    lead_id_col, stage_col, entered_at_col : str, optional
        Stage events: the caller's names of the canonical columns.

    Returns
    -------
    Pipeline
    """
    if isinstance(data, CRMData):
        if data.deals is not None:
            return _from_deals(data, as_of=as_of, stages=stages, window_days=window_days,
                               age_bins=age_bins, by=by)
        if data.stage_events is None:
            raise DataError("pipeline: the source has neither a deals nor a stage_events "
                            "table; add one in crmstats.yml", table="deals")
        events = data.table("stage_events")
        if deals is None and data.conversions is not None:
            deals = data.table("conversions")
    else:
        events = as_table(data, "stage_events", columns={
            "lead_id": lead_id_col, "stage": stage_col, "entered_at": entered_at_col})
    return _from_events(events, as_of=as_of, conversions=deals, stages=stages,
                        open_stages=open_stages, exit_stages=exit_stages, lost_stage=lost_stage,
                        window_days=window_days, age_bins=age_bins, by=by)


# ----------------------------------------------------------------------------- per-deal rows


def _from_deals(crm: CRMData, *, as_of, stages, window_days, age_bins, by) -> Pipeline:
    t = crm.table("deals")
    order = deal_stages(crm, stages)
    opened = [s for s in order if s not in CLOSED_STAGES]
    null_ts = ibis.null("timestamp")
    created = t.created_at if "created_at" in t.columns else null_ts
    closed_at = t.closed_at if "closed_at" in t.columns else null_ts
    dated = [t[c] for c in ("created_at", "closed_at") if c in t.columns]
    if as_of is None and dated:
        last = execute(t.aggregate(a=ibis.greatest(*[c.max() for c in dated])))["a"].iloc[0]
        as_of = pd.Timestamp(last) if last is not None and pd.notna(last) else None
    # no date at all: ages are unknown, and the snapshot is today's
    as_of = pd.Timestamp.now().normalize() if as_of is None else pd.Timestamp(as_of)
    if "closed_at" not in t.columns:
        window_days = None  # no close dates: no window can be applied, every closed deal counts
    stage = t.stage.cast("string")
    d = t.mutate(_stage=stage, _open=~stage.isin(list(CLOSED_STAGES)), _age_from=created,
                 _closed_at=closed_at, _created=created, _won=stage == "won",
                 _lost=stage == "lost",
                 _amount=t.amount if "amount" in t.columns else ibis.null("float64"))
    return _summarise(d, as_of=as_of, open_stages=opened, window_days=window_days,
                      age_bins=age_bins, by=[c for c in by if c in t.columns], source="deals",
                      has_amount="amount" in t.columns, count_all_open=True)


def _from_events(events, *, as_of, conversions, stages, open_stages, exit_stages, lost_stage,
                 window_days, age_bins, by) -> Pipeline:
    from crmstats.funnel.summaries import lead_stage_times, own_stages

    stages = own_stages(events) if stages is None else list(stages)
    if open_stages is None:
        open_stages = [s for s in ("qualified", "opportunity") if s in stages] or stages[1:-1]
    if any(s in stages for s in exit_stages) or lost_stage not in exit_stages:
        raise ValueError(f"exit_stages {list(exit_stages)} must not be funnel stages and must "
                         f"include lost_stage {lost_stage!r}")
    per = lead_stage_times(events, stages=stages, extra=[*exit_stages])
    if as_of is None:
        as_of = pd.Timestamp(execute(events.entered_at.max()))
    as_of = pd.Timestamp(as_of)
    cut = ibis.literal(as_of.to_pydatetime())
    # the latest stage entered by as_of (ties: the later stage in the funnel, exits first)
    cand = [*stages, *exit_stages]
    latest_t = ibis.greatest(*[ibis.ifelse(per[f"t_{s}"] <= cut, per[f"t_{s}"],
                                           ibis.null("timestamp")) for s in cand])
    cases = [(per[f"t_{s}"] == latest_t, s) for s in [stages[-1], *exit_stages,
                                                       *reversed(stages[:-1])]]
    latest = ibis.cases(*cases, else_=ibis.null("string"))
    won_t, lost_t = per[f"t_{stages[-1]}"], per[f"t_{lost_stage}"]
    won = won_t.notnull() & (won_t <= cut)
    lost = lost_t.notnull() & (lost_t <= cut)
    # a lead both won and lost counts by whichever is in the window, the win first
    in_window = _window(won_t, as_of, window_days)
    closed_at = ibis.ifelse(won & (in_window | ~_window(lost_t, as_of, window_days)),
                            won_t, lost_t)
    d = per.mutate(_stage=latest, _open=latest.isin(list(open_stages)), _age_from=latest_t,
                   _created=ibis.coalesce(*[per[f"t_{s}"] for s in stages[1:]]),
                   _closed_at=ibis.ifelse(won | lost, closed_at, ibis.null("timestamp")),
                   _won=won & (closed_at == won_t), _lost=lost & ~(won & (closed_at == won_t)))
    has_amount = conversions is not None
    if has_amount:
        conv = as_table(conversions, "conversions")
        conv = conv.select(_jid=conv.journey_id.cast("string"), _amount=conv.value)
        d = d.left_join(conv, d.lead_id.cast("string") == conv._jid).drop("_jid")
        # stage events carry no amount of an open deal: only won deals have one
        d = d.mutate(_amount=ibis.ifelse(d._won, d._amount, ibis.null("float64")))
    else:
        d = d.mutate(_amount=ibis.null("float64"))
    return _summarise(d, as_of=as_of, open_stages=list(open_stages), window_days=window_days,
                      age_bins=age_bins, by=[c for c in by if c in per.columns],
                      source="stage_events", has_amount=False, count_all_open=False,
                      deal_amount=has_amount)


def _window(t, as_of: pd.Timestamp, window_days):
    cut = ibis.literal(as_of.to_pydatetime())
    if window_days is None:
        return t.isnull() | (t <= cut)
    start = ibis.literal((as_of - pd.Timedelta(days=float(window_days))).to_pydatetime())
    return t.notnull() & (t > start) & (t <= cut)


# ----------------------------------------------------------------------------- the KPIs


def _summarise(d, *, as_of, open_stages, window_days, age_bins, by, source, has_amount,
               count_all_open, deal_amount=None) -> Pipeline:
    """Compute the KPIs of per-deal rows.

    The rows hold ``_stage, _open, _age_from, _created, _closed_at, _won, _lost,
    _amount`` and the breakdown columns.
    """
    deal_amount = has_amount if deal_amount is None else deal_amount
    cut = ibis.literal(as_of.to_pydatetime())
    closed = _window(d._closed_at, as_of, window_days)
    won, lost = d._won & closed, d._lost & closed
    cycle = (d._closed_at.epoch_seconds() - d._created.epoch_seconds()) / 86400.0
    cycle_won = ibis.ifelse(won & d._created.notnull(), cycle, ibis.null("float64"))
    amount_won = ibis.ifelse(won, d._amount, ibis.null("float64"))
    is_open = d._open.fill_null(False)
    open_amount = ibis.ifelse(is_open, d._amount, ibis.null("float64"))

    def aggs(t):
        return dict(deals=t.count(), open_deals=t.count(where=is_open),
                    open_value=ibis.coalesce(open_amount.sum(), 0.0), won=t.count(where=won),
                    lost=t.count(where=lost), average_deal_size=amount_won.mean(),
                    won_value=amount_won.sum(), cycle_days=cycle_won.mean(),
                    cycle_days_median=cycle_won.median(),
                    open_undated=t.count(where=is_open & d._age_from.isnull()),
                    open_opportunities=t.count(where=is_open if count_all_open
                                               else d._stage == "opportunity"))

    stats = execute(d.aggregate(**aggs(d))).iloc[0]
    # open deals by stage and age
    age = (cut.epoch_seconds() - d._age_from.epoch_seconds()) / 86400.0
    raw = execute(d.filter(is_open).select(stage=d._stage, age=age, amount=d._amount))
    buckets = pd.cut(raw["age"], list(age_bins), right=False)
    labels = [f"{iv.left:g}+ days" if np.isinf(iv.right) else f"{iv.left:g}-{iv.right:g} days"
              for iv in buckets.cat.categories]
    raw["bucket"] = buckets.cat.rename_categories(labels)
    if raw["age"].isna().any():
        raw["bucket"] = raw["bucket"].cat.add_categories([NO_DATE]).fillna(NO_DATE)
    grid = raw.groupby(["stage", "bucket"], observed=False)
    table = grid.size().unstack("bucket").reindex(open_stages).fillna(0).astype("int64")
    value = grid["amount"].sum(min_count=0).unstack("bucket").reindex(open_stages).fillna(0.0)
    if not has_amount:
        value = value * np.nan
    for frame in (table, value):
        frame.index.name, frame.columns.name = "stage", None
    n_won, n_lost = int(stats["won"]), int(stats["lost"])
    win_rate = n_won / (n_won + n_lost) if n_won + n_lost else np.nan
    deal = _float(stats["average_deal_size"]) if deal_amount else np.nan
    cycle_days = _float(stats["cycle_days"])
    velocity = (int(stats["open_opportunities"]) * win_rate * deal / cycle_days
                if cycle_days and np.isfinite(cycle_days) else np.nan)
    summary = pd.Series({
        "as_of": as_of, "source": source,
        "open_opportunities": int(stats["open_opportunities"]),
        "open_leads_in_pipeline": int(table.to_numpy().sum()),
        "open_deals": int(stats["open_deals"]),
        "open_value": _float(stats["open_value"]) if has_amount else np.nan,
        "open_undated": int(stats["open_undated"]),
        "closed_in_window": n_won + n_lost, "won": n_won, "lost": n_lost,
        "win_rate": win_rate, "average_deal_size": deal,
        "won_value": _float(stats["won_value"]) if deal_amount else np.nan,
        "cycle_days": cycle_days, "cycle_days_median": _float(stats["cycle_days_median"]),
        "sales_velocity_per_day": velocity, "sales_velocity_per_month": velocity * 30.4375,
    })
    groups = {}
    for col in by:
        g = execute(d.group_by(_g=d[col].cast("string")).aggregate(**aggs(d)))
        g = g.rename(columns={"_g": col}).set_index(col).sort_index()
        closed_n = g["won"] + g["lost"]
        g["win_rate"] = g["won"] / closed_n.where(closed_n > 0)
        for c in ("average_deal_size", "cycle_days", "cycle_days_median", "open_value"):
            g[c] = pd.to_numeric(g[c], errors="coerce")
        if not has_amount:
            g["open_value"] = np.nan
        if not deal_amount:
            g["average_deal_size"] = np.nan
        groups[col] = g[["deals", "open_deals", "open_value", "won", "lost", "win_rate",
                         "average_deal_size", "cycle_days", "cycle_days_median"]]
    return Pipeline(open=table, summary=summary, open_value=value, by=groups)


def _float(value) -> float:
    return float(value) if value is not None and pd.notna(value) else np.nan


def has_tables(crm: CRMData, tables: str | Sequence[str], *, show: bool = True) -> bool:
    """Return whether ``crm`` has every table; if not, show a one-line note saying so.

    The same as :meth:`crm.has_tables(tables, show=show) <crmstats.CRMData.has_tables>`,
    where templates call it now; kept here for the templates written before.
    """
    return crm.has_tables(tables, show=show)

"""Sales-funnel and lead KPIs, written as Ibis expressions (DuckDB by default).

The funnel rule, used by every function here
----------------------------------------------
The funnel is an ordered list of stages (by default the stages of ``subscriber
→ lead → qualified → opportunity → won`` that the data hold, see
:func:`own_stages`: no funnel reports a stage nobody was recorded in);
``unqualified`` and ``lost`` are the exits after ``lead`` and ``opportunity``.
A lead **reached** a stage when it has an event at that stage *or at any later
funnel stage* — a skipped stage counts as passed through (a deal won without a
recorded opportunity was an opportunity).
A **re-entry** counts once: each stage's entry time is the lead's *first*
event at it. Days in a stage run from its entry to the entry of the next
stage the lead reached (leads that left the funnel or are still in the stage
have no duration there). Breakdowns (``by``) use the lead's *first* value of a
column of the events (the channel of its first event), a column of the
contacts table, or the month of its first event (``"cohort_month"``).

A little over 500 lines: the functions that apply the funnel rule share its
helpers (first entries per lead, the stages present, the breakdown key).

References
----------
.. [1] Kotler, P., Rackham, N. and Krishnaswamy, S. (2006). Ending the war
   between sales and marketing. Harvard Business Review 84(7/8), 68-78.
.. [2] Söhnchen, F. and Albers, S. (2010). Pipeline management for the
   acquisition of industrial projects. Industrial Marketing Management 39(8),
   1356-1364.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np
import pandas as pd

from crmstats._expr import period_index, period_start
from crmstats._windows import WindowFrame, data_window
from crmstats.backend import execute
from crmstats.exceptions import DataError
from crmstats.validation import as_table, reuse_validated
from crmstats.validation.memory import remember, remembered

__all__ = ["FUNNEL_STAGES", "lead_kpis", "lead_stage_times", "own_stages", "stage_conversion",
           "stage_durations"]

#: The default funnel, in order; ``unqualified`` and ``lost`` are exits.
FUNNEL_STAGES: tuple[str, ...] = ("subscriber", "lead", "qualified", "opportunity", "won")


def _events(stage_events, lead_id_col, stage_col, entered_at_col):
    return as_table(stage_events, "stage_events", columns={
        "lead_id": lead_id_col, "stage": stage_col, "entered_at": entered_at_col})


def lead_stage_times(
    stage_events: Any,
    *,
    stages: Sequence[str] = FUNNEL_STAGES,
    extra: Sequence[str] = (),
    lead_id_col: str | None = None,
    stage_col: str | None = None,
    entered_at_col: str | None = None,
) -> ibis.Table:
    """One row per lead (an Ibis table): first entry time of every stage, and ``reached_*`` flags.

    Columns ``t_<stage>`` (first entry, null if never entered) for the funnel
    ``stages`` and any ``extra`` stages, ``reached_<stage>`` (entered it or a
    later funnel stage — the funnel rule of this module), and the first value
    of each further column of the events (e.g. ``channel``, ``owner``).
    """
    stages = list(stages)
    if len(stages) < 2 or len(set(stages)) != len(stages):
        raise ValueError(f"stages must be at least two distinct stage names, got {stages}")
    t = _events(stage_events, lead_id_col, stage_col, entered_at_col)
    present = _present_stages(t)
    unknown = [s for s in stages if s not in present]
    if len(unknown) == len(stages):
        raise DataError(f"stage_events table: none of the funnel stages {stages} occurs; "
                        f"stages present: {sorted(present)}", table="stage_events",
                        column="stage")
    others = [c for c in t.columns if c not in ("lead_id", "stage", "entered_at")]
    firsts = _stored_firsts(t, others)
    if firsts is not None:  # every stage's first entries, aggregated once (in-process DuckDB)
        names, base = firsts
        cols = {f"t_{s}": base[f"_t{names.index(s)}"] if s in names
                else ibis.null(t.entered_at.type()) for s in [*stages, *extra]}
        per = base.select(base.lead_id, *[v.name(k) for k, v in cols.items()],
                          *[base[c] for c in others])
    else:
        aggs = {f"t_{s}": t.entered_at.min(where=t.stage == s) for s in [*stages, *extra]}
        for c in others:
            aggs[c] = t[c].argmin(t.entered_at)
        per = t.group_by("lead_id").aggregate(**aggs)
    reached = {}
    later = ibis.literal(False)
    for s in reversed(stages):
        later = per[f"t_{s}"].notnull() | later
        reached[f"reached_{s}"] = later
    return per.mutate(**reached)


#: Per validated events table of the embedded DuckDB: every stage's first entry per lead,
#: stored once as a temporary table (id(table) -> (weak reference, connection, stage names,
#: stored table)). A study asks for them several times (pipeline, conversion, lead KPIs,
#: durations); on the 10x demo each aggregation reads 1.15M events.
_FIRSTS: dict[int, tuple] = {}
_FIRSTS_IDS = itertools.count()


def _stored_firsts(t, others: list[str]):
    """Return ``(stage names, table)`` of every stage's first entry per lead, or None.

    Only for events that live in the process's own DuckDB (frames, files): a
    database's tables are aggregated where they live, each time. The table holds
    ``lead_id``, ``_t<i>`` (first entry into the i-th name) and the first value
    of each further column (``others``).
    """
    import os

    from crmstats.backend import _backend_of, backend

    con = backend()
    if _backend_of(t) is not con:
        return None
    entry = _FIRSTS.get(id(t))
    if entry is not None and entry[0]() is t and entry[1] is con:
        return entry[2], entry[3]
    names = sorted(_present_stages(t))
    aggs = {f"_t{i}": t.entered_at.min(where=t.stage == s) for i, s in enumerate(names)}
    for c in others:
        aggs[c] = t[c].argmin(t.entered_at)
    name = f"crmstats_firsts_{next(_FIRSTS_IDS)}_{os.getpid()}"
    stored = con.create_table(name, t.group_by("lead_id").aggregate(**aggs), temp=True)
    if len(_FIRSTS) >= 8:  # a few sources per process at most: forget the oldest
        oldest = next(iter(_FIRSTS))
        with contextlib.suppress(Exception):
            _FIRSTS[oldest][1].drop_table(_FIRSTS[oldest][4], force=True)
        del _FIRSTS[oldest]
    _FIRSTS[id(t)] = (weakref.ref(t), con, names, stored, name)
    return names, stored


def _present_stages(t) -> set[str]:
    """Return the stage names of validated events (one query per crmstats call: remembered)."""
    key = ("funnel.present_stages", t.op())
    present = remembered(key)
    if present is None:
        present = set(execute(t.select(s=t.stage.cast("string")).distinct())["s"].dropna())
        remember(key, present)
    return present


def _by_key(per, by: str | None, contacts=None):
    if by is None:
        return per.mutate(_by=ibis.literal("all"))
    if by == "cohort_month":
        firsts = [per[c] for c in per.columns if c.startswith("t_")]
        return per.mutate(_by=period_index(ibis.least(*firsts), "M"))
    if by in per.columns:
        return per.mutate(_by=per[by].cast("string"))
    if contacts is not None:
        c = as_table(contacts, "contacts")
        if by in c.columns:
            c = c.select(_cid=c.contact_id.cast("string"), _cby=c[by].cast("string"))
            joined = per.left_join(c, per.lead_id.cast("string") == c._cid)
            return joined.mutate(_by=joined._cby).drop("_cid", "_cby")
    cols = [c for c in per.columns if not c.startswith(("t_", "reached_"))]
    where = "stage_events table" + (" and contacts table" if contacts is not None else "")
    raise DataError(f"{where}: no column {by!r} to break the funnel down by; event columns: "
                    f"{', '.join(cols)}", table="stage_events", column=by)


def own_stages(stage_events: Any, *, stage_col: str | None = None) -> list[str]:
    """Return the funnel stages the events hold, in funnel order (the default funnel).

    The stages of :data:`FUNNEL_STAGES` that occur in the data, in that
    order — never a stage the data lack (a funnel with a stage nobody was
    recorded in would report it at 100 %). The won stage is kept even when
    nobody was won yet.

    Raises
    ------
    DataError
        If fewer than one funnel stage besides won occurs.
    """
    t = as_table(stage_events, "stage_events", columns={"stage": stage_col})
    present = _present_stages(t)
    stages = [s for s in FUNNEL_STAGES[:-1] if s in present] + [FUNNEL_STAGES[-1]]
    if len(stages) < 2:
        raise DataError(f"stage_events table: none of the funnel stages "
                        f"{', '.join(FUNNEL_STAGES)} occurs; stages present: "
                        f"{', '.join(sorted(map(str, present)))} (map yours with values: in "
                        "crmstats.yml)", table="stage_events", column=stage_col or "stage")
    return stages


@reuse_validated()
def stage_conversion(
    stage_events: Any,
    *,
    stages: Sequence[str] | None = None,
    by: str | None = None,
    contacts: Any = None,
    lead_id_col: str | None = None,
    stage_col: str | None = None,
    entered_at_col: str | None = None,
) -> pd.DataFrame:
    """Per funnel stage: entered, advanced, dropped, conversion to next and to won, days in stage.

    Parameters
    ----------
    stage_events : DataFrame, path or ibis.Table
        Canonical stage_events table.
    stages : sequence of str, optional
        The funnel in order, ending with the won stage (see the module's funnel
        rule); default the data's own stages (:func:`own_stages`).
    by : str, optional
        Break down by a column of the events (``channel``, ``owner``, ...; a
        lead's first value), a column of ``contacts`` (``industry``,
        ``company_size``, ``country``, ...; a segment of the lead) or
        ``"cohort_month"`` (month of its first stage).
    contacts : DataFrame, path or ibis.Table, optional
        Canonical contacts table (``contact_id`` = ``lead_id``) for ``by``
        columns that are not in the events; leads missing from it form a null group.
    lead_id_col, stage_col, entered_at_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``stage`` (categorical in funnel order; ``by`` first when
        given); columns ``entered``,
        ``advanced`` (reached the next stage), ``dropped``,
        ``conversion_to_next``, ``conversion_to_won``, ``median_days`` and
        ``p90_days`` in the stage (leads that advanced; NaN for the last).

    Notes
    -----
    Skipped stages count as passed through and re-entries count once (the
    module's funnel rule), so ``entered`` never grows down the funnel and
    ``entered - dropped`` of a stage is the next stage's ``entered``.
    """
    # validated once (see the decorator); every stage's figures come from one query
    events = _events(stage_events, lead_id_col, stage_col, entered_at_col)
    stages = own_stages(events) if stages is None else list(stages)
    per = _by_key(lead_stage_times(events, stages=stages), by, contacts)
    won = per[f"reached_{stages[-1]}"]
    aggs = {}
    for i, s in enumerate(stages):
        here = per[f"reached_{s}"]
        aggs[f"entered_{i}"] = per.count(where=here)
        aggs[f"won_{i}"] = per.count(where=here & won)
        if i + 1 < len(stages):
            nxt = per[f"reached_{stages[i + 1]}"]
            aggs[f"advanced_{i}"] = per.count(where=here & nxt)
            # the next stage actually entered (skips fall through to a later one)
            nxt_t = ibis.coalesce(*[per[f"t_{x}"] for x in stages[i + 1:]])
            days = (nxt_t.epoch_seconds() - per[f"t_{s}"].epoch_seconds()) / 86400.0
            ok = per[f"t_{s}"].notnull() & nxt_t.notnull()
            aggs[f"median_days_{i}"] = ibis.ifelse(ok, days, ibis.null("float64")).quantile(0.5)
            aggs[f"p90_days_{i}"] = ibis.ifelse(ok, days, ibis.null("float64")).quantile(0.9)
    wide = execute(per.group_by("_by").aggregate(**aggs))
    parts = []
    for i, s in enumerate(stages):
        names = [n for n in ("entered", "won", "advanced", "median_days", "p90_days")
                 if f"{n}_{i}" in wide.columns]
        out = wide[["_by", *[f"{n}_{i}" for n in names]]].set_axis(["_by", *names], axis=1)
        parts.append(out.assign(stage=s))
    frame = pd.concat(parts, ignore_index=True)
    frame["advanced"] = frame["advanced"].fillna(frame["won"]).astype("int64")
    frame["dropped"] = frame["entered"] - frame["advanced"]
    last = frame["stage"] == stages[-1]
    frame.loc[last, "dropped"] = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["conversion_to_next"] = (frame["advanced"] / frame["entered"]).where(~last)
        frame["conversion_to_won"] = frame["won"] / frame["entered"]
    order = {s: i for i, s in enumerate(stages)}
    frame["_o"] = frame["stage"].map(order)
    cols = ["entered", "advanced", "dropped", "conversion_to_next", "conversion_to_won",
            "median_days", "p90_days"]
    for c in ("median_days", "p90_days"):
        frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame["stage"] = pd.Categorical(frame["stage"], categories=stages, ordered=True)
    if by is None:
        frame = frame.sort_values("_o").set_index("stage")[cols]
    else:
        if by == "cohort_month":
            frame["_by"] = period_start(frame["_by"].astype("int64"), "M")
        frame = frame.sort_values(["_by", "_o"]).rename(columns={"_by": by}).set_index(
            [by, "stage"])[cols]
    frame[["entered", "advanced", "dropped"]] = frame[["entered", "advanced",
                                                       "dropped"]].astype("int64")
    return frame


@reuse_validated()
def lead_kpis(
    stage_events: Any,
    spend: Any,
    *,
    by: str = "channel",
    period: str | None = "M",
    lead_stage: str = "lead",
    qualified_stage: str = "qualified",
    opportunity_stage: str = "opportunity",
    won_stage: str = "won",
    stages: Sequence[str] = FUNNEL_STAGES,
    mature_days: float | None = None,
    lead_id_col: str | None = None,
    stage_col: str | None = None,
    entered_at_col: str | None = None,
) -> pd.DataFrame:
    """Lead generation KPIs per channel and period: volumes, costs, quality, time to convert.

    Leads are counted in the period they became leads (cohort view): a lead
    of March that is won in May counts as won for March, so the rates are lead
    quality. Spend is the spend table's cost of the channel in the period;
    every channel and period with spend appears, so costs reconcile to the
    total spend.

    Parameters
    ----------
    stage_events : DataFrame, path or ibis.Table
        Canonical stage_events table with a ``by`` column (the lead's channel).
    spend : DataFrame, path or ibis.Table
        Canonical spend table (date, channel, cost).
    by : str
        Column of the events matching the spend table's ``channel``.
    period : {"W", "M", "Q", "Y"} or None
        Period of lead creation and of spend; None sums over the observable
        span (one row per channel; see Notes).
    lead_stage, qualified_stage, opportunity_stage, won_stage : str
        Stage names (reached by the funnel rule of this module).
    stages : sequence of str
        The funnel in order.
    mature_days : float, optional
        Days a lead cohort needs to have had to convert before its
        conversions are reported (see Notes); default the 90th percentile of
        the days from lead to win of the won leads.
    lead_id_col, stage_col, entered_at_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index (``channel``, ``period``), or ``channel`` alone when ``period``
        is None; columns ``spend``, ``leads``,
        ``qualified``, ``opportunities``, ``won``, ``cost_per_lead``,
        ``cost_per_qualified``, ``cost_per_opportunity``, ``cac``,
        ``lead_to_opportunity``, ``lead_to_won`` and ``median_days_to_won``
        (from becoming a lead to the win). Divisions by zero give NaN. The
        rows' ``spend`` sums to the spend table's total cost (over the
        periods shown); spend of a channel without leads appears with zero
        leads (NaN costs per lead).

    Notes
    -----
    By period, windows follow :mod:`crmstats._windows`. A partial last
    period (of the stage events) is left out, spend included. The data's
    first period is NaN but for its spend: leads that became leads before
    the data show up there at their first recorded stage. A **recent cohort**
    has not had the time to convert: until ``mature_days`` have passed from
    the period's end to the last stage event, its ``qualified``,
    ``opportunities``, ``won``, the costs per qualified lead, opportunity and
    win, the rates and ``median_days_to_won`` are NaN, not the low figures
    of conversions so far. Counts are floats for the NaN. With
    ``period=None`` the same rule selects the leads and spend summed: those
    of the months after the data's first, complete and mature (all the data
    when no month is). The result is a :class:`~crmstats._windows.WindowFrame`:
    ``span`` gives that span's first and last day (None for all the data),
    ``window`` the window (``left_out()`` its note) and ``mature_days`` the
    days a lead cohort needs to be observed.
    """
    stages = list(stages)
    events = _events(stage_events, lead_id_col, stage_col, entered_at_col)
    per = lead_stage_times(events, stages=stages)
    if by not in per.columns:
        raise DataError(f"stage_events table: no column {by!r} (the lead's channel) to match "
                        "the spend table", table="stage_events", column=by)
    leads = per.filter(per[f"reached_{lead_stage}"])
    lead_t = ibis.coalesce(*[leads[f"t_{s}"] for s in stages[stages.index(lead_stage):]])
    whole = period is None
    leads = leads.mutate(_ch=leads[by].cast("string"),
                         _p=ibis.literal(0) if whole else period_index(lead_t, period),
                         _lead_t=lead_t)
    if mature_days is None:
        mature_days = execute(_days_to_won(leads, won_stage).quantile(0.9))
    days = float(mature_days) if mature_days is not None and pd.notna(mature_days) else 0.0
    win = data_window(events, "entered_at", period or "M")
    sp = as_table(spend, "spend")
    span = None
    if whole:
        # the span of observable cohorts: the months after the data's first, complete and
        # mature (crmstats._windows); all the data when no month is
        months = np.arange(win.first + 1, win.last_complete + 1)
        ends = period_start(months + 1, "M") + pd.Timedelta(days=days)
        mature = months[np.asarray(ends <= win.end)]
        if len(mature):
            lo, hi = int(mature[0]), int(mature[-1])
            leads = leads.filter(period_index(leads._lead_t, "M").between(lo, hi))
            sp = sp.filter(period_index(sp.date, "M").between(lo, hi))
            span = (period_start([lo], "M")[0],
                    period_start([hi + 1], "M")[0] - pd.Timedelta(days=1))
    else:
        sp = sp.filter(period_index(sp.date, period) <= win.last_complete)
    days_won = _days_to_won(leads, won_stage)
    counts = execute(leads.group_by(["_ch", "_p"]).aggregate(
        leads=leads.count(),
        qualified=leads.count(where=leads[f"reached_{qualified_stage}"]),
        opportunities=leads.count(where=leads[f"reached_{opportunity_stage}"]),
        won=leads.count(where=leads[f"reached_{won_stage}"]),
        median_days_to_won=days_won.quantile(0.5),
    ))
    cost = execute(sp.group_by([sp.channel.cast("string").name("_ch"),
                                (ibis.literal(0) if whole else period_index(sp.date, period))
                                .name("_p")]).aggregate(
        spend=sp.cost.sum()))
    out = counts.merge(cost, on=["_ch", "_p"], how="outer")
    for c in ("leads", "qualified", "opportunities", "won"):
        out[c] = out[c].fillna(0).astype("int64")
    out["spend"] = out["spend"].fillna(0.0)
    den = {"cost_per_lead": "leads", "cost_per_qualified": "qualified",
           "cost_per_opportunity": "opportunities", "cac": "won"}
    for name, col in den.items():
        out[name] = out["spend"] / out[col].where(out[col] > 0)
    out["lead_to_opportunity"] = out["opportunities"] / out["leads"].where(out["leads"] > 0)
    out["lead_to_won"] = out["won"] / out["leads"].where(out["leads"] > 0)
    out["median_days_to_won"] = pd.to_numeric(out["median_days_to_won"], errors="coerce")
    cols = ["spend", "leads", "qualified", "opportunities", "won", "cost_per_lead",
            "cost_per_qualified", "cost_per_opportunity", "cac", "lead_to_opportunity",
            "lead_to_won", "median_days_to_won"]
    out = out.rename(columns={"_ch": "channel"})
    if whole:
        out = out.sort_values("channel").set_index("channel")[cols]
        out = WindowFrame.of(out, win, mature_days=days, span=span)
        return out
    out = out[out["_p"] <= win.last_complete].copy()
    # conversions of cohorts too recent to have converted, and the data's first period
    # (leads from before the data), are not observed (crmstats._windows)
    ends = period_start(out["_p"].astype("int64") + 1, period)
    young = np.asarray(ends + pd.Timedelta(days=days) > win.end)
    conversion = ["qualified", "opportunities", "won", "cost_per_qualified",
                  "cost_per_opportunity", "cac", "lead_to_opportunity", "lead_to_won",
                  "median_days_to_won"]
    out[["leads", "qualified", "opportunities", "won"]] = out[
        ["leads", "qualified", "opportunities", "won"]].astype("float64")
    out.loc[young, conversion] = np.nan
    out.loc[np.asarray(out["_p"] == win.first), [c for c in cols if c != "spend"]] = np.nan
    out["period"] = period_start(out["_p"].astype("int64"), period)
    out = out.sort_values(["channel", "period"]).set_index(["channel", "period"])[cols]
    out = WindowFrame.of(out, win, mature_days=days)
    return out


def _days_to_won(leads, won_stage: str):
    """Days from becoming a lead to the win, null for leads not won."""
    days = (leads[f"t_{won_stage}"].epoch_seconds() - leads._lead_t.epoch_seconds()) / 86400.0
    return ibis.ifelse(leads[f"t_{won_stage}"].notnull(), days, ibis.null("float64"))


@reuse_validated()
def stage_durations(
    stage_events: Any,
    *,
    stages: Sequence[str] | None = None,
    max_leads: int | None = 20_000,
    seed: int = 1,
    lead_id_col: str | None = None,
    stage_col: str | None = None,
    entered_at_col: str | None = None,
) -> pd.DataFrame:
    """Days each lead spent in each stage it left for a later one (long format, for boxplots).

    Parameters
    ----------
    stage_events : DataFrame, path or ibis.Table
        Canonical stage_events table.
    stages : sequence of str, optional
        The funnel in order (durations for every stage but the last); default
        the data's own stages (:func:`own_stages`).
    max_leads : int, optional
        Keep about this many leads, sampled at random in the database (None: all).
    seed : int
        Seed of the sample (leads are kept by a hash of their id and the seed,
        so the same data gives the same sample).
    lead_id_col, stage_col, entered_at_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``stage`` (ordered categorical) and ``days``.
    """
    events = _events(stage_events, lead_id_col, stage_col, entered_at_col)  # validated once
    stages = own_stages(events) if stages is None else list(stages)
    per = lead_stage_times(events, stages=stages)
    if max_leads is not None:
        n = int(execute(per.count()))
        if n > int(max_leads):
            key = (per.lead_id.cast("string") + ibis.literal(f"#{int(seed)}")).hash()
            per = per.filter((key % 1_000_003).abs() < 1_000_003 * float(max_leads) / n)
    cols = {}
    for i, s in enumerate(stages[:-1]):
        nxt = ibis.coalesce(*[per[f"t_{x}"] for x in stages[i + 1:]])
        cols[s] = (nxt.epoch_seconds() - per[f"t_{s}"].epoch_seconds()) / 86400.0
    wide = execute(per.order_by("lead_id").select(**cols))
    long = wide.melt(var_name="stage", value_name="days").dropna()
    long["stage"] = pd.Categorical(long["stage"], categories=stages[:-1], ordered=True)
    return long.reset_index(drop=True)

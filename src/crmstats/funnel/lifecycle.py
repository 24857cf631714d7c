"""Lifecycle stages of CRM contacts, and how contacts move between them.

Every contact sits in one stage that decides how it is handled:

==========================  ===================================================
stage                       rule (as of the date)
==========================  ===================================================
subscriber                  only the subscriber stage entered
lead                        became a lead, not yet qualified or disqualified
unqualified lead            disqualified (not worth follow-up)
qualified lead              qualified, no opportunity yet
opportunity                 an open opportunity
lost opportunity            the opportunity was lost
customer                    won, and bought within the lapse window
former customer, high/low   won, but no purchase for the lapse window; ranked
priority                    by P(alive) × value if active (BG/NBD [1]_ ×
                            Gamma-Gamma [2]_) — the top share is high priority
                            (the win-back list, :func:`crmstats.clv.winback_list`)
evangelist                  a customer, current or former, who referred at least
                            one contact created by the date (where the contacts
                            table records ``referred_by``): promotes the company
                            whether or not it buys more
==========================  ===================================================

The funnel stages come from the latest stage event by the date; when several
were entered, the furthest one counts (won over lost over opportunity over
qualified or unqualified over lead over subscriber), so a re-entry never
moves a contact back. Contacts without any event are subscribers.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV:
   Using iso-value curves for customer base analysis. Journal of Marketing
   Research 42(4), 415-430.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from crmstats._expr import parse_date
from crmstats.backend import execute
from crmstats.exceptions import ConvergenceError, ConvergenceWarning, DataError, DataWarning
from crmstats.sources import load_crm
from crmstats.validation import reuse_validated

__all__ = ["LIFECYCLE_STAGES", "lifecycle_counts", "lifecycle_stage", "snapshot_date",
           "stage_flows"]

#: The lifecycle stages, in the order of the customer journey.
LIFECYCLE_STAGES = (
    "subscriber", "lead", "unqualified lead", "qualified lead", "opportunity",
    "lost opportunity", "customer", "evangelist", "former customer, high priority",
    "former customer, low priority",
)

_LADDER = [  # latest event stage -> lifecycle stage
    ("won", "customer"), ("lost", "lost opportunity"), ("opportunity", "opportunity"),
    ("qualified", "qualified lead"), ("unqualified", "unqualified lead"), ("lead", "lead"),
    ("subscriber", "subscriber"),
]
_ORDER = {"subscriber": 0, "lead": 1, "unqualified": 2, "qualified": 2, "opportunity": 3,
          "lost": 4, "won": 4}


def _funnel_stage(crm, as_of: pd.Timestamp) -> pd.Series:
    """Each contact's furthest stage reached by ``as_of`` (in-database)."""
    t = crm.table("stage_events")
    t = t.filter(t.entered_at <= as_of.to_pydatetime())
    known = [s for s, _ in _LADDER]
    t = t.filter(t.stage.isin(known))
    import ibis

    rank = ibis.cases(*[(t.stage == s, _ORDER[s] * 10 + (1 if s in ("won", "qualified")
                                                           else 0)) for s in known])
    t = t.mutate(rank=rank)
    per = t.group_by(t.lead_id.cast("string").name("contact_id")).aggregate(
        stage=t.stage.argmax(t.rank))
    return execute(per).set_index("contact_id")["stage"]


def snapshot_date(crm, as_of=None) -> pd.Timestamp:
    """Return the date of a lifecycle snapshot: ``as_of``, or the last event or transaction.

    Parameters
    ----------
    crm : CRMData or data source
        With ``stage_events`` and ``transactions``.
    as_of : timestamp-like, optional
        The date asked for.

    Returns
    -------
    pandas.Timestamp
    """
    if as_of is not None:
        return parse_date(as_of, "as_of")
    crm = load_crm(crm)
    crm.require("stage_events", "transactions")
    return max(pd.Timestamp(execute(crm.table("transactions").timestamp.max())),
               pd.Timestamp(execute(crm.table("stage_events").entered_at.max())))


@reuse_validated()
def lifecycle_stage(
    crm,
    *,
    as_of=None,
    lapsed_after: float | None = None,
    high_priority_share: float = 0.2,
    horizon_months: int = 12,
    models: bool = True,
) -> pd.DataFrame:
    """Label every contact with its lifecycle stage as of a date.

    Parameters
    ----------
    crm : CRMData
        With ``contacts`` (or ``stage_events`` alone), ``stage_events`` and
        ``transactions``.
    as_of : timestamp-like, optional
        The date; default the last event or transaction.
    lapsed_after : float, optional
        Weeks without a purchase after which a customer is a former customer;
        default twice the median time between repeat purchases.
    high_priority_share : float
        Share of former customers (the best by P(alive) × value if active)
        labelled high priority.
    horizon_months : int
        Horizon of the value if active.
    models : bool
        Fit BG/NBD and Gamma-Gamma to rank former customers; with False every
        former customer is low priority and no model is fitted (fast, for flows).

    Returns
    -------
    pandas.DataFrame
        Index ``contact_id``; ``stage`` (ordered categorical of
        :data:`LIFECYCLE_STAGES`), ``referrals`` (contacts it referred by the
        date; 0 without referral data), and for customers
        ``weeks_since_purchase``, ``p_alive`` and ``score`` (P(alive) × value
        if active, former customers only) and ``lapsed_after_weeks`` (the
        lapse window applied to them). Ids only. The date itself is
        :func:`snapshot_date` of ``as_of``.
    """
    from crmstats.clv import fit_value, lapse_threshold, rfm_summary, winback_list

    crm = load_crm(crm)
    crm.require("stage_events", "transactions")
    tx = crm.table("transactions")
    as_of = snapshot_date(crm, as_of)
    funnel = _funnel_stage(crm, as_of)
    contacts = None
    if crm.contacts is not None:
        c = crm.table("contacts")
        cols = [x for x in ("contact_id", "created_at", "referred_by") if x in c.columns]
        contacts = execute(c.select(*cols).mutate(contact_id=c.contact_id.cast("string")))
        ids = contacts.loc[contacts["created_at"] <= as_of, "contact_id"]
    else:
        ids = pd.Series(funnel.index, dtype=str)
    stage = funnel.reindex(ids.to_numpy()).map(dict(_LADDER)).fillna("subscriber")
    out = pd.DataFrame({"stage": stage.to_numpy()}, index=pd.Index(ids.to_numpy(),
                                                                     name="contact_id"))
    summary = rfm_summary(tx, observation_end=as_of, time_unit="W")  # ignores later rows
    summary.index = summary.index.astype(str)
    won = out.index[out["stage"] == "customer"]
    s = summary.reindex(won).dropna()
    since = s["T"] - s["recency"]
    if lapsed_after is None:
        lapsed_after = lapse_threshold(s, default=26.0)
    lapsed = since[since >= lapsed_after].index
    out.loc[lapsed, "stage"] = "former customer, low priority"
    out["weeks_since_purchase"] = since.reindex(out.index)
    out["p_alive"] = np.nan
    out["score"] = np.nan
    if models and len(lapsed) and (s["frequency"] > 0).sum() >= 20:
        problem = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", DataWarning)
            try:
                fit = fit_value(tx, observation_end=as_of, time_unit="W", customers=s.index,
                                horizon_months=horizon_months)
                ranked = winback_list(fit.transaction_model, fit.spend_model, fit.summary,
                                      lapsed_after=lapsed_after,
                                      high_priority_share=high_priority_share)
            except (DataError, ConvergenceError) as exc:
                problem, ranked = exc, None
        if problem is not None:
            warnings.warn(f"lifecycle_stage: former customers are not ranked ({problem})",
                          DataWarning, stacklevel=3)
        if ranked is not None:
            ranked.index = ranked.index.astype(str)
            out.loc[ranked.index, "stage"] = ranked["priority"]
            out.loc[ranked.index, "score"] = ranked["score"]
            p_alive = fit.transaction_model.probability_alive(fit.summary)
            out.loc[p_alive.index.astype(str), "p_alive"] = p_alive.to_numpy()
    # evangelists: customers (current or former) who referred other contacts by as_of
    out["referrals"] = 0
    if contacts is not None and "referred_by" in contacts.columns:
        c = contacts
        referred = c.loc[c["created_at"] <= as_of, "referred_by"].dropna()
        counts = referred.astype(str).value_counts()
        out["referrals"] = counts.reindex(out.index).fillna(0).astype("int64").to_numpy()
        customer_like = out["stage"].eq("customer") | out["stage"].str.startswith("former")
        out.loc[customer_like & (out["referrals"] > 0), "stage"] = "evangelist"
    out["stage"] = pd.Categorical(out["stage"], categories=LIFECYCLE_STAGES, ordered=True)
    out["lapsed_after_weeks"] = np.where(out["weeks_since_purchase"].notna(),
                                         float(lapsed_after), np.nan)
    return out


def lifecycle_counts(stages: pd.DataFrame) -> pd.DataFrame:
    """Contacts per lifecycle stage and their share of all contacts.

    Parameters
    ----------
    stages : pandas.DataFrame
        :func:`lifecycle_stage` (a categorical ``stage`` column).

    Returns
    -------
    pandas.DataFrame
        Index: every stage of :data:`LIFECYCLE_STAGES`, in funnel order (a
        stage nobody is in counts 0); columns ``contacts`` and ``share``.

    Examples
    --------
    >>> stages = pd.DataFrame({"stage": pd.Categorical(
    ...     ["lead", "customer", "lead", "evangelist"], categories=LIFECYCLE_STAGES)})
    >>> lifecycle_counts(stages).loc[["lead", "customer", "opportunity"]]
                 contacts  share
    stage
    lead                2   0.50
    customer            1   0.25
    opportunity         0   0.00
    """
    if not isinstance(stages, pd.DataFrame) or "stage" not in stages.columns:
        raise DataError("lifecycle_counts: expected the DataFrame returned by lifecycle_stage "
                        "(a 'stage' column)", column="stage")
    stage = pd.Categorical(stages["stage"], categories=LIFECYCLE_STAGES, ordered=True)
    counts = pd.Series(stage).value_counts(sort=False)
    counts.index = pd.CategoricalIndex(counts.index, categories=LIFECYCLE_STAGES, ordered=True,
                                       name="stage")
    total = counts.sum()
    return pd.DataFrame({"contacts": counts.astype("int64"),
                         "share": counts / total if total else counts * 0.0})


@reuse_validated()
def stage_flows(crm, *, start=None, end=None, period: str = "M",
                lapsed_after: float | None = None, by_period: bool = False) -> pd.DataFrame:
    """Transitions between lifecycle stages from one period end to the next.

    Each period end gets a snapshot of :func:`lifecycle_stage` (without the
    CLV models: former customers are not split by priority); consecutive
    snapshots are compared contact by contact. Contacts created in between
    come from ``(new)``.

    Parameters
    ----------
    crm : CRMData
        As for :func:`lifecycle_stage`.
    start, end : timestamp-like, optional
        First and last snapshot dates (rounded to period ends); default the
        first stage event and the last transaction.
    period : {"M", "Q", "W"}
        Snapshot period (month ends by default: month-over-month flows).
    lapsed_after : float, optional
        Weeks without a purchase that make a customer a former customer
        (default as in :func:`lifecycle_stage`, per snapshot).
    by_period : bool
        Return the flows of every period (long format) instead of their sum.

    Returns
    -------
    pandas.DataFrame
        Default: rows stage before, columns stage after, cells contacts summed
        over every pair of consecutive snapshots (staying contacts on the
        diagonal). With ``by_period``: columns ``period`` (the snapshot at
        the end of the move), ``from``, ``to`` and ``contacts`` (non-zero
        moves and stays only).
    """
    # validated once (see the decorator); every snapshot reuses the validated tables
    crm = load_crm(crm)
    crm.require("stage_events", "transactions")
    tables = {name: crm.table(name) for name in ("transactions", "stage_events", "contacts")
              if getattr(crm, name) is not None}
    tx, events = tables["transactions"], tables["stage_events"]
    crm = dataclasses.replace(crm, **tables)
    first = pd.Timestamp(execute(events.entered_at.min()))
    last = pd.Timestamp(execute(tx.timestamp.max()))
    start = pd.Timestamp(start) if start is not None else first
    end = pd.Timestamp(end) if end is not None else last
    freq = {"M": "ME", "Q": "QE", "W": "W-SUN"}.get(str(period).upper())
    if freq is None:
        raise ValueError(f"period must be M, Q or W, got {period!r}")
    ends = pd.date_range(start.normalize(), end.normalize(), freq=freq)
    if len(ends) < 2:
        raise DataError(f"stage_flows: fewer than two period ends between {start:%Y-%m-%d} "
                        f"and {end:%Y-%m-%d}", table="stage_events")
    parts = []
    previous = None
    for when in ends:
        snap = lifecycle_stage(crm, as_of=when + pd.Timedelta(hours=23, minutes=59, seconds=59),
                               lapsed_after=lapsed_after, models=False)["stage"].astype(str)
        snap = snap.replace({"former customer, low priority": "former customer"})
        if previous is not None:
            before = previous.reindex(snap.index).fillna("(new)")
            moves = pd.DataFrame({"from": before.to_numpy(), "to": snap.to_numpy()})
            counts = moves.groupby(["from", "to"]).size().rename("contacts").reset_index()
            parts.append(counts.assign(period=when))
        previous = snap
    long = pd.concat(parts, ignore_index=True)
    order = ["(new)", *[s for s in LIFECYCLE_STAGES if not s.startswith("former")],
             "former customer"]
    if by_period:
        rank = {s: i for i, s in enumerate(order)}
        long = long.assign(_f=long["from"].map(rank), _t=long["to"].map(rank))
        long = long.sort_values(["period", "_f", "_t"]).drop(columns=["_f", "_t"])
        return long[["period", "from", "to", "contacts"]].reset_index(drop=True)
    flows = long.pivot_table(index="from", columns="to", values="contacts", aggfunc="sum",
                             fill_value=0)
    rows = [s for s in order if s in flows.index]
    cols = [s for s in order if s in flows.columns]
    flows = flows.reindex(index=rows, columns=cols).fillna(0).astype("int64")
    flows.index.name, flows.columns.name = "from", "to"
    return flows

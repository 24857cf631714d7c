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

import warnings
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmstats._expr import parse_date
from crmstats.backend import execute, execute_arrow
from crmstats.exceptions import ConvergenceError, ConvergenceWarning, DataError, DataWarning
from crmstats.sources import load_crm
from crmstats.validation import reuse_validated
from crmstats.vocabulary import with_old_column_names

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
#: Event stages from the nearest to the furthest: of the stages a contact entered by a
#: date, the last one in this order is its funnel stage (won over lost, qualified over
#: unqualified: no two stages rank alike).
_BY_RANK = ("subscriber", "lead", "unqualified", "qualified", "opportunity", "lost", "won")
_STAGE_OF = dict(_LADDER)


class _Contacts:
    """What every snapshot needs, fetched once: the contacts and each one's first stage entries.

    The contacts (or, without a contacts table, every lead with a funnel event) are
    the rows; ``entered[k]`` is each one's first entry into ``_BY_RANK[k]`` (NaT if
    never). The aggregation runs in the database; a snapshot is then a few array
    comparisons, so many snapshots (:func:`stage_flows`) cost one query, not one each.
    """

    def __init__(self, crm):
        t = crm.table("stage_events")
        t = t.filter(t.stage.isin(list(_BY_RANK)))
        # read as Arrow arrays: most first entries are missing (NaT), which Ibis's pandas
        # conversion would turn into one Python object per contact and stage
        per = execute_arrow(t.group_by(t.lead_id.cast("string").name("contact_id")).aggregate(
            **{f"t{k}": t.entered_at.min(where=t.stage == s) for k, s in enumerate(_BY_RANK)}))
        lead_ids = per["contact_id"].combine_chunks()
        self.created = self.referrer = self.referred_at = None
        if crm.contacts is not None:
            c = crm.table("contacts")
            cols = [x for x in ("contact_id", "created_at", "referred_by") if x in c.columns]
            contacts = execute(c.select(*cols).mutate(contact_id=c.contact_id.cast("string")))
            self.ids = contacts["contact_id"].to_numpy(dtype=object)
            self.created = contacts["created_at"].to_numpy()
            where = pc.index_in(pa.array(self.ids, pa.string()), value_set=lead_ids.cast(
                pa.string())).fill_null(-1).to_numpy(zero_copy_only=False)
        else:
            contacts = None
            self.ids = lead_ids.to_numpy(zero_copy_only=False).astype(object)
            where = np.arange(len(lead_ids))
        self.entered = []
        nat = np.datetime64("NaT")
        for k in range(len(_BY_RANK)):
            times = _datetimes(per[f"t{k}"])
            found = times[np.maximum(where, 0)] if len(times) else np.full(len(where), nat)
            self.entered.append(np.where(where >= 0, found, nat))
        if contacts is not None and "referred_by" in contacts.columns:
            known = contacts["referred_by"].notna().to_numpy()
            referred = contacts.loc[known, "referred_by"].astype(str).to_numpy(dtype=object)
            self.referrer = pd.Index(self.ids).get_indexer(referred)  # -1: not a contact
            self.referred_at = self.created[known]

    def snapshot(self, tx, as_of: pd.Timestamp, lapsed_after: float | None,
                 time_unit: str = "W") -> dict:
        """Stages as of a date before the win-back ranking and the evangelists.

        Returns the rows on file by ``as_of`` (``ids``, at positions ``rows`` of
        all contacts), their ``stage`` (object
        array), time since the last purchase of customers in ``time_unit``
        (``since``, NaN for others), the ``lapsed`` rows (positions in ``ids``), the ``won``
        customers' RFM summary and the ``lapsed_after`` applied.
        """
        from crmstats.clv import lapse_threshold, rfm_summary
        from crmstats.clv.value import MONTH_IN_UNITS

        when = np.datetime64(as_of.to_datetime64())
        code = np.full(len(self.ids), -1)
        for k, times in enumerate(self.entered):
            code[times <= when] = k
        keep = self.created <= when if self.created is not None else code >= 0
        names = np.array([_STAGE_OF[s] for s in _BY_RANK] + ["subscriber"], dtype=object)
        ids, stage = self.ids[keep], names[code[keep]]
        summary = rfm_summary(tx, observation_end=as_of, time_unit=time_unit)  # ignores later rows
        summary.index = summary.index.astype(str)
        won = ids[stage == "customer"]
        s = summary.reindex(won).dropna()
        gap = s["T"] - s["recency"]
        if lapsed_after is None:
            weeks26 = 26.0 * MONTH_IN_UNITS[time_unit] / MONTH_IN_UNITS["W"]
            lapsed_after = lapse_threshold(s, default=weeks26)
        since = np.full(len(ids), np.nan)
        won_rows = np.flatnonzero(stage == "customer")
        since[won_rows[pd.Index(won).get_indexer(gap.index)]] = gap.to_numpy(dtype=float)
        lapsed = np.flatnonzero(since >= lapsed_after)
        stage[lapsed] = "former customer, low priority"
        referrals = np.zeros(len(ids), dtype="int64")
        if self.referrer is not None:
            counted = self.referrer[(self.referred_at <= when) & (self.referrer >= 0)]
            referrals = np.bincount(counted, minlength=len(self.ids))[keep].astype("int64")
        return {"ids": ids, "rows": np.flatnonzero(keep), "stage": stage, "since": since,
                "lapsed": lapsed, "won": s, "lapsed_after": lapsed_after, "referrals": referrals,
                "has_referrals": self.referrer is not None}


#: The last :class:`_Contacts` built: (weak references to the validated stage events and
#: contacts tables it was read from, the object). A study labels the stages and then their
#: flows from the same tables: the contacts' stage entries are read once.
_LAST: list = []


def _contacts_of(crm) -> _Contacts:
    """Return :class:`_Contacts` of ``crm``, reused while its validated tables are the same.

    ``crm.table`` returns the same validated table while the data are unchanged (an
    edited frame or changed file is validated anew: another table), so the same
    tables mean the same stage entries. A ``_Contacts`` is never changed after it is built.
    """
    events = crm.table("stage_events")
    contacts = crm.table("contacts") if crm.contacts is not None else None
    if _LAST:
        ev_ref, ct_ref, known = _LAST[0]
        if ev_ref() is events and (contacts is None if ct_ref is None else ct_ref() is contacts):
            return known
    made = _Contacts(crm)
    _LAST[:] = [(weakref.ref(events), None if contacts is None else weakref.ref(contacts), made)]
    return made


def _datetimes(column) -> np.ndarray:
    """Return an Arrow timestamp column as ``datetime64`` (NaT where null), time zone dropped."""
    column = column.combine_chunks()
    if getattr(column.type, "tz", None) is not None:
        column = column.cast(pa.timestamp(column.type.unit))
    return column.to_numpy(zero_copy_only=False)


def _evangelists(stage: np.ndarray, referrals: np.ndarray) -> None:
    """Make customers, current or former, who referred a contact evangelists (in place)."""
    customer_like = np.isin(stage, [s for s in LIFECYCLE_STAGES
                                    if s == "customer" or s.startswith("former")])
    stage[customer_like & (referrals > 0)] = "evangelist"


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
    time_unit: str = "W",
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
        Time without a purchase, in ``time_unit``, after which a customer is a
        former customer; default twice the median time between repeat
        purchases (26 weeks when no customer bought twice).
    time_unit : {"W", "D", "M"}
        Unit of ``lapsed_after`` and of the ``time_since_purchase`` column.
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
        ``time_since_purchase`` (in ``time_unit``), ``p_alive`` and ``score``
        (P(alive) × value if active, former customers only) and
        ``lapsed_after`` (the lapse window applied to them, in ``time_unit``).
        Ids only. The date itself is :func:`snapshot_date` of ``as_of``. The
        columns' old names ``weeks_since_purchase`` and ``lapsed_after_weeks``
        still read them for one release (with a DeprecationWarning).
    """
    from crmstats.clv import fit_value, winback_list

    crm = load_crm(crm)
    crm.require("stage_events", "transactions")
    tx = crm.table("transactions")
    as_of = snapshot_date(crm, as_of)
    snap = _contacts_of(crm).snapshot(tx, as_of, lapsed_after, time_unit)
    lapsed_after, s = snap["lapsed_after"], snap["won"]
    out = pd.DataFrame({"stage": snap["stage"]}, index=pd.Index(snap["ids"], name="contact_id"))
    out["time_since_purchase"] = snap["since"]
    out["p_alive"] = np.nan
    out["score"] = np.nan
    if models and len(snap["lapsed"]) and (s["frequency"] > 0).sum() >= 20:
        problem = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", DataWarning)
            try:
                fit = fit_value(tx, observation_end=as_of, time_unit=time_unit, customers=s.index,
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
    out["referrals"] = snap["referrals"]
    if snap["has_referrals"]:
        stage = out["stage"].to_numpy(dtype=object, copy=True)
        _evangelists(stage, snap["referrals"])
        out["stage"] = stage
    out["stage"] = pd.Categorical(out["stage"], categories=LIFECYCLE_STAGES, ordered=True)
    out["lapsed_after"] = np.where(out["time_since_purchase"].notna(),
                                   float(lapsed_after), np.nan)
    return with_old_column_names(out, {"weeks_since_purchase": "time_since_purchase",
                                       "lapsed_after_weeks": "lapsed_after"})


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
                lapsed_after: float | None = None, time_unit: str = "W",
                by_period: bool = False) -> pd.DataFrame:
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
        Time without a purchase, in ``time_unit``, that makes a customer a
        former customer (default as in :func:`lifecycle_stage`, per snapshot).
    time_unit : {"W", "D", "M"}
        Unit of ``lapsed_after``.
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
    # validated once (see the decorator); the contacts' stage entries are fetched once and
    # every snapshot compares them with its date (one RFM summary per snapshot)
    crm = load_crm(crm)
    crm.require("stage_events", "transactions")
    tx, events = crm.table("transactions"), crm.table("stage_events")
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
    contacts = _contacts_of(crm)
    labels = [*LIFECYCLE_STAGES[:8], "former customer", "(new)"]
    code_of = {s: i for i, s in enumerate(labels)}
    code_of["former customer, low priority"] = code_of["former customer"]
    parts = []
    previous = None
    for when in ends:
        snap = contacts.snapshot(tx, when + pd.Timedelta(hours=23, minutes=59, seconds=59),
                                 lapsed_after, time_unit)
        _evangelists(snap["stage"], snap["referrals"])
        # each row's stage as a code over every contact (-1: not on file yet)
        now = np.full(len(contacts.ids), -1)
        now[snap["rows"]] = [code_of[s] for s in snap["stage"]]
        if previous is not None:
            on_file = now >= 0
            before = np.where(previous[on_file] >= 0, previous[on_file], code_of["(new)"])
            pair, n = np.unique(before * len(labels) + now[on_file], return_counts=True)
            parts.append(pd.DataFrame({
                "from": np.array(labels, dtype=object)[pair // len(labels)],
                "to": np.array(labels, dtype=object)[pair % len(labels)],
                "contacts": n.astype("int64"), "period": when}))
        previous = now
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

"""A generative CRM with known ground truth: the demo data and the models' test bed.

:func:`simulate_crm` draws one company's CRM from an explicit generative story,
so that every crmstats model can be checked for recovering the truth that
produced the data, and the demo book has every canonical table.

The story
---------
1. **Channels and journeys.** Each contact arrives through a multi-touch
   journey of 1-8 touches that hops across channels (each next touch repeats
   the previous channel with probability 0.35, otherwise draws from the channel
   popularity). Touches cost a channel-specific cost per touch; monthly
   ``spend`` per channel is exactly the sum of its touch costs.
2. **Sales cycle.** Every contact is a *subscriber*; with probability 0.7 it
   becomes a *lead*; a lead is *qualified* with a logistic probability in its
   features (the true coefficients are in ``truth["qualification_coefficients"]``)
   or else *unqualified*; a qualified lead becomes an *opportunity* with
   probability 0.65; an opportunity is *won* with probability
   ``1 - (1 - base) * prod_c (1 - effect_c)`` over the distinct channels ``c``
   of its journey, else *lost*. Stage durations are Gamma distributed.
3. **Repeat buying.** A won contact is a customer; its first order is the
   conversion. Repeat orders follow BG/NBD [1]_: a purchase rate per week
   ``lambda ~ Gamma(r, alpha)`` and, after each repeat purchase, dropout with
   probability ``p ~ Beta(a, b)``. Order values follow Gamma-Gamma [2]_:
   ``nu ~ Gamma(q, gamma)``, each order ``~ Gamma(p, nu)``. The acquisition
   channel (the first touch) and the segment (key account or retail) shift the
   purchase rate, dropout and spend by known coefficients on the scale
   parameters (:mod:`crmstats.datasets.customer_effects`;
   ``truth["clv_coefficients"]``, ``truth["clv_baseline"]``). About 1 % of
   repeat orders are refunded later (a negative row); refunds are not purchases.
4. **Key accounts.** About a tenth of customers (more among large companies)
   are key accounts with monthly MRR per product category: expansion,
   contraction, cross-sell into new categories, and churn. Monthly churn is a
   discrete-time proportional-hazards sBG [3]_ [4]_: ``theta ~ Beta(alpha, beta)``
   and ``P(churn in month m) = 1 - (1 - theta) ** exp(b1 * tickets_3m + b2 * slow)``,
   where ``tickets_3m`` counts the account's service tickets in the three
   months before and ``slow`` is its standardised mean resolution time, so
   service problems truly raise the churn hazard. Churned accounts come back
   with probability 0.03 a month.
5. **Service tickets** arrive for every customer at a customer-specific
   Poisson rate, with Gamma resolution times; some are still open at the end.
6. **Contacts** carry realistic (invented) names, emails and phone numbers so
   tests can prove that the published book never shows them.
7. **Referrals.** A share ``truth["referral_share"]`` (0.6) of the contacts whose
   first touch is the ``referral`` channel record who referred them in
   ``contacts.referred_by``: a customer acquired before the contact was created,
   drawn with probability proportional to the customer's propensity to refer,
   ``w ~ Gamma(0.1, 1)``, so a few customers refer many; other contacts have a
   null ``referred_by``. Referrals come from a separate generator seeded
   ``[seed, 101]``, so every other table and truth value is the same as
   without them.
8. **Retargeting (confounding).** With ``confounding = c > 0``, each touch
   after the first is, with probability ``c``, *targeted*: it goes to a paid
   channel (paid search, social, display, affiliate; by popularity) with
   probability equal to the contact's buying-propensity percentile (its
   probability of qualifying, ranked), else to another channel. Paid exposure
   then follows who was going to buy anyway — the case in which models that
   read journeys over-credit paid channels [5]_.
9. **Holdout experiments.** With ``holdout_share = h > 0``, every journey whose
   planned touches include channel ``x`` is randomised, for each channel
   independently: with probability ``h`` it is in ``x``'s *holdout* and all its
   ``x`` touches are withheld (removed before anything else is decided), else
   in its *treatment* group. The assignment is the ``experiments`` table
   (``started_at`` = the contact's creation). A journey withheld from all of
   its channels has no touchpoints left (a conversion without a touch).
   Confounding and holdouts draw from their own generators (seeded
   ``[seed, 201]`` and ``[seed, 202]``), so the defaults (0) leave every table
   exactly as it is without them.
10. **Media** (``media_share = s > 0``). Weekly spend per channel follows a
    media plan (flights, always-on channels, a shared budget factor,
    seasonality) and brings contacts through known carry-over and
    saturation: a share ``s`` of contacts arrive through a channel's spend
    (their first touch is that channel), the rest on their own (level, trend,
    seasonality); touches are priced so that each channel's weekly spend is
    the plan's, and spend is daily (:mod:`crmstats.datasets.media`, its own
    generator ``[seed, 301]``). ``truth["media"]`` holds each channel's
    true ROAS and marginal ROAS in conversions per unit of spend, its weekly
    contributions, the curves and the optimal split of the mean weekly budget.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430.
.. [3] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
.. [4] Cox, D. R. (1972). Regression models and life-tables. Journal of the
   Royal Statistical Society B 34(2), 187-220.
.. [5] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.

Over 500 lines on purpose: :func:`simulate_crm` is one generative story whose
steps (contacts, journeys, sales cycle, repeat buying, key accounts, tickets,
truth) draw from one random stream in order, so the tables stay seeded and
comparable run to run; the parts with their own streams live apart
(:mod:`crmstats.datasets.media`, :mod:`crmstats.datasets.customer_effects`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.crmdata import CRMData
from crmstats.datasets._text import ids as _ids
from crmstats.datasets._text import join as _join
from crmstats.datasets._text import numbers as _numbers
from crmstats.datasets._text import sort_rows as _sorted
from crmstats.datasets._text import take as _take
from crmstats.datasets.customer_effects import BASELINE as CUSTOMER_BASELINE
from crmstats.datasets.customer_effects import (
    channel_parameters,
    customer_parameters,
    draw_segment,
    true_coefficients,
)
from crmstats.datasets.media import (
    apply_media_arrivals,
    demo_media_plan,
    demo_media_spend,
    demo_media_truth,
)

__all__ = ["CHANNELS", "simulate_crm"]

#: Channel names, in the order channels are taken for ``n_channels``.
CHANNELS = (
    "paid_search", "organic_search", "social", "email", "display",
    "referral", "events", "affiliate", "webinar", "partner",
)
_POPULARITY = np.array([0.22, 0.20, 0.15, 0.12, 0.10, 0.07, 0.05, 0.04, 0.03, 0.02])
#: Mean cost of one touch per channel. Set so that the demo's blended LTV:CAC is about 2.4
#: (12-month CLV), with channels from clearly profitable (email, organic search) to
#: loss-making (events) — a realistic mix for the channel-economics study.
_COST_PER_TOUCH = np.array([1.2, 0.3, 0.75, 0.09, 0.45, 0.6, 9.0, 0.9, 2.4, 3.6])
_EFFECT = np.array([0.10, 0.06, 0.04, 0.08, 0.02, 0.14, 0.20, 0.03, 0.12, 0.16])
_BASE_WIN = 0.25

INDUSTRIES = ("manufacturing", "software", "retail", "finance", "healthcare", "logistics")
SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
JOB_TITLES = ("analyst", "manager", "director", "executive", "engineer")
COUNTRIES = ("HU", "IR", "ES", "LT", "DE", "US")
CATEGORIES = ("software", "hardware", "services", "training", "support")
TICKET_CATEGORIES = ("billing", "technical", "delivery", "account", "other")
OWNERS = ("owner_01", "owner_02", "owner_03", "owner_04", "owner_05", "owner_06")

_NAMES = {
    "HU": (("Anna", "Bence", "Csilla", "Dániel", "Eszter", "Gábor", "Katalin", "Levente"),
           ("Kovács", "Nagy", "Szabó", "Tóth", "Horváth", "Varga", "Kiss", "Molnár")),
    "IR": (("Ali", "Maryam", "Reza", "Sara", "Hossein", "Zahra", "Mehdi", "Fatemeh"),
           ("Ahmadi", "Hosseini", "Karimi", "Rahimi", "Moradi", "Jafari", "Rezaei", "Kazemi")),
    "ES": (("Lucía", "Hugo", "Martina", "Pablo", "Sofía", "Javier", "Elena", "Diego"),
           ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz")),
    "LT": (("Jonas", "Eglė", "Lukas", "Rūta", "Mantas", "Ieva", "Tomas", "Greta"),
           ("Kazlauskas", "Jankauskas", "Petrauskas", "Stankevičius", "Vasiliauskas",
            "Žukauskas", "Butkus", "Paulauskas")),
    "DE": (("Lena", "Felix", "Mia", "Jonas", "Laura", "Paul", "Hannah", "Lukas"),
           ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker")),
    "US": (("Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Mia", "Ethan"),
           ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson")),
}
_DOMAINS = ("example-mail.com", "postbox.example", "inbox.example.org", "mail.example.net")

#: True log-odds of qualification; features are encoded as documented in
#: ``truth["qualification_encoding"]``. ``country`` has no effect.
_QUAL_COEF = {
    "intercept": -0.2,
    "engagement_score": 1.1,
    "company_size_code": 0.35,
    "industry[software]": 0.8,
    "industry[retail]": -0.7,
    "job_title[executive]": 0.6,
    "job_title[director]": 0.3,
    "country[US]": 0.0,
}
_SBG = {"alpha": 1.0, "beta": 7.0}
_HAZARD = {"tickets_last_3m": 0.25, "resolution_days_z": 0.35}
_P_LEAD, _P_OPPORTUNITY = 0.7, 0.65
_WEEK = np.timedelta64(7 * 86400, "s")


#: Accented letters of the simulated names and their plain e-mail spelling (built once: the
#: demo CRM spells 80,000 names).
_ASCII = str.maketrans({**dict(zip("áéíóöőúüűčėęįšųūžÁÉÍÓÖŐÚÜŰČĖĘĮŠŲŪŽä",
                                   "aeiooouuuceeisuuzAEIOOOUUUCEEISUUZa", strict=True)),
                        "ß": "ss"})


def _ascii(text: str) -> str:
    return text.translate(_ASCII)


#: Every simulated name by ``(country * 8 + given) * 8 + family`` (countries in the order of
#: :data:`COUNTRIES`), and the same name spelt for an e-mail address ("anna.kovacs").
_NAME_TABLE = (
    [f"{g} {f}" for c in COUNTRIES for g in _NAMES[c][0] for f in _NAMES[c][1]],
    [f"{_ascii(g).lower()}.{_ascii(f).lower()}"
     for c in COUNTRIES for g in _NAMES[c][0] for f in _NAMES[c][1]],
)


def _source_name(seed: int, sizes: dict) -> str:
    extra = ",".join(f"{k}={v}" for k, v in sizes.items())
    return f"demo:seed={seed}" + (f",{extra}" if extra else "")


def simulate_crm(
    seed: int = 1,
    *,
    n_contacts: int = 40_000,
    n_months: int = 24,
    start: str = "2024-01-01",
    n_channels: int = 8,
    key_account_share: float = 0.1,
    holdout_share: float = 0.0,
    confounding: float = 0.0,
    media_share: float = 0.0,
) -> CRMData:
    """Simulate a company's CRM with known ground truth.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; equal seeds give equal data.
    n_contacts : int
        Contacts (subscribers) arriving during the period.
    n_months : int
        Length of the observation period in months.
    start : str
        First day of the observation period.
    n_channels : int
        Marketing channels, 2-10 (taken from :data:`CHANNELS` in order).
    key_account_share : float
        Approximate share of customers that are key accounts.
    holdout_share : float
        Share of the journeys planned to touch each channel that are withheld
        from it at random (0 <= h < 1); fills ``experiments``. 0: no experiments.
    confounding : float
        0-1: share of later touches targeted at paid channels by the contact's
        own buying propensity (retargeting). 0: channels are drawn without
        regard to the contact.
    media_share : float
        0-1: share of contacts brought by weekly media spend through known
        carry-over and saturation (story item 10); spend is then daily and
        ``truth["media"]`` holds the media-mix truth. 0: contacts arrive
        evenly and spend is monthly, as before.

    Returns
    -------
    CRMData
        Every canonical table (``contacts``, ``touchpoints``, ``conversions``,
        ``stage_events``, ``spend``, ``customers``, ``transactions``,
        ``subscriptions``, ``tickets``) and ``truth``, a dict of the true
        parameters: ``channels``, ``observation_start``, ``observation_end``,
        ``time_unit_bgnbd`` ("W"), ``bgnbd`` and ``gamma_gamma`` (per channel, for
        retail customers), ``clv_coefficients`` and ``clv_baseline`` (the
        covariate model of repeat buying and spend, see
        :mod:`crmstats.datasets.customer_effects`),
        ``channel_effects``, ``attribution_shares`` (true incremental share of
        won deals per channel, by counterfactual removal of the channel from
        every journey; sums to 1), ``qualification_coefficients`` and
        ``qualification_encoding``, ``funnel_probabilities``, ``sbg``
        (baseline alpha, beta), ``churn_hazard_coefficients``,
        ``key_account_survival`` (true marginal survival by month of tenure,
        tickets included, and the baseline sBG curve), ``customer_truth``
        (per customer: lambda, p, alive_at_end, dropout_time, nu, mean_spend)
        and ``referral_share`` (share of referral-channel contacts with a
        recorded referrer); ``channel_lift`` (per channel: ``units`` = journeys
        planned to touch it, ``lift`` = true average increase of the in-window
        conversion probability of those journeys from touching the channel,
        ``base_rate`` = their conversion probability without it,
        ``relative_lift``, and ``incremental_conversions`` = the expected
        in-window conversions it adds over the journeys that did touch it);
        ``holdout_share`` and ``confounding``. ``experiments`` is present only
        when ``holdout_share > 0``.
    """
    if not 2 <= int(n_channels) <= len(CHANNELS):
        raise ValueError(f"n_channels must be between 2 and {len(CHANNELS)}, got {n_channels}")
    if int(n_contacts) < 50:
        raise ValueError(f"n_contacts must be at least 50, got {n_contacts}")
    if int(n_months) < 3:
        raise ValueError(f"n_months must be at least 3, got {n_months}")
    if not 0.0 <= float(holdout_share) < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {holdout_share}")
    if not 0.0 <= float(confounding) <= 1.0:
        raise ValueError(f"confounding must be in [0, 1], got {confounding}")
    if not 0.0 <= float(media_share) < 1.0:
        raise ValueError(f"media_share must be in [0, 1), got {media_share}")
    rng = np.random.default_rng(seed)
    n, k = int(n_contacts), int(n_channels)
    t0 = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")
    t_end = np.datetime64((pd.Timestamp(start) + pd.DateOffset(months=int(n_months))
                           - pd.Timedelta(seconds=1)).to_datetime64(), "s")
    horizon_s = int((t_end - t0) / np.timedelta64(1, "s"))
    channels = list(CHANNELS[:k])
    popularity = _POPULARITY[:k] / _POPULARITY[:k].sum()

    contacts, features = _contacts(rng, n, t0, horizon_s, k, popularity)
    media = None
    if media_share > 0:  # spend brings contacts (issue 24)
        media = demo_media_plan(seed, n, channels, popularity, t0, t_end, float(media_share))
        contacts = apply_media_arrivals(contacts, media)
    touch = _journeys(rng, contacts, k, popularity, channels)
    if confounding > 0:
        touch = _retarget(np.random.default_rng([seed, 201]), touch, contacts, features,
                          float(confounding), channels, popularity)
    plan = touch
    experiments = None
    if holdout_share > 0:
        touch, experiments = _withhold(np.random.default_rng([seed, 202]), plan,
                                       float(holdout_share), contacts, channels)
    stages, won, t_close = _sales_cycle(rng, contacts, features, touch, k, t_end)
    customers, tx, cust_truth = _repeat_buying(rng, contacts, stages, won, channels, t_end,
                                               key_account_share)
    tickets, ticket_stats = _tickets(rng, customers, t0, t_end, n_months)
    subs, survival = _subscriptions(rng, customers, ticket_stats, t0, n_months)

    # journeys end at conversion: drop touches after the won date or the end
    won_at = pd.Series(stages.loc[stages.stage == "won"].set_index("lead_id")["entered_at"])
    touch_df = touch["frame"]
    limit = touch_df["journey_id"].map(won_at).fillna(pd.Timestamp(t_end))
    touch_df = touch_df[touch_df["timestamp"] <= limit].reset_index(drop=True)
    if media is None:
        spend = (
            touch_df.assign(date=touch_df["timestamp"].dt.to_period("M").dt.to_timestamp())
            .groupby(["date", "channel"], as_index=False)["cost"].sum()
        )
        spend["cost"] = spend["cost"].round(2)
    else:
        touch_df, spend, weekly_spend = demo_media_spend(media, touch_df)
    first_orders = tx[tx["order_id"].isin(customers["first_order_id"])]
    conversions = pd.DataFrame({
        "journey_id": first_orders["customer_id"].to_numpy(),
        "timestamp": first_orders["timestamp"].to_numpy(),
        "value": first_orders["amount"].to_numpy(),
    }).sort_values("timestamp", kind="mergesort").reset_index(drop=True)

    truth = _truth(channels, t0, t_end, touch, features, contacts, survival, cust_truth)
    contacts = _referrals(seed, contacts, customers)
    truth["referral_share"] = _REFERRAL_SHARE
    truth["channel_lift"] = _true_lift(plan, touch, experiments, features, channels,
                                       t_close <= t_end)
    if media is not None:
        truth["media"] = demo_media_truth(
            media, weekly_spend, _P_LEAD * _P_OPPORTUNITY / (1.0 + np.exp(
                -_qualification_logit(features))) * _win_probability(touch["touched"], k),
            t_close)
    truth["holdout_share"] = float(holdout_share)
    truth["confounding"] = float(confounding)
    sizes = {name: value for name, value, default in (
        ("n_contacts", n, 40_000), ("n_months", int(n_months), 24), ("start", start, "2024-01-01"),
        ("n_channels", k, 8), ("key_account_share", key_account_share, 0.1),
        ("holdout_share", holdout_share, 0.0), ("confounding", confounding, 0.0),
        ("media_share", media_share, 0.0))
        if value != default}
    return CRMData(
        transactions=tx,
        customers=customers.drop(columns=["first_order_id"]).reset_index(drop=True),
        touchpoints=touch_df,
        conversions=conversions,
        stage_events=stages,
        spend=spend,
        subscriptions=subs,
        tickets=tickets,
        contacts=contacts.drop(columns=["channel_code"]),
        experiments=experiments,
        truth=truth,
        source=_source_name(seed, sizes),
    )


# ----------------------------------------------------------------------------- contacts

#: Share of referral-channel contacts whose referrer (an earlier customer) is recorded.
_REFERRAL_SHARE = 0.6
#: Gamma shape of the customers' propensity to refer (small: a few customers refer many).
_REFERRAL_SHAPE = 0.1


def _referrals(seed, contacts, customers):
    """Record who referred referral-channel contacts: a customer acquired before them.

    Each customer has a propensity to refer ``w ~ Gamma(0.1, 1)``; the referrer of
    a contact is drawn among the customers acquired before it with probability
    proportional to ``w``. Drawn from a separate generator seeded ``[seed, 101]``,
    so every other table and truth value is exactly what it was without referrals.
    """
    side = np.random.default_rng([seed, 101])
    out = contacts.copy()
    out["referred_by"] = pd.Series(pd.NA, index=out.index, dtype="string")
    acquired = customers.sort_values("acquired_at", kind="mergesort")
    times = acquired["acquired_at"].to_numpy()
    ids = acquired["customer_id"].to_numpy()
    weight = np.cumsum(side.gamma(_REFERRAL_SHAPE, 1.0, len(ids)))
    recorded = side.random(len(out)) < _REFERRAL_SHARE
    referral = (out["channel"] == "referral").to_numpy() & recorded
    before = np.searchsorted(times, out["created_at"].to_numpy(), side="left")
    rows = np.flatnonzero(referral & (before > 0))
    u = side.random(len(rows)) * weight[before[rows] - 1]
    picks = np.minimum(np.searchsorted(weight, u, side="right"), before[rows] - 1)
    out.loc[out.index[rows], "referred_by"] = ids[picks]
    return out


def _contacts(rng, n, t0, horizon_s, k, popularity):
    created = t0 + rng.integers(0, horizon_s, n).astype("timedelta64[s]")
    created = np.sort(created)
    country = rng.choice(len(COUNTRIES), n, p=[0.2, 0.15, 0.2, 0.15, 0.15, 0.15])
    industry = rng.choice(len(INDUSTRIES), n, p=[0.25, 0.2, 0.15, 0.15, 0.15, 0.1])
    size = rng.choice(len(SIZES), n, p=[0.3, 0.3, 0.2, 0.13, 0.07])
    title = rng.choice(len(JOB_TITLES), n, p=[0.3, 0.3, 0.15, 0.1, 0.15])
    engagement = rng.normal(0.0, 1.0, n)
    first_channel = rng.choice(k, n, p=popularity)
    first = rng.integers(0, 8, n)
    last = rng.integers(0, 8, n)
    domains = rng.integers(0, len(_DOMAINS), n)
    # every (country, given, family) name and its e-mail spelling, then one lookup per row
    combo = (country * 8 + first) * 8 + last
    names = _take(_NAME_TABLE[0], combo)
    emails = _join(_take(_NAME_TABLE[1], combo), _numbers(np.arange(1, n + 1)), "@",
                   _take(_DOMAINS, domains))
    d, p = rng.integers(10, 99, n), rng.integers(0, 10_000_000, n)
    phones = _join("+", _numbers(d, 2), " ", _numbers(p // 10000, 3), " ",
                   _numbers(p % 10000, 4))
    contacts = pd.DataFrame({
        "contact_id": _ids("C", n, 6),
        "created_at": pd.to_datetime(created),
        "name": names,
        "email": emails,
        "phone": phones,
        "industry": _take(INDUSTRIES, industry),
        "company_size": _take(SIZES, size),
        "country": _take(COUNTRIES, country),
        "job_title": _take(JOB_TITLES, title),
        "engagement_score": np.round(engagement * 15 + 50, 1),
        "channel": _take(CHANNELS, first_channel),
        "channel_code": first_channel,
    })
    features = {"engagement": engagement, "size": size, "industry": industry, "title": title,
                "country": country}
    return contacts, features


def _journeys(rng, contacts, k, popularity, channels):
    n = len(contacts)
    n_touch = np.minimum(1 + rng.poisson(1.8, n), 8)
    total = int(n_touch.sum())
    owner = np.repeat(np.arange(n), n_touch)
    pos = np.arange(total) - np.repeat(np.cumsum(n_touch) - n_touch, n_touch)
    fresh = rng.choice(k, total, p=popularity)
    repeat = rng.random(total) < 0.35
    chan = np.empty(total, dtype=np.int64)
    # walk positions in order: a touch repeats its predecessor or draws afresh
    starts = np.cumsum(n_touch) - n_touch
    chan[starts] = contacts["channel_code"].to_numpy()
    for p in range(1, 8):
        idx = np.flatnonzero(pos == p)
        chan[idx] = np.where(repeat[idx], chan[idx - 1], fresh[idx])
    gaps = rng.exponential(4.0 * 86400, total)
    gaps[starts] = 0.0
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[starts], n_touch)
    created = contacts["created_at"].to_numpy().astype("datetime64[s]")
    ts = created[owner] + offset.astype("timedelta64[s]")
    noise = rng.lognormal(0.0, 0.25, total)
    cost = _COST_PER_TOUCH[chan] * noise
    frame = pd.DataFrame({
        "journey_id": _take(contacts["contact_id"].array, owner),
        "timestamp": pd.to_datetime(ts),
        "channel": _take(channels, chan),
        "cost": np.round(cost, 2),
    })
    touched = np.zeros((n, k), dtype=bool)
    touched[owner, chan] = True
    last_touch = pd.Series(ts).groupby(owner).max().to_numpy()
    return {"frame": frame, "touched": touched, "last_touch": last_touch, "codes": chan,
            "owner": owner, "noise": noise, "ts": ts, "n": n, "channels": channels}


def _touch_dict(codes, owner, noise, ts, n, channels, journey_ids, created):
    """Build the journey dict of :func:`_journeys` for edited touches (codes, owners, times)."""
    k = len(channels)
    frame = pd.DataFrame({
        "journey_id": _take(journey_ids, owner),
        "timestamp": pd.to_datetime(ts),
        "channel": _take(channels, codes),
        "cost": np.round(_COST_PER_TOUCH[codes] * noise, 2),
    })
    touched = np.zeros((n, k), dtype=bool)
    touched[owner, codes] = True
    # a journey left without touches "ends" when it starts
    last_touch = created.copy()
    if len(ts):
        latest = pd.Series(ts).groupby(owner).max()
        last_touch[latest.index.to_numpy()] = latest.to_numpy()
    return {"frame": frame, "touched": touched, "last_touch": last_touch, "codes": codes,
            "owner": owner, "noise": noise, "ts": ts, "n": n, "channels": channels}


#: Channels bought per impression, which retargeting (``confounding``) steers.
PAID_CHANNELS = ("paid_search", "social", "display", "affiliate")


def _propensity_rank(f) -> np.ndarray:
    """Each contact's percentile (0-1) of the probability of qualifying: its buying propensity."""
    x = _qualification_logit(f)
    return (np.argsort(np.argsort(x, kind="mergesort"), kind="mergesort") + 0.5) / len(x)


def _retarget(side, touch, contacts, f, confounding, channels, popularity):
    """Send a share of later touches to paid channels by the contact's buying propensity."""
    codes = touch["codes"].copy()
    owner = touch["owner"]
    paid = np.array([c in PAID_CHANNELS for c in channels])
    if not paid.any() or paid.all():
        return touch
    first = np.r_[True, owner[1:] != owner[:-1]]
    targeted = ~first & (side.random(len(codes)) < confounding)
    u = _propensity_rank(f)[owner]
    to_paid = side.random(len(codes)) < u
    p_paid = np.where(paid, popularity, 0.0) / popularity[paid].sum()
    p_other = np.where(~paid, popularity, 0.0) / popularity[~paid].sum()
    draw_paid = side.choice(len(channels), len(codes), p=p_paid)
    draw_other = side.choice(len(channels), len(codes), p=p_other)
    codes[targeted] = np.where(to_paid, draw_paid, draw_other)[targeted]
    ids = contacts["contact_id"].array
    created = touch["ts"][first]  # every planned journey has a first touch; owners are sorted
    return _touch_dict(codes, owner, touch["noise"], touch["ts"], touch["n"], channels,
                       ids, created)


def _withhold(side, plan, holdout_share, contacts, channels):
    """Randomise each channel's planned journeys into treatment / holdout; drop withheld touches."""
    n, k = plan["touched"].shape
    holdout = plan["touched"] & (side.random((n, k)) < holdout_share)
    keep = ~holdout[plan["owner"], plan["codes"]]
    ids = contacts["contact_id"].array
    created = contacts["created_at"].to_numpy().astype("datetime64[s]")
    touch = _touch_dict(plan["codes"][keep], plan["owner"][keep], plan["noise"][keep],
                        plan["ts"][keep], n, channels, ids, created)
    unit, chan = np.nonzero(plan["touched"])
    experiments = pd.DataFrame({
        "journey_id": _take(ids, unit),
        "channel": _take(channels, chan),
        "group": _take(("treatment", "holdout"), holdout[unit, chan].astype(np.int64)),
        "started_at": pd.to_datetime(created[unit]),
    })
    return touch, experiments


def _win_probability(touched, k):
    effects = _EFFECT[:k]
    miss = np.prod(np.where(touched, 1.0 - effects[None, :], 1.0), axis=1)
    return 1.0 - (1.0 - _BASE_WIN) * miss


def _qualification_logit(f):
    x = (
        _QUAL_COEF["intercept"]
        + _QUAL_COEF["engagement_score"] * f["engagement"]
        + _QUAL_COEF["company_size_code"] * f["size"]
        + _QUAL_COEF["industry[software]"] * (f["industry"] == INDUSTRIES.index("software"))
        + _QUAL_COEF["industry[retail]"] * (f["industry"] == INDUSTRIES.index("retail"))
        + _QUAL_COEF["job_title[executive]"] * (f["title"] == JOB_TITLES.index("executive"))
        + _QUAL_COEF["job_title[director]"] * (f["title"] == JOB_TITLES.index("director"))
        + _QUAL_COEF["country[US]"] * (f["country"] == COUNTRIES.index("US"))
    )
    return x


def _sales_cycle(rng, contacts, f, touch, k, t_end):
    n = len(contacts)
    is_lead = rng.random(n) < _P_LEAD
    p_qual = 1.0 / (1.0 + np.exp(-_qualification_logit(f)))
    qualified = is_lead & (rng.random(n) < p_qual)
    opportunity = qualified & (rng.random(n) < _P_OPPORTUNITY)
    won = opportunity & (rng.random(n) < _win_probability(touch["touched"], k))
    day = 86400.0
    created = contacts["created_at"].to_numpy().astype("datetime64[s]")
    t_lead = created + (rng.gamma(2.0, 3.0, n) * day).astype("timedelta64[s]")
    t_qual = t_lead + (rng.gamma(2.0, 4.0, n) * day).astype("timedelta64[s]")
    t_opp = t_qual + (rng.gamma(2.0, 7.0, n) * day).astype("timedelta64[s]")
    t_close = t_opp + (rng.gamma(3.0, 8.0, n) * day).astype("timedelta64[s]")
    # a deal closes after the journey's last touch
    t_close = np.maximum(t_close, touch["last_touch"].astype("datetime64[s]")
                         + np.timedelta64(3600, "s"))
    ids = contacts["contact_id"].array
    channel = contacts["channel"].array
    owner = _take(OWNERS, rng.integers(0, len(OWNERS), n))
    parts = [("subscriber", np.ones(n, bool), created),
             ("lead", is_lead, t_lead),
             ("unqualified", is_lead & ~qualified, t_qual),
             ("qualified", qualified, t_qual),
             ("opportunity", opportunity, t_opp),
             ("lost", opportunity & ~won, t_close),
             ("won", won, t_close)]
    frames = []
    for name, mask, when in parts:
        keep = np.flatnonzero(mask & (when <= t_end))
        frames.append(pd.DataFrame({
            "lead_id": ids.take(keep), "stage": name, "entered_at": pd.to_datetime(when[keep]),
            "channel": channel.take(keep), "owner": owner.take(keep),
        }))
    stages = _sorted(pd.concat(frames, ignore_index=True), ["entered_at", "lead_id"])
    won_in_window = won & (t_close <= t_end)
    return stages, won_in_window, t_close


# ----------------------------------------------------------------------------- customers


def _repeat_buying(rng, contacts, stages, won, channels, t_end, key_account_share):
    cust = contacts.loc[won].reset_index(drop=True)
    m = len(cust)
    won_at = stages[stages.stage == "won"].set_index("lead_id")["entered_at"]
    acquired = won_at.loc[cust["contact_id"]].to_numpy().astype("datetime64[s]")
    # who the customer is (channel, segment) sets its parameters: customer_effects; the
    # segment comes from a stream of its own (a jump of rng's), which it leaves untouched
    segment = draw_segment(np.random.Generator(rng.bit_generator.jumped(2)),
                           cust["company_size"].to_numpy(), key_account_share)
    par = customer_parameters(cust["channel"].to_numpy(), segment, channels)
    r, alpha, a, b = (par[k] for k in ("r", "alpha", "a", "b"))
    p_gg, q_gg, v_gg = (par[k] for k in ("p", "q", "v"))
    lam = rng.gamma(r, 1.0 / alpha)  # purchases per week
    drop = rng.beta(a, b)
    nu = rng.gamma(q_gg, 1.0 / v_gg)
    weeks = (t_end - acquired) / _WEEK
    n_window = np.minimum(rng.poisson(lam * weeks), 400)
    j_drop = rng.geometric(drop)  # repeat purchase after which the customer leaves
    x = np.minimum(n_window, j_drop)
    alive = j_drop > n_window
    # the n_window Poisson event times are sorted uniforms on (0, weeks); keep the first x
    owner = np.repeat(np.arange(m), n_window)
    u = rng.random(int(n_window.sum())) * np.repeat(weeks, n_window)
    order = np.lexsort((u, owner))
    u, owner = u[order], owner[order]
    rank = np.arange(len(u)) - np.repeat(np.cumsum(n_window) - n_window, n_window)
    keep = rank < np.repeat(x, n_window)
    rep_owner, rep_weeks = owner[keep], u[keep]
    dropout_time = np.full(m, np.nan)
    dropped = ~alive
    last_idx = np.cumsum(x) - 1
    dropout_time[dropped] = rep_weeks[last_idx[dropped]]
    buyer = np.concatenate([np.arange(m), rep_owner])
    when = np.concatenate([acquired, acquired[rep_owner]
                           + (rep_weeks * 7 * 86400).astype("timedelta64[s]")])
    amount = rng.gamma(p_gg[buyer], 1.0 / nu[buyer])
    n_orders = len(buyer)
    pref = rng.dirichlet(np.ones(len(CATEGORIES)) * 0.7, m)
    cum = pref.cumsum(axis=1)
    cat = (rng.random(n_orders)[:, None] > cum[buyer]).sum(axis=1).clip(0, len(CATEGORIES) - 1)
    order_ids = _ids("O", n_orders, 7)
    tx = pd.DataFrame({
        "customer_id": _take(cust["contact_id"].array, buyer),
        "timestamp": pd.to_datetime(when),
        "amount": np.round(amount, 2),
        "order_id": order_ids,
        "product_category": _take(CATEGORIES, cat),
        "quantity": 1 + rng.poisson(0.4, n_orders),
    })
    # about 1 % of repeat orders are refunded 3-20 days later (when still in the window)
    repeat_rows = np.arange(m, n_orders)
    refunded = repeat_rows[rng.random(len(repeat_rows)) < 0.01]
    refund_at = when[refunded] + (rng.uniform(3, 20, len(refunded)) * 86400).astype(
        "timedelta64[s]")
    ok = refund_at <= t_end
    refunds = pd.DataFrame({
        "customer_id": tx["customer_id"].array.take(refunded[ok]),
        "timestamp": pd.to_datetime(refund_at[ok]),
        "amount": -tx["amount"].to_numpy()[refunded[ok]],
        "order_id": _join(_take(order_ids, refunded[ok]), "-R"),
        "product_category": tx["product_category"].array.take(refunded[ok]),
        "quantity": tx["quantity"].to_numpy()[refunded[ok]],
    })
    tx = pd.concat([tx, refunds], ignore_index=True)
    tx = _sorted(tx, ["timestamp", "order_id"])
    customers = pd.DataFrame({
        "customer_id": cust["contact_id"].to_numpy(),
        "acquired_at": pd.to_datetime(acquired),
        "acquisition_channel": cust["channel"].to_numpy(),
        "segment": segment,
        "industry": cust["industry"].to_numpy(),
        "company_size": cust["company_size"].to_numpy(),
        "country": cust["country"].to_numpy(),
        "first_order_id": order_ids[:m],
    })
    truth = pd.DataFrame({
        "customer_id": customers["customer_id"], "acquisition_channel": customers[
            "acquisition_channel"], "lambda": lam, "p": drop, "repeat_purchases": x,
        "alive_at_end": alive, "dropout_time": dropout_time, "nu": nu,
        "mean_spend": p_gg * nu ** -1.0,
    }).set_index("customer_id")
    return customers, tx, truth


def _tickets(rng, customers, t0, t_end, n_months):
    m = len(customers)
    key = (customers["segment"] == "key_account").to_numpy()
    rate = rng.gamma(2.0, np.where(key, 0.35, 0.05) / 2.0)  # tickets per month
    mean_days = rng.lognormal(np.log(2.0), 0.6, m)
    acquired = customers["acquired_at"].to_numpy().astype("datetime64[s]")
    months = (t_end - acquired) / np.timedelta64(int(30.4375 * 86400), "s")
    count = rng.poisson(rate * np.clip(months, 0, None))
    owner = np.repeat(np.arange(m), count)
    span = (t_end - acquired)[owner] / np.timedelta64(1, "s")
    opened = acquired[owner] + (rng.random(len(owner)) * span).astype("timedelta64[s]")
    resolve_days = rng.gamma(2.0, mean_days[owner] / 2.0)
    resolved = opened + (resolve_days * 86400).astype("timedelta64[s]")
    resolved_col = pd.to_datetime(resolved).where(resolved <= t_end)
    tickets = pd.DataFrame({
        "ticket_id": _ids("T", len(owner), 7),
        "customer_id": customers["customer_id"].array.take(owner),
        "opened_at": pd.to_datetime(opened),
        "resolved_at": resolved_col,
        "category": _take(TICKET_CATEGORIES, rng.integers(0, len(TICKET_CATEGORIES),
                                                          len(owner))),
    })
    tickets = _sorted(tickets, ["opened_at", "ticket_id"])
    month_idx = ((pd.to_datetime(opened).year - pd.Timestamp(t0).year) * 12
                 + pd.to_datetime(opened).month - pd.Timestamp(t0).month).to_numpy()
    per_month = np.zeros((m, int(n_months)), dtype=np.int64)
    np.add.at(per_month, (owner, np.clip(month_idx, 0, int(n_months) - 1)), 1)
    z = (np.log(mean_days) - np.log(2.0)) / 0.6  # standardised (log-normal) slowness
    return tickets, {"per_month": per_month, "resolution_z": z, "rate": rate}


def _subscriptions(rng, customers, stats, t0, n_months):
    key_idx = np.flatnonzero((customers["segment"] == "key_account").to_numpy())
    acq = customers["acquired_at"].to_numpy()[key_idx]
    start_month = ((pd.to_datetime(acq).year - pd.Timestamp(t0).year) * 12
                   + pd.to_datetime(acq).month - pd.Timestamp(t0).month).to_numpy()
    na, nc = len(key_idx), len(CATEGORIES)
    theta = rng.beta(_SBG["alpha"], _SBG["beta"], na)
    tickets = stats["per_month"][key_idx]
    z = stats["resolution_z"][key_idx]
    mrr = np.zeros((na, nc))
    base_cat = rng.integers(0, nc, na)
    base_mrr = rng.lognormal(np.log(1200.0), 0.5, na)
    active = np.zeros(na, dtype=bool)
    churned = np.zeros(na, dtype=bool)
    rows = []
    months = pd.date_range(pd.Timestamp(t0), periods=int(n_months), freq="MS")
    for mth in range(int(n_months)):
        starting = start_month == mth
        mrr[starting, base_cat[starting]] = base_mrr[starting]
        active |= starting
        tenure_ok = active & (start_month < mth)
        # churn at the start of the month, hazard raised by recent tickets and slow service
        last3 = tickets[:, max(0, mth - 3):mth].sum(axis=1)
        eta = _HAZARD["tickets_last_3m"] * last3 + _HAZARD["resolution_days_z"] * z
        p_churn = 1.0 - (1.0 - theta) ** np.exp(eta)
        leaving = tenure_ok & (rng.random(na) < p_churn)
        active &= ~leaving
        churned |= leaving
        # accounts that left in an earlier month may return (one leaving now cannot)
        back = churned & ~active & ~leaving & (rng.random(na) < 0.03)
        if back.any():
            restart = rng.lognormal(np.log(1000.0), 0.5, back.sum())
            mrr[back] = 0.0
            mrr[back, base_cat[back]] = restart
            active |= back
            churned &= ~back
        # expansion, contraction and cross-sell of accounts that stay
        stay = tenure_ok & active
        u = rng.random(na)
        grow = stay & (u < 0.08)
        shrink = stay & (u >= 0.08) & (u < 0.13)
        mrr[grow] *= rng.uniform(1.1, 1.5, grow.sum())[:, None]
        mrr[shrink] *= rng.uniform(0.6, 0.95, shrink.sum())[:, None]
        cross = stay & (rng.random(na) < 0.05)
        for i in np.flatnonzero(cross):
            free = np.flatnonzero(mrr[i] == 0)
            if len(free):
                mrr[i, rng.choice(free)] = 0.3 * mrr[i].max()
        acc, cat = np.nonzero(mrr * active[:, None] > 0)
        rows.append(pd.DataFrame({
            "account_id": customers["customer_id"].to_numpy()[key_idx][acc].astype(str),
            "month": months[mth],
            "mrr": np.round(mrr[acc, cat], 2),
            "product_category": np.array(CATEGORIES)[cat],
        }))
    subs = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["account_id", "month", "mrr", "product_category"])
    survival = _true_survival(rng, stats, int(n_months))
    return subs, survival


def _true_survival(rng, stats, n_months, n_draws=20_000):
    """Monte-Carlo marginal survival by tenure month of a fresh key account, tickets included."""
    theta = rng.beta(_SBG["alpha"], _SBG["beta"], n_draws)
    rate = rng.gamma(2.0, 0.35 / 2.0, n_draws)
    z = rng.normal(0.0, 1.0, n_draws)
    tickets = rng.poisson(rate[:, None] * np.ones((1, n_months)))
    # an account is acquired part-way through its first month, so that month's ticket
    # exposure is a uniform fraction of a month (drawn from a jumped copy of the stream,
    # which leaves ``rng`` — and so every table — exactly as before)
    side = np.random.Generator(rng.bit_generator.jumped())
    tickets[:, 0] = side.poisson(rate * side.random(n_draws))
    alive = np.ones(n_draws, dtype=bool)
    surv = [1.0]
    for m in range(1, n_months):
        last3 = tickets[:, max(0, m - 3):m].sum(axis=1)
        eta = _HAZARD["tickets_last_3m"] * last3 + _HAZARD["resolution_days_z"] * z
        alive &= rng.random(n_draws) >= 1.0 - (1.0 - theta) ** np.exp(eta)
        surv.append(alive.mean())
    t = np.arange(n_months)
    from scipy.special import betaln

    baseline = np.exp(betaln(_SBG["alpha"], _SBG["beta"] + t) - betaln(_SBG["alpha"], _SBG["beta"]))
    return pd.DataFrame({"survival": surv, "baseline_sbg": baseline},
                        index=pd.Index(t, name="tenure_months"))


# ----------------------------------------------------------------------------- truth


def _true_lift(plan, touch, experiments, f, channels, in_window):
    """Each channel's true lift on the journeys planned to touch it (in-window conversions)."""
    k = len(channels)
    reach = (_P_LEAD * _P_OPPORTUNITY / (1.0 + np.exp(-_qualification_logit(f)))) * in_window
    rows = []
    for c in range(k):
        units = plan["touched"][:, c]
        with_c = plan["touched"][units].copy()
        with_c[:, c] = True
        without = with_c.copy()
        without[:, c] = False
        p_with = reach[units] * _win_probability(with_c, k)
        p_without = reach[units] * _win_probability(without, k)
        done = touch["touched"][:, c]
        done_with = touch["touched"][done]
        done_without = done_with.copy()
        done_without[:, c] = False
        inc = np.sum(reach[done] * (_win_probability(done_with, k)
                                    - _win_probability(done_without, k)))
        lift = float(np.mean(p_with - p_without)) if units.any() else np.nan
        base = float(np.mean(p_without)) if units.any() else np.nan
        rows.append({"units": int(units.sum()), "lift": lift, "base_rate": base,
                     "relative_lift": lift / base if base and base > 0 else np.nan,
                     "incremental_conversions": float(inc)})
    out = pd.DataFrame(rows, index=pd.Index(channels, name="channel"))
    return out


def _truth(channels, t0, t_end, touch, f, contacts, survival, cust_truth):
    k = len(channels)
    touched = touch["touched"]
    reach = _P_LEAD * _P_OPPORTUNITY / (1.0 + np.exp(-_qualification_logit(f)))
    p_all = _win_probability(touched, k)
    lift = np.empty(k)
    for c in range(k):
        without = touched.copy()
        without[:, c] = False
        lift[c] = np.sum(reach * (p_all - _win_probability(without, k)))
    shares = pd.Series(lift / lift.sum(), index=channels, name="share")
    per_channel = channel_parameters(channels)  # retail customers (the reference segment)
    bgnbd = per_channel[["r", "alpha", "a", "b"]].rename_axis(None)
    gg = per_channel[["p", "q", "v"]].rename_axis(None)
    return {
        "channels": channels,
        "observation_start": pd.Timestamp(t0),
        "observation_end": pd.Timestamp(t_end),
        "time_unit_bgnbd": "W",
        "bgnbd": bgnbd,
        "gamma_gamma": gg,
        "channel_effects": pd.Series(_EFFECT[:k], index=channels, name="effect"),
        "base_win_probability": _BASE_WIN,
        "attribution_shares": shares,
        "qualification_coefficients": pd.Series(_QUAL_COEF, name="log_odds"),
        "qualification_encoding": {
            "engagement_score": "(engagement_score - 50) / 15",
            "company_size_code": f"index in {SIZES}",
            "industry[...]": "indicator; baseline manufacturing",
            "job_title[...]": "indicator; baseline analyst",
            "country[US]": "indicator; no true effect",
        },
        "funnel_probabilities": {"lead": _P_LEAD, "opportunity": _P_OPPORTUNITY},
        "sbg": dict(_SBG),
        "churn_hazard_coefficients": pd.Series(_HAZARD, name="log_hazard_ratio"),
        "key_account_survival": survival,
        "customer_truth": cust_truth,
        "clv_coefficients": true_coefficients(channels),
        "clv_baseline": dict(CUSTOMER_BASELINE),
    }

"""The simulated CRM: deterministic, canonical, consistent, and its truth is recoverable."""

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import CRMData
from crmstats.clv import rfm_summary
from crmstats.datasets import simulate_crm
from crmstats.schema import SALES_STAGES


@pytest.fixture(scope="module")
def crm():
    return simulate_crm(seed=5, n_contacts=6000)


def test_same_seed_same_data_other_seed_other_data():
    a, b = simulate_crm(seed=1, n_contacts=3000), simulate_crm(seed=1, n_contacts=3000)
    assert set(a.tables()) == set(b.tables())
    for name in a.tables():
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = simulate_crm(seed=2, n_contacts=3000)
    assert not a.transactions["amount"].equals(c.transactions["amount"])
    assert a.source == "demo:seed=1,n_contacts=3000"


def test_default_demo_size():
    crm = simulate_crm(seed=1)
    assert crm.source == "demo:seed=1"
    assert len(crm.contacts) == 40_000
    assert 2_000 < len(crm.customers) < 6_000
    assert len(crm.transactions) > 2 * len(crm.customers)


def test_every_table_is_present_and_valid(crm):
    # experiments only when the simulation withholds channels (holdout_share > 0); deals are
    # the one-row-per-opportunity shape of an export: the demo records the stage history
    # (stage_events) instead, which funnel.pipeline reads the same way
    assert set(crm.tables()) == set(CRMData.table_names()) - {"experiments", "deals"}
    for name, table in crm.tables().items():
        out = crmstats.validate(table, name)
        assert len(out) == len(table)


def test_ids_are_consistent_across_tables(crm):
    customers = set(crm.customers["customer_id"])
    assert set(crm.transactions["customer_id"]) == customers
    assert set(crm.conversions["journey_id"]) == customers
    assert set(crm.stage_events.loc[crm.stage_events.stage == "won", "lead_id"]) == customers
    assert set(crm.touchpoints["journey_id"]) <= set(crm.contacts["contact_id"])
    assert set(crm.conversions["journey_id"]) <= set(crm.touchpoints["journey_id"])
    key = set(crm.customers.loc[crm.customers.segment == "key_account", "customer_id"])
    assert set(crm.subscriptions["account_id"]) <= key
    assert set(crm.tickets["customer_id"]) <= customers


def test_journeys_end_before_conversion(crm):
    last_touch = crm.touchpoints.groupby("journey_id")["timestamp"].max()
    conv = crm.conversions.set_index("journey_id")["timestamp"]
    assert (last_touch.reindex(conv.index) <= conv).all()
    first_order = crm.transactions.groupby("customer_id")["timestamp"].min()
    assert (first_order.reindex(conv.index) == conv).all()


def test_spend_reconciles_with_touch_costs(crm):
    tp = crm.touchpoints
    month = tp["timestamp"].dt.to_period("M").dt.to_timestamp()
    by_touch = tp.groupby([month, "channel"])["cost"].sum()
    spend = crm.spend.set_index(["date", "channel"])["cost"]
    np.testing.assert_allclose(spend.sort_index().to_numpy(),
                               by_touch.sort_index().round(2).to_numpy(), atol=0.01)


def test_stage_order_per_lead(crm):
    ev = crm.stage_events
    order = {s: i for i, s in enumerate(SALES_STAGES)}
    ev = ev.assign(rank=ev["stage"].map(order)).sort_values(["lead_id", "rank"])
    # entering a later stage never happens before an earlier one
    diffs = ev.groupby("lead_id")["entered_at"].diff().dropna()
    assert (diffs >= pd.Timedelta(0)).all()
    stages = set(ev["stage"])
    assert stages == set(SALES_STAGES)
    both = ev.groupby("lead_id")["stage"].agg(set)
    assert not any({"won", "lost"} <= s for s in both)
    assert not any({"qualified", "unqualified"} <= s for s in both)


def test_truth_record(crm):
    truth = crm.truth
    shares = truth["attribution_shares"]
    assert shares.sum() == pytest.approx(1.0)
    assert (shares > 0).all()
    assert list(shares.index) == truth["channels"]
    assert set(truth["bgnbd"].columns) == {"r", "alpha", "a", "b"}
    ct = truth["customer_truth"]
    assert set(ct.index) == set(crm.customers["customer_id"])
    surv = truth["key_account_survival"]
    assert surv["survival"].iloc[0] == 1.0
    assert surv["survival"].is_monotonic_decreasing
    # tickets raise the hazard, so the marginal survival lies below the baseline sBG curve
    assert (surv["survival"].iloc[3:] < surv["baseline_sbg"].iloc[3:]).all()


def test_refunds_exist_and_reference_orders(crm):
    refunds = crm.transactions[crm.transactions["amount"] < 0]
    assert len(refunds) > 0
    originals = refunds["order_id"].str.removesuffix("-R")
    assert originals.isin(crm.transactions["order_id"]).all()


def test_bgnbd_truth_is_recovered_by_lifetimes():
    """An independent fitter recovers the simulator's BG/NBD parameters for one channel."""
    from lifetimes import BetaGeoFitter

    big = simulate_crm(seed=11, n_contacts=80_000)
    summary = rfm_summary(big.transactions, time_unit="W",
                          observation_end=big.truth["observation_end"])
    cust = big.customers.set_index("customer_id").reindex(summary.index)
    # the truth per channel is the retail segment's (key accounts buy, stay, spend more)
    s = summary[(cust["acquisition_channel"] == "paid_search") & (cust["segment"] == "retail")]
    fit = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    truth = big.truth["bgnbd"].loc["paid_search"]
    se = fit.summary["se(coef)"]
    for name in ["r", "alpha", "a", "b"]:
        assert abs(fit.params_[name] - truth[name]) < 3 * se[name], name


def test_qualification_drivers_recovered_by_logit():
    import statsmodels.api as sm

    big = simulate_crm(seed=12, n_contacts=30_000)
    leads = big.stage_events[big.stage_events.stage == "lead"]["lead_id"]
    qual = set(big.stage_events.loc[big.stage_events.stage == "qualified", "lead_id"])
    unq = set(big.stage_events.loc[big.stage_events.stage == "unqualified", "lead_id"])
    c = big.contacts.set_index("contact_id").loc[list(qual | unq)]
    assert set(leads) >= set(c.index)
    X = pd.DataFrame({
        "engagement_score": (c["engagement_score"] - 50) / 15,
        "company_size_code": c["company_size"].map(
            {s: i for i, s in enumerate(["1-10", "11-50", "51-200", "201-1000", "1000+"])}),
        "industry[software]": (c["industry"] == "software").astype(float),
        "industry[retail]": (c["industry"] == "retail").astype(float),
        "job_title[executive]": (c["job_title"] == "executive").astype(float),
        "job_title[director]": (c["job_title"] == "director").astype(float),
        "country[US]": (c["country"] == "US").astype(float),
    })
    y = c.index.isin(list(qual)).astype(float)
    fit = sm.Logit(y, sm.add_constant(X.astype(float))).fit(disp=0)
    truth = big.truth["qualification_coefficients"]
    for name in X.columns:
        lo, hi = fit.conf_int().loc[name]
        # engagement is rounded to 0.1 in the contact table; its slope is attenuated very slightly
        assert lo - 0.05 <= truth[name] <= hi + 0.05, name
    assert fit.pvalues["country[US]"] > 0.001  # the zero-effect feature is not strongly significant
    assert fit.params["industry[retail]"] < 0 < fit.params["industry[software]"]


def test_tickets_raise_key_account_churn():
    big = simulate_crm(seed=13, n_contacts=60_000)
    subs = big.subscriptions
    months = sorted(subs["month"].unique())
    active = subs.groupby("month")["account_id"].agg(set)
    tickets = big.tickets.assign(month=big.tickets.opened_at.dt.to_period("M").dt.to_timestamp())
    per = tickets.groupby(["customer_id", "month"]).size()
    rows = []
    for prev, cur in zip(months[3:-1], months[4:], strict=True):
        window = [m for m in months if prev - pd.DateOffset(months=3) < m <= prev]
        for acc in active[prev]:
            n = sum(per.get((acc, m), 0) for m in window)
            rows.append((n, acc not in active[cur]))
    frame = pd.DataFrame(rows, columns=["tickets", "churned"])
    calm = frame.loc[frame.tickets == 0, "churned"].mean()
    busy = frame.loc[frame.tickets >= 2, "churned"].mean()
    assert busy > calm


def test_contacts_carry_personal_data():
    crm = simulate_crm(seed=3, n_contacts=500)
    assert crm.contacts["email"].str.contains("@").all()
    assert crm.contacts["name"].str.contains(" ").all()
    assert crm.contacts["email"].is_unique


@pytest.mark.parametrize("kwargs", [{"n_channels": 1}, {"n_channels": 11}, {"n_contacts": 10},
                                    {"n_months": 2}])
def test_invalid_sizes(kwargs):
    with pytest.raises(ValueError):
        simulate_crm(seed=1, **kwargs)


#: Fingerprints of simulate_crm(seed=3, n_contacts=3000) before holdouts and confounding
#: existed (pandas.util.hash_pandas_object): the defaults must keep every table identical.
#: (transactions, customers, conversions, subscriptions and tickets re-fingerprinted when the
#: channel and segment covariates of repeat buying came in: datasets/customer_effects.py.)
_FINGERPRINTS = {
    "transactions": "63404875725f3f10",
    "customers": "af2ae326a47e1936",
    "touchpoints": "6d432ce90b7c390f",
    "conversions": "99c0759b55555bc2",
    "stage_events": "bffaffd44cd67a3e",
    "spend": "0bfb732ff4fe131b",
    "subscriptions": "28fc595ca9b9c944",
    "tickets": "a2743ad31fd9a5af",
    "contacts": "3e2644e83583bcad",
}


def _fingerprint(frame):
    import hashlib

    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=True).to_numpy()
                          .tobytes()).hexdigest()[:16]


def test_default_tables_are_unchanged_by_the_holdout_and_confounding_options():
    crm = simulate_crm(seed=3, n_contacts=3000)
    assert crm.experiments is None
    assert {name: _fingerprint(t) for name, t in crm.tables().items()} == _FINGERPRINTS
    explicit = simulate_crm(seed=3, n_contacts=3000, holdout_share=0.0, confounding=0.0)
    assert explicit.source == crm.source == "demo:seed=3,n_contacts=3000"
    assert {name: _fingerprint(t) for name, t in explicit.tables().items()} == _FINGERPRINTS


def test_holdouts_withhold_channels_at_random_and_fill_experiments():
    base = simulate_crm(seed=4, n_contacts=4000)
    crm = simulate_crm(seed=4, n_contacts=4000, holdout_share=0.2)
    assert crm.source == "demo:seed=4,n_contacts=4000,holdout_share=0.2"
    exp = crmstats.validate(crm.experiments, "experiments")
    share = (exp["group"] == "holdout").groupby(exp["channel"]).mean()
    assert share.between(0.15, 0.25).all()
    # units of a channel = journeys planned to touch it (the default simulation's journeys)
    planned = base.touchpoints.groupby("channel")["journey_id"].nunique()
    assert (exp.groupby("channel").size() >= planned.reindex(share.index)).all()
    # withheld touches are gone; every other touch is kept as planned
    held = exp[exp.group == "holdout"]
    assert len(crm.touchpoints.merge(held, on=["journey_id", "channel"])) == 0
    kept = base.touchpoints.merge(held, on=["journey_id", "channel"], how="left",
                                  indicator=True)
    assert len(crm.touchpoints) <= (kept["_merge"] == "left_only").sum()
    # contacts and their features are drawn as without holdouts (referrers depend on who won)
    pd.testing.assert_frame_equal(crm.contacts.drop(columns="referred_by"),
                                  base.contacts.drop(columns="referred_by"))
    lift = crm.truth["channel_lift"]
    assert list(lift.index) == crm.truth["channels"]
    assert (lift["lift"] > 0).all() and (lift["units"] > 0).all()
    # the truth's order of channels by effect: events and referral add the most per journey
    assert set(lift["relative_lift"].nlargest(2).index) == {"events", "referral"}


def test_confounding_targets_paid_channels_at_likely_buyers():
    from crmstats.datasets.simulate import PAID_CHANNELS

    def paid_gap(crm):
        tp = crm.touchpoints
        paid = tp.assign(paid=tp.channel.isin(PAID_CHANNELS)).groupby("journey_id")["paid"].mean()
        eng = crm.contacts.set_index("contact_id")["engagement_score"].reindex(paid.index)
        return paid[eng > eng.median()].mean() - paid[eng <= eng.median()].mean()

    plain = simulate_crm(seed=2, n_contacts=4000)
    confounded = simulate_crm(seed=2, n_contacts=4000, confounding=0.5)
    # share of paid touches: likely buyers (engagement above the median) minus the others
    assert paid_gap(confounded) > paid_gap(plain) + 0.08
    with pytest.raises(ValueError, match="confounding"):
        simulate_crm(seed=2, n_contacts=100, confounding=1.5)
    with pytest.raises(ValueError, match="holdout_share"):
        simulate_crm(seed=2, n_contacts=100, holdout_share=1.0)

"""Malformed input across the canonical tables and the public functions.

Every case must end in a crmstats error (or warning) that names the problem —
table, column, rows where they apply — never in a raw numpy/pandas/lifetimes
traceback, and must leave the caller's DataFrames exactly as they were.
The README's reliability section reports the count of these cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import (
    ConvergenceWarning,
    CRMStatsError,
    DataError,
    DataWarning,
    attribution,
    churn,
    funnel,
    validate,
)
from crmstats.book import load_studies, record_kpis
from crmstats.clv import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
    customer_lifetime_value,
    pareto_analysis,
    rfm_summary,
    value_tiers,
)
from crmstats.overview import monthly_activity, spend_by_channel, stage_counts
from tests.conftest import ROOT


@dataclass
class Case:
    """One malformed input: how to build it, what to call, what must come out."""

    id: str
    build: Callable[[crmstats.CRMData], tuple[Callable[[], object], list[pd.DataFrame]]]
    expect: type  # a crmstats exception or warning class
    match: str  # regex the message must contain


CASES: list[Case] = []


def case(id: str, expect: type, match: str):
    def register(build):
        CASES.append(Case(id, build, expect, match))
        return build

    return register


def _tx(crm):
    return crm.transactions.copy()


# ----------------------------------------------------------------- transactions


@case("tx-missing-column", DataError, "customer_id")
def _(crm):
    tx = _tx(crm).drop(columns="customer_id")
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-renamed-column-unmapped", DataError, "customer_id")
def _(crm):
    tx = _tx(crm).rename(columns={"customer_id": "cust"})
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-mapping-to-absent-column", DataError, "buyer")
def _(crm):
    tx = _tx(crm)
    return (lambda: rfm_summary(tx, customer_id_col="buyer")), [tx]


@case("tx-amount-not-numbers", DataError, r"amount.*not numbers.*rows 2")
def _(crm):
    tx = _tx(crm).astype({"amount": object})
    tx.loc[2, "amount"] = "twelve"
    return (lambda: monthly_activity(tx)), [tx]


@case("tx-amount-nan", DataError, r"amount.*non-finite.*rows 5")
def _(crm):
    tx = _tx(crm)
    tx.loc[5, "amount"] = np.nan
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-amount-inf", DataError, r"amount.*non-finite")
def _(crm):
    tx = _tx(crm)
    tx.loc[7, "amount"] = np.inf
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-amount-boolean", DataError, "boolean")
def _(crm):
    tx = _tx(crm)
    tx["amount"] = tx["amount"] > 10
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-null-customer-id", DataError, r"customer_id.*null.*rows 3")
def _(crm):
    tx = _tx(crm)
    tx.loc[3, "customer_id"] = None
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-unparsable-timestamp", DataError, r"timestamp.*unparsable.*not a date")
def _(crm):
    tx = _tx(crm).astype({"timestamp": str})
    tx.loc[4, "timestamp"] = "not a date"
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-impossible-date", DataError, r"timestamp.*2024-02-30")
def _(crm):
    tx = _tx(crm).astype({"timestamp": str})
    tx.loc[1, "timestamp"] = "2024-02-30 10:00"
    return (lambda: monthly_activity(tx)), [tx]


@case("tx-mixed-timezones", DataError, r"timestamp.*mixes timezone-aware and naive")
def _(crm):
    tx = _tx(crm).astype({"timestamp": str})
    tx.loc[0, "timestamp"] = "2024-03-01T10:00:00+02:00"
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-epoch-numbers-as-timestamps", DataError, r"timestamp.*numbers")
def _(crm):
    tx = _tx(crm)
    tx["timestamp"] = tx["timestamp"].astype("int64") // 10**9
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-future-timestamps", DataWarning, r"timestamp.*future")
def _(crm):
    tx = _tx(crm)
    tx.loc[0, "timestamp"] = pd.Timestamp("2099-01-01")
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-empty", DataError, "empty")
def _(crm):
    tx = _tx(crm).iloc[0:0]
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-duplicated-order-id", DataError, r"order_id.*duplicated")
def _(crm):
    tx = _tx(crm)
    tx.loc[1, ["order_id", "product_category"]] = tx.loc[0, ["order_id", "product_category"]]
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-only-refunds", DataError, "no purchase")
def _(crm):
    tx = _tx(crm)
    tx["amount"] = -tx["amount"].abs() - 1
    return (lambda: rfm_summary(tx)), [tx]


@case("tx-non-integer-numeric-ids", DataError, r"customer_id.*non-integer")
def _(crm):
    tx = _tx(crm)
    tx["customer_id"] = np.arange(len(tx)) + 0.5
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-duplicated-column-names", DataError, "duplicated column")
def _(crm):
    tx = _tx(crm)
    tx = pd.concat([tx, tx[["amount"]]], axis=1)
    return (lambda: validate(tx, table="transactions")), [tx]


@case("tx-missing-file", DataError, "nowhere.csv")
def _(crm):
    return (lambda: rfm_summary("/nowhere/nowhere.csv")), []


@case("tx-not-a-table", DataError, "transactions")
def _(crm):
    return (lambda: rfm_summary(42)), []


# ----------------------------------------------------------------- other tables


@case("customers-duplicated-id", DataError, r"customer_id.*duplicated")
def _(crm):
    c = crm.customers.copy()
    c.loc[1, "customer_id"] = c.loc[0, "customer_id"]
    return (lambda: validate(c, table="customers")), [c]


@case("customers-null-acquired-at", DataError, r"acquired_at.*null")
def _(crm):
    c = crm.customers.copy()
    c.loc[2, "acquired_at"] = pd.NaT
    return (lambda: validate(c, table="customers")), [c]


@case("touchpoints-missing-channel", DataError, "channel")
def _(crm):
    t = crm.touchpoints.drop(columns="channel")
    return (lambda: validate(t, table="touchpoints")), [t]


@case("conversions-duplicated-journey", DataError, r"journey_id.*duplicated")
def _(crm):
    c = crm.conversions.copy()
    c.loc[1, "journey_id"] = c.loc[0, "journey_id"]
    return (lambda: validate(c, table="conversions")), [c]


@case("conversions-negative-value", DataError, r"value.*negative")
def _(crm):
    c = crm.conversions.copy()
    c.loc[0, "value"] = -5.0
    return (lambda: validate(c, table="conversions")), [c]


@case("spend-duplicated-date-channel", DataError, "duplicated")
def _(crm):
    s = crm.spend.copy()
    s.loc[1, ["date", "channel"]] = s.loc[0, ["date", "channel"]]
    return (lambda: spend_by_channel(s)), [s]


@case("spend-negative-cost", DataError, r"cost.*negative")
def _(crm):
    s = crm.spend.copy()
    s.loc[0, "cost"] = -1.0
    return (lambda: spend_by_channel(s)), [s]


@case("stage-events-null-lead", DataError, r"lead_id.*null")
def _(crm):
    e = crm.stage_events.copy()
    e.loc[0, "lead_id"] = None
    return (lambda: stage_counts(e)), [e]


@case("subscriptions-negative-mrr", DataError, r"mrr.*negative")
def _(crm):
    s = crm.subscriptions.copy()
    s.loc[0, "mrr"] = -10.0
    return (lambda: validate(s, table="subscriptions")), [s]


@case("tickets-resolved-before-opened", DataError, r"resolved_at.*before 'opened_at'")
def _(crm):
    t = crm.tickets.copy()
    t.loc[0, "resolved_at"] = t.loc[0, "opened_at"] - pd.Timedelta(days=2)
    return (lambda: validate(t, table="tickets")), [t]


@case("unknown-table-name", CRMStatsError, "orders")
def _(crm):
    tx = _tx(crm)
    return (lambda: validate(tx, table="orders")), [tx]


@case("unknown-data-source", DataError, "unknown data source")
def _(crm):
    return (lambda: crmstats.load_crm("salesforce-please")), []


@case("bad-demo-option", DataError, r"option 'seed' must be a number")
def _(crm):
    return (lambda: crmstats.load_crm("demo:seed=abc")), []


# ----------------------------------------------------------------- CLV summaries and models


def _summary(crm):
    return rfm_summary(crm.transactions, time_unit="W")


@case("summary-not-a-frame", DataError, "expected a DataFrame")
def _(crm):
    return (lambda: BetaGeoModel().fit([1, 2, 3])), []


@case("summary-missing-column", DataError, r"missing column.*recency")
def _(crm):
    s = _summary(crm).drop(columns="recency")
    return (lambda: BetaGeoModel().fit(s)), [s]


@case("summary-recency-after-T", DataError, r"recency.*exceeds T")
def _(crm):
    s = _summary(crm)
    s.iloc[0, s.columns.get_loc("recency")] = s["T"].iloc[0] + 5
    return (lambda: ParetoNBDModel().fit(s)), [s]


@case("summary-negative-frequency", DataError, r"frequency.*negative")
def _(crm):
    s = _summary(crm)
    s.iloc[0, s.columns.get_loc("frequency")] = -1
    return (lambda: BetaGeoModel().fit(s)), [s]


@case("no-repeat-buyers", DataError, "no customer has a repeat purchase")
def _(crm):
    tx = _tx(crm).drop_duplicates("customer_id")
    s = rfm_summary(tx, time_unit="W")
    return (lambda: BetaGeoModel().fit(s)), [tx, s]


@case("no-repeat-buyers-spend", DataError, "repeat")
def _(crm):
    tx = _tx(crm).drop_duplicates("customer_id")
    s = rfm_summary(tx, time_unit="W")
    return (lambda: GammaGammaModel().fit(s)), [s]


@case("single-customer", ConvergenceWarning,
      "information matrix|did not converge|no measurable dropout")
def _(crm):
    tx = _tx(crm)
    counts = tx[tx["amount"] >= 0].groupby("customer_id").size()
    one = tx[tx["customer_id"] == counts.idxmax()]
    s = rfm_summary(one, time_unit="W")
    return (lambda: BetaGeoModel().fit(s)), [one, s]


@case("non-converging-fit", ConvergenceWarning, "did not converge")
def _(crm):
    s = _summary(crm)
    return (lambda: BetaGeoModel(maxiter=2).fit(s)), [s]


@case("clv-summary-without-monetary", DataError, "monetary_value")
def _(crm):
    s = _summary(crm)
    bg = BetaGeoModel().fit(s)
    gg = GammaGammaModel().fit(s)
    bare = s.drop(columns="monetary_value")
    return (lambda: customer_lifetime_value(bg, gg, bare)), [bare]


@case("value-tiers-nan", DataError, "non-finite|missing")
def _(crm):
    v = pd.Series([1.0, np.nan, 3.0])
    return (lambda: value_tiers(v)), []


@case("pareto-negative-values", DataError, "negative")
def _(crm):
    return (lambda: pareto_analysis(pd.Series([5.0, -1.0, 2.0]))), []


@case("sbg-increasing-survivors", DataError, "non-increasing")
def _(crm):
    return (lambda: ShiftedBetaGeoModel().fit([1000, 800, 900, 500])), []


@case("model-used-before-fit", CRMStatsError, "fit")
def _(crm):
    s = _summary(crm)
    return (lambda: BetaGeoModel().probability_alive(s)), [s]


# ----------------------------------------------------------------- book and KPIs


@case("undeclared-study-parameter", CRMStatsError, "declared by no study")
def _(crm):
    return (lambda: load_studies(ROOT / "book" / "studies.yml", overrides={"colour": "red"})), []


@case("credential-parameter", CRMStatsError, "credential")
def _(crm):
    return (lambda: load_studies(ROOT / "book" / "studies.yml",
                                 overrides={"db_password": "hunter2"})), []


@case("kpi-not-a-number", CRMStatsError, "not a number")
def _(crm):
    return (lambda: record_kpis(cac="cheap", show=False)), []


@case("kpi-infinite", CRMStatsError, "not finite")
def _(crm):
    return (lambda: record_kpis(ltv_cac=float("inf"), show=False)), []


# ----------------------------------------------------------------- churn


@case("survival-events-not-binary", DataError, r"churned.*0 \(censored\) or 1")
def _(crm):
    life = pd.DataFrame({"duration": [3, 5, 2], "churned": [1, 2, 0]})
    return (lambda: churn.survival_curves(life)), [life]


@case("survival-negative-duration", DataError, r"duration.*negative")
def _(crm):
    life = pd.DataFrame({"duration": [3, -1, 2], "churned": [1, 1, 0]})
    return (lambda: churn.survival_curves(life)), [life]


@case("cox-covariate-missing-values", DataError, r"tickets.*missing or non-numeric")
def _(crm):
    life = pd.DataFrame({"duration": [3, 5, 2, 4], "churned": [1, 1, 0, 1],
                         "tickets": [1.0, np.nan, 0.0, 2.0]})
    return (lambda: churn.CoxModel().fit(life, covariates=["tickets"], duration_col="duration",
                                         entry_col=None)), [life]


@case("cohort-column-absent", DataError, r"customers table: no column 'region'")
def _(crm):
    tx, cu = _tx(crm), crm.customers.copy()
    return (lambda: churn.cohort_table(tx, by="region", customers=cu)), [tx, cu]


@case("mrr-bridge-no-month-column", DataError, "month")
def _(crm):
    s = crm.subscriptions.drop(columns="month")
    return (lambda: churn.mrr_bridge(s)), [s]


# ----------------------------------------------------------------- attribution


@case("path-with-blank-channel", DataError, r"path.*empty channel")
def _(crm):
    paths = pd.DataFrame({"path": ["email > search", "email >  > display"],
                          "total_conversions": [3, 1], "total_conversion_value": [30.0, 5.0],
                          "total_null": [10, 4]})
    return (lambda: attribution.MarkovAttribution().fit(paths)), [paths]


@case("paths-without-conversions", DataError, "no conversions")
def _(crm):
    paths = pd.DataFrame({"path": ["email > search"], "total_conversions": [0],
                          "total_conversion_value": [0.0], "total_null": [7]})
    return (lambda: attribution.ShapleyAttribution().fit(paths)), [paths]


@case("shapley-too-many-channels", DataError, "max_channels")
def _(crm):
    paths = pd.DataFrame({"path": [" > ".join(f"c{i}" for i in range(13))],
                          "total_conversions": [1], "total_conversion_value": [1.0],
                          "total_null": [0]})
    return (lambda: attribution.ShapleyAttribution().fit(paths)), [paths]


@case("credited-channel-unknown-to-spend", DataWarning, r"no row in the spend table")
def _(crm):
    paths = attribution.build_paths(crm.touchpoints, crm.conversions)
    model = attribution.MarkovAttribution().fit(paths)
    spend = crm.spend[crm.spend["channel"] != "email"].copy()
    return (lambda: attribution.channel_economics(model, spend)), [spend]


@case("touchpoints-timestamp-unparsable", DataError, r"touchpoints.*timestamp.*unparsable")
def _(crm):
    tp = crm.touchpoints.astype({"timestamp": str})
    tp.loc[0, "timestamp"] = "yesterday-ish"
    cv = crm.conversions.copy()
    return (lambda: attribution.build_paths(tp, cv)), [tp, cv]


# ----------------------------------------------------------------- funnel


@case("funnel-unknown-breakdown-column", DataError, r"stage_events table: no column 'region'")
def _(crm):
    e = crm.stage_events.copy()
    return (lambda: funnel.stage_conversion(e, by="region")), [e]


@case("funnel-stages-absent", DataError, "none of the funnel stages")
def _(crm):
    e = crm.stage_events.copy()
    return (lambda: funnel.stage_conversion(e, stages=["visit", "signup"])), [e]


@case("stage-events-unparsable-time", DataError, r"entered_at.*unparsable")
def _(crm):
    e = crm.stage_events.astype({"entered_at": str})
    e.loc[2, "entered_at"] = "last Tuesday"
    s = crm.spend.copy()
    return (lambda: funnel.lead_kpis(e, s)), [e, s]


@case("lead-scoring-outcome-not-binary", DataError, r"qualified.*0 or 1")
def _(crm):
    leads = pd.DataFrame({"engagement_score": [40.0, 55.0, 61.0, 70.0],
                          "qualified": [0, 1, 2, 1]})
    return (lambda: funnel.LeadScoringModel().fit(leads, features=["engagement_score"])), [leads]


@case("lead-scoring-one-outcome", DataError, "same outcome")
def _(crm):
    leads = pd.DataFrame({"engagement_score": [40.0, 55.0, 61.0], "qualified": [1, 1, 1]})
    return (lambda: funnel.LeadScoringModel().fit(leads, features=["engagement_score"])), [leads]


# ----------------------------------------------------------------- the test


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_crmstats_message_and_leaves_data_alone(bad, small_crm):
    call, frames = bad.build(small_crm)
    before = [f.copy(deep=True) for f in frames]
    if issubclass(bad.expect, Warning):
        with warnings.catch_warnings():
            warnings.simplefilter("error", bad.expect)
            with pytest.raises(bad.expect, match=bad.match):
                call()
    else:
        with pytest.raises(CRMStatsError) as info:
            call()
        assert isinstance(info.value, bad.expect), type(info.value)
        assert info.match(bad.match)
        assert "Traceback" not in str(info.value)
    for original, frame in zip(before, frames, strict=True):
        pd.testing.assert_frame_equal(frame, original)


def test_there_are_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)

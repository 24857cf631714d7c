"""crmstats.funnel against plain pandas references and the simulator's ground truth."""

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import DataError, funnel
from tests.conftest import SMALL_DEMO

STAGES = list(funnel.FUNNEL_STAGES)


@pytest.fixture(scope="module")
def demo():
    return crmstats.load_crm("demo")


@pytest.fixture(scope="module")
def small():
    return crmstats.load_crm(SMALL_DEMO)


def _reached(events: pd.DataFrame) -> pd.DataFrame:
    """pandas reference of the funnel rule: first entry per stage; reached = it or later."""
    first = events.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    out = pd.DataFrame(index=first.index)
    later = pd.Series(False, index=first.index)
    for s in reversed(STAGES):
        t = first[s] if s in first else pd.Series(pd.NaT, index=first.index)
        later = later | t.notna()
        out[f"reached_{s}"] = later
        out[f"t_{s}"] = t
    return out


def test_stage_conversion_equals_pandas(demo):
    got = funnel.stage_conversion(demo.stage_events)
    ref = _reached(demo.stage_events)
    for i, s in enumerate(STAGES):
        entered = int(ref[f"reached_{s}"].sum())
        assert got.loc[s, "entered"] == entered
        won = int((ref[f"reached_{s}"] & ref["reached_won"]).sum())
        assert got.loc[s, "conversion_to_won"] == pytest.approx(won / entered)
        if i + 1 < len(STAGES):
            adv = int((ref[f"reached_{s}"] & ref[f"reached_{STAGES[i + 1]}"]).sum())
            assert got.loc[s, "advanced"] == adv
            assert got.loc[s, "dropped"] == entered - adv
            nxt = ref[[f"t_{x}" for x in STAGES[i + 1:]]].bfill(axis=1).iloc[:, 0]
            days = ((nxt - ref[f"t_{s}"]).dt.total_seconds() / 86400).dropna()
            assert got.loc[s, "median_days"] == pytest.approx(days.median(), rel=1e-6)
            assert got.loc[s, "p90_days"] == pytest.approx(days.quantile(0.9), rel=1e-3)
    # the simulator's funnel probabilities come back
    p = demo.truth["funnel_probabilities"]
    assert got.loc["subscriber", "conversion_to_next"] == pytest.approx(p["lead"], abs=0.02)
    assert got.loc["qualified", "conversion_to_next"] == pytest.approx(p["opportunity"],
                                                                       abs=0.02)


def test_stage_conversion_by_channel_sums_to_total(demo):
    total = funnel.stage_conversion(demo.stage_events)
    by = funnel.stage_conversion(demo.stage_events, by="channel")
    sums = by.groupby(level="stage")["entered"].sum()
    assert sums.reindex(total.index).tolist() == total["entered"].tolist()


def test_skipped_stages_and_reentries_follow_the_rule():
    ts = pd.Timestamp("2025-01-01")
    events = pd.DataFrame({
        "lead_id": ["a", "a", "a", "b", "b", "b", "b"],
        "stage": ["subscriber", "lead", "won",  # a skipped qualified and opportunity
                  "subscriber", "lead", "lead", "unqualified"],  # b re-entered lead
        "entered_at": [ts, ts + pd.Timedelta(days=2), ts + pd.Timedelta(days=10), ts,
                       ts + pd.Timedelta(days=1), ts + pd.Timedelta(days=5),
                       ts + pd.Timedelta(days=6)],
    })
    got = funnel.stage_conversion(events)
    assert got["entered"].tolist() == [2, 2, 1, 1, 1]
    assert got.loc["lead", "advanced"] == 1 and got.loc["lead", "dropped"] == 1
    # a's time in lead runs to the next stage it entered (won, 8 days later)
    assert got.loc["lead", "median_days"] == pytest.approx(8.0)


def test_lead_kpis_equal_pandas_and_reconcile_spend(demo):
    got = funnel.lead_kpis(demo.stage_events, demo.spend)
    assert got["spend"].sum() == pytest.approx(demo.spend["cost"].sum())
    ref = _reached(demo.stage_events)
    channel = demo.stage_events.groupby("lead_id")["channel"].first()
    leads = ref[ref["reached_lead"]].copy()
    lead_t = leads[[f"t_{s}" for s in STAGES[1:]]].bfill(axis=1).iloc[:, 0]
    leads["channel"] = channel.reindex(leads.index).to_numpy()
    leads["period"] = lead_t.dt.to_period("M").dt.start_time
    counts = leads.groupby(["channel", "period"]).agg(
        leads=("reached_lead", "size"), qualified=("reached_qualified", "sum"),
        opportunities=("reached_opportunity", "sum"), won=("reached_won", "sum"))
    joined = got.join(counts, rsuffix="_ref", how="left").fillna(0)
    for c in ("leads", "qualified", "opportunities", "won"):
        np.testing.assert_array_equal(joined[c].to_numpy(), joined[f"{c}_ref"].to_numpy())
    spend = demo.spend.groupby(["channel", demo.spend["date"].dt.to_period("M").dt.start_time])[
        "cost"].sum()
    spend.index.names = ["channel", "period"]
    np.testing.assert_allclose(got["spend"].reindex(spend.index), spend, rtol=1e-9)
    row = got.dropna(subset=["cac"]).iloc[0]
    assert row["cac"] == pytest.approx(row["spend"] / row["won"])
    assert row["lead_to_won"] == pytest.approx(row["won"] / row["leads"])


def test_pipeline_velocity_is_its_formula(demo):
    out = funnel.pipeline(demo.stage_events, deals=demo.conversions, as_of="2025-09-30")
    s = out["summary"]
    assert 0 < s["win_rate"] < 1
    assert s["sales_velocity_per_day"] == pytest.approx(
        s["open_opportunities"] * s["win_rate"] * s["average_deal_size"] / s["cycle_days"])
    assert out["open"].to_numpy().sum() == s["open_leads_in_pipeline"]


def test_lead_scoring_recovers_true_drivers(demo):
    leads = funnel.lead_features(demo)
    model = funnel.LeadScoringModel(reference={"industry": "manufacturing",
                                               "job_title": "analyst"}).fit(
        leads, features=["engagement_score", "company_size_code", "industry", "job_title",
                         "country"], target="qualified")
    truth = demo.truth["qualification_coefficients"]
    coef = model.coefficients_
    scale = {"engagement_score": 1 / 15}  # the truth is per standard deviation (15 points)
    for term, value in truth.items():
        if term == "intercept":
            continue
        est = coef.loc[term]
        if value == 0:
            assert est["p_value"] > 0.01, term  # no effect, none found
            continue
        assert np.sign(est["coef"]) == np.sign(value), term
        assert est["p_value"] < 0.001, term
        assert est["coef"] == pytest.approx(value * scale.get(term, 1), rel=0.35), term
    assert model.auc_ > 0.7
    cal = model.calibration_
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.06
    bands = model.score_bands(leads)
    assert bands["band"].value_counts().min() > 0.15 * len(leads)


def test_lookalikes_rank_prospects_like_top_customers(small):
    leads = funnel.lead_features(small)
    customers = leads[leads["won"] == 1]
    rng = np.random.default_rng(0)
    value = pd.Series(customers["engagement_score"].to_numpy() + rng.normal(0, 5, len(customers)),
                      index=customers.index)
    prospects = leads[leads["won"] == 0]
    ranked = funnel.lookalike_scores(customers, prospects, value=value,
                                     features=["engagement_score"], top_share=0.2)
    assert ranked["score"].is_monotonic_decreasing
    top = ranked.head(len(ranked) // 10)
    assert top["score"].min() >= ranked["score"].median()
    assert prospects.loc[top.index, "engagement_score"].mean() > prospects[
        "engagement_score"].mean()


def test_every_lifecycle_stage_appears_on_the_demo(demo):
    stages = funnel.lifecycle_stage(demo)
    counts = stages["stage"].value_counts()
    assert set(counts.index) == set(funnel.LIFECYCLE_STAGES)
    assert (counts > 50).all(), counts
    assert len(stages) == len(demo.contacts)
    won = set(demo.stage_events.loc[demo.stage_events["stage"] == "won", "lead_id"])
    customer_like = stages["stage"].astype(str).str.contains("customer|evangelist")
    assert set(stages.index[customer_like]) == won
    high = stages[stages["stage"] == "former customer, high priority"]["score"]
    low = stages[stages["stage"] == "former customer, low priority"]["score"]
    assert high.min() >= low.max()
    assert not {"name", "email", "phone"} & set(stages.columns)


def test_stage_flows_only_move_forward_in_the_funnel(small):
    flows = funnel.stage_flows(small, start="2025-01-01", end="2025-06-30")
    assert flows.to_numpy().sum() > 0
    # nobody goes back from customer to a pre-sale stage
    for pre in ("subscriber", "lead", "qualified lead", "opportunity"):
        if "customer" in flows.index and pre in flows.columns:
            assert flows.loc["customer", pre] == 0


def test_bad_inputs_are_named(demo):
    with pytest.raises(DataError, match="no column 'region'"):
        funnel.stage_conversion(demo.stage_events, by="region")
    with pytest.raises(DataError, match="none of the funnel stages"):
        funnel.stage_conversion(demo.stage_events, stages=["x", "y"])
    leads = funnel.lead_features(demo).head(200)
    with pytest.raises(DataError, match="0 or 1"):
        funnel.LeadScoringModel().fit(leads.assign(qualified=2), features=["engagement_score"])
    with pytest.raises(DataError, match="missing column"):
        funnel.LeadScoringModel().fit(leads, features=["shoe_size"])


def test_plots_return_axes(demo):
    import matplotlib.axes

    leads = funnel.lead_features(demo)
    model = funnel.LeadScoringModel().fit(leads, features=["engagement_score", "industry"])
    axes = [
        funnel.plot_funnel(funnel.stage_conversion(demo.stage_events)),
        funnel.plot_days_in_stage(funnel.stage_durations(demo.stage_events, max_leads=3000)),
        funnel.plot_lead_kpis(funnel.lead_kpis(demo.stage_events, demo.spend)),
        funnel.plot_lift(model), funnel.plot_calibration(model),
        funnel.plot_lifecycle(funnel.lifecycle_stage(demo, models=False)),
    ]
    assert all(isinstance(a, matplotlib.axes.Axes) and a.get_title() for a in axes)

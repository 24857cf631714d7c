"""The funnel page's channel tables: the twelve lead KPIs as two narrow tables."""

import numpy as np
import pandas as pd
import pytest

from crmstats import funnel


@pytest.fixture(scope="module")
def kpis(small_crm):
    return funnel.lead_kpis(small_crm.stage_events, small_crm.spend, period=None)


def test_lead_kpis_split_in_volume_and_quality(kpis):
    before = kpis.copy()
    volume, quality = funnel.lead_volume_table(kpis), funnel.lead_quality_table(kpis)
    assert list(volume.columns) == ["spend", "leads", "qualified", "opportunities", "won"]
    assert list(quality.columns) == ["per lead", "per opportunity", "CAC", "to opportunity",
                                     "to customer"]
    assert volume.index.equals(kpis.index) and quality.index.equals(kpis.index)
    for short, long in (("per lead", "cost_per_lead"), ("CAC", "cac"),
                        ("to customer", "lead_to_won")):
        np.testing.assert_array_equal(quality[short], kpis[long])
    pd.testing.assert_frame_equal(kpis, before)
    assert volume["spend"].sum() == pytest.approx(kpis["spend"].sum())


def test_another_frame_is_refused_by_name():
    with pytest.raises(ValueError, match="expected the DataFrame returned by lead_kpis"):
        funnel.lead_quality_table(pd.DataFrame({"spend": [1.0]}))


@pytest.fixture(scope="module")
def scored(small_crm):
    leads = funnel.lead_features(small_crm)
    model = funnel.LeadScoringModel(test_size=0.3).fit(
        leads, features=["engagement_score", "company_size_code", "industry"], target="qualified")
    return leads, model


def test_odds_table_names_terms_in_words_and_drops_the_intercept(scored):
    from crmstats.formatting import fmt_interval

    _, model = scored
    c = model.coefficients_
    t = funnel.odds_table(c)
    assert list(t.columns) == ["odds ratio", "95 % interval", "p-value"]
    assert "intercept" not in t.index and len(t) == len(c) - 1
    assert "engagement score" in t.index and "industry = software" in t.index
    row = c.loc["industry[software]"]
    assert t.loc["industry = software", "odds ratio"] == row["odds_ratio"]
    assert t.loc["industry = software", "95 % interval"] == fmt_interval(
        row["odds_ratio_lower_95"], row["odds_ratio_upper_95"])


def test_band_table_counts_and_rates_as_a_plain_groupby(scored):
    leads, model = scored
    bands = model.score_bands(leads)
    t = funnel.band_table(bands, leads["qualified"])
    ref = bands.join(leads["qualified"]).groupby("band", observed=True)["qualified"].agg(
        ["size", "mean"])
    np.testing.assert_array_equal(t["leads"], ref["size"])
    np.testing.assert_allclose(t["outcome rate"], ref["mean"])
    assert list(t.index) == ["A", "B", "C", "D"]


def test_lead_period_table_sums_the_channels(small_crm):
    kpis = funnel.lead_kpis(small_crm.stage_events, small_crm.spend, period="M")
    t = funnel.lead_period_table(kpis, last=5)
    assert list(t.columns) == ["spend", "leads", "qualified", "opportunities", "won"]
    assert len(t) == 5 and t.index.name == "period"
    last = kpis.xs(t.index[-1], level="period")
    assert t["spend"].iloc[-1] == pytest.approx(last["spend"].sum())
    assert t["leads"].iloc[-1] == pytest.approx(last["leads"].sum())
    with pytest.raises(ValueError, match="with a period"):
        funnel.lead_period_table(funnel.lead_kpis(small_crm.stage_events, small_crm.spend,
                                                  period=None))


def test_stage_rate_table_is_one_row_per_group(small_crm):
    conversion = funnel.stage_conversion(small_crm.stage_events, by="channel")
    t = funnel.stage_rate_table(conversion, "conversion_to_won")
    assert "won" not in t.columns and set(t.index) == set(
        conversion.index.get_level_values("channel"))
    channel, stage = next(i for i in conversion.index if i[1] != "won")
    assert t.loc[channel, stage] == conversion.loc[(channel, stage), "conversion_to_won"]
    with pytest.raises(ValueError, match="with by="):
        funnel.stage_rate_table(funnel.stage_conversion(small_crm.stage_events))


def test_open_leads_are_the_undecided_ones_best_first(scored):
    leads, model = scored
    before = leads.copy()
    t = funnel.open_leads(model, leads, top=7)
    assert len(t) == 7 and t["score"].is_monotonic_decreasing
    assert leads.loc[t.index, "qualified"].isna().all()
    undecided = model.score_bands(leads[leads["qualified"].isna()])
    assert t["score"].iloc[0] == undecided["score"].max()
    pd.testing.assert_frame_equal(leads, before)

"""What the study templates used to compute in their cells, now one package call each."""

import numpy as np
import pandas as pd
import pytest

from crmstats import CRMData, StudyError
from crmstats.attribution import share_error
from crmstats.book import comma_list, findings


def test_comma_list_strips_names_and_drops_empty_items():
    assert comma_list("engagement_score, company_size ,,industry,") == [
        "engagement_score", "company_size", "industry"]
    assert comma_list("") == [] and comma_list(" , ") == [] and comma_list(None) == []
    with pytest.raises(StudyError, match="comma-separated"):
        comma_list(["a", "b"])


def test_simulated_truth_is_none_without_a_simulator():
    truth = {"channel_lift": {"relative_lift": pd.Series({"email": 0.1})}}
    crm = CRMData(truth=truth)
    assert crm.simulated_truth("channel_lift", "relative_lift") is truth["channel_lift"][
        "relative_lift"]
    assert crm.simulated_truth("channel_lift") is truth["channel_lift"]
    assert crm.simulated_truth("attribution_shares") is None  # not recorded
    assert crm.simulated_truth("channel_lift", "relative_lift", "email") is None  # not a mapping
    assert CRMData().simulated_truth("attribution_shares") is None  # real data


def test_share_error_without_truth_is_an_empty_table_of_the_same_columns():
    shares = pd.DataFrame({"linear": [0.6, 0.4], "Markov": [0.5, 0.5]}, index=["email", "ads"])
    with_truth = share_error(shares, pd.Series({"email": 2.0, "ads": 2.0}))
    assert with_truth.loc["Markov", "mae"] == pytest.approx(0.0)
    assert with_truth.loc["linear", "mae"] == pytest.approx(0.1)
    without = share_error(shares, None)
    assert without.empty and list(without.columns) == list(with_truth.columns)
    assert without.index.name == "model"
    # the findings read it as "no truth"
    assert not any("truth" in f for f in findings.incrementality(
        pd.DataFrame(columns=["p_value", "lift", "relative_lift", "lower_95"]),
        pd.DataFrame({"share": [0.7, 0.3]}, index=["email", "ads"]),
        truth_error=without["mae"]))


def test_data_overview_kpis():
    revenue = pd.Series([100.0, 50.0, -10.0, 0.0])
    assert findings.data_overview_kpis(revenue, 0.6) == {
        "customers": 4, "revenue": 140.0, "top20_revenue_share": 0.6}


def test_funnel_kpis_with_and_without_lead_channels():
    summary = {"win_rate": 0.25, "sales_velocity_per_month": 1234.5}
    kpis = findings.funnel_kpis(summary)
    assert set(kpis) == {"win_rate", "sales_velocity"}
    assert kpis["win_rate"]["value"] == 0.25 and kpis["win_rate"]["kind"] == "share"
    assert kpis["sales_velocity"]["value"] == 1234.5 and kpis["sales_velocity"]["kind"] == "money"
    channels = pd.DataFrame({"spend": [300.0, 100.0], "leads": [30, 10], "won": [3, 5]},
                            index=["ads", "email"])
    kpis = findings.funnel_kpis(summary, channels)
    assert kpis["lead_to_customer_rate"] == pytest.approx(8 / 40)
    assert kpis["cost_per_lead"]["value"] == pytest.approx(400 / 40)


def test_incrementality_kpis_count_every_conversion():
    calibrated = pd.DataFrame({"conversions": [30.0, 10.0]}, index=["email", "ads"])
    economics = pd.DataFrame({"incremental_cac": [12.0, 50.0, 20.0]},
                             index=["email", "ads", "total"])
    conversions = pd.DataFrame({"contact_id": range(160)})
    kpis = findings.incrementality_kpis(calibrated, economics, conversions)
    assert kpis["incremental_sales_share"]["value"] == pytest.approx(40 / 160)
    assert kpis["incremental_cac"]["value"] == 20.0
    assert kpis["incremental_cac"]["kind"] == "money"


def test_incrementality_kpis_leave_out_a_cac_of_no_added_sales():
    """Small data can estimate that the channels add no sales (or fewer than none): the
    blended CAC is then +inf, which record_kpis refuses — the headline is left out."""
    from crmstats.book import record_kpis

    calibrated = pd.DataFrame({"conversions": [9.0, -11.0]}, index=["email", "ads"])
    economics = pd.DataFrame({"incremental_cac": [12.0, np.inf, np.inf]},
                             index=["email", "ads", "total"])
    conversions = pd.DataFrame({"contact_id": range(160)})
    kpis = findings.incrementality_kpis(calibrated, economics, conversions)
    assert set(kpis) == {"incremental_sales_share"}
    assert kpis["incremental_sales_share"]["value"] == pytest.approx(-2 / 160)
    record_kpis(kpis, show=False)  # a real number: recorded without an error


def test_lead_scoring_and_lifecycle_kpis():
    assert findings.lead_scoring_kpis(0.81)["lead_score_auc"]["value"] == 0.81
    counts = pd.Series({"evangelist": 7, "former customer, high priority": 12, "lead": 90})
    kpis = findings.lifecycle_kpis(counts)
    assert kpis["former_customers_high_priority"]["value"] == 12
    assert kpis["evangelists"]["value"] == 7
    assert {k["kind"] for k in kpis.values()} == {"count"}


def test_lifecycle_counts_equal_value_counts_in_funnel_order(small_crm):
    from crmstats import DataError, funnel

    stages = funnel.lifecycle_stage(small_crm, models=False)
    counts = funnel.lifecycle_counts(stages)
    reference = stages["stage"].value_counts(sort=False)  # what the template computed
    assert list(counts.index) == list(funnel.LIFECYCLE_STAGES)
    pd.testing.assert_series_equal(counts["contacts"], reference.astype("int64"),
                                   check_names=False, check_index_type=False)
    assert counts["share"].sum() == pytest.approx(1.0)
    assert counts.loc["evangelist", "share"] == pytest.approx(
        reference["evangelist"] / reference.sum())
    with pytest.raises(DataError, match="lifecycle_stage"):
        funnel.lifecycle_counts(stages.drop(columns="stage"))

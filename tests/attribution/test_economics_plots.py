"""Channel economics reconcile to spend and follow their definitions; comparisons; figures."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats.attribution import (
    MarkovAttribution,
    channel_economics,
    credit_shares,
    heuristic,
    plot_cac_ltv,
    plot_credit_shares,
    plot_removal_effects,
    plot_transition_matrix,
    share_error,
)

CREDIT = pd.DataFrame({"conversions": [10.0, 5.0, 0.0], "value": [500.0, 100.0, 0.0]},
                      index=pd.Index(["email", "events", "social"], name="channel"))
SPEND = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01",
                                              "2024-01-01", "2024-01-01"]),
                      "channel": ["email", "email", "events", "social", "display"],
                      "cost": [100.0, 100.0, 1000.0, 50.0, 25.0]})
CLV = pd.Series({"email": 120.0, "events": 600.0, "social": 30.0})


def test_economics_by_hand():
    e = channel_economics(CREDIT, SPEND, CLV, horizon_months=12)
    # spend reconciles: every channel with spend, display included though it has no credit
    assert e.loc["total", "spend"] == SPEND.cost.sum()
    assert e.drop(index="total")["spend"].sum() == SPEND.cost.sum()
    assert e.loc["display", "customers"] == 0 and np.isinf(e.loc["display", "cac"])
    assert e.loc["email", "cac"] == pytest.approx(200 / 10)
    assert e.loc["email", "roas"] == pytest.approx(500 / 200)
    # LTV = first order (500 / 10) + CLV 120; LTV:CAC = 170 / 20
    assert e.loc["email", "ltv"] == pytest.approx(170.0)
    assert e.loc["email", "ltv_cac"] == pytest.approx(8.5)
    assert e.loc["email", "payback_months"] == 0.0  # the first order already pays the CAC back
    # events: CAC 200, first order 20, then 600 / 12 = 50 a month: 180 / 50 months
    assert e.loc["events", "payback_months"] == pytest.approx(180 / 50)
    # social: spend but no customers
    assert np.isinf(e.loc["social", "cac"]) and e.loc["social", "ltv_cac"] == 0.0
    reconciled = (e["cac"] * e["customers"]).drop(index=["total", "display", "social"])
    np.testing.assert_allclose(reconciled, e.loc[["email", "events"], "spend"])


def test_economics_of_a_new_customer_from_the_covariate_models():
    new = pd.DataFrame({"clv": [80.0, 400.0], "clv_lower_95": [60.0, 300.0],
                        "clv_upper_95": [100.0, 540.0]},
                       index=pd.Index(["email", "events"], name="acquisition_channel"))
    e = channel_economics(CREDIT, SPEND, CLV, horizon_months=12, new_customer_value=new)
    plain = channel_economics(CREDIT, SPEND, CLV, horizon_months=12)
    # the observed figures are unchanged; the new customer's sit beside them
    pd.testing.assert_frame_equal(e[plain.columns], plain)
    # email: first order 50 + 80 = 130 over a CAC of 20; the interval from the CLV's
    assert e.loc["email", "new_ltv"] == pytest.approx(130.0)
    assert e.loc["email", "new_ltv_cac"] == pytest.approx(6.5)
    assert e.loc["email", "new_ltv_cac_lower_95"] == pytest.approx(110 / 20)
    assert e.loc["email", "new_ltv_cac_upper_95"] == pytest.approx(150 / 20)
    # events: CAC 200, first order 20, then 400 / 12 a month: 180 / (400 / 12) months
    assert e.loc["events", "new_payback_months"] == pytest.approx(180 / (400 / 12))
    # social has no new-customer value: NaN, not 0
    assert np.isnan(e.loc["social", "new_ltv"]) and np.isnan(e.loc["social", "new_clv"])
    # total: the new CLV blended over the credited customers (10 email, 5 events)
    assert e.loc["total", "new_clv"] == pytest.approx((10 * 80 + 5 * 400) / 15)
    assert np.isnan(e.loc["total", "new_ltv_cac_lower_95"])
    with pytest.raises(ValueError, match="channel_value"):
        channel_economics(CREDIT, SPEND, CLV, new_customer_value=pd.Series([1.0]))


def test_economics_margin_period_and_no_total():
    e = channel_economics(CREDIT, SPEND, CLV, gross_margin=0.5, include_first_order=False,
                          end="2024-01-31", total=False)
    assert "total" not in e.index
    assert e.loc["email", "spend"] == 100.0
    assert e.loc["email", "ltv"] == pytest.approx(60.0)
    assert e.loc["email", "payback_months"] == pytest.approx(10 / (60 / 12))
    with pytest.raises(ValueError, match="gross_margin"):
        channel_economics(CREDIT, SPEND, CLV, gross_margin=0)


def test_economics_on_the_demo_counts_leads_like_pandas(small_crm, demo_paths):
    m = MarkovAttribution().fit(demo_paths)
    e = channel_economics(m, small_crm.spend, stage_events=small_crm.stage_events)
    st = small_crm.stage_events
    want = st[st.stage == "lead"].groupby("channel")["lead_id"].nunique()
    np.testing.assert_array_equal(e.loc[want.index, "leads"], want)
    want_opp = st[st.stage == "opportunity"].groupby("channel")["lead_id"].nunique()
    np.testing.assert_array_equal(e.loc[want_opp.index, "opportunities"], want_opp)
    assert e.loc["total", "spend"] == pytest.approx(small_crm.spend.cost.sum())
    assert e.loc["total", "customers"] == pytest.approx(len(small_crm.conversions))
    np.testing.assert_allclose(e.loc["total", "cost_per_lead"],
                               small_crm.spend.cost.sum() / want.sum())
    assert e["ltv"].isna().all()  # no CLV given


def test_economics_bad_input(small_crm):
    with pytest.raises(ValueError, match="attribution"):
        channel_economics(pd.Series([1.0]), SPEND)
    no_channel = small_crm.stage_events.drop(columns="channel")
    with pytest.raises(DataError) as err:
        channel_economics(CREDIT, SPEND, stage_events=no_channel)
    assert err.value.column == "channel"


def test_credit_shares_and_error_against_truth():
    a = heuristic(pd.DataFrame({"path": [("x",), ("y", "x")], "conversions": [3, 1]}),
                  "first_touch")
    shares = credit_shares({"first": a, "same": a.assign(conversions=[1.0, 1.0])})
    np.testing.assert_allclose(shares.sum(), 1.0)
    truth = pd.Series({"x": 0.5, "y": 0.25, "z": 0.25})
    err = share_error(shares, truth)
    # "same" is 0.5/0.5/0 (errors 0, .25, .25); "first" 0.75/0.25/0 (errors .25, 0, .25)
    np.testing.assert_allclose(err.loc["same", "mae"], 0.5 / 3)
    np.testing.assert_allclose(err.loc["first", "max_abs_error"], 0.25)
    with pytest.raises(ValueError, match="by must be"):
        credit_shares({"first": a}, by="revenue")


def test_plots_return_axes(demo_paths, small_crm):
    m = MarkovAttribution().fit(demo_paths)
    shares = credit_shares({"last touch": heuristic(demo_paths, "last_touch"), "Markov": m})
    for ax in (plot_credit_shares(shares, truth=small_crm.truth["attribution_shares"]),
               plot_transition_matrix(m),
               plot_transition_matrix(MarkovAttribution(order=2).fit(demo_paths), max_states=8),
               plot_removal_effects(m),
               plot_cac_ltv(channel_economics(m, small_crm.spend,
                                              pd.Series(50.0, index=m.channels_)))):
        assert isinstance(ax, plt.Axes)
        assert ax.get_title()
    with pytest.raises(ValueError, match="channel_economics"):
        plot_cac_ltv(shares)
    with pytest.raises(ValueError, match="MarkovAttribution"):
        plot_transition_matrix(shares)

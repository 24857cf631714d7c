"""The incrementality study's page tables: a few columns, short headers, intervals as text."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import attribution as A
from crmstats.book import report
from crmstats.datasets import simulate_crm
from crmstats.formatting import fmt_interval


@pytest.fixture(scope="module")
def results():
    crm = simulate_crm(seed=7, n_contacts=4000, holdout_share=0.2)
    lifts = A.lift_test(crm.experiments, crm.conversions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # conversions without a touch: counted in data notes
        paths = A.build_paths(crm.touchpoints, crm.conversions)
        model = A.IncrementalityModel(n_bootstrap=10, seed=1).fit(paths)
    calibrated = A.calibrate(model, lifts.iloc[:-2])  # the last two channels untested
    economics = A.incremental_economics(calibrated, crm.spend)
    return lifts, model, calibrated, economics


def _interval_matches(table, frame, lower, upper, kind):
    expected = [fmt_interval(lo, hi, kind) for lo, hi in zip(frame[lower], frame[upper],
                                                              strict=True)]
    assert table["95 % interval"].tolist() == expected


def test_lift_table(results):
    lifts = results[0]
    before = lifts.copy()
    t = A.lift_table(lifts)
    assert list(t.columns) == ["lift", "95 % interval", "p-value", "treatment rate",
                               "holdout rate"]
    assert t.index.equals(lifts.index)
    np.testing.assert_array_equal(t["lift"], lifts["lift"])
    _interval_matches(t, lifts, "lower_95", "upper_95", "pct")
    assert t["95 % interval"].str.fullmatch(r"-?[\d.,]+ % to -?[\d.,]+ %").all()
    pd.testing.assert_frame_equal(lifts, before)  # the caller's result as it was
    html = report.format_table(t, pct=["lift", "treatment rate", "holdout rate"])._repr_html_()
    p = lifts["p_value"].iloc[0]
    assert (f">{p:.3f}<" if p >= 0.001 else "&lt; 0.001") in html  # read as a p-value


def test_incremental_table(results):
    attribution = results[1].attribution_
    t = A.incremental_table(attribution)
    assert list(t.columns) == ["sales added", "95 % interval", "value", "share"]
    np.testing.assert_array_equal(t["sales added"], attribution["conversions"])
    _interval_matches(t, attribution, "lower_95", "upper_95", "number")


def test_calibration_table_leaves_untested_channels_blank(results):
    calibrated = results[2]
    t = A.calibration_table(calibrated)
    assert list(t.columns) == ["calibrated", "95 % interval", "model", "experiment", "weight"]
    untested = ~calibrated["tested"].astype(bool)
    assert untested.sum() == 2
    assert t.loc[untested, ["experiment", "weight"]].isna().all().all()
    tested = ~untested
    np.testing.assert_array_equal(t.loc[tested, "weight"], calibrated.loc[tested, "weight_lift"])
    np.testing.assert_array_equal(t["calibrated"], calibrated["conversions"])
    _interval_matches(t, calibrated, "lower_95", "upper_95", "number")


def test_cost_table_says_an_unbounded_cost_in_words(results):
    economics = results[3]
    t = A.cost_table(economics)
    assert list(t.columns) == ["CAC", "95 % interval", "spend", "sales added", "ROAS"]
    _interval_matches(t, economics, "cac_lower_95", "cac_upper_95", "money")
    unbounded = np.isinf(economics["cac_upper_95"].astype(float))
    assert unbounded.any()  # this demo has a channel whose added sales may be zero
    assert t.loc[unbounded.to_numpy(), "95 % interval"].str.endswith(" or more").all()
    assert "∞" not in "".join(t["95 % interval"])


def test_a_wrong_frame_names_the_function_it_expected(results):
    with pytest.raises(ValueError, match="expected the DataFrame returned by calibrate"):
        A.calibration_table(results[0])
    with pytest.raises(ValueError, match="returned by lift_test"):
        A.lift_table(pd.DataFrame({"lift": [0.1]}))


@pytest.fixture(scope="module")
def economics():
    from crmstats import clv

    crm = simulate_crm(seed=3, n_contacts=4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = A.build_paths(crm.touchpoints, crm.conversions)
        value = clv.fit_value(crm.transactions)
        fit = clv.fit_channel_value(value.summary, crm.customers, allow_unconverged=True,
                                    on_problem="report")
    by_channel = clv.value_by_group(value.values, crm.customers, by="acquisition_channel")
    return A.channel_economics(A.MarkovAttribution().fit(paths), crm.spend, by_channel,
                               stage_events=crm.stage_events, new_customer_value=fit.values)


def test_channel_economics_split_in_two_narrow_tables(economics):
    before = economics.copy()
    acq, ret = A.acquisition_table(economics), A.return_table(economics)
    assert list(acq.columns) == ["spend", "leads", "cost per lead", "customers", "CAC"]
    assert list(ret.columns) == ["CAC", "value", "ROAS", "LTV", "LTV:CAC", "payback months"]
    assert acq.index.equals(economics.index) and "total" in ret.index
    for table, short, long in ((acq, "cost per lead", "cost_per_lead"), (acq, "CAC", "cac"),
                               (ret, "LTV:CAC", "ltv_cac")):
        np.testing.assert_array_equal(table[short], economics[long])
    assert list(ret["payback months"]) == _payback_text(economics["payback_months"])
    pd.testing.assert_frame_equal(economics, before)


def _payback_text(months):
    """What a reader should see: the first order pays back, or the months, or nothing."""
    from crmstats.formatting import MISSING, fmt_number

    return [MISSING if pd.isna(m) else "first order" if m == 0
            else "never" if m == np.inf else fmt_number(m, 3) for m in months]


def test_a_payback_at_the_first_order_is_said_in_words():
    frame = pd.DataFrame({"cac": [30.0, 80.0, 50.0, 9.0], "value": 1.0, "roas": 1.0, "ltv": 1.0,
                          "ltv_cac": 1.0, "payback_months": [0.0, 3.456, np.nan, np.inf]},
                         index=pd.Index(["email", "paid", "events", "tv"], name="channel"))
    assert list(A.return_table(frame)["payback months"]) == ["first order", "3.46", "—", "never"]


def test_new_customer_table(economics):
    new = A.new_customer_economics(economics)
    before = new.copy()
    t = A.new_customer_table(new)
    assert list(t.columns) == ["new LTV:CAC", "95 % interval", "so far", "CAC", "payback months"]
    np.testing.assert_array_equal(t["new LTV:CAC"], new["new_ltv_cac"])
    np.testing.assert_array_equal(t["so far"], new["ltv_cac"])
    assert list(t["payback months"]) == _payback_text(new["new_payback_months"])
    for text, lo, hi in zip(t["95 % interval"], new["new_ltv_cac_lower_95"],
                            new["new_ltv_cac_upper_95"], strict=True):
        if pd.isna(lo) or pd.isna(hi):
            assert text == "—"
        else:  # read as ratios, like the column: "2.26x to 3.02x"
            low, high = text.split(" to ")
            assert low.endswith("x") and high.endswith("x")
            assert float(low[:-1]) == pytest.approx(lo, rel=5e-3)
            assert float(high[:-1]) == pytest.approx(hi, rel=5e-3)
    assert t["95 % interval"].str.contains(" to ").any()
    pd.testing.assert_frame_equal(new, before)


def test_channel_value_table():
    from crmstats import clv

    crm = simulate_crm(seed=7, n_contacts=1500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = clv.fit_value(crm.transactions)
        values = clv.fit_channel_value(value.summary, crm.customers, allow_unconverged=True,
                                       on_problem="report").values
    before = values.copy()
    t = clv.channel_value_table(values)
    assert list(t.columns) == ["new CLV", "95 % interval", "purchases", "per purchase"]
    assert t.index.name == "channel" and list(t.index) == list(values.index)
    np.testing.assert_array_equal(t["new CLV"], values["clv"])
    np.testing.assert_array_equal(t["per purchase"], values["expected_spend"])
    _interval_matches(t, values, "clv_lower_95", "clv_upper_95", "money")
    pd.testing.assert_frame_equal(values, before)
    empty = clv.channel_value_table(values.iloc[:0])
    assert len(empty) == 0 and "new CLV" in empty
    with pytest.raises(ValueError, match="fit_channel_value"):
        clv.channel_value_table(values.drop(columns="clv_upper_95"))

def test_path_table_says_each_journey_in_words():
    paths = pd.DataFrame({"path": [("paid_search",), ("paid_search", "email"), ("<b>x</b>",)],
                          "conversions": [13.0, 7.0, 1.0], "value": [408.0, 158.1, 20.0],
                          "nulls": [117.0, 104.0, 3.0], "decay_conversions": [1.0, 2.0, 3.0]})
    t = A.path_table(paths, top=2)
    assert list(t.index) == ["paid search", "paid search → email"]
    assert t.index.name == "journey" and list(t.columns) == ["sales", "value", "no sale"]
    assert t["sales"].tolist() == [13.0, 7.0]
    html = report.format_table(A.path_table(paths), money="value")._repr_html_()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html  # a channel is text


def _shares():
    shares = pd.DataFrame(
        {"first touch": [0.5, 0.3, 0.2], "last touch": [0.4, 0.4, 0.2],
         "Markov (order 1)": [0.45, 0.35, 0.2], "Shapley": [0.3, 0.3, 0.4],
         "counterfactual": [np.nan, np.nan, np.nan]},
        index=pd.Index(["email", "search", "social"], name="channel"))
    return shares


def test_credit_table_shows_a_few_models_and_the_range_of_all():
    shares = _shares()
    before = shares.copy()
    t = A.credit_table(shares, show=["last touch", "Markov (order 1)", "last touch", "linear"])
    assert list(t.columns) == ["last touch", "Markov (order 1)", "range"]  # once; linear absent
    pd.testing.assert_frame_equal(t[["last touch", "Markov (order 1)"]],
                                  shares[["last touch", "Markov (order 1)"]])
    # lowest to highest over the four models with shares (counterfactual has none)
    assert t["range"].tolist() == ["30.0 % to 50.0 %", "30.0 % to 40.0 %", "20.0 % to 40.0 %"]
    pd.testing.assert_frame_equal(shares, before)
    default = A.credit_table(shares)
    assert list(default.columns) == [*A.CREDIT_MODELS, "range"]
    assert default["counterfactual"].isna().all()


def test_credit_note_names_the_models_left_out():
    shares = _shares()
    note = A.credit_note(shares)
    assert note == ("Range: the lowest to the highest share over all 4 models; the table "
                    "leaves out first touch and Shapley (the figure shows every model).")
    assert A.credit_note(shares, show=list(shares.columns)) == ""
    with pytest.raises(ValueError, match="credit_shares"):
        A.credit_table(shares.to_numpy())


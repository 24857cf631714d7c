"""CLV value, win-back and diagnostics: identities, pandas references, simulator truth."""

import numpy as np
import pandas as pd
import pytest

from crmstats.clv import (
    BetaGeoModel,
    GammaGammaModel,
    customer_lifetime_value,
    holdout_comparison,
    holdout_error,
    lapse_threshold,
    rfm_summary,
    tracking,
    winback_list,
)
from crmstats.datasets import load_cdnow, simulate_crm


@pytest.fixture(scope="module")
def models(fitted):
    return fitted["bgnbd"], fitted["gg"]


def test_clv_without_discount_is_purchases_times_spend(models, cdnow_calibration):
    bg, gg = models
    s = cdnow_calibration
    flat = customer_lifetime_value(bg, gg, s, horizon_months=12, discount_rate=0.0)
    # monthly increments telescope to the 12-month expectation
    np.testing.assert_allclose(flat["clv"], flat["expected_purchases"] * flat["expected_spend"],
                               rtol=1e-10)
    twelve_months = 12 * 365.25 / 12 / 7
    np.testing.assert_allclose(flat["expected_purchases"],
                               bg.predict_purchases(s, twelve_months), rtol=1e-12)
    discounted = customer_lifetime_value(bg, gg, s, horizon_months=12, discount_rate=0.02)
    assert (discounted["clv"] <= flat["clv"] + 1e-12).all()
    assert (discounted["clv"] >= flat["clv"] / 1.02**12 - 1e-12).all()
    longer = customer_lifetime_value(bg, gg, s, horizon_months=24, discount_rate=0.02)
    assert (longer["clv"] >= discounted["clv"] - 1e-12).all()
    assert flat.index.equals(s.index)


def test_clv_bootstrap_interval_brackets_the_estimate(models, cdnow_calibration):
    bg, gg = models
    out = customer_lifetime_value(bg, gg, cdnow_calibration, n_bootstrap=20, level=0.9, seed=3)
    assert (out["clv_lower_90"] <= out["clv_upper_90"]).all()
    inside = (out["clv_lower_90"] <= out["clv"] + 1e-9) & (out["clv"] <= out["clv_upper_90"] + 1e-9)
    assert inside.mean() > 0.9
    width = out["clv_upper_90"] - out["clv_lower_90"]
    assert (width > 0).mean() > 0.9  # refits on resamples do move the estimate


def test_winback_list_holds_only_lapsed_customers_ranked(models, cdnow_calibration):
    bg, gg = models
    s = cdnow_calibration
    out = winback_list(bg, gg, s, lapsed_after=20.0, high_priority_share=0.25)
    since = (s["T"] - s["recency"]).loc[out.index]
    assert (since >= 20.0).all()
    assert len(out) == int(((s["T"] - s["recency"]) >= 20.0).sum())
    assert out["score"].is_monotonic_decreasing
    np.testing.assert_allclose(out["p_alive"], bg.probability_alive(s.loc[out.index]))
    np.testing.assert_allclose(out["score"], out["p_alive"] * out["value_if_active"])
    high = out["priority"] == "former customer, high priority"
    assert high.sum() == int(np.ceil(0.25 * len(out)))
    assert high.iloc[: high.sum()].all()
    assert not {"name", "email", "phone"} & set(out.columns)


def test_winback_default_window_is_twice_median_interpurchase_time(models, cdnow_calibration):
    bg, gg = models
    s = cdnow_calibration
    repeat = s[s["frequency"] > 0]
    expected = 2 * (repeat["recency"] / repeat["frequency"]).median()
    assert lapse_threshold(s) == pytest.approx(expected)
    out = winback_list(bg, gg, s)
    since = s["T"] - s["recency"]
    assert set(out.index) == set(s.index[since >= expected])


def test_holdout_comparison_and_error_against_pandas(models, cdnow_calibration):
    bg, _ = models
    s = cdnow_calibration
    comp = holdout_comparison(bg, s, max_frequency=7)
    bins = s["frequency"].clip(upper=7).astype(int)
    ref = s.groupby(bins)["frequency_holdout"].agg(["size", "mean"])
    assert comp["customers"].to_numpy().tolist() == ref["size"].to_numpy().tolist()
    np.testing.assert_allclose(comp["actual"], ref["mean"])
    pred = bg.predict_purchases(s, 39.0)
    np.testing.assert_allclose(comp["predicted"], pred.groupby(bins).mean())
    err = holdout_error(bg, s)
    assert err["actual"] == s["frequency_holdout"].sum()
    assert err["predicted"] == pytest.approx(pred.sum())
    assert err["mae"] == pytest.approx(np.mean(np.abs(pred - s["frequency_holdout"])))
    assert err["total_error"] == pytest.approx((pred.sum() - err["actual"]) / err["actual"])


def test_tracking_actual_counts_equal_pandas(models):
    bg, _ = models
    tx = load_cdnow("sample")
    out = tracking(bg, tx, period="D", time_unit="W", calibration_end="1997-09-30",
                   observation_end="1998-06-30")
    # pandas reference: repeat purchase days of the calibration cohort
    days = tx.assign(day=tx["timestamp"].dt.floor("D"))[tx["amount"] >= 0]
    occ = days.drop_duplicates(["customer_id", "day"])
    first = occ.groupby("customer_id")["day"].transform("min")
    cohort = occ[first <= "1997-09-30"]
    repeats = cohort[cohort["day"] > first.loc[cohort.index]]
    for last in out.index[::5]:  # each step is labelled by the last day it includes
        assert out.loc[last, "actual_cumulative"] == (repeats["day"] <= last).sum()
    assert out["actual"].sum() == (repeats["day"] <= out.index[-1]).sum()
    assert out["expected_cumulative"].is_monotonic_increasing
    # the model tracks the actual curve within 10 % at the end of the holdout
    last = out.iloc[-1]
    assert abs(last["expected_cumulative"] / last["actual_cumulative"] - 1) < 0.1


def test_models_recover_simulated_crm_truth_within_their_intervals():
    """crmstats' own fitters recover the simulator's BG/NBD and Gamma-Gamma truth.

    Seven parameters are checked jointly, so each uses a 99 % Wald interval
    (family-wise about 93 %, a Bonferroni bound), built from the fit's
    standard errors.
    """
    big = simulate_crm(seed=11, n_contacts=80_000)
    summary = rfm_summary(big.transactions, time_unit=big.truth["time_unit_bgnbd"],
                          observation_end=big.truth["observation_end"])
    cust = big.customers.set_index("customer_id").reindex(summary.index)
    # the truth per channel is the retail segment's (key accounts buy, stay and spend more)
    s = summary[(cust["acquisition_channel"] == "paid_search") & (cust["segment"] == "retail")]
    checks = [
        (BetaGeoModel().fit(s), big.truth["bgnbd"].loc["paid_search"]),
        (GammaGammaModel().fit(s), big.truth["gamma_gamma"].loc["paid_search"]),
    ]
    for model, truth in checks:
        for name, value in truth.items():
            row = model.summary_.loc[name]
            half = 2.576 * row["std_err"]
            assert abs(row["estimate"] - value) <= half, (type(model).__name__, name)


def test_clv_inputs_are_not_modified(models, cdnow_calibration):
    bg, gg = models
    s = cdnow_calibration.copy()
    before = s.copy()
    customer_lifetime_value(bg, gg, s, horizon_months=3)
    winback_list(bg, gg, s)
    pd.testing.assert_frame_equal(s, before)


def test_tracking_labels_and_values_equal_lifetimes(models):
    """Before: each step was labelled by its exclusive end, a day after lifetimes' label."""
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import expected_cumulative_transactions

    bg, _ = models
    tx = load_cdnow("sample")
    days = tx[tx["amount"] >= 0].assign(date=tx["timestamp"].dt.floor("D"))
    ref_model = BetaGeoFitter()
    ref_model.params_ = bg.params_.copy()
    n_days = (pd.Timestamp("1998-06-30") - days["date"].min()).days
    ref = expected_cumulative_transactions(ref_model, days, "date", "customer_id",
                                           t=n_days - n_days % 7, freq="D", freq_multiplier=7,
                                           set_index_date=True)
    ours = tracking(bg, tx, period="D", time_unit="W", observation_end="1998-06-30")
    ref.index = ref.index.to_timestamp()
    common = ours.index.intersection(ref.index)
    assert len(common) == len(ref) and common[0] == ours.index[0]
    np.testing.assert_array_equal(ours.loc[common, "actual_cumulative"],
                                  ref.loc[common, "actual"])
    np.testing.assert_allclose(ours.loc[common, "expected_cumulative"],
                               ref.loc[common, "predicted"], rtol=1e-9)

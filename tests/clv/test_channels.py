"""Value of a new customer by acquisition channel from the CLV models with covariates."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

import crmstats
from crmstats import DataError, clv
from crmstats.book import findings
from crmstats.datasets.customer_effects import REFERENCE


@pytest.fixture(scope="module")
def demo():
    return crmstats.load_crm("demo:seed=2,n_contacts=12000")


@pytest.fixture(scope="module")
def channel_fit(demo):
    summary = clv.rfm_summary(demo.transactions, period="D", time_unit="W")
    return clv.fit_channel_value(summary, demo.customers, reference=dict(REFERENCE),
                                 n_draws=60, seed=1, allow_unconverged=True)


def _bgnbd_new_customer(r, alpha, a, b, t):
    """E[X(t)] of a new BG/NBD customer, FHL (2005) eq. 9, written out with scipy's 2F1."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))


def test_value_of_a_new_customer_equals_the_formula_by_hand(demo):
    truth = demo.truth
    coef = truth["clv_coefficients"].loc[["acquisition_channel[email]", "segment[key_account]"]]
    base = truth["clv_baseline"]
    tm = clv.BetaGeoModel.from_params(
        {**{k: base[k] for k in ("r", "alpha", "a", "b")},
         **{f"purchase:{c}": coef.loc[c, "purchase"] for c in coef.index},
         **{f"dropout:{c}": coef.loc[c, "dropout"] for c in coef.index}}, time_unit="W")
    sm = clv.GammaGammaModel.from_params(
        {**{k: base[k] for k in ("p", "q", "v")},
         **{f"spend:{c}": coef.loc[c, "spend"] for c in coef.index}}, time_unit="W")
    customers = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                              "acquisition_channel": ["email", "email", "social", "social"],
                              "segment": ["retail", "key_account", "retail", "retail"]})
    X = pd.DataFrame({"acquisition_channel[email]": [1.0, 1.0, 0.0, 0.0],
                      "segment[key_account]": [0.0, 1.0, 0.0, 0.0]}, index=list("abcd"))
    got = clv.channel_value(tm, sm, customers, X, horizon_months=6, discount_rate=0.02,
                            n_draws=0)
    month = 365.25 / 12 / 7

    def by_hand(x):
        g = coef.to_numpy().T @ x  # purchase, dropout, spend
        alpha = base["alpha"] * np.exp(-g[0])
        b = base["b"] * np.exp(-g[1])
        cum = [_bgnbd_new_customer(base["r"], alpha, base["a"], b, k * month) for k in range(7)]
        spend = base["p"] * base["v"] * np.exp(g[2]) / (base["q"] - 1)
        return sum((cum[k] - cum[k - 1]) / 1.02 ** k for k in range(1, 7)) * spend, cum[-1]

    email = [by_hand(np.array([1.0, 0.0])), by_hand(np.array([1.0, 1.0]))]
    social = by_hand(np.array([0.0, 0.0]))
    assert got.loc["email", "clv"] == pytest.approx((email[0][0] + email[1][0]) / 2, rel=1e-9)
    assert got.loc["social", "clv"] == pytest.approx(social[0], rel=1e-9)
    assert got.loc["social", "expected_purchases"] == pytest.approx(social[1], rel=1e-9)
    assert got.loc["email", "customers"] == 2
    assert got[["clv_lower_95", "clv_upper_95"]].isna().all().all()  # no draws asked for


def test_fit_channel_value_recovers_the_demo_truth_and_has_intervals(demo, channel_fit):
    cv = channel_fit
    coef = demo.truth["clv_coefficients"]
    assert set(cv.tests.index) == {"BG/NBD", "Gamma-Gamma"}
    assert (cv.tests["p_value"] < 1e-6).all()  # the channels do differ
    assert cv.tests.loc["Gamma-Gamma", "df"] == len(coef)
    assert cv.reference == REFERENCE
    # every true coefficient inside its 99.9 % interval (Wald, from the summaries)
    for model, processes in ((cv.transaction_model, ("purchase", "dropout")),
                             (cv.spend_model, ("spend",))):
        for process in processes:
            for c in coef.index:
                row = model.summary_.loc[f"{process}:{c}"]
                assert abs(row["estimate"] - coef.loc[c, process]) < 3.3 * row["std_err"], \
                    (process, c)
    values = cv.values
    assert (values["clv_lower_95"] <= values["clv"]).all()
    assert (values["clv"] <= values["clv_upper_95"]).all()
    assert values["customers"].sum() == len(cv.covariates)
    # multipliers are exp(coefficient), with the interval's ends
    row = cv.effects[(cv.effects["process"] == "spend per purchase")
                     & (cv.effects["covariate"] == "segment[key_account]")].iloc[0]
    est = cv.spend_model.summary_.loc["spend:segment[key_account]"]
    assert row["multiplier"] == pytest.approx(np.exp(est["estimate"]))
    assert row["multiplier_upper_95"] == pytest.approx(np.exp(est["upper_95"]))


def test_findings_and_plots(channel_fit):
    sentences = findings.customer_effects(channel_fit)
    assert sentences[0].startswith("Who the customer is (acquisition channel, segment) matters")
    assert any(s.startswith("Spend per purchase (against paid search") for s in sentences)
    best = channel_fit.values["clv"].idxmax().replace("_", " ")
    assert f"worth most from {best}" in sentences[-1]
    axes = clv.plot_customer_effects(channel_fit.effects)
    assert len(axes) == 3
    ax = clv.plot_channel_value(channel_fit.values)
    assert len(ax.patches) == len(channel_fit.values)
    plt.close("all")
    with pytest.raises(ValueError, match="customer_effects"):
        clv.plot_customer_effects(channel_fit.values)


def test_bad_input_is_refused(demo, channel_fit):
    cv = channel_fit
    with pytest.raises(DataError, match="region"):
        clv.channel_value(cv.transaction_model, cv.spend_model, demo.customers, cv.covariates,
                          by="region")
    blank = demo.customers.copy()
    blank.loc[blank.index[:3], "acquisition_channel"] = None
    with pytest.raises(DataError, match="without a value"):
        clv.channel_value(cv.transaction_model, cv.spend_model, blank, cv.covariates)
    with pytest.raises(DataError, match="covariate_frame"):
        clv.channel_value(cv.transaction_model, cv.spend_model, demo.customers,
                          cv.covariates.to_numpy())

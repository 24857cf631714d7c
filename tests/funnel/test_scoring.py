"""LeadScoringModel and look-alikes against the simulator's true drivers."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import crmstats
from crmstats import CRMStatsError, DataError, DataWarning, clv, funnel

FEATURES = ["engagement_score", "company_size_code", "industry", "job_title", "country"]


@pytest.fixture(scope="module")
def model(demo_leads):
    # baselines as in truth["qualification_encoding"]
    return funnel.LeadScoringModel(reference={"industry": "manufacturing",
                                              "job_title": "analyst"}).fit(
        demo_leads, features=FEATURES, target="qualified")


def test_lead_features_outcomes_follow_the_stages(demo, demo_leads):
    leads = demo_leads
    assert not {"name", "email", "phone"} & set(leads.columns)
    events = demo.stage_events
    assert len(leads) == events.loc[events["stage"] == "lead", "lead_id"].nunique()
    assert set(leads.index[leads["won"] == 1]) == set(events.loc[events["stage"] == "won",
                                                                 "lead_id"])
    # open leads (neither qualified nor disqualified) have no qualification outcome
    assert leads["qualified"].isna().sum() == (leads["stage"] == "lead").sum() > 0
    assert (leads.loc[leads["stage"] == "unqualified", "qualified"] == 0).all()
    assert leads.loc[leads["stage"].isin(["qualified", "opportunity"]), "won"].isna().all()
    assert (leads.loc[leads["stage"].isin(["lost", "unqualified"]), "won"] == 0).all()


def test_lead_scoring_recovers_true_drivers(demo, demo_leads, model):
    truth = demo.truth["qualification_coefficients"]
    coef = model.coefficients_
    assert model.n_unlabelled_ == int(demo_leads["qualified"].isna().sum())
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
        assert est["odds_ratio_lower_95"] < est["odds_ratio"] < est["odds_ratio_upper_95"]
    # terms the simulator gives no effect are not found significant
    null_terms = [t for t in coef.index if t not in truth.index]
    assert null_terms and (coef.loc[null_terms, "p_value"] > 0.001).all()
    # the intercept at engagement 50, the smallest company and the baselines
    z = coef.loc["intercept", "coef"] + 50 * coef.loc["engagement_score", "coef"]
    assert z == pytest.approx(truth["intercept"], abs=0.25)


def test_held_out_auc_calibration_and_bands(demo_leads, model):
    assert model.n_test_ > 0.25 * (model.n_obs_ + model.n_test_)
    assert 0.7 < model.auc_ < 0.95
    cal = model.calibration_
    assert len(cal) == 10 and cal["leads"].sum() == model.n_test_
    assert (cal["predicted"] - cal["observed"]).abs().max() < 0.06
    assert cal["observed"].is_monotonic_increasing or cal["observed"].diff().min() > -0.03
    bands = model.score_bands(demo_leads)
    shares = bands["band"].value_counts(normalize=True)
    assert shares.between(0.2, 0.3).all(), shares
    rate = bands.join(demo_leads["qualified"]).groupby("band", observed=True)["qualified"].mean()
    assert rate["A"] > rate["B"] > rate["C"] > rate["D"]
    # auc is the Mann-Whitney statistic
    ts = model.test_scores_
    u = stats.mannwhitneyu(ts.loc[ts.outcome == 1, "score"], ts.loc[ts.outcome == 0, "score"])
    n1, n0 = (ts.outcome == 1).sum(), (ts.outcome == 0).sum()
    assert model.auc_ == pytest.approx(u.statistic / (n1 * n0))


def test_predict_proba_is_the_logistic_of_the_coefficients(demo_leads, model):
    rows = demo_leads.head(50)
    p = model.predict_proba(rows)
    c = model.coefficients_["coef"]
    z = (c["intercept"] + c["engagement_score"] * rows["engagement_score"]
         + c["company_size_code"] * rows["company_size_code"]
         + rows["industry"].map(lambda v: c.get(f"industry[{v}]", 0.0))
         + rows["job_title"].map(lambda v: c.get(f"job_title[{v}]", 0.0))
         + rows["country"].map(lambda v: c.get(f"country[{v}]", 0.0)))
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z.astype(float))), rtol=1e-9)


def test_lookalikes_find_the_channels_of_valuable_customers(demo, demo_leads):
    summary = clv.rfm_summary(demo.transactions, time_unit="W")
    bg, gg = clv.BetaGeoModel().fit(summary), clv.GammaGammaModel().fit(summary)
    value = clv.customer_lifetime_value(bg, gg, summary, horizon_months=12)
    tiers = clv.value_tiers(value, {"top": 0.2, "rest": 0.8})
    customers = demo_leads[demo_leads["stage"] == "won"]
    prospects = demo_leads[demo_leads["stage"].isin(["lead", "qualified", "opportunity"])]
    before = prospects.copy()
    result = funnel.lookalike_scores(customers, prospects, value_tier=tiers,
                                     features=["channel", "industry", "company_size_code"])
    ranked = result.scores
    pd.testing.assert_frame_equal(prospects, before)
    assert ranked["score"].is_monotonic_decreasing
    assert set(ranked.index) == set(prospects.index)
    assert ranked["lift"].iloc[0] > 1.5
    # the simulator makes value depend on the acquisition channel (BG/NBD and Gamma-Gamma
    # parameters per channel): the model's channel log-odds rank channels as the truth does
    truth = demo.truth["customer_truth"]
    true_value = (truth["lambda"] * truth["alive_at_end"] * truth["mean_spend"]).groupby(
        truth["acquisition_channel"]).mean()
    coef = result.model.coefficients_["coef"]
    est = pd.Series({ch: coef.get(f"channel[{ch}]", 0.0) for ch in true_value.index})
    assert stats.spearmanr(true_value, est).statistic > 0.8
    top = prospects.loc[ranked.index[: len(ranked) // 10], "channel"]
    best = true_value.nlargest(2).index
    assert top.isin(best).mean() > 2 * prospects["channel"].isin(best).mean()


def test_scoring_bad_inputs_are_named(demo_leads):
    leads = demo_leads.head(400)
    before = leads.copy()
    with pytest.raises(DataError, match="0 or 1"):
        funnel.LeadScoringModel().fit(leads.assign(qualified=2), features=["engagement_score"])
    with pytest.raises(DataError, match="missing column"):
        funnel.LeadScoringModel().fit(leads, features=["shoe_size"])
    with pytest.raises(DataError, match="same outcome"):
        funnel.LeadScoringModel().fit(leads.assign(qualified=1), features=["engagement_score"])
    with pytest.raises(DataError, match="engagement_score.*rows"):
        bad = leads.assign(engagement_score=leads["engagement_score"].where(
            leads.index != leads.index[3]))
        funnel.LeadScoringModel().fit(bad, features=["engagement_score"])
    with pytest.raises(DataError, match="reference level 'mining'"):
        funnel.LeadScoringModel(reference={"industry": "mining"}).fit(
            leads, features=["industry"])
    with pytest.raises(CRMStatsError, match="not fitted"):
        funnel.LeadScoringModel().predict_proba(leads)
    fitted = funnel.LeadScoringModel().fit(leads, features=["industry", "engagement_score"])
    with pytest.warns(DataWarning, match="not seen in fitting"):
        fitted.predict_proba(leads.assign(industry="mining"))
    customers = leads[leads["won"] == 1]
    with pytest.raises(DataError, match="prospects table: missing column"):
        funnel.lookalike_scores(customers, leads.drop(columns=["industry"]),
                                value_tier=pd.Series("top", index=customers.index),
                                features=["industry"], top_tier="top")
    with pytest.raises(DataError, match="no customer in top tier"):
        funnel.lookalike_scores(customers, leads, value_tier=pd.Series("x", customers.index),
                                features=["industry"], top_tier="top")
    with pytest.raises(ValueError, match="top_tier"):
        funnel.lookalike_scores(customers, leads, value_tier=pd.Series("x", customers.index),
                                features=["industry"])
    pd.testing.assert_frame_equal(leads, before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        funnel.LeadScoringModel().fit(leads, features=["engagement_score"]).predict_proba(leads)


def test_penalty_keeps_separated_levels_finite(small_crm):
    leads = funnel.lead_features(small_crm)
    customers = leads[leads["stage"] == "won"].copy()
    # a level with only one outcome: every "display" customer is top tier
    top = customers["channel"].eq("display") | (customers["engagement_score"] > 70)
    tier = pd.Series(np.where(top, "top", "rest"), index=customers.index)
    with pytest.warns(crmstats.ConvergenceWarning, match="separation"):
        plain = funnel.lookalike_scores(customers, leads, value_tier=tier, top_tier="top",
                                        features=["channel", "engagement_score"])
    ridge = funnel.lookalike_scores(customers, leads, value_tier=tier, top_tier="top",
                                    features=["channel", "engagement_score"],
                                    model=funnel.LeadScoringModel(penalty=1.0))
    a = plain.model.coefficients_
    b = ridge.model.coefficients_
    assert abs(a.loc["channel[display]", "coef"]) > 10
    assert 0 < b.loc["channel[display]", "coef"] < 10
    assert np.isfinite(b[["std_err", "p_value"]].to_numpy()).all()
    slopes = [t for t in b.index if t != "intercept"]
    assert (b.loc[slopes, "coef"] ** 2).sum() < (a.loc[slopes, "coef"] ** 2).sum()

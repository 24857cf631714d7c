"""Incrementality: holdout lift tests, the counterfactual model, calibration, incremental economics.

The done-when checks of issue 16 run here on simulations with known truth
(``crm.truth["attribution_shares"]`` and ``crm.truth["channel_lift"]``).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats import attribution as A
from crmstats.datasets import simulate_crm


def _paths(crm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # conversions of journeys withheld from every channel
        return A.build_paths(crm.touchpoints, crm.conversions)


# ----------------------------------------------------------------------------- lift test


def test_two_proportion_inference_equals_statsmodels():
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        proportion_effectsize,
        proportions_ztest,
    )

    from crmstats.attribution.experiments import _two_proportions

    rng = np.random.default_rng(4)
    n_t = pd.Series(rng.integers(200, 5000, 12).astype(float))
    n_h = pd.Series(rng.integers(50, 1500, 12).astype(float))
    x_t = pd.Series(rng.binomial(n_t.astype(int), 0.09).astype(float))
    x_h = pd.Series(rng.binomial(n_h.astype(int), 0.07).astype(float))
    got = _two_proportions(x_t, n_t, x_h, n_h)
    for i in range(12):
        z, p = proportions_ztest([x_t[i], x_h[i]], [n_t[i], n_h[i]])
        assert got["p_value"][i] == pytest.approx(p, rel=1e-9)
        lo, hi = confint_proportions_2indep(x_t[i], n_t[i], x_h[i], n_h[i],
                                            method="newcomb", compare="diff")
        assert (got["lower_95"][i], got["upper_95"][i]) == pytest.approx((lo, hi), rel=1e-9)
        lo, hi = confint_proportions_2indep(x_t[i], n_t[i], x_h[i], n_h[i],
                                            method="log", compare="ratio")
        assert got["relative_lower_95"][i] == pytest.approx(lo - 1, rel=1e-9)
        assert got["relative_upper_95"][i] == pytest.approx(hi - 1, rel=1e-9)
    # power planning equals statsmodels' NormalIndPower (holdout = nobs1, ratio = treatment/holdout)
    plan = A.holdout_size([0.05, 0.08, 0.2], [0.01, 0.02, 0.03], holdout_share=0.2)
    for row in plan.itertuples():
        h = proportion_effectsize(row.baseline_rate + row.lift, row.baseline_rate)
        n1 = NormalIndPower().solve_power(abs(h), alpha=0.05, power=0.8, ratio=4.0)
        assert row.holdout_units == pytest.approx(np.ceil(n1), abs=1)
        assert row.treatment_units == pytest.approx(4 * row.holdout_units, abs=1)
    # precision planning: the Wald half-width at the planned sizes is the margin asked for
    m = A.holdout_size(0.08, 0.02, holdout_share=0.1, margin=0.01).iloc[0]
    half = 1.96 * np.sqrt(0.1 * 0.9 / m.treatment_units + 0.08 * 0.92 / m.holdout_units)
    assert half == pytest.approx(0.01, rel=0.01)


@pytest.fixture(scope="module")
def holdout_crm():
    return simulate_crm(seed=7, n_contacts=6000, holdout_share=0.2)


def test_lift_test_counts_equal_a_pandas_reference(holdout_crm):
    crm = holdout_crm
    got = A.lift_test(crm.experiments, crm.conversions)
    ref = crm.experiments.assign(
        converted=crm.experiments.journey_id.isin(crm.conversions.journey_id))
    ref = ref.groupby(["channel", "group"])["converted"].agg(["size", "sum"]).unstack()
    assert (got["treatment_units"] == ref[("size", "treatment")]).all()
    assert (got["holdout_conversions"] == ref[("sum", "holdout")]).all()
    assert np.allclose(got["incremental_conversions"], got["lift"] * got["treatment_units"])
    # withheld journeys really have no touch of their channel
    held = crm.experiments[crm.experiments.group == "holdout"]
    touched = crm.touchpoints.merge(held, on=["journey_id", "channel"])
    assert len(held) > 0 and len(touched) == 0


def test_lift_interval_covers_the_true_lift_over_10_seeds():
    """>= 90 % of channel x seed cases: the 95 % interval covers the simulator's true lift."""
    hits = []
    for seed in range(10):
        crm = simulate_crm(seed=100 + seed, n_contacts=3000, holdout_share=0.2)
        res = A.lift_test(crm.experiments, crm.conversions)
        true = crm.truth["channel_lift"]["lift"].reindex(res.index)
        hits.extend(((res["lower_95"] <= true) & (true <= res["upper_95"])).tolist())
    assert len(hits) == 80
    assert np.mean(hits) >= 0.90, np.mean(hits)


def test_lift_test_rejects_a_channel_without_holdout():
    exp = pd.DataFrame({"journey_id": ["a", "b", "c"], "channel": ["x", "x", "y"],
                        "group": ["treatment", "holdout", "treatment"]})
    conv = pd.DataFrame({"journey_id": ["a"], "timestamp": pd.Timestamp("2024-01-01"),
                         "value": [1.0]})
    before = exp.copy()
    with pytest.raises(DataError, match="'y'.*treatment or in the holdout"):
        A.lift_test(exp, conv)
    pd.testing.assert_frame_equal(exp, before)
    with pytest.raises(DataError, match="group"):
        A.lift_test(exp.assign(group="control"), conv)


def test_a_conversion_before_the_experiment_started_does_not_count():
    exp = pd.DataFrame({"journey_id": ["a", "b", "c", "d"], "channel": "x",
                        "group": ["treatment", "treatment", "holdout", "holdout"],
                        "started_at": pd.Timestamp("2024-02-01")})
    conv = pd.DataFrame({"journey_id": ["a", "b"], "value": [1.0, 1.0],
                         "timestamp": pd.to_datetime(["2024-01-15", "2024-02-02"])})
    res = A.lift_test(exp, conv)
    assert res.loc["x", "treatment_conversions"] == 1
    assert res.loc["x", "lift"] == pytest.approx(0.5)


# ----------------------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def default_demo():
    return simulate_crm(seed=1)


def test_counterfactual_model_beats_every_journey_model_on_the_default_demo(default_demo):
    """Issue goal: within 2 share points of the truth on average (journey models: 4.9-5.4).

    Issue 24's figures (link="auto", contacts, untouched journeys, holdout 0.1): median 2.09
    points over seeds 201-208, 2.3 on seed 1 (benchmarks/incrementality.py; mostly sampling
    noise of ~3,400 conversions). This test (seed 1 without holdouts, no covariates) holds
    the model to under 2.5 points and at most half the best journey model's error.
    """
    crm = default_demo
    paths = _paths(crm)
    truth = crm.truth["attribution_shares"]
    model = A.IncrementalityModel(features="counts", n_bootstrap=20).fit(paths)
    journey = {
        "last touch": A.heuristic(paths, "last_touch"),
        "linear": A.heuristic(paths, "linear"),
        "Markov": A.MarkovAttribution().fit(paths),
        "Shapley": A.ShapleyAttribution().fit(paths),
    }
    err = A.share_error(A.credit_shares({**journey, "incrementality": model}), truth)["mae"]
    assert err["incrementality"] < 0.025
    assert err["incrementality"] < 0.5 * err.drop("incrementality").min()
    att = model.attribution_
    assert att["share"].sum() == pytest.approx(1.0)
    assert (att["lower_95"] <= att["conversions"]).all()
    assert (att["conversions"] <= att["upper_95"]).all()
    assert model.n_obs_ == int(paths.conversions.sum() + paths.nulls.sum())
    assert {"estimate", "std_err", "lower_95", "upper_95", "p_value"} <= set(model.summary_)


def test_counterfactual_model_recovers_known_logistic_effects():
    """Journeys drawn from a logistic model: incremental conversions equal the true ones."""
    rng = np.random.default_rng(2)
    chans = ["a", "b", "c"]
    beta = {"a": 0.8, "b": 0.0, "c": -0.3}
    rows, true_inc = {}, dict.fromkeys(chans, 0.0)
    for _ in range(60_000):
        present = [c for c in chans if rng.random() < 0.5] or ["a"]
        eta = -2.0 + sum(beta[c] for c in present)
        p = 1 / (1 + np.exp(-eta))
        for c in present:
            true_inc[c] += p - 1 / (1 + np.exp(-(eta - beta[c])))
        conv = rng.random() < p
        key = tuple(present)
        c0, n0 = rows.get(key, (0, 0))
        rows[key] = (c0 + conv, n0 + (not conv))
    paths = pd.DataFrame([(k, c, float(c), n) for k, (c, n) in rows.items()],
                         columns=["path", "conversions", "value", "nulls"])
    model = A.IncrementalityModel(n_bootstrap=50, seed=1).fit(paths)
    got = model.attribution_
    for c in chans:
        assert got.loc[c, "lower_95"] - 60 <= true_inc[c] <= got.loc[c, "upper_95"] + 60
    assert got.loc["a", "conversions"] == pytest.approx(true_inc["a"], rel=0.15)
    assert abs(got.loc["b", "conversions"]) < 0.2 * true_inc["a"]
    assert model.summary_.loc["a", "estimate"] == pytest.approx(0.8, abs=0.08)


def test_counterfactual_model_follows_the_estimator_contract(random_paths):
    from crmstats import NotFittedError
    from crmstats.estimator import SUMMARY_COLUMNS

    model = A.IncrementalityModel(n_bootstrap=0)
    with pytest.raises(NotFittedError):
        _ = model.shares_
    assert model.fit(random_paths) is model
    assert tuple(model.summary_.columns) == SUMMARY_COLUMNS
    assert model.n_obs_ == int(random_paths.conversions.sum() + random_paths.nulls.sum())


def test_counterfactual_model_needs_non_converting_journeys(random_paths):
    with pytest.raises(DataError, match="nulls"):
        A.IncrementalityModel(n_bootstrap=0).fit(random_paths.assign(nulls=0))
    with pytest.raises(ValueError, match="features"):
        A.IncrementalityModel(features="bogus", n_bootstrap=0).fit(random_paths)


def test_a_thin_channel_gets_the_ridge_fit(random_paths):
    thin = pd.concat([random_paths, pd.DataFrame({"path": [("a", "z")], "conversions": [1],
                                                  "value": [5.0], "nulls": [0]})])
    model = A.IncrementalityModel(n_bootstrap=0).fit(thin)
    assert model.penalised_
    assert np.isfinite(model.attribution_["conversions"]).all()


# ----------------------------------------------------------------------------- calibration


def _lift_frame(values, ses):
    return pd.DataFrame({"incremental_conversions": values, "incremental_std_err": ses})


def test_calibration_moves_tested_channels_toward_their_lift_and_keeps_the_rest():
    model = pd.DataFrame({"conversions": [100.0, 50.0, 30.0, 20.0], "value": 0.0,
                          "share": [0.5, 0.25, 0.15, 0.1], "std_err": [5.0, 5.0, 5.0, 5.0]},
                         index=pd.Index(["a", "b", "c", "d"], name="channel"))
    lifts = _lift_frame([40.0, 80.0], [10.0, 10.0]).set_axis(["a", "b"])
    cal = A.calibrate(model, lifts)
    for c in ("a", "b"):  # strictly between the model and the measured lift
        lo, hi = sorted([model.loc[c, "conversions"], lifts.loc[c, "incremental_conversions"]])
        assert lo < cal.loc[c, "conversions"] < hi
        assert cal.loc[c, "std_err"] < 10.0  # more precise than the experiment alone
    # the models disagree with the experiments by far more than their errors: the lift dominates
    assert (cal.loc[["a", "b"], "weight_lift"] > 0.5).all()
    assert cal.loc["c", "conversions"] == 30.0 and cal.loc["d", "conversions"] == 20.0
    assert cal.loc[["c", "d"], "share"].tolist() == pytest.approx(
        [30 / cal["conversions"].sum(), 20 / cal["conversions"].sum()])
    assert cal["share"].sum() == pytest.approx(1.0)
    # when the model agrees with the experiments and was fitted on their journeys, it already
    # holds their information: it is kept as it is, as precise as it was
    agree = A.calibrate(model, _lift_frame([100.0], [5.0]).set_axis(["a"]))
    assert agree.loc["a", "model_bias"] == 0.0
    assert agree.loc["a", "conversions"] == pytest.approx(100.0)
    assert agree.loc["a", "std_err"] == pytest.approx(5.0)
    # experiments run apart from the model's data: the precision-weighted mean
    apart = A.calibrate(model, _lift_frame([95.0], [5.0]).set_axis(["a"]), shared_journeys=False)
    assert apart.loc["a", "model_bias"] == 0.0
    assert apart.loc["a", "conversions"] == pytest.approx(97.5)
    assert apart.loc["a", "std_err"] == pytest.approx(5 / np.sqrt(2))


def test_calibration_of_shares_puts_them_on_the_lift_scale():
    shares = pd.Series({"a": 0.5, "b": 0.3, "c": 0.2})
    cal = A.calibrate(shares, _lift_frame([60.0, 30.0], [1e-9, 1e-9]).set_axis(["a", "b"]))
    # exact experiments win; they disagree with the shares (120 and 100 lift per share), so the
    # model's error is all relative and the scale is the mean ratio, 110 per unit of share; the
    # untested channel gets its share on that scale
    assert cal.loc["a", "conversions"] == pytest.approx(60.0)
    assert cal.loc["b", "conversions"] == pytest.approx(30.0)
    assert cal["model_scale"].iloc[0] == pytest.approx(110.0, rel=1e-4)
    assert cal.loc["c", "conversions"] == pytest.approx(0.2 * 110.0, rel=1e-4)
    with pytest.raises(DataError, match="'?zz'? ?.*not in the model|zz"):
        A.calibrate(shares, _lift_frame([1.0], [1.0]).set_axis(["zz"]))


def test_calibrated_credit_wins_under_confounding():
    """confounding=0.5: calibrated credit is closer to the truth than every journey model and
    than the uncalibrated counterfactual model (fixed seed; multi-seed figures in
    benchmarks/README.md)."""
    crm = simulate_crm(seed=1, holdout_share=0.2, confounding=0.5)
    paths = _paths(crm)
    truth = crm.truth["attribution_shares"]
    lifts = A.lift_test(crm.experiments, crm.conversions)
    markov = A.MarkovAttribution().fit(paths)
    model = A.IncrementalityModel(n_bootstrap=20).fit(paths)
    models = {
        "first touch": A.heuristic(paths, "first_touch"),
        "last touch": A.heuristic(paths, "last_touch"),
        "linear": A.heuristic(paths, "linear"),
        "position based": A.heuristic(paths, "position_based"),
        "Markov": markov,
        "Shapley": A.ShapleyAttribution().fit(paths),
        "counterfactual": model,
        "calibrated": A.calibrate(markov, lifts),
        "calibrated counterfactual": A.calibrate(model, lifts),
    }
    err = A.share_error(A.credit_shares(models), truth)["mae"]
    assert err.drop("calibrated counterfactual").idxmin() == "calibrated", err
    # retargeting fools the counterfactual model most; the experiments pull it back
    assert err["calibrated counterfactual"] < 0.75 * err["counterfactual"]


def test_incremental_economics_prices_calibrated_credit(holdout_crm):
    crm = holdout_crm
    paths = _paths(crm)
    model = A.IncrementalityModel(n_bootstrap=20).fit(paths)
    cal = A.calibrate(model, A.lift_test(crm.experiments, crm.conversions))
    eco = A.incremental_economics(cal, crm.spend)
    ch = cal.index
    assert eco.loc["total", "spend"] == pytest.approx(crm.spend.cost.sum())
    pos = cal["conversions"] > 0
    want = eco.loc[ch[pos], "spend"] / cal.loc[ch[pos], "conversions"]
    assert np.allclose(eco.loc[ch[pos], "incremental_cac"], want)
    assert np.allclose(eco.loc[ch, "incremental_roas"],
                       cal.loc[ch, "value"] / eco.loc[ch, "spend"])
    inside = eco.loc[ch[cal["lower_95"] > 0]]
    assert ((inside["cac_lower_95"] <= inside["incremental_cac"])
            & (inside["incremental_cac"] <= inside["cac_upper_95"])).all()


def test_experiment_data_runs_the_demo_with_holdouts_and_requires_experiments():
    crm = A.experiment_data("demo:seed=3,n_contacts=2000", demo_holdout_share=0.2)
    assert crm.source == "demo:seed=3,n_contacts=2000,holdout_share=0.2"
    assert crm.experiments is not None
    kept = A.experiment_data("demo:seed=3,n_contacts=2000,holdout_share=0.05")
    assert kept.source.endswith("holdout_share=0.05")
    with pytest.raises(DataError, match="experiments"):
        A.experiment_data(simulate_crm(seed=3, n_contacts=2000))


def test_key_findings_are_written_from_the_results(holdout_crm):
    from crmstats.book import findings

    crm = holdout_crm
    paths = _paths(crm)
    lifts = A.lift_test(crm.experiments, crm.conversions)
    # Markov's credit calibrated on these 6,000 journeys has a total of 12 +- 40 conversions:
    # too few sales to give shares (test_incrementality_small); the model's calibration has
    cal = A.calibrate(A.IncrementalityModel(n_bootstrap=30).fit(paths), lifts)
    eco = A.incremental_economics(cal, crm.spend)
    shares = A.credit_shares({"linear": A.heuristic(paths, "linear")})["linear"]
    text = findings.incrementality(lifts, cal, eco, journey_shares=shares)
    assert 3 <= len(text) <= 5
    top = cal["share"].idxmax().replace("_", " ")
    assert any(f"{top} adds the most" in t for t in text)
    n_sig = int(((lifts["p_value"] < 0.05) & (lifts["lift"] > 0)).sum())
    assert text[0].startswith(f"Of {len(lifts)} channels tested with holdouts, {n_sig} raise")


COVARIATES = ["engagement_score", "company_size", "industry", "job_title"]


def test_paths_by_contact_columns_sum_back_to_the_plain_paths(holdout_crm):
    crm = holdout_crm
    plain = _paths(crm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts,
                              by=COVARIATES)
    assert len(cells) > len(plain)
    summed = cells.groupby("path")[["conversions", "nulls", "value"]].sum()
    ref = plain.set_index("path")[["conversions", "nulls", "value"]]
    pd.testing.assert_frame_equal(summed.sort_index(), ref.sort_index(), check_exact=False)
    # journey models read such rows as the plain paths
    pd.testing.assert_frame_equal(A.MarkovAttribution().fit(cells).attribution_,
                                  A.MarkovAttribution().fit(plain).attribution_)
    with pytest.raises(DataError, match="contacts"):
        A.build_paths(crm.touchpoints, crm.conversions, by=["industry"])
    with pytest.raises(DataError, match="'shoe_size'"):
        A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts,
                      by=["shoe_size"])
    with pytest.raises(DataError, match="covariate"):
        A.IncrementalityModel(n_bootstrap=0, covariates=["industry"]).fit(plain)


def test_adjusting_for_the_contact_undoes_retargeting():
    """confounding=0.5: exposure to paid channels follows the contact's propensity; with the
    contacts' features as covariates the counterfactual model is closer to the truth than
    without them and than every journey model (seed 1 at 20,000 contacts: 1.8 vs 7.7 and
    5.0-5.4 points; at 40,000: 2.95 vs 10.2 and 4.8-5.4)."""
    crm = simulate_crm(seed=1, n_contacts=20_000, confounding=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts,
                              by=COVARIATES)
    truth = crm.truth["attribution_shares"]
    models = {
        "last touch": A.heuristic(cells, "last_touch"),
        "linear": A.heuristic(cells, "linear"),
        "Markov": A.MarkovAttribution().fit(cells),
        "Shapley": A.ShapleyAttribution().fit(cells),
        "counterfactual": A.IncrementalityModel(n_bootstrap=0).fit(cells),
        "adjusted": A.IncrementalityModel(n_bootstrap=0, covariates=COVARIATES).fit(cells),
    }
    err = A.share_error(A.credit_shares(models), truth)["mae"]
    assert err.idxmin() == "adjusted", err
    assert err["adjusted"] < 0.5 * err["counterfactual"]
    summary = models["adjusted"].summary_
    assert summary.loc["engagement_score", "estimate"] > 0  # likely buyers convert more


def test_calibrated_adjusted_credit_beats_journey_models_under_confounding():
    """confounding=0.5, holdout_share=0.2: the contact-adjusted counterfactual model calibrated
    by the lift tests is closer to the truth than every journey model and than the unadjusted,
    uncalibrated model (seed 1 at 20,000 contacts: 2.4 vs 4.7-5.2 and 6.5 points; over seeds
    1-5 at 40,000: 3.6 vs 4.9-5.4 and 6.7 — benchmarks/README.md)."""
    crm = simulate_crm(seed=1, n_contacts=20_000, holdout_share=0.2, confounding=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts,
                              by=COVARIATES)
    lifts = A.lift_test(crm.experiments, crm.conversions)
    adjusted = A.IncrementalityModel(n_bootstrap=30, covariates=COVARIATES).fit(cells)
    models = {
        "first touch": A.heuristic(cells, "first_touch"),
        "last touch": A.heuristic(cells, "last_touch"),
        "linear": A.heuristic(cells, "linear"),
        "position based": A.heuristic(cells, "position_based"),
        "Markov": A.MarkovAttribution().fit(cells),
        "Shapley": A.ShapleyAttribution().fit(cells),
        "counterfactual": A.IncrementalityModel(n_bootstrap=0).fit(cells),
        "calibrated": A.calibrate(adjusted, lifts),
    }
    err = A.share_error(A.credit_shares(models), crm.truth["attribution_shares"])["mae"]
    assert err.idxmin() == "calibrated", err


def test_attribution_heuristic_is_the_function_whatever_was_imported_first():
    """The lazy package exports must not let the heuristic submodule shadow the function."""
    import subprocess
    import sys

    for first in ("import crmstats.attribution.heuristic",
                  "from crmstats import attribution; attribution.HEURISTIC_MODELS"):
        code = f"{first}\nfrom crmstats import attribution\nprint(callable(attribution.heuristic))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == "True", (first, out.stdout, out.stderr)


def test_n_boot_is_the_deprecated_name_of_n_bootstrap(random_paths):
    with pytest.warns(DeprecationWarning, match="n_bootstrap"):
        old = A.IncrementalityModel(n_boot=3)
    assert old.n_bootstrap == 3
    with pytest.warns(DeprecationWarning, match="n_bootstrap"):
        assert old.n_boot == 3
    new = A.IncrementalityModel(n_bootstrap=3).fit(random_paths)
    data = new.to_dict()
    assert data["hyperparameters"]["n_bootstrap"] == 3 and "n_boot" not in data["hyperparameters"]
    # a model file written before the rename still loads
    hyper = {("n_boot" if k == "n_bootstrap" else k): v
             for k, v in data["hyperparameters"].items()}
    back = A.IncrementalityModel.from_dict({**data, "hyperparameters": hyper})
    assert back.n_bootstrap == 3
    pd.testing.assert_frame_equal(back.attribution_, new.attribution_)

"""The counterfactual model's noisy-OR link, untouched journeys, and calibration's weights.

Issue 24: the counterfactual model within 2 points of the true incremental shares and
calibrated credit that the experiments improve. Multi-seed figures: benchmarks/incrementality.py.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats import attribution as A
from crmstats.attribution import noisy_or as N
from crmstats.datasets import simulate_crm


def _noisy_or_paths(seed=3, n=60_000):
    """Journeys drawn from a noisy-OR with an in-market chance on one covariate (known truth)."""
    rng = np.random.default_rng(seed)
    chans = ["a", "b", "c"]
    hazard = {"a": 0.6, "b": 0.0, "c": 0.25}
    rows, true_inc = {}, dict.fromkeys(chans, 0.0)
    for _ in range(n):
        present = [c for c in chans if rng.random() < 0.45] or ["c"]
        segment = "big" if rng.random() < 0.4 else "small"
        a = 0.6 if segment == "big" else 0.25  # chance to be in the market
        s = sum(hazard[c] for c in present)
        p = a * (1 - 0.8 * np.exp(-s))
        for c in present:
            true_inc[c] += a * 0.8 * (np.exp(-(s - hazard[c])) - np.exp(-s))
        conv = rng.random() < p
        key = (tuple(present), segment)
        c0, n0 = rows.get(key, (0, 0))
        rows[key] = (c0 + conv, n0 + (not conv))
    paths = pd.DataFrame([(k, seg, c, float(c), m) for (k, seg), (c, m) in rows.items()],
                         columns=["path", "segment", "conversions", "value", "nulls"])
    return paths, pd.Series(true_inc)


def test_noisy_or_link_recovers_known_effects_and_auto_chooses_it():
    paths, true_inc = _noisy_or_paths()
    model = A.IncrementalityModel(link="noisy_or", covariates=["segment"], n_bootstrap=200,
                                  seed=2).fit(paths)
    got = model.attribution_
    assert model.link_ == "noisy_or" and model.converged_
    for c in true_inc.index:  # the 95 % interval covers the truth (+-10 for the zero effect)
        assert got.loc[c, "lower_95"] - 10 <= true_inc[c] <= got.loc[c, "upper_95"] + 10
    assert got.loc["a", "conversions"] == pytest.approx(true_inc["a"], rel=0.1)
    # the parameters within 3 standard errors (the in-market chance and the hazards trade off:
    # the increments are better determined than the parameters)
    true = {"a": 0.6, "b": 0.0, "c": 0.25, "baseline": np.log(0.2 / 0.8),
            "segment[small]": np.log(0.25 / 0.75) - np.log(0.6 / 0.4)}
    s = model.summary_
    for term, value in true.items():
        assert abs(s.loc[term, "estimate"] - value) < 3 * s.loc[term, "std_err"] + 1e-6, term
    assert list(model.summary_.index[[0, -1]]) == ["intercept", "baseline"]
    auto = A.IncrementalityModel(covariates=["segment"], n_bootstrap=0).fit(paths)
    assert auto.link_ == "noisy_or"
    assert auto.log_likelihood_ > A.IncrementalityModel(
        link="logit", covariates=["segment"], n_bootstrap=0).fit(paths).log_likelihood_


def test_auto_link_keeps_the_logistic_model_on_logistic_journeys(random_paths):
    rng = np.random.default_rng(4)
    rows = {}
    for _ in range(40_000):
        present = tuple(c for c in "abc" if rng.random() < 0.5) or ("a",)
        eta = -3.0 + 1.2 * ("a" in present) + 1.0 * ("b" in present) + 0.8 * ("c" in present)
        conv = rng.random() < 1 / (1 + np.exp(-eta))
        c0, n0 = rows.get(present, (0, 0))
        rows[present] = (c0 + conv, n0 + (not conv))
    paths = pd.DataFrame([(k, c, float(c), n) for k, (c, n) in rows.items()],
                         columns=["path", "conversions", "value", "nulls"])
    model = A.IncrementalityModel(n_bootstrap=0).fit(paths)
    assert model.link_ == "logit"
    with pytest.raises(ValueError, match="link"):
        A.IncrementalityModel(link="probit", n_bootstrap=0).fit(random_paths)


def test_noisy_or_jacobian_equals_central_differences():
    rng = np.random.default_rng(0)
    m, k, p = 400, 4, 2
    x = (rng.random((m, 2 * k)) < 0.4).astype(float)
    x[:, k:] *= rng.random((m, k))
    z = rng.normal(size=(m, p))
    trials = rng.integers(1, 5, m).astype(float)
    theta = np.r_[0.2, rng.random(2 * k) * 0.3, rng.normal(size=p) * 0.3, -1.0]
    jac = N.noisy_or_jacobian(theta, x, z, trials, k, 2)
    for j in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[j] += 1e-6
        down[j] -= 1e-6
        num = (N.noisy_or_increments(up, x, z, trials, k, 2)
               - N.noisy_or_increments(down, x, z, trials, k, 2)) / 2e-6
        assert np.allclose(jac[:, j], num, rtol=1e-5, atol=1e-6)


def test_a_noisy_or_model_is_kept_and_loaded(tmp_path):
    paths, _ = _noisy_or_paths(n=8000)
    model = A.IncrementalityModel(link="noisy_or", covariates=["segment"],
                                  n_bootstrap=20).fit(paths)
    model.save(tmp_path / "m.json")
    back = A.IncrementalityModel.load(tmp_path / "m.json")
    assert back.link_ == "noisy_or"
    pd.testing.assert_frame_equal(back.attribution_, model.attribution_, check_exact=False)


@pytest.fixture(scope="module")
def holdout_crm():
    return simulate_crm(seed=7, n_contacts=6000, holdout_share=0.2)


def test_untouched_journeys_count_equals_a_pandas_reference(holdout_crm):
    crm = holdout_crm
    got = A.untouched_journeys(crm.experiments, crm.touchpoints, crm.conversions,
                               contacts=crm.contacts, by=["industry"])
    ids = set(crm.experiments.journey_id) - set(crm.touchpoints.journey_id)
    ref = crm.contacts[crm.contacts.contact_id.isin(ids)][["contact_id", "industry"]]
    conv = crm.conversions.groupby("journey_id")["value"].sum()
    ref = ref.assign(conversions=ref.contact_id.isin(conv.index).astype(int),
                     value=ref.contact_id.map(conv).fillna(0.0))
    want = ref.groupby("industry").agg(conversions=("conversions", "sum"),
                                       value=("value", "sum"), n=("contact_id", "size"))
    got = got.set_index("industry").sort_index()
    assert len(ids) > 100  # journeys withheld from every channel they were planned to get
    assert (got["conversions"] == want["conversions"]).all()
    assert (got["nulls"] == want["n"] - want["conversions"]).all()
    assert np.allclose(got["value"], want["value"])
    plain = A.untouched_journeys(crm.experiments, crm.touchpoints, crm.conversions)
    assert plain["conversions"].sum() == want["conversions"].sum()


def test_the_model_takes_untouched_journeys_and_names_a_bad_table(holdout_crm):
    crm = holdout_crm
    by = ["industry", "engagement_score"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts, by=by)
    untouched = A.untouched_journeys(crm.experiments, crm.touchpoints, crm.conversions,
                                     contacts=crm.contacts, by=by)
    model = A.IncrementalityModel(covariates=by, n_bootstrap=0).fit(cells, untouched=untouched)
    extra = int(untouched["conversions"].sum() + untouched["nulls"].sum())
    assert model.n_obs_ == int(cells.conversions.sum() + cells.nulls.sum()) + extra
    with pytest.raises(DataError, match="untouched.*'engagement_score'"):
        A.IncrementalityModel(covariates=by, n_bootstrap=0).fit(
            cells, untouched=untouched.drop(columns="engagement_score"))
    with pytest.raises(DataError, match="untouched.*'industry'.*'mining'"):
        A.IncrementalityModel(covariates=by, n_bootstrap=0).fit(
            cells, untouched=untouched.assign(industry="mining"))


# ----------------------------------------------------------------------------- calibration


def _draws(rng, theta, v_model, v_lift, bias):
    """A model estimate and a lift test sharing journeys: an efficient model's errors."""
    e_model = rng.normal(0.0, np.sqrt(v_model))
    extra = rng.normal(0.0, np.sqrt(v_lift - v_model))  # the lift's error beyond the model's
    return theta * (1 + bias) + e_model, theta + e_model + extra


def test_calibration_does_not_pull_a_right_model_toward_noisier_shared_experiments():
    """The model is unbiased and efficient; the experiments use the same journeys (their
    errors are the model's plus noise of their own): in at least 90 % of 300 draws the
    experiments do not contradict the model and calibration keeps it as it is (weighting
    them as independent moved every draw by a fifth toward the noisier lifts)."""
    rng = np.random.default_rng(11)
    theta = np.array([300.0, 150.0, 120.0, 110.0, 100.0, 60.0, 30.0, 20.0])
    v_model = (0.12 * theta) ** 2
    v_lift = 4 * v_model
    kept = 0
    for _ in range(300):
        m, lift = _draws(rng, theta, v_model, v_lift, 0.0)
        frame = pd.DataFrame({"conversions": m, "share": m / m.sum(),
                              "std_err": np.sqrt(v_model)}, index=list("abcdefgh"))
        tests = pd.DataFrame({"incremental_conversions": lift,
                              "incremental_std_err": np.sqrt(v_lift)}, index=list("abcdefgh"))
        cal = A.calibrate(frame, tests)
        kept += bool(np.allclose(cal["conversions"], m) and (cal["weight_lift"] == 0).all())
    assert kept >= 270


def test_calibration_corrects_a_biased_model():
    """The model is off by +-40 % on the channels: calibrated credit is closer than the model
    and than the lift tests alone (mean squared error over 200 draws)."""
    rng = np.random.default_rng(12)
    theta = np.array([300.0, 150.0, 120.0, 110.0, 100.0, 60.0, 30.0, 20.0])
    bias = np.array([0.4, -0.4, 0.4, -0.4, 0.4, -0.4, 0.4, -0.4])
    v_model = (0.05 * theta) ** 2
    v_lift = (0.2 * theta) ** 2
    sq = np.zeros(3)
    for _ in range(200):
        m, lift = _draws(rng, theta, v_model, v_lift, bias)
        frame = pd.DataFrame({"conversions": m, "share": m / m.sum(),
                              "std_err": np.sqrt(v_model)}, index=list("abcdefgh"))
        tests = pd.DataFrame({"incremental_conversions": lift,
                              "incremental_std_err": np.sqrt(v_lift)}, index=list("abcdefgh"))
        cal = A.calibrate(frame, tests)
        sq += [np.sum((m - theta) ** 2), np.sum((lift - theta) ** 2),
               np.sum((cal["conversions"].to_numpy() - theta) ** 2)]
    assert sq[2] < 0.5 * sq[0]
    assert sq[2] < sq[1]

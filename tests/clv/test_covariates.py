"""BG/NBD and Pareto/NBD with time-invariant covariates: invariants, predictions, errors, files."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import CRMStatsError, DataError, clv
from crmstats.clv import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel

MODELS = [BetaGeoModel, ParetoNBDModel, ModifiedBetaGeoModel]


def simulate_shop(seed=13, n=3000):
    """A simulated shop (weeks) where channel shifts the purchase rate and dropout.

    BG/NBD process: rate ~ Gamma(0.8, alpha_i), dropout after each purchase with
    p ~ Beta(0.9, b_i); alpha_i = 4 exp(-0.5 paid), b_i = 3 exp(-0.7 paid); region
    has no effect.
    """
    rng = np.random.default_rng(seed)
    paid = (rng.random(n) < 0.4).astype(float)
    region = rng.choice(["north", "south", "west"], n)
    alpha = 4.0 * np.exp(-0.5 * paid)
    b = 3.0 * np.exp(-0.7 * paid)
    lam = rng.gamma(0.8, 1 / alpha)
    p = rng.beta(0.9, b)
    T = rng.uniform(20, 52, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T[i]:
                break
            x[i] += 1
            tx[i] = t
            if rng.random() < p[i]:
                break
    T = np.round(T * 7) / 7  # whole days, in weeks
    tx = np.minimum(np.ceil(tx * 7) / 7, T)
    ids = pd.Index([f"C{i:05d}" for i in range(n)], name="customer_id")
    summary = clv.with_units(pd.DataFrame({"frequency": x, "recency": tx, "T": T}, index=ids),
                             period="D", time_unit="W")
    customers = pd.DataFrame({"customer_id": ids, "channel": np.where(paid > 0, "paid", "organic"),
                              "region": region, "age": rng.integers(18, 80, n)})
    return summary, customers


#: The simulated shop's true coefficients (BetaGeoModel's names).
TRUTH = {"purchase:channel[paid]": 0.5, "dropout:channel[paid]": 0.7,
         "purchase:region[south]": 0.0, "purchase:region[west]": 0.0,
         "dropout:region[south]": 0.0, "dropout:region[west]": 0.0}


@pytest.fixture(scope="module")
def shop():
    return simulate_shop()


@pytest.fixture(scope="module")
def X(shop):
    _, customers = shop
    return clv.covariate_frame(customers, ["channel", "region"],
                               reference={"channel": "organic", "region": "north"})


@pytest.mark.parametrize("cls", MODELS)
def test_zero_coefficients_give_the_model_without_covariates(shop, X, cls):
    summary, _ = shop
    plain = cls().fit(summary)
    params = {**plain.params_.to_dict(), **{f"{p}:{c}": 0.0 for p in ("purchase", "dropout")
                                            for c in X.columns}}
    zero = cls.from_params(params, time_unit="W")
    ll_plain = plain.log_likelihood(summary)
    assert zero.log_likelihood(summary, covariates=X) == pytest.approx(ll_plain, abs=1e-9)
    new = X.iloc[:40]
    for got, want in [
        (zero.predict_purchases(summary, 13, covariates=X), plain.predict_purchases(summary, 13)),
        (zero.probability_alive(summary, covariates=X), plain.probability_alive(summary)),
        (zero.expected_purchases(26, covariates=new).to_numpy(),
         np.full(len(new), plain.expected_purchases(26))),
    ]:
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel,
                                 pytest.param(ParetoNBDModel, marks=pytest.mark.slow)])
def test_covariates_never_lower_the_likelihood_and_are_tested(shop, X, cls):
    summary, _ = shop
    plain = cls().fit(summary)
    rng = np.random.default_rng(5)
    noise = pd.DataFrame({"noise": rng.normal(size=len(X))}, index=X.index)
    for covs in (X, noise):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = cls().fit(summary, covariates=covs)
        assert model.log_likelihood_ >= plain.log_likelihood_ - 1e-9
        lr = model.lr_test_
        assert lr["log_likelihood_null"] == pytest.approx(plain.log_likelihood_, abs=1e-9)
        assert lr["statistic"] == pytest.approx(
            2 * (model.log_likelihood_ - plain.log_likelihood_))
        assert lr["df"] == 2 * covs.shape[1]
    # the channel's effect is found (simulated: +0.5 on purchase, +0.7 on dropout)
    fitted = cls().fit(summary, covariates=X)
    assert fitted.lr_test_["p_value"] < 1e-6
    assert fitted.summary_.loc["purchase:channel[paid]", "p_value"] < 1e-3
    assert list(fitted.summary_.columns) == ["estimate", "std_err", "lower_95", "upper_95",
                                             "p_value"]


def test_bgnbd_recovers_the_simulated_coefficients(shop, X):
    summary, _ = shop
    model = BetaGeoModel().fit(summary, covariates=X)
    sm = model.summary_
    for name in ("purchase:channel[paid]", "dropout:channel[paid]", "purchase:region[south]",
                 "dropout:region[west]"):
        assert sm.loc[name, "lower_95"] < TRUTH[name] < sm.loc[name, "upper_95"], name
    assert model.converged_ and model.boundary_ is None


@pytest.mark.slow
def test_intervals_cover_the_true_coefficients_over_seeds():
    """The issue's goal: >= 90 % of the true coefficients inside their 95 % interval.

    Ten seeds (the goal asks for at least five): 56 of 60 when written; the first five
    alone gave 26 of 30, z-scores of the misses -2.5, -2.1, -2.1, -2.0.
    """
    inside = []
    for seed in range(10):
        summary, customers = simulate_shop(seed=100 + seed)
        X = clv.covariate_frame(customers, ["channel", "region"],
                                reference={"channel": "organic", "region": "north"})
        sm = BetaGeoModel().fit(summary, covariates=X).summary_
        inside += [sm.loc[n, "lower_95"] < v < sm.loc[n, "upper_95"] for n, v in TRUTH.items()]
    assert np.mean(inside) >= 0.9, f"{sum(inside)} of {len(inside)}"


def test_predictions_use_each_customers_covariates(shop, X):
    summary, _ = shop
    model = BetaGeoModel().fit(summary, covariates=X)
    kept = model.predict_purchases(summary, 13)
    given = model.predict_purchases(summary, 13, covariates=X)
    pd.testing.assert_series_equal(kept, given)
    # one customer by hand: its own alpha and b
    cid = X.index[X["channel[paid]"] == 1][0]
    p = model.params_
    z = X.loc[cid]
    eta_p = sum(p[f"purchase:{c}"] * z[c] for c in X.columns)
    eta_d = sum(p[f"dropout:{c}"] * z[c] for c in X.columns)
    own = BetaGeoModel.from_params({"r": p["r"], "alpha": p["alpha"] * np.exp(-eta_p),
                                    "a": p["a"], "b": p["b"] * np.exp(-eta_d)})
    one = summary.loc[[cid]]
    assert kept[cid] == pytest.approx(own.predict_purchases(one, 13).iloc[0], rel=1e-12)
    assert model.probability_alive(summary)[cid] == pytest.approx(
        own.probability_alive(one).iloc[0], rel=1e-12)
    # paid customers buy more often: a new paid customer is expected to buy more
    pair = pd.DataFrame(0.0, index=["organic", "paid"], columns=X.columns)
    pair.loc["paid", "channel[paid]"] = 1.0
    e = model.expected_purchases(26, covariates=pair)
    assert e["paid"] > e["organic"]
    # without covariates: the average over the fitted customers' patterns
    pats = X.value_counts(normalize=True)
    frame = pd.DataFrame(list(pats.index), columns=X.columns)
    avg = float((model.expected_purchases(26, covariates=frame).to_numpy() * pats.to_numpy()).sum())
    assert model.expected_purchases(26) == pytest.approx(avg, rel=1e-12)


def test_new_customers_need_covariates(shop, X):
    summary, _ = shop
    model = BetaGeoModel().fit(summary.iloc[:2000], covariates=X.iloc[:2000])
    with pytest.raises(DataError, match="1000 customer.s. have no covariates"):
        model.predict_purchases(summary, 13)
    out = model.predict_purchases(summary, 13, covariates=X.iloc[2000:])
    assert out.notna().all() and len(out) == len(summary)
    # a frame of the whole customers table is kept whole: new customers need nothing more
    whole = BetaGeoModel().fit(summary.iloc[:2000], covariates=X)
    pd.testing.assert_series_equal(whole.predict_purchases(summary, 13), out)
    plain = BetaGeoModel().fit(summary)
    with pytest.raises(DataError, match="without covariates"):
        plain.probability_alive(summary, covariates=X)


def test_value_functions_work_unchanged(shop, X):
    summary, _ = shop
    model = BetaGeoModel().fit(summary, covariates=X)
    rng = np.random.default_rng(2)
    spend = summary.assign(monetary_value=rng.gamma(6.0, 4.0, len(summary)))
    gg = clv.GammaGammaModel().fit(spend[spend["frequency"] > 0])
    value = clv.customer_lifetime_value(model, gg, spend, horizon_months=6)
    np.testing.assert_allclose(value["expected_purchases"],
                               model.predict_purchases(summary, 6 * 30.4375 / 7), rtol=1e-12)
    assert (value["clv"] >= 0).all()
    # the bootstrap refits the model with its covariates
    refit = BetaGeoModel().fit(summary.sample(frac=1, replace=True, random_state=1),
                               **model.refit_options())
    assert list(refit.params_.index) == list(model.params_.index)
    boot = clv.bootstrap_clv(model, gg, spend, n_bootstrap=3, horizon_months=6)
    assert boot.n_used == 3
    assert (boot.lower <= value["clv"] + 1e-9).all() and (value["clv"] <= boot.upper + 1e-9).all()


def test_shared_and_one_process_coefficients(shop, X):
    summary, _ = shop
    shared = BetaGeoModel().fit(summary, covariates=X, shared=["channel[paid]"])
    assert "shared:channel[paid]" in shared.params_.index
    assert "purchase:channel[paid]" not in shared.params_.index
    only = BetaGeoModel().fit(summary, covariates=X, purchase=["channel[paid]"], dropout=[])
    assert list(only.params_.index) == ["r", "alpha", "a", "b", "purchase:channel[paid]"]
    full = BetaGeoModel().fit(summary, covariates=X)
    assert full.log_likelihood_ >= shared.log_likelihood_ - 1e-9
    with pytest.raises(DataError, match="must act on both"):
        BetaGeoModel().fit(summary, covariates=X, dropout=[], shared=["channel[paid]"])


def test_penalty_shrinks_the_coefficients(shop, X):
    summary, _ = shop
    free = BetaGeoModel().fit(summary, covariates=X)
    tight = BetaGeoModel(penalty=50.0).fit(summary, covariates=X)
    k = 4
    assert (np.abs(tight.params_.iloc[k:]).sum() < np.abs(free.params_.iloc[k:]).sum())


def test_bad_covariates_are_refused(shop, X):
    summary, customers = shop
    const = X.assign(everyone=1.0)
    with pytest.raises(DataError, match="'everyone'.*constant"):
        BetaGeoModel().fit(summary, covariates=const)
    dup = X.assign(copy=X["channel[paid]"] * 2)
    with pytest.raises(DataError, match="'copy'.*determined"):
        BetaGeoModel().fit(summary, covariates=dup)
    gap = X.copy()
    gap.iloc[3, 0] = np.nan
    with pytest.raises(DataError, match="missing or non-numeric"):
        BetaGeoModel().fit(summary, covariates=gap)
    with pytest.raises(DataError, match="have no covariates"):
        BetaGeoModel().fit(summary, covariates=X.iloc[5:])
    with pytest.raises(DataError, match="unknown"):
        BetaGeoModel().fit(summary, covariates=X, purchase=["unknown"])
    with pytest.raises(CRMStatsError, match="does not take covariates"):
        clv.BetaGeoBetaBinomModel().fit(summary, covariates=X)


def test_covariate_frame(shop):
    _, customers = shop
    before = customers.copy()
    X = clv.covariate_frame(customers, ["channel", "region", "age"],
                            reference={"region": "west"}, standardize=True)
    pd.testing.assert_frame_equal(customers, before)
    assert list(X.columns) == ["channel[paid]", "region[north]", "region[south]", "age"]
    assert X.index.name == "customer_id"
    assert X["age"].mean() == pytest.approx(0, abs=1e-12)
    assert X["age"].std(ddof=0) == pytest.approx(1)
    north = (customers["region"] == "north").astype(float).to_numpy()
    np.testing.assert_array_equal(X["region[north]"].to_numpy(), north)
    holes = customers.copy()
    holes.loc[[4, 9], "region"] = None
    with pytest.raises(DataError, match="'region': 2 missing") as err:
        clv.covariate_frame(holes, ["region"])
    assert err.value.rows == ["C00004", "C00009"]
    filled = clv.covariate_frame(holes, ["region"], missing="reference",
                                 reference={"region": "north"})
    assert filled.loc["C00004"].sum() == 0
    with pytest.raises(DataError, match="same level"):
        clv.covariate_frame(customers.assign(one="x"), ["one"])
    with pytest.raises(DataError, match="reference level 'east' does not occur"):
        clv.covariate_frame(customers, ["region"], reference={"region": "east"})
    with pytest.raises(DataError, match="missing column"):
        clv.covariate_frame(customers, ["nope"])
    with pytest.raises(DataError, match="no reference level"):
        clv.covariate_frame(customers.assign(age=customers["age"].where(customers.index != 2)),
                            ["age"])


@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel])
def test_save_load_and_from_params_round_trip(shop, X, cls, tmp_path):
    summary, _ = shop
    model = cls().fit(summary, covariates=X)
    path = tmp_path / "model.json"
    model.save(path)
    back = cls.load(path)
    pd.testing.assert_series_equal(back.params_, model.params_)
    pd.testing.assert_frame_equal(back.summary_, model.summary_)
    pd.testing.assert_series_equal(back.lr_test_, model.lr_test_)
    np.testing.assert_allclose(back.predict_purchases(summary, 13, covariates=X),
                               model.predict_purchases(summary, 13), rtol=1e-14)
    assert back.expected_purchases(10) == pytest.approx(model.expected_purchases(10), rel=1e-14)
    with pytest.raises(DataError, match="have no covariates"):
        back.predict_purchases(summary, 13)  # the customers' rows are not in the file
    given = cls.from_params(model.params_, time_unit="W")
    assert given.log_likelihood(summary, covariates=X) == pytest.approx(model.log_likelihood_,
                                                                        abs=1e-9)
    with pytest.raises(DataError, match="unknown parameter"):
        cls.from_params({**model.params_.to_dict(), "speed:x": 1.0})


def test_penalizer_is_deprecated():
    with pytest.warns(DeprecationWarning, match="penalty"):
        model = BetaGeoModel(penalizer=0.1)
    assert model.penalty == 0.1
    data = BetaGeoModel.from_params({"r": 1, "alpha": 2, "a": 1, "b": 2}).to_dict()
    data["hyperparameters"] = {"penalizer": 0.3, "maxiter": 100, "tol": 1e-8}
    assert BetaGeoModel.from_dict(data).penalty == 0.3

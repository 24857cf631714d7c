"""Gamma-Gamma with covariates on the spend scale: consistency, an independent fit, recovery."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import digamma, gammaln

from crmstats import DataError
from crmstats.clv import GammaGammaModel
from crmstats.datasets import load_cdnow


@pytest.fixture(scope="module")
def cdnow_cov(cdnow_calibration):
    """CDNOW with a covariate from the first purchase: first-day spend above the median."""
    tx = load_cdnow("sample")
    tx = tx[tx["timestamp"] <= "1997-09-30"]
    first_day = tx.groupby("customer_id")["timestamp"].transform("min") == tx["timestamp"]
    first = tx[first_day].groupby("customer_id")["amount"].sum()
    X = pd.DataFrame({"big_first_order": (first > first.median()).astype(float)})
    X["log_first_order"] = np.log1p(first) - np.log1p(first).mean()
    return cdnow_calibration, X.loc[cdnow_calibration.index]


def _reference_nll(theta, x, m, Z):
    """Hardie's note 025 likelihood with v_i = v exp(Z γ), written out per customer."""
    p, q, v0 = np.exp(theta[:3])
    v = v0 * np.exp(Z @ theta[3:])
    ll = (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
          + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))
    return -ll.sum()


def _reference_grad(theta, x, m, Z):
    """Its gradient in (ln p, ln q, ln v, γ), by hand from the same formula."""
    p, q, v0 = np.exp(theta[:3])
    v = v0 * np.exp(Z @ theta[3:])
    dp = x * (digamma(p * x + q) - digamma(p * x) + np.log(m) + np.log(x) - np.log(v + m * x))
    dq = digamma(p * x + q) - digamma(q) + np.log(v) - np.log(v + m * x)
    dlogv = v * (q / v - (p * x + q) / (v + m * x))
    return -np.r_[p * dp.sum(), q * dq.sum(), dlogv.sum(), Z.T @ dlogv]


def test_zero_coefficients_give_the_model_without_covariates(cdnow_cov):
    s, X = cdnow_cov
    params = {"p": 6.25, "q": 3.74, "v": 15.44}
    plain = GammaGammaModel.from_params(params)
    zero = GammaGammaModel.from_params({**params, "spend:big_first_order": 0.0,
                                        "spend:log_first_order": 0.0})
    assert list(zero.params_.index[3:]) == ["spend:big_first_order", "spend:log_first_order"]
    assert zero.log_likelihood(s, covariates=X) == pytest.approx(plain.log_likelihood(s),
                                                                 abs=1e-9)
    np.testing.assert_allclose(zero.expected_spend(s, covariates=X), plain.expected_spend(s),
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(zero.population_mean(X), plain.population_mean(), atol=1e-9)
    # and a non-zero coefficient does change them
    moved = GammaGammaModel.from_params({**params, "spend:big_first_order": 0.3,
                                         "spend:log_first_order": 0.0})
    assert moved.log_likelihood(s, covariates=X) != pytest.approx(plain.log_likelihood(s))


def test_fit_matches_an_independent_implementation(cdnow_cov):
    s, X = cdnow_cov
    m = GammaGammaModel().fit(s, covariates=X)
    rep = s["frequency"] > 0
    x = s.loc[rep, "frequency"].to_numpy()
    mv = s.loc[rep, "monetary_value"].to_numpy()
    Z = X.loc[rep].to_numpy()
    start = np.r_[np.log([1.0, 1.0, 10.0]), np.zeros(2)]
    res = optimize.minimize(_reference_nll, start, args=(x, mv, Z), jac=_reference_grad,
                            method="BFGS", options={"gtol": 1e-9})
    ours = np.r_[np.log(m.params_[["p", "q", "v"]]), m.params_.iloc[3:]]
    np.testing.assert_allclose(ours, res.x, atol=1e-6)
    assert m.log_likelihood_ == pytest.approx(-res.fun, abs=1e-6)
    assert m.log_likelihood(s) == pytest.approx(-_reference_nll(ours, x, mv, Z), abs=1e-6)
    # standard errors: the inverse of the reference likelihood's numerical Hessian
    h = optimize.approx_fprime(res.x, lambda t: optimize.approx_fprime(
        t, _reference_nll, 1e-6, x, mv, Z), 1e-5)
    se_gamma = np.sqrt(np.diag(np.linalg.inv((h + h.T) / 2)))[3:]
    np.testing.assert_allclose(m.summary_["std_err"].iloc[3:], se_gamma, rtol=1e-3)


def test_summary_lr_test_and_likelihood_never_below_the_plain_model(cdnow_cov):
    s, X = cdnow_cov
    m = GammaGammaModel().fit(s, covariates=X)
    plain = GammaGammaModel().fit(s)
    assert list(m.summary_.columns) == ["estimate", "std_err", "lower_95", "upper_95",
                                        "p_value"]
    assert list(m.params_.index) == ["p", "q", "v", "spend:big_first_order",
                                     "spend:log_first_order"]
    assert m.summary_["p_value"].iloc[:3].isna().all()
    assert m.summary_["p_value"].iloc[3:].between(0, 1).all()
    assert m.log_likelihood_ >= plain.log_likelihood_
    lr = m.lr_test_
    assert lr["log_likelihood_null"] == pytest.approx(plain.log_likelihood_, abs=1e-8)
    assert lr["statistic"] == pytest.approx(2 * (m.log_likelihood_ - plain.log_likelihood_))
    assert lr["df"] == 2
    # refit without covariates forgets them
    m.fit(s)
    assert m.covariates_ is None and m.lr_test_ is None
    assert m.params_.equals(plain.params_)


def test_predictions_per_customer_from_the_kept_frame_or_a_new_one(cdnow_cov):
    s, X = cdnow_cov
    m = GammaGammaModel().fit(s, covariates=X)
    p, q, v = m.params_[["p", "q", "v"]]
    gamma = m.params_[["spend:big_first_order", "spend:log_first_order"]].to_numpy()
    vi = v * np.exp(X.to_numpy() @ gamma)
    x, mv = s["frequency"].to_numpy(), s["monetary_value"].to_numpy()
    expect = np.where(x > 0, p * (vi + x * mv) / (p * x + q - 1), p * vi / (q - 1))
    np.testing.assert_allclose(m.expected_spend(s), expect, rtol=1e-12)
    np.testing.assert_allclose(m.conditional_expected_average_profit(s), expect, rtol=1e-12)
    # a customer not in the fit: its covariates given
    new = pd.DataFrame({"frequency": [0.0, 2.0], "monetary_value": [0.0, 30.0]},
                       index=["new1", "new2"])
    Xn = pd.DataFrame({"big_first_order": [1.0, 0.0], "log_first_order": [0.5, -0.5]},
                      index=["new1", "new2"])
    got = m.expected_spend(new, covariates=Xn)
    vn = v * np.exp(Xn.to_numpy() @ gamma)
    np.testing.assert_allclose(got, [p * vn[0] / (q - 1),
                                     p * (vn[1] + 60.0) / (2 * p + q - 1)], rtol=1e-12)
    with pytest.raises(DataError, match="new1"):
        m.expected_spend(new)  # not in the fit's frame
    with pytest.raises(DataError, match="log_first_order"):
        m.expected_spend(new, covariates=Xn[["big_first_order"]])


def test_bad_covariates_are_refused_with_the_rows(cdnow_cov):
    s, X = cdnow_cov
    before = X.copy()
    with pytest.raises(DataError, match="one value"):
        GammaGammaModel().fit(s, covariates=X.assign(const=1.0))
    holes = X.copy()
    holes.iloc[3, 0] = np.nan
    with pytest.raises(DataError, match=str(holes.index[3])):
        GammaGammaModel().fit(s, covariates=holes)
    rep = s.index[s["frequency"] > 0]
    with pytest.raises(DataError, match=str(rep[0])):
        GammaGammaModel().fit(s, covariates=X.drop(index=rep[0]))
    with pytest.raises(DataError, match="not numeric"):
        GammaGammaModel().fit(s, covariates=X.assign(channel="email"))
    with pytest.raises(DataError, match="linearly dependent"):
        GammaGammaModel().fit(s, covariates=X.assign(
            small_first_order=1.0 - X["big_first_order"]))
    with pytest.raises(DataError, match="DataFrame"):
        GammaGammaModel().fit(s, covariates=X.to_numpy())
    with pytest.raises(DataError, match="spend:<column>"):
        GammaGammaModel.from_params({"p": 6.0, "q": 4.0, "v": 15.0, "purchase:x": 0.1})
    pd.testing.assert_frame_equal(X, before)


def test_save_and_load_keep_the_coefficients(cdnow_cov, tmp_path):
    s, X = cdnow_cov
    m = GammaGammaModel().fit(s, covariates=X)
    m.save(tmp_path / "gg.json")
    back = GammaGammaModel.load(tmp_path / "gg.json")
    pd.testing.assert_series_equal(back.params_, m.params_)
    pd.testing.assert_frame_equal(back.summary_, m.summary_)
    assert back.lr_test_["statistic"] == pytest.approx(m.lr_test_["statistic"])
    np.testing.assert_allclose(back.expected_spend(s, covariates=X), m.expected_spend(s))
    with pytest.raises(DataError, match="covariates="):
        back.expected_spend(s)  # the frame is not in the file


def test_recovers_simulated_spend_coefficients():
    """Three groups whose mean spend differs by exp(0.4) and exp(-0.3)."""
    rng = np.random.default_rng(7)
    n = 6000
    g = rng.integers(0, 3, n)
    X = pd.DataFrame({"b": (g == 1) * 1.0, "c": (g == 2) * 1.0})
    true = {"p": 6.0, "q": 4.0, "v": 20.0, "spend:b": 0.4, "spend:c": -0.3}
    nu = rng.gamma(true["q"], 1 / (true["v"] * np.exp(np.array([0.0, 0.4, -0.3])[g])))
    x = rng.poisson(3, n)
    mean = np.array([rng.gamma(true["p"], 1 / nu[i], max(k, 1)).mean() for i, k in enumerate(x)])
    s = pd.DataFrame({"frequency": x * 1.0, "monetary_value": np.where(x > 0, mean, 0.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = GammaGammaModel().fit(s, covariates=X)
    sm = m.summary_
    for name, value in true.items():
        # five parameters jointly: 99 % intervals (Bonferroni, family-wise about 95 %)
        half = 2.576 * sm.loc[name, "std_err"]
        assert abs(sm.loc[name, "estimate"] - value) <= half, name
    assert m.lr_test_["p_value"] < 1e-10


def test_refit_options_repeat_the_covariates(cdnow_cov):
    """The bootstrap refits a spend model with covariates with them (it dropped them before)."""
    from crmstats.clv import BetaGeoModel, bootstrap_clv

    s, X = cdnow_cov
    m = GammaGammaModel().fit(s, covariates=X)
    assert m.refit_options()["covariates"] is m.covariates_
    assert GammaGammaModel().fit(s).refit_options() == {}
    resample = s.iloc[np.random.default_rng(1).integers(0, len(s), len(s))]
    refit = GammaGammaModel().fit(resample, **m.refit_options())
    assert list(refit.params_.index) == list(m.params_.index)
    bg = BetaGeoModel().fit(s)
    boot = bootstrap_clv(bg, m, s, horizon_months=3, n_bootstrap=4, seed=2)
    assert boot.n_used >= 2

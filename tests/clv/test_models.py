"""CLV models: published estimates, equality with lifetimes, shared API, truth recovery."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceWarning, DataError, NotFittedError
from crmstats.clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)
from crmstats.datasets import load_donations

TRANSACTION_MODELS = [BetaGeoModel, ParetoNBDModel, ModifiedBetaGeoModel]


def rel(a, b):
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------- published values


def test_bgnbd_params_match_fader_hardie_lee_2005(fitted):
    m = fitted["bgnbd"]
    for name, value in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert rel(m.params_[name], value) < 2e-3, name
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_gamma_gamma_params_match_fader_hardie_lee_2005(fitted):
    m = fitted["gg"]
    assert m.n_obs_ == 946  # repeat customers of the calibration period
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert rel(m.params_[name], value) < 2e-3, name


def test_pareto_nbd_params_match_fader_hardie_note(fitted):
    m = fitted["pnbd"]
    for name, value in {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}.items():
        assert rel(m.params_[name], value) < 2e-3, name
    assert m.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


def test_bgbb_params_match_fader_hardie_shang_2010():
    m = BetaGeoBetaBinomModel().fit(load_donations())
    for name, value in {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}.items():
        assert rel(m.params_[name], value) < 2e-3, name
    assert m.log_likelihood_ == pytest.approx(-33225.6, abs=0.1)
    assert m.n_obs_ == 11_104


@pytest.mark.parametrize(("survivors", "alpha", "beta"), [
    ([1000, 631, 468, 382, 326, 289, 262, 241], 0.704, 1.182),  # "regular" customers
    ([1000, 869, 743, 653, 593, 551, 517, 491], 0.668, 3.806),  # "high end" customers
])
def test_sbg_params_match_fader_hardie_2007(survivors, alpha, beta):
    m = ShiftedBetaGeoModel().fit(survivors)
    assert rel(m.params_["alpha"], alpha) < 2e-3
    assert rel(m.params_["beta"], beta) < 2e-3
    np.testing.assert_allclose(m.survival(np.arange(8)) * 1000, survivors, rtol=0.05)


def test_sbg_derl_equals_direct_sum_and_per_customer_fit():
    m = ShiftedBetaGeoModel().fit([1000, 631, 468, 382, 326, 289, 262, 241])
    for renewals in (0, 4):
        n = renewals + 1
        direct = sum(m.survival(t) / m.survival(n - 1) / 1.1 ** (t - n) for t in range(n, 5000))
        assert m.derl(0.1, renewals) == pytest.approx(direct, rel=1e-9)
    assert m.retention_rate(1) == pytest.approx(m.survival(1))
    assert m.churn_in_period(3) == pytest.approx(m.survival(2) - m.survival(3))
    assert m.churn_probability(horizon=3) == pytest.approx(1 - m.survival(3))
    assert m.churn_probability(horizon=3) == pytest.approx(m.churn_in_period([1, 2, 3]).sum())
    with pytest.warns(DeprecationWarning, match="churn_in_period"):
        assert m.churn_probability(3) == m.churn_in_period(3)
    # the same cohort as one row per customer gives the same fit
    counts = np.array([1000, 631, 468, 382, 326, 289, 262, 241])
    rows = [(t, 1) for t in range(1, 8) for _ in range(counts[t - 1] - counts[t])]
    rows += [(7, 0)] * 241
    frame = pd.DataFrame(rows, columns=["duration", "churned"])
    m2 = ShiftedBetaGeoModel().fit(frame)
    np.testing.assert_allclose(m2.params_, m.params_, rtol=1e-5)
    with pytest.raises(DataError, match="non-increasing"):
        ShiftedBetaGeoModel().fit([100, 120, 80])


# ---------------------------------------------------------------- equality with lifetimes


def test_bgnbd_likelihood_gradient_and_predictions_equal_lifetimes(fitted, cdnow_calibration):
    from lifetimes import BetaGeoFitter
    from scipy.optimize import approx_fprime

    s = cdnow_calibration
    m = fitted["bgnbd"]
    ref = BetaGeoFitter()
    ref.params_ = m.params_.copy()
    x, tx, T = s["frequency"], s["recency"], s["T"]
    # lifetimes' per-customer log-likelihood at the same parameters
    theirs = -BetaGeoFitter._negative_log_likelihood(
        np.log(m.params_.to_numpy()), x.to_numpy(), tx.to_numpy(), T.to_numpy(),
        np.ones(len(s)), 0.0) * len(s)
    assert m.log_likelihood_ == pytest.approx(theirs, rel=1e-10)
    log_p = np.log(m.params_.to_numpy()) + 0.05
    analytic = m._nll(log_p, m._data_)[1]
    numeric = approx_fprime(log_p, lambda p: m._nll(p, m._data_)[0], 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4)
    np.testing.assert_allclose(
        m.predict_purchases(s, 39), ref.conditional_expected_number_of_purchases_up_to_time(
            39, x, tx, T), rtol=1e-8)
    np.testing.assert_allclose(m.probability_alive(s),
                               ref.conditional_probability_alive(x, tx, T), rtol=1e-8)
    t = np.array([1.0, 10.0, 78.0])
    np.testing.assert_allclose(m.expected_purchases(t),
                               ref.expected_number_of_purchases_up_to_time(t), rtol=1e-8)


class _BetaGeoByLBFGS(BetaGeoModel):
    """The same likelihood fitted the other way: L-BFGS-B, finite-difference standard errors."""

    _has_hessian = False


@pytest.mark.parametrize("key", ["bgnbd", "mbgnbd", "gg"])
def test_analytic_derivatives_equal_finite_differences(fitted, key):
    from scipy.optimize import approx_fprime

    m = fitted[key]
    k = len(m.params_)
    for shift in (0.0, 0.05, np.array([0.3, -0.4, 0.5, -0.6])[:k]):
        log_p = np.log(m.params_.to_numpy()) + shift
        data = dict(m._data_)
        data.pop("_evals", None)  # evaluate afresh, not from the fit's memo
        value, grad, hess = m._nll(log_p, data, hessian=True)
        rows = m._log_likelihood_rows(np.exp(log_p), data)
        assert value == pytest.approx(-np.dot(data["weights"], rows), rel=1e-12)
        fresh = dict(m._data_)
        fresh.pop("_evals", None)
        np.testing.assert_array_equal(grad, m._nll(log_p, fresh)[1])
        numeric_grad = approx_fprime(log_p, lambda p, d=data: m._nll(p, d)[0], 1e-7)
        np.testing.assert_allclose(grad, numeric_grad, rtol=1e-4, atol=1e-3)
        numeric = np.array([
            approx_fprime(log_p, lambda p, i=i, d=data: m._nll(p, d)[1][i], 1e-7)
            for i in range(k)
        ])
        np.testing.assert_allclose(hess, numeric, rtol=2e-5, atol=1e-3)
        np.testing.assert_allclose(hess, hess.T)


def test_bgnbd_newton_fit_equals_lbfgs_fit(cdnow_calibration):
    s = cdnow_calibration
    newton = BetaGeoModel().fit(s)
    lbfgs = _BetaGeoByLBFGS().fit(s)
    assert newton.converged_
    assert newton.optimizer_message_ in ("Newton step below tolerance",
                                         "converged to rounding precision")
    np.testing.assert_allclose(newton.params_, lbfgs.params_, rtol=1e-5)
    assert newton.log_likelihood_ == pytest.approx(lbfgs.log_likelihood_, rel=1e-12)
    # exact standard errors agree with the finite-difference ones
    np.testing.assert_allclose(newton.summary_["std_err"],
                               lbfgs.summary_["std_err"], rtol=1e-3)
    # the L2 penalty enters value, gradient and Hessian alike
    pen_newton = BetaGeoModel(penalty=0.05).fit(s)
    pen_lbfgs = _BetaGeoByLBFGS(penalty=0.05).fit(s)
    np.testing.assert_allclose(pen_newton.params_, pen_lbfgs.params_, rtol=1e-4)
    assert not np.allclose(pen_newton.params_, newton.params_, rtol=1e-2)


def test_bgnbd_warm_start_from_a_subsample_reaches_the_full_data_optimum(cdnow_calibration):
    class SmallWarmStart(BetaGeoModel):
        _warm_start_rows = 200  # CDNOW's ~1,400 distinct rows count as "large"

    s = cdnow_calibration
    m = SmallWarmStart()
    data = m._prepare(s)
    start = m._warm_start(data, m._initial(data))
    assert not np.allclose(start, m._initial(data))  # the subsample fit moved the start
    m.fit(s)
    ref = BetaGeoModel().fit(s)
    np.testing.assert_allclose(m.params_, ref.params_, rtol=1e-6)
    assert m.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-12)


def test_pareto_nbd_likelihood_by_distinct_pairs_equals_the_row_formula(fitted):
    m = fitted["pnbd"]
    data = m._data_
    assert len(m._table(data).pair_u) < 2 * len(data["weights"])  # pairs: at most 2 per row
    for shift in (0.0, np.array([0.3, -0.4, 0.5, -0.6]), np.array([-0.5, 0.2, 0.1, 1.5])):
        log_p = np.log(m.params_.to_numpy()) + shift
        rows = m._log_likelihood_rows(np.exp(log_p), data)
        assert m._nll_value(log_p, data) == pytest.approx(-np.dot(data["weights"], rows),
                                                          rel=1e-12)


def test_pareto_nbd_warm_start_reaches_the_same_optimum(cdnow_calibration):
    class SmallWarmStart(ParetoNBDModel):
        _warm_start_rows = 200

    s = cdnow_calibration
    warm = SmallWarmStart().fit(s)
    ref = ParetoNBDModel().fit(s)
    np.testing.assert_allclose(warm.params_, ref.params_, rtol=1e-3)
    assert warm.log_likelihood_ == pytest.approx(ref.log_likelihood_, rel=1e-9)


def test_bgnbd_newton_falls_back_when_started_far_away(cdnow_calibration):
    s = cdnow_calibration
    m = BetaGeoModel()
    data = m._prepare(s)
    ref = BetaGeoModel().fit(s)
    for start in (np.log([50.0, 0.01, 20.0, 0.05]), np.log([1e-3, 1e3, 1e-2, 1e2])):
        res = m._minimize(data, start)
        np.testing.assert_allclose(np.exp(res.x), ref.params_, rtol=1e-4)


def test_compression_equals_a_groupby_of_the_rows():
    rng = np.random.default_rng(3)
    n = 5_000
    frame = pd.DataFrame({
        "frequency": rng.integers(0, 5, n).astype(float),
        "recency": rng.integers(0, 30, n) / 7.0,
        "T": rng.integers(30, 40, n) / 7.0,
    })
    weights = rng.uniform(0.5, 2.0, n)
    for w in (None, weights):
        out = BetaGeoModel._compress(frame, w)
        ref = (frame.assign(w=1.0 if w is None else w)
               .groupby(["frequency", "recency", "T"])["w"].sum())
        got = pd.Series(out["weights"], index=pd.MultiIndex.from_arrays(
            [out["frequency"], out["recency"], out["T"]], names=ref.index.names))
        pd.testing.assert_series_equal(got.sort_index(), ref, check_names=False, rtol=1e-12)
        for col in ("frequency", "recency", "T"):
            uniques, codes = out["_codes"][col]
            np.testing.assert_array_equal(uniques[codes], out[col])
        fallback = BetaGeoModel._compress_groupby(frame, ["frequency", "recency", "T"], w)
        np.testing.assert_allclose(np.sort(fallback["weights"]), np.sort(out["weights"]))


@pytest.mark.parametrize(("key", "fitter"), [("pnbd", "ParetoNBDFitter"),
                                             ("mbgnbd", "ModifiedBetaGeoFitter")])
def test_other_transaction_models_equal_lifetimes(fitted, cdnow_calibration, key, fitter):
    import lifetimes

    s = cdnow_calibration
    m = fitted[key]
    ref = getattr(lifetimes, fitter)()
    ref.params_ = m.params_.copy()
    x, tx, T = s["frequency"], s["recency"], s["T"]
    np.testing.assert_allclose(
        m.predict_purchases(s, 39), ref.conditional_expected_number_of_purchases_up_to_time(
            39, x, tx, T), rtol=1e-6)
    np.testing.assert_allclose(m.probability_alive(s),
                               ref.conditional_probability_alive(x, tx, T), rtol=1e-6)
    np.testing.assert_allclose(m.expected_purchases(np.array([5.0, 39.0])),
                               ref.expected_number_of_purchases_up_to_time(np.array([5.0, 39.0])),
                               rtol=1e-6)


def test_gamma_gamma_and_bgbb_predictions_equal_lifetimes(fitted, cdnow_calibration):
    from lifetimes import BetaGeoBetaBinomFitter, GammaGammaFitter

    s = cdnow_calibration
    gg = fitted["gg"]
    ref = GammaGammaFitter()
    ref.params_ = gg.params_.copy()
    rep = s[s["frequency"] > 0]
    np.testing.assert_allclose(gg.expected_spend(rep), ref.conditional_expected_average_profit(
        rep["frequency"], rep["monetary_value"]), rtol=1e-10)
    one_time = s[s["frequency"] == 0]
    np.testing.assert_allclose(gg.expected_spend(one_time), gg.population_mean())
    d = load_donations()
    bb = BetaGeoBetaBinomModel().fit(d)
    ref = BetaGeoBetaBinomFitter()
    ref.params_ = bb.params_.copy()
    np.testing.assert_allclose(bb.probability_alive(d), ref.conditional_probability_alive(
        1, d["frequency"], d["recency"], d["periods"]), rtol=1e-8)
    np.testing.assert_allclose(bb.predict_purchases(d, 5),
                               ref.conditional_expected_number_of_purchases_up_to_time(
                                   5, d["frequency"], d["recency"], d["periods"]), rtol=1e-8)


def test_compressed_fit_equals_uncompressed(cdnow_calibration):
    s = cdnow_calibration
    full = BetaGeoModel().fit(s)
    counts = s.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
    assert len(counts) < len(s)
    compressed = BetaGeoModel().fit(counts)
    np.testing.assert_allclose(compressed.params_, full.params_, rtol=1e-6)
    assert compressed.log_likelihood_ == pytest.approx(full.log_likelihood_, rel=1e-10)
    assert full.n_rows_ == len(counts)


# ---------------------------------------------------------------- shared API


@pytest.mark.parametrize("cls", TRANSACTION_MODELS + [GammaGammaModel])
def test_shared_api(cls, cdnow_calibration):
    s = cdnow_calibration
    before = s.copy()
    model = cls()
    with pytest.raises(NotFittedError, match="not fitted"):
        model._p()
    assert model.fit(s) is model
    pd.testing.assert_frame_equal(s, before)
    assert isinstance(model.params_, pd.Series)
    assert list(model.params_.index) == list(cls._param_names)
    assert list(model.summary_.columns) == ["estimate", "std_err", "lower_95",
                                            "upper_95"]
    assert model.summary_["std_err"].gt(0).all()
    assert np.isfinite(model.log_likelihood_) and model.log_likelihood_ < 0
    assert "fitted" in repr(model)


@pytest.mark.parametrize("cls", TRANSACTION_MODELS)
def test_bad_summaries_are_data_errors(cls, cdnow_calibration):
    s = cdnow_calibration.copy()
    s.iloc[3, s.columns.get_loc("recency")] = np.nan
    with pytest.raises(DataError, match="'recency'.*non-finite"):
        cls().fit(s)
    s = cdnow_calibration.copy()
    s.iloc[5, s.columns.get_loc("T")] = -1
    with pytest.raises(DataError, match="'T'.*negative"):
        cls().fit(s)
    s = cdnow_calibration.copy()
    s.iloc[7, s.columns.get_loc("recency")] = 1000
    with pytest.raises(DataError, match="recency exceeds T"):
        cls().fit(s)
    with pytest.raises(DataError, match="no customer has a repeat"):
        cls().fit(cdnow_calibration.assign(frequency=0.0, recency=0.0))
    with pytest.raises(DataError, match="missing column"):
        cls().fit(cdnow_calibration.drop(columns="T"))


def test_non_convergence_warns(cdnow_calibration):
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ParetoNBDModel(maxiter=2).fit(cdnow_calibration)


def test_converged_fit_is_silent(cdnow_calibration):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        BetaGeoModel().fit(cdnow_calibration)


# ---------------------------------------------------------------- truth recovery


def simulate_bgnbd(n, r, alpha, a, b, T, rng):
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        inside = t[idx] <= T
        buy = idx[inside]
        x[buy] += 1
        tx[buy] = t[buy]
        alive[idx[~inside]] = False
        alive[buy[rng.random(len(buy)) < p[buy]]] = False
    return pd.DataFrame({"frequency": x, "recency": tx, "T": float(T)})


def test_bgnbd_recovers_simulated_truth():
    rng = np.random.default_rng(13)
    truth = {"r": 0.4, "alpha": 8.0, "a": 0.7, "b": 2.5}
    s = simulate_bgnbd(20_000, *truth.values(), T=52.0, rng=rng)
    m = BetaGeoModel().fit(s)
    for name, value in truth.items():
        row = m.summary_.loc[name]
        assert row["estimate"] - 3 * row["std_err"] < value < row["estimate"] + 3 * row[
            "std_err"], name


def test_gamma_gamma_recovers_simulated_truth():
    rng = np.random.default_rng(13)
    p, q, v = 6.0, 4.0, 20.0
    n = 5_000
    x = rng.integers(1, 10, n)
    nu = rng.gamma(q, 1 / v, n)
    means = np.array([rng.gamma(p, 1 / nu[i], x[i]).mean() for i in range(n)])
    m = GammaGammaModel().fit(pd.DataFrame({"frequency": x, "monetary_value": means}))
    for name, value in {"p": p, "q": q, "v": v}.items():
        row = m.summary_.loc[name]
        assert abs(row["estimate"] - value) < 3 * row["std_err"], name


def test_sbg_recovers_simulated_truth():
    rng = np.random.default_rng(13)
    theta = rng.beta(0.8, 3.0, 10_000)
    life = rng.geometric(theta)
    survivors = [(life > t).sum() for t in range(13)]
    m = ShiftedBetaGeoModel().fit(survivors)
    for name, value in {"alpha": 0.8, "beta": 3.0}.items():
        row = m.summary_.loc[name]
        assert abs(row["estimate"] - value) < 3 * row["std_err"], name


def test_gamma_gamma_leaves_out_zero_spend_repeat_customers(cdnow_calibration):
    from crmstats import DataWarning

    s = cdnow_calibration.copy()
    rep = s.index[s["frequency"] > 0][:3]
    s.loc[rep, "monetary_value"] = 0.0
    with pytest.warns(DataWarning, match="3 repeat customer"):
        m = GammaGammaModel().fit(s)
    assert m.n_obs_ == 946 - 3
    assert m.n_ignored_ == len(s) - 946 + 3


def test_bgnbd_warns_when_dropout_shows_no_heterogeneity():
    """Every customer drops out with the same p: the MLE of a and b runs off to infinity.

    (On some draws sampling noise alone gives a finite estimate; seed 6 does not.)
    """
    rng = np.random.default_rng(6)
    s = simulate_bgnbd(5_000, 0.8, 6.0, 4e6, 16e6, T=52.0, rng=rng)  # p = 0.2 for everyone
    with pytest.warns(ConvergenceWarning, match="no differences between customers in how soon"):
        m = BetaGeoModel().fit(s)
    a, b = m.params_["a"], m.params_["b"]
    assert a / (a + b) == pytest.approx(0.2, abs=0.03)
    assert np.isfinite(m.predict_purchases(s, 10)).all()
    assert np.isfinite(m.probability_alive(s)).all()
    # ordinary data give no such warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        BetaGeoModel().fit(simulate_bgnbd(5_000, 0.8, 6.0, 0.7, 2.5, T=52.0, rng=rng))


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pnbd"])
def test_predictions_are_stable_for_a_thousand_repeat_purchases(fitted, name):
    """Before: the odds against being alive overflowed (RuntimeWarning; FloatingPointError
    under np.seterr(all="raise")) for a customer with 1,000 repeat purchases then silence."""
    from crmstats.clv import with_units

    model = fitted[name]
    rows = with_units(pd.DataFrame({"frequency": [1000.0, 1000.0, 5.0, 0.0],
                                    "recency": [1.0, 39 - 1 / 7, 20.0, 0.0],
                                    "T": [39.0, 39.0, 39.0, 39.0]}), period="D", time_unit="W")
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        alive = model.probability_alive(rows).to_numpy()
        purchases = model.predict_purchases(rows, 10).to_numpy()
    assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
    assert alive[0] < 1e-50 and alive[1] > 0.9  # long silence after a heavy history: gone
    assert np.all(np.isfinite(purchases)) and purchases[0] < 1e-40 and purchases[1] > 100


# ---------------------------------------------------------------- extreme parameters


def _with_params(model, **params):
    """A copy of a fitted model with other parameter values (e.g. a fit at the boundary)."""
    import copy

    out = copy.deepcopy(model)
    out.params_ = pd.Series(params, dtype=float)[list(model._param_names)]
    return out


def _quadrature(r, alpha, a, b, t):
    """E[(1 - (1 + p t / alpha)^-r) / p] over p ~ Beta(a, b): scipy quad over logit(p)."""
    from scipy import integrate, special

    def f(y):
        log_p, log_q = -np.logaddexp(0.0, -y), -np.logaddexp(0.0, y)
        p = np.exp(log_p)
        g = -np.expm1(-r * np.log1p(p * t / alpha)) / p if p > 0 else r * t / alpha
        return g * np.exp(a * log_p + b * log_q - special.betaln(a, b))

    mode = np.log(a / b)
    return sum(integrate.quad(f, lo, hi, epsabs=0.0, epsrel=1e-11, limit=500)[0]
               for lo, hi in ((-np.inf, mode), (mode, np.inf)))


@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd"])
@pytest.mark.parametrize("a", [0.02, 0.5, 0.99, 1.5, 3.0])
@pytest.mark.parametrize("b", [1e8, 1e10, 2.5e10, 9e10])
def test_bgnbd_predictions_at_the_no_dropout_boundary_are_not_negative(fitted, cdnow_calibration,
                                                                       name, a, b):
    """Before: at b = 1e10 the closed form gave -5,047 expected purchases (a = 0.02) and
    +1.8e7 at b = 9e10: (a + b - 1) / (a - 1) times a difference lost to rounding.
    As b → ∞ nobody drops out and the model is the NBD: E = (r + x) t / (alpha + T)."""
    model = _with_params(fitted[name], r=0.3, alpha=5.0, a=a, b=b)
    s = cdnow_calibration
    got = model.predict_purchases(s, 52.0).to_numpy()
    nbd = (0.3 + s["frequency"]) * 52.0 / (5.0 + s["T"])
    alive = model.probability_alive(s).to_numpy()
    assert (got >= 0).all()
    np.testing.assert_allclose(got, nbd * alive, rtol=1e-6)
    np.testing.assert_allclose(model.expected_purchases([1.0, 52.0]),
                               0.3 * np.array([1.0, 52.0]) / 5.0, rtol=1e-6)


def test_bgnbd_conditional_expectation_equals_its_integral():
    """alive_purchases = E over the Beta dropout probability, checked by quadrature (also near
    a = 1, where the closed form divides by a - 1, and for large b)."""
    from crmstats.clv.models.beta_geo import alive_purchases

    worst = 0.0
    for r, alpha, t in ((0.05, 0.5, 52.0), (0.3, 5.0, 1.0), (30.5, 80.0, 52.0)):
        for a in (0.02, 0.99999, 1.0, 1.000001, 1.5, 40.0):
            for b in (0.3, 30.0, 1e3, 1e5):
                got = alive_purchases(r, alpha, a, b, t)
                want = _quadrature(r, alpha, a, b, t)
                worst = max(worst, abs(got - want) / want)
    assert worst < 1e-6


def test_pareto_nbd_predictions_at_s_one_and_huge_beta(fitted, cdnow_calibration):
    """(1 - (β / (β + t))^(s - 1)) / (s - 1) was 0 / 0 at s = 1 and lost digits at huge β."""
    s = cdnow_calibration
    base = fitted["pnbd"]
    near = _with_params(base, r=0.55, alpha=10.6, s=1 + 1e-9, beta=12.0)
    at_one = _with_params(base, r=0.55, alpha=10.6, s=1.0, beta=12.0)
    for model in (near, at_one):
        got = model.predict_purchases(s, 52.0).to_numpy()
        assert np.isfinite(got).all() and (got >= 0).all()
    # at s = 1 the limit is rate x log(1 + t / (beta + T))
    limit = ((0.55 + s["frequency"]) * (12.0 + s["T"]) / (10.6 + s["T"])
             * np.log1p(52.0 / (12.0 + s["T"])) * at_one.probability_alive(s))
    np.testing.assert_allclose(at_one.predict_purchases(s, 52.0), limit, rtol=1e-12)
    np.testing.assert_allclose(near.predict_purchases(s, 52.0), limit, rtol=1e-6)
    huge = _with_params(base, r=0.55, alpha=10.6, s=0.6, beta=1e10)
    got = huge.predict_purchases(s, 52.0).to_numpy()
    nbd = (0.55 + s["frequency"]) * 52.0 / (10.6 + s["T"]) * huge.probability_alive(s)
    np.testing.assert_allclose(got, nbd, rtol=1e-6)

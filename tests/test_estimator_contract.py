"""Every estimator, fitted: n_obs_ counts what it was fitted on, summary_ has the one schema."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceWarning, NotFittedError, attribution, churn, clv, funnel
from crmstats.datasets import load_cdnow, load_donations
from crmstats.estimator import (
    SUMMARY_COLUMNS,
    Estimator,
    log_interval,
    numerical_hessian,
    summary_table,
)

pytestmark = pytest.mark.filterwarnings("ignore::crmstats.DataWarning")


@pytest.fixture(scope="module")
def summary():
    return clv.calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                         observation_end="1998-06-30", time_unit="W")


@pytest.fixture(scope="module")
def panel():
    """Accounts with a Beta churn propensity and a driver raising the hazard (sBG with PH)."""
    rng = np.random.default_rng(3)
    theta = rng.beta(1.0, 4.0, 800)
    rows = []
    for i in range(800):
        for t in range(1, 13):
            x = rng.poisson(0.5)
            churned = rng.random() < 1 - (1 - theta[i]) ** np.exp(0.5 * x)
            rows.append((f"a{i}", t - 1, t, int(churned), x))
            if churned:
                break
    return pd.DataFrame(rows, columns=["account_id", "entry", "exit", "churned", "x"])


def _check(model, n_obs, params):
    assert isinstance(model, Estimator)
    assert model.n_obs_ == n_obs
    s = model.summary_
    assert list(s.columns) == [c for c in SUMMARY_COLUMNS if c in s.columns]
    assert list(s.columns[:4]) == list(SUMMARY_COLUMNS[:4])
    assert list(s.index) == list(params)
    est, se = s["estimate"].to_numpy(), s["std_err"].to_numpy()
    assert np.all(np.isfinite(est)) and np.all(se > 0)
    assert np.all(s["lower_95"] < est) and np.all(est < s["upper_95"])


def test_clv_models(summary):
    repeat = int((summary["frequency"] > 0).sum())
    for cls, n in [(clv.BetaGeoModel, len(summary)), (clv.ModifiedBetaGeoModel, len(summary)),
                   (clv.ParetoNBDModel, len(summary)), (clv.GammaGammaModel, repeat)]:
        model = cls().fit(summary)
        _check(model, n, cls._param_names)
        assert model.converged_
        # every parameter is positive: the interval is the delta method's on the log scale
        s = model.summary_
        np.testing.assert_allclose(np.log(s["upper_95"] / s["estimate"]),
                                   1.959964 * s["std_err"] / s["estimate"], rtol=1e-6)
        np.testing.assert_allclose(s["lower_95"] * s["upper_95"], s["estimate"] ** 2, rtol=1e-9)
    donations = load_donations()
    bb = clv.BetaGeoBetaBinomModel().fit(donations)
    _check(bb, donations["weights"].sum(), ("alpha", "beta", "gamma", "delta"))
    sbg = clv.ShiftedBetaGeoModel().fit([1000, 631, 468, 382, 326])  # Fader & Hardie 2007
    _check(sbg, 1000, ("alpha", "beta"))


def _small_fits():
    """Every estimator with positive parameters, fitted on data so small that ±1.96 se < 0.

    On each of these the Wald interval ``estimate - 1.96 std_err`` of at least
    one parameter is below 0 (a BG/NBD ``a`` of 0.56 ± 0.57 on 118 CDNOW
    customers, a Gamma-Gamma ``p`` of 11.9 ± 15.8, ...): what a reader saw for
    BG/NBD's a and b on a real shop's log.
    """
    cdnow = clv.calibration_holdout_split(load_cdnow("sample"), calibration_end="1997-09-30",
                                          observation_end="1998-06-30", time_unit="W")
    tiny = cdnow.iloc[::20]
    donations = load_donations()
    tiny_donations = donations.assign(weights=np.ceil(donations["weights"] / 100))
    rng = np.random.default_rng(0)
    rows = []
    for i, theta in enumerate(rng.beta(0.7, 1.2, 30)):
        for t in range(1, 9):
            churned = rng.random() < theta
            rows.append((f"a{i}", t - 1, t, int(churned), int(rng.random() < 0.3)))
            if churned:
                break
    panel = pd.DataFrame(rows, columns=["account_id", "entry", "exit", "churned", "x"])
    return [
        ("BetaGeoModel", lambda: clv.BetaGeoModel().fit(tiny), ["r", "alpha", "a", "b"]),
        ("ModifiedBetaGeoModel", lambda: clv.ModifiedBetaGeoModel().fit(tiny),
         ["r", "alpha", "a", "b"]),
        ("ParetoNBDModel", lambda: clv.ParetoNBDModel().fit(tiny), ["r", "alpha", "s", "beta"]),
        ("GammaGammaModel", lambda: clv.GammaGammaModel().fit(tiny), ["p", "q", "v"]),
        ("BetaGeoBetaBinomModel", lambda: clv.BetaGeoBetaBinomModel().fit(tiny_donations),
         ["alpha", "beta", "gamma", "delta"]),
        ("ShiftedBetaGeoModel", lambda: clv.ShiftedBetaGeoModel().fit([40, 25, 19, 15, 13]),
         ["alpha", "beta"]),
        ("ShiftedBetaGeoHazardModel",
         lambda: churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"]),
         ["alpha", "beta"]),
    ]


@pytest.mark.parametrize("name", [name for name, _, _ in _small_fits()])
def test_intervals_of_positive_parameters_stay_positive(name):
    """95 % intervals of positive parameters: log scale, above 0, std_err still reported."""
    _, make, positive = next(f for f in _small_fits() if f[0] == name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = make()
    s = model.summary_.loc[positive]
    est, se = s["estimate"].to_numpy(), s["std_err"].to_numpy()
    assert np.all(np.isfinite(se) & (se > 0))
    assert (est - 1.959964 * se < 0).any()  # the Wald interval would leave the parameter space
    assert np.all(s["lower_95"] > 0)
    assert np.all((s["lower_95"] < est) & (est < s["upper_95"]))
    np.testing.assert_allclose(s["lower_95"], est * np.exp(-1.959964 * se / est), rtol=1e-6)
    np.testing.assert_allclose(s["upper_95"], est * np.exp(1.959964 * se / est), rtol=1e-6)


def test_every_clv_model_is_in_the_interval_test():
    """A new CLV model (all parameters positive) must join the parametrised test above."""
    from crmstats.clv.models import BaseModel

    covered = {name for name, _, _ in _small_fits()}
    models = {name for name in clv.__all__
              if isinstance(getattr(clv, name), type) and issubclass(getattr(clv, name), BaseModel)}
    assert models <= covered, models - covered


def test_log_interval_and_mixed_summary_table():
    lo, hi = log_interval([2.0, 0.5], [1.0, 5.0])
    np.testing.assert_allclose(lo, [2 * np.exp(-1.959964 / 2), 0.5 * np.exp(-1.959964 * 10)],
                               rtol=1e-6)
    assert np.all(lo > 0) and np.all(hi > [2.0, 0.5])
    table = summary_table(["shape", "coef"], [0.5, -0.3], [1.0, 0.2], positive=[True, False])
    assert table.loc["shape", "lower_95"] > 0
    assert table.loc["coef", "lower_95"] == pytest.approx(-0.3 - 1.959964 * 0.2)
    assert table.loc["coef", "upper_95"] == pytest.approx(-0.3 + 1.959964 * 0.2)


def test_churn_hazard_models_are_siblings(panel):
    cox = churn.CoxModel().fit(panel, covariates=["x"])
    sbg = churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"])
    _check(cox, len(panel), ["x"])  # account-periods, in counting-process form
    _check(sbg, panel["account_id"].nunique(), ["alpha", "beta", "x"])
    assert "p_value" in cox.summary_ and "p_value" in sbg.summary_
    assert cox.events_ == sbg.events_ == int(panel["churned"].sum())
    for model in (cox, sbg):
        assert list(model.table.columns) == ["coef", "hazard_ratio", "lower", "upper", "p_value"]
        assert model.table.loc["x", "coef"] > 0
    # Cox ignores the heterogeneity in churn propensity and understates the driver
    assert cox.table.loc["x", "coef"] < sbg.table.loc["x", "coef"]


def test_sbg_hazard_without_drivers_is_the_clv_sbg(panel):
    """One sBG likelihood: without drivers the hazard model is the contractual CLV model."""
    last = panel.groupby("account_id").tail(1)
    frame = pd.DataFrame({"duration": last["exit"].to_numpy(),
                          "churned": last["churned"].to_numpy()})
    plain = clv.ShiftedBetaGeoModel().fit(frame)
    hazard = churn.ShiftedBetaGeoHazardModel().fit(panel)
    np.testing.assert_allclose(hazard.params_[["alpha", "beta"]], plain.params_, rtol=1e-4)
    assert hazard.log_likelihood_ == pytest.approx(plain.log_likelihood_, rel=1e-8)


def test_attribution_and_lead_scoring(small_crm):
    paths = attribution.build_paths(small_crm.touchpoints, small_crm.conversions)
    journeys = float((paths["conversions"] + paths["nulls"]).sum())
    for model in (attribution.MarkovAttribution().fit(paths),
                  attribution.ShapleyAttribution().fit(paths)):
        assert isinstance(model, Estimator) and model.n_obs_ == pytest.approx(journeys)
    leads = funnel.lead_features(small_crm)
    model = funnel.LeadScoringModel(penalty=1.0).fit(
        leads, features=["engagement_score", "industry"], target="qualified")
    assert model.n_obs_ + model.n_test_ + model.n_unlabelled_ == len(leads)
    s = model.summary_
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    np.testing.assert_allclose(np.exp(s["estimate"]), model.coefficients_["odds_ratio"])


def test_unfitted_estimators_raise_not_fitted(summary):
    for model in (clv.BetaGeoModel(), churn.CoxModel(), churn.ShiftedBetaGeoHazardModel(),
                  attribution.MarkovAttribution(), funnel.LeadScoringModel()):
        with pytest.raises(NotFittedError, match="not fitted"):
            model._check_fitted()
    with pytest.raises(NotFittedError):
        clv.BetaGeoModel().predict_purchases(summary, 10)
    with pytest.raises(NotFittedError):
        _ = attribution.ShapleyAttribution().shares_


def test_numerical_hessian_of_a_quadratic():
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    h = numerical_hessian(lambda x: 0.5 * x @ a @ x, np.array([0.3, -0.2]), 1e-4)
    np.testing.assert_allclose(h, a, rtol=1e-6)

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
        assert list(model.table.columns) == ["coef", "hazard_ratio", "hazard_ratio_lower_95",
                                              "hazard_ratio_upper_95", "p_value"]
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


# ---------------------------------------------------------------- keeping a model

#: Estimators without parameters to rebuild from or keep, and why (a new estimator must be
#: in MODEL_CLASSES or here).
NOT_PARAMETRIC = {
    "MarkovAttribution": "credit is computed from the journeys' transition counts; no parameters",
    "ShapleyAttribution": "credit is computed from the journeys' coalition worths; no parameters",
}
#: Estimators whose from_params is refused, and why.
NO_FROM_PARAMS = {
    "IncrementalityModel": "incremental conversions are sums over the fitted journeys",
}


def _all_estimator_classes():
    """Every Estimator subclass defined in a domain package (every module imported)."""
    import importlib
    import pkgutil

    for package in ("attribution", "churn", "clv", "funnel", "overview", "scores"):
        pkg = importlib.import_module(f"crmstats.{package}")
        for info in pkgutil.walk_packages(pkg.__path__, f"crmstats.{package}."):
            importlib.import_module(info.name)

    out, todo = {}, list(Estimator.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("crmstats.") and not cls.__name__.startswith("_") \
                and "BaseModel" != cls.__name__:
            out[cls.__name__] = cls
    return out


def test_every_estimator_can_be_kept_or_says_why_not():
    from crmstats.modelfile import MODEL_CLASSES

    classes = _all_estimator_classes()
    assert set(classes) == set(MODEL_CLASSES) | set(NOT_PARAMETRIC), \
        set(classes) ^ (set(MODEL_CLASSES) | set(NOT_PARAMETRIC))
    for name in MODEL_CLASSES:
        cls = classes[name]
        assert cls.__module__ == MODEL_CLASSES[name]
        for method in ("from_params", "_fit_facts", "_restore"):
            assert getattr(cls, method) is not getattr(Estimator, method), (name, method)
    assert set(_KEEPERS) == set(MODEL_CLASSES)


def _paths(crm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return attribution.build_paths(crm.touchpoints, crm.conversions)


def _leads(crm):
    return funnel.lead_features(crm)


#: Per class: fit(data) -> model, the data, outputs(model, data) -> dict of arrays,
#: from_params meta(model) -> kwargs.
_KEEPERS = {
    "BetaGeoModel": ("cdnow", lambda d: clv.BetaGeoModel().fit(d),
                     lambda m, d: {"p": m.predict_purchases(d, 10), "a": m.probability_alive(d)},
                     lambda m: {"time_unit": m.time_unit_, "period": m.period_}),
    "ModifiedBetaGeoModel": ("cdnow", lambda d: clv.ModifiedBetaGeoModel().fit(d),
                             lambda m, d: {"p": m.predict_purchases(d, 10),
                                           "a": m.probability_alive(d)},
                             lambda m: {"time_unit": m.time_unit_, "period": m.period_}),
    "ParetoNBDModel": ("cdnow", lambda d: clv.ParetoNBDModel().fit(d),
                       lambda m, d: {"p": m.predict_purchases(d, 10),
                                     "a": m.probability_alive(d)},
                       lambda m: {"time_unit": m.time_unit_, "period": m.period_}),
    "GammaGammaModel": ("cdnow", lambda d: clv.GammaGammaModel().fit(d),
                        lambda m, d: {"s": m.expected_spend(d)},
                        lambda m: {"time_unit": m.time_unit_, "period": m.period_}),
    "BetaGeoBetaBinomModel": ("donations", lambda d: clv.BetaGeoBetaBinomModel().fit(d),
                              lambda m, d: {"p": m.predict_purchases(d, 5),
                                            "a": m.probability_alive(d)},
                              lambda m: {}),
    "ShiftedBetaGeoModel": ("survivors", lambda d: clv.ShiftedBetaGeoModel().fit(d),
                            lambda m, d: {"s": m.survival(np.arange(20)),
                                          "r": m.retention_rate(np.arange(1, 20))},
                            lambda m: {}),
    "CoxModel": ("panel", lambda d: churn.CoxModel().fit(d, covariates=["x"]),
                 lambda m, d: {"t": m.table.to_numpy()},
                 lambda m: {"std_err": m.summary_["std_err"], "p_value": m.summary_["p_value"],
                            "n_obs": m.n_obs_, "events": m.events_}),
    "ShiftedBetaGeoHazardModel": (
        "panel", lambda d: churn.ShiftedBetaGeoHazardModel().fit(d, covariates=["x"]),
        lambda m, d: {"s": m.survival(np.arange(12), {"x": 1.0}),
                      "c": m.churn_probability(d)},
        lambda m: {}),
    "LeadScoringModel": (
        "leads", lambda d: funnel.LeadScoringModel(penalty=1.0).fit(
            d, features=["engagement_score", "industry"], target="qualified"),
        lambda m, d: {"p": m.predict_proba(d), "b": m.score_bands(d)["band"].cat.codes},
        lambda m: {"reference": {f: ref for f, (_, ref) in m.levels_.items()},
                   "band_edges": m.band_edges_}),
    "IncrementalityModel": ("paths",
                            lambda d: attribution.IncrementalityModel(n_bootstrap=5).fit(d),
                            lambda m, d: {"a": m.attribution_.to_numpy(), "s": m.shares_},
                            None),
    "MediaMixModel": ("media", lambda d: attribution.MediaMixModel(n_draws=20,
                                                                   holdout_weeks=0).fit(d),
                      lambda m, d: {"r": m.response(m.current_spend_),
                                    "h": m.response(2 * m.max_spend_),
                                    "d": m.decompose(d).to_numpy()},
                      lambda m: {"current_spend": m.current_spend_, "max_spend": m.max_spend_,
                                 "calendar": m.calendar_}),
}


@pytest.fixture(scope="module")
def keeper_data(summary, panel, small_crm):
    from crmstats.datasets import simulate_media

    return {"cdnow": summary, "donations": load_donations(),
            "media": simulate_media(2, n_weeks=80, n_channels=3)[0],
            "survivors": [1000, 631, 468, 382, 326], "panel": panel,
            "leads": _leads(small_crm), "paths": _paths(small_crm)}


def _same_outputs(got, expected, name):
    assert got.keys() == expected.keys()
    for key in expected:
        np.testing.assert_allclose(np.asarray(got[key], dtype=float),
                                   np.asarray(expected[key], dtype=float), rtol=1e-12,
                                   atol=0, err_msg=f"{name}: {key}")


@pytest.mark.parametrize("name", sorted(_KEEPERS))
def test_every_estimator_is_kept_and_rebuilt_identically(name, keeper_data, tmp_path):
    """save/load, to_dict/from_dict and from_params reproduce the fitted model's outputs."""
    import json

    from crmstats import CRMStatsError
    from crmstats.estimator import load_model

    kind, fit, outputs, meta = _KEEPERS[name]
    data = keeper_data[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = fit(data)
    cls = type(model)
    assert type(model).__name__ == name and model.fitted_here_
    expected = outputs(model, data)
    model.save(tmp_path / "m.json")
    copies = [cls.load(tmp_path / "m.json"), load_model(tmp_path / "m.json"),
              cls.from_dict(json.loads(json.dumps(model.to_dict())))]
    for copy in copies:
        assert type(copy) is cls and copy.fitted_here_ and copy.is_fitted
        pd.testing.assert_series_equal(copy.params_, model.params_, check_names=False)
        pd.testing.assert_frame_equal(copy.summary_, model.summary_)
        assert copy.n_obs_ == model.n_obs_
        assert copy.converged_ == getattr(model, "converged_", None)
        for attr in ("boundary_", "time_unit_", "period_", "covariates_", "events_",
                     "features_", "levels_", "channels_"):
            assert getattr(copy, attr, None) == getattr(model, attr, None), attr
        if hasattr(model, "variance_matrix_"):
            pd.testing.assert_frame_equal(copy.variance_matrix_, model.variance_matrix_)
        assert {k: getattr(copy, k) for k in cls._hyper} == \
            {k: getattr(model, k) for k in cls._hyper}
        _same_outputs(outputs(copy, data), expected, name)
    if meta is None:
        with pytest.raises(CRMStatsError, match="from_params"):
            cls.from_params(model.params_)
        assert name in NO_FROM_PARAMS
        return
    given = meta(model)
    rebuilt = cls.from_params(model.params_, **given)
    assert not rebuilt.fitted_here_ and rebuilt.converged_ is None
    if "std_err" not in given:
        assert rebuilt.summary_["std_err"].isna().all()
    assert list(rebuilt.summary_.columns) == list(model.summary_.columns)
    _same_outputs(outputs(rebuilt, data), expected, name)
    # a rebuilt model is kept like a fitted one, and stays "not fitted here"
    rebuilt.save(tmp_path / "r.json")
    again = cls.load(tmp_path / "r.json")
    assert not again.fitted_here_
    _same_outputs(outputs(again, data), expected, name)


def test_setting_params_by_hand_is_not_the_way():
    model = clv.BetaGeoModel()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    with pytest.raises(NotFittedError, match="from_params"):
        model.expected_purchases(10)

"""One name per idea (README "Glossary"); renamed names still work one release, with a warning."""

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import churn, clv, funnel, scores
from crmstats.datasets import load_cdnow
from crmstats.vocabulary import (
    find_interval,
    interval_columns,
    renamed_arguments,
    renamed_attribute,
    with_old_column_names,
)

pytestmark = pytest.mark.filterwarnings("ignore::crmstats.DataWarning")

#: Public callables and the arguments renamed in them (old -> new).
RENAMED = {
    clv.customer_lifetime_value: {"ci": "level"},
    clv.bootstrap_clv: {"ci": "level"},
    clv.fit_value: {"freq": "period"},
    clv.value_migration: {"freq": "period"},
    clv.tracking: {"freq": "period"},
    churn.survival_curves: {"alpha": "level"},
    churn.project_retention: {"cohort_freq": "period"},
    churn.churn_rate: {"churned_after": "lapsed_after"},
    scores.customer_360: {"freq": "period", "ci": "level"},
}


@pytest.mark.parametrize("func", list(RENAMED), ids=lambda f: f.__qualname__)
def test_signatures_show_the_new_names_only(func):
    params = inspect.signature(func).parameters
    for old, new in RENAMED[func].items():
        assert old not in params and new in params, (old, new)
    assert func.__renamed_arguments__ == RENAMED[func]


def test_renamed_argument_warns_and_forwards():
    @renamed_arguments(ci="level", alpha=("level2", lambda a: 1 - a))
    def f(x, *, level=0.9, level2=0.95):
        return x, level, level2

    assert f(1) == (1, 0.9, 0.95)
    with pytest.warns(DeprecationWarning, match=r"f: ci= is renamed level=") as record:
        assert f(1, ci=0.8) == (1, 0.8, 0.95)
    assert record[0].filename == __file__  # points at the caller
    with pytest.warns(DeprecationWarning, match="level2="):
        assert f(1, alpha=0.1) == (1, 0.9, 0.9)
    with pytest.raises(TypeError, match="pass level= only"):
        f(1, ci=0.8, level=0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f(1, level=0.5)  # the new name: no warning


def test_renamed_attribute_and_columns():
    class Result:
        level = 0.9
        ci = renamed_attribute("level", "ci")

    with pytest.warns(DeprecationWarning, match="Result.ci is renamed level"):
        assert Result().ci == 0.9
    frame = with_old_column_names(pd.DataFrame({"clv": [1.0], "clv_lower_90": [0.5]}),
                                  {"clv_lower": "clv_lower_90", "gone": "not_there"})
    with pytest.warns(DeprecationWarning, match="'clv_lower' is renamed 'clv_lower_90'"):
        pd.testing.assert_series_equal(frame["clv_lower"], frame["clv_lower_90"])
    with pytest.raises(KeyError):
        frame["gone"]  # only renames whose new column exists
    with pytest.raises(KeyError):
        frame["clv_upper"]
    assert type(frame.copy()) is pd.DataFrame  # derived frames are plain
    pd.testing.assert_frame_equal(frame, frame.copy())


def test_interval_columns_name_the_level():
    assert interval_columns("clv", 0.9) == ("clv_lower_90", "clv_upper_90")
    assert interval_columns("hazard_ratio") == ("hazard_ratio_lower_95", "hazard_ratio_upper_95")
    assert interval_columns("x", 0.975) == ("x_lower_97_5", "x_upper_97_5")
    frame = pd.DataFrame(columns=["x", "x_lower_97_5", "x_upper_97_5", "x_band_lower_95"])
    assert find_interval(frame, "x") == ("x_lower_97_5", "x_upper_97_5", 0.975)
    with pytest.raises(KeyError, match="x_band"):
        find_interval(frame, "x_band")


@pytest.fixture(scope="module")
def cdnow_fit():
    summary = clv.rfm_summary(load_cdnow("sample"), observation_end="1997-09-30",
                              time_unit="W")
    return summary, clv.BetaGeoModel().fit(summary), clv.GammaGammaModel().fit(summary)


def test_clv_interval_level_and_columns(cdnow_fit):
    summary, bg, gg = cdnow_fit
    new = clv.customer_lifetime_value(bg, gg, summary, n_bootstrap=4, level=0.8, seed=1)
    assert {"clv_lower_80", "clv_upper_80"} <= set(new.columns)
    assert "clv_lower" not in new.columns
    with pytest.warns(DeprecationWarning, match="ci= is renamed level="):
        old = clv.customer_lifetime_value(bg, gg, summary, n_bootstrap=4, ci=0.8, seed=1)
    pd.testing.assert_frame_equal(old, new)
    with pytest.warns(DeprecationWarning, match="'clv_upper' is renamed 'clv_upper_80'"):
        np.testing.assert_array_equal(new["clv_upper"], new["clv_upper_80"])
    boot = clv.bootstrap_clv(bg, gg, summary, n_bootstrap=4, level=0.8, seed=1)
    assert boot.lower.name == "clv_lower_80" and boot.level == 0.8
    with pytest.warns(DeprecationWarning, match="BootstrapCLV.ci is renamed level"):
        assert boot.ci == 0.8


def test_survival_level_replaces_alpha():
    life = pd.DataFrame({"duration": [1, 2, 2, 3, 4, 5, 6, 6, 7, 9] * 3,
                         "churned": [1, 1, 0, 1, 1, 0, 1, 1, 0, 1] * 3})
    new = churn.survival_curves(life, level=0.9)
    with pytest.warns(DeprecationWarning, match="alpha= is renamed level="):
        old = churn.survival_curves(life, alpha=0.1)
    pd.testing.assert_frame_equal(old.curves, new.curves)
    assert new.level == pytest.approx(0.9)
    lo, hi, level = find_interval(new.curves, "survival")
    assert (lo, hi, level) == ("survival_lower_90", "survival_upper_90", 0.9)
    wider = churn.survival_curves(life).curves  # 95 %
    assert (wider["survival_lower_95"] <= new.curves[lo] + 1e-12).all()
    assert {"median_lower_90", "median_upper_90"} <= set(new.medians.columns)
    with pytest.warns(DeprecationWarning, match="'band_lower' is renamed"):
        pd.testing.assert_series_equal(new.curves["band_lower"],
                                       new.curves["survival_band_lower_90"])
    assert list(new.at([2, 5]).columns[-4:]) == ["survival_lower_90", "survival_upper_90",
                                                 "survival_band_lower_90",
                                                 "survival_band_upper_90"]
    with pytest.raises(ValueError, match="level is a coverage"):
        churn.survival_curves(life, level=95)


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(5)
    rows = []
    for i, theta in enumerate(rng.beta(1.0, 3.0, 300)):
        for t in range(1, 10):
            x = rng.poisson(0.5)
            churned = rng.random() < 1 - (1 - theta) ** np.exp(0.4 * x)
            rows.append((f"a{i}", t - 1, t, int(churned), x))
            if churned:
                break
    return pd.DataFrame(rows, columns=["account_id", "entry", "exit", "churned", "x"])


def test_hazard_models_take_the_same_fit_arguments(panel):
    cox = inspect.signature(churn.CoxModel.fit).parameters
    sbg = inspect.signature(churn.ShiftedBetaGeoHazardModel.fit).parameters
    assert list(cox) == list(sbg)
    assert [p.default for p in cox.values()] == [p.default for p in sbg.values()]
    kw = dict(covariates=["x"], id_col="account_id", duration_col="exit",
              event_col="churned", entry_col="entry")
    for model in (churn.CoxModel(), churn.ShiftedBetaGeoHazardModel()):
        assert model.fit(panel, **kw) is model
        lo, hi, level = find_interval(model.table, "hazard_ratio")
        assert level == 0.95 and (model.table[lo] < model.table["hazard_ratio"]).all()
        with pytest.warns(DeprecationWarning, match="'lower' is renamed 'hazard_ratio_lower_95'"):
            pd.testing.assert_series_equal(model.table["lower"], model.table[lo])


def test_churn_probability_is_the_probability_of_churn_by_horizon(panel):
    model = churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"])
    one = model.churn_probability(panel)
    pd.testing.assert_series_equal(one, model.churn_probability(panel, horizon=1))
    three = model.churn_probability(panel, horizon=3)
    running = one.notna()
    assert (three[running] > one[running]).all() and (three[running] < 1).all()
    assert three[~running].isna().all()
    # an account with no history: 1 - S(horizon) of the survival curve at the panel's mean
    new = model.churn_probability(panel, horizon=4, accounts=["new"])
    expected = 1 - model.survival(4, {"x": panel["x"].mean()})
    assert new["new"] == pytest.approx(float(expected), rel=1e-10)
    # by horizon h = one minus surviving each period in turn (chain of conditionals)
    two = model.churn_probability(panel, horizon=2, accounts=["new"])["new"]
    first = model.churn_probability(panel, horizon=1, accounts=["new"])["new"]
    s1 = model.survival(1, {"x": panel["x"].mean()})
    assert 1 - two == pytest.approx((1 - first) * model.survival(2, {"x": panel["x"].mean()})
                                    / s1, rel=1e-10)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="horizon"):
            model.churn_probability(panel, horizon=bad)


def test_lifecycle_lapse_threshold_is_in_time_unit(small_crm):
    weeks = funnel.lifecycle_stage(small_crm, models=False)
    days = funnel.lifecycle_stage(small_crm, models=False, time_unit="D")
    lapse_w = weeks["lapsed_after"].dropna().unique()
    lapse_d = days["lapsed_after"].dropna().unique()
    assert len(lapse_w) == len(lapse_d) == 1
    # the same rule (twice the median gap between repeat purchases) in days
    assert lapse_d[0] == pytest.approx(7 * lapse_w[0], rel=0.02)
    pd.testing.assert_series_equal(weeks["stage"], days["stage"])
    with pytest.warns(DeprecationWarning, match="'weeks_since_purchase' is renamed"):
        pd.testing.assert_series_equal(weeks["weeks_since_purchase"],
                                       weeks["time_since_purchase"])
    # an explicit threshold is read in time_unit
    strict = funnel.lifecycle_stage(small_crm, models=False, time_unit="D",
                                    lapsed_after=7 * lapse_w[0])
    pd.testing.assert_series_equal(strict["stage"], weeks["stage"])

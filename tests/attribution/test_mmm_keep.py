"""MediaMixModel: the delayed adstock's analytic gradient, and a kept model's decomposition.

A loaded model or one built by ``from_params`` keeps parameters, not weeks: it
decomposes a weekly table with ``decompose`` and says so when asked for
``contributions_``. The Weibull adstock's Jacobian is analytic (the fit used
finite differences, ~8 s on 156 weeks x 8 channels; timings in benchmarks/mmm.py).
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError, NotFittedError
from crmstats.attribution import MediaMixModel
from crmstats.attribution.mediacurves import (
    lag_matrix,
    weibull_adstock,
    weibull_weights,
    weibull_weights_grad,
)
from crmstats.datasets import media_lift_tests, simulate_media


@pytest.fixture(scope="module")
def sim():
    return simulate_media(5, n_weeks=80, n_channels=3)


@pytest.fixture(scope="module")
def weibull(sim):
    table, _ = sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MediaMixModel(adstock="weibull", n_draws=30, holdout_weeks=0).fit(table)


def _central(f, x, h=1e-6):
    return np.column_stack([(f(x + e) - f(x - e)) / (2 * h) for e in np.eye(len(x)) * h])


def test_weibull_weights_and_their_gradient():
    shapes, scales = np.array([2.0, 0.7, 1.3]), np.array([3.0, 1.5, 6.0])
    w, d_shape, d_scale = weibull_weights_grad(shapes, scales, 13)
    for j, (k, s) in enumerate(zip(shapes, scales, strict=True)):
        np.testing.assert_allclose(w[:, j], weibull_weights(k, s, 13), atol=1e-15)
        h = 1e-6
        num_k = (weibull_weights(k * np.exp(h), s, 13)
                 - weibull_weights(k * np.exp(-h), s, 13)) / (2 * h)
        num_s = (weibull_weights(k, s * np.exp(h), 13)
                 - weibull_weights(k, s * np.exp(-h), 13)) / (2 * h)
        np.testing.assert_allclose(d_shape[:, j], num_k, atol=1e-8)
        np.testing.assert_allclose(d_scale[:, j], num_s, atol=1e-8)
    # weights that underflow fall back to lag 0, without derivatives
    w, d_shape, _ = weibull_weights_grad([60.0], [0.01], 13)
    assert w[0, 0] == 1.0 and w[1:, 0].sum() == 0 and not d_shape.any()
    np.testing.assert_array_equal(w[:, 0], weibull_weights(60.0, 0.01, 13))
    # a distributed-lag adstock of all channels at once is each channel's convolution
    x = np.random.default_rng(0).random((30, 2))
    w, _, _ = weibull_weights_grad([2.0, 1.2], [3.0, 2.0], 13)
    a = np.einsum("tlc,lc->tc", lag_matrix(x, 13), w)
    np.testing.assert_allclose(a[:, 1], weibull_adstock(x[:, 1], 1.2, 2.0, 13), atol=1e-14)


def test_the_weibull_fit_uses_the_exact_jacobian(sim, weibull):
    table, truth = sim
    tests = media_lift_tests(table, truth, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = MediaMixModel(adstock="weibull", n_draws=30, holdout_weeks=0).fit(
            table, lift_tests=tests)
    for model in (weibull, cal):
        core = model._core
        u = model._u + 0.05 * np.random.default_rng(1).standard_normal(len(model._u))
        np.testing.assert_allclose(core.jacobian(u), _central(core.residuals, u), atol=1e-6)
    assert weibull.converged_ and cal.converged_
    assert np.isfinite(weibull.roas_.to_numpy()).all()


@pytest.mark.parametrize("adstock", ["geometric", "weibull"])
def test_a_kept_model_decomposes_weeks_like_the_fitted_one(sim, weibull, adstock, tmp_path):
    table, _ = sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = weibull if adstock == "weibull" else MediaMixModel(
            n_draws=30, holdout_weeks=0).fit(table)
    np.testing.assert_allclose(model.decompose(table), model.contributions_, rtol=1e-10)
    model.save(tmp_path / "m.json")
    loaded = MediaMixModel.load(tmp_path / "m.json")
    rebuilt = MediaMixModel.from_params(model.params_, adstock=adstock,
                                        calendar=model.calendar_)
    for kept in (loaded, rebuilt):
        got = kept.decompose(table)
        assert list(got.columns) == list(model.contributions_.columns)
        np.testing.assert_allclose(got, model.contributions_, rtol=1e-10)
        np.testing.assert_allclose(got.sum(axis=1), model.fitted_, rtol=1e-10)
        with pytest.raises(NotFittedError, match=r"decompose\(table\)"):
            kept.contributions_  # noqa: B018
        assert not hasattr(kept, "fitted_")
    # the information about the curves comes with the covariance: kept by a model file,
    # unknown to a model built from its parameters alone
    pd.testing.assert_frame_equal(loaded.curve_information_, model.curve_information_)
    assert rebuilt.curve_information_.isna().all().all()
    assert list(rebuilt.curve_information_.index) == model.channels_
    # later weeks alone: the same baseline and controls (the trend and season keep their dates)
    late = loaded.decompose(table.iloc[40:])
    np.testing.assert_allclose(late[["baseline", "promotion"]],
                               model.contributions_.iloc[40:][["baseline", "promotion"]],
                               rtol=1e-10)


def test_a_model_without_its_calendar_or_data_says_what_to_pass(sim, weibull):
    table, _ = sim
    bare = MediaMixModel.from_params(weibull.params_, adstock="weibull")
    with pytest.raises(NotFittedError, match="calendar=fitted_model.calendar_"):
        bare.decompose(table)
    with pytest.raises(DataError, match="'display'"):
        weibull.decompose(table.drop(columns=[("spend", "display")]))
    with pytest.raises(ValueError, match="control_means for 'promotion'"):
        MediaMixModel.from_params(weibull.params_, adstock="weibull",
                                  calendar={**weibull.calendar_, "control_means": {}})
    with pytest.raises(ValueError, match="start must be a date"):
        MediaMixModel.from_params(weibull.params_, adstock="weibull",
                                  calendar={**weibull.calendar_, "start": None})
    with pytest.raises(NotFittedError, match="fit"):
        MediaMixModel().decompose(table)


def test_the_curve_table_of_a_delayed_carry_over(weibull):
    from crmstats.attribution import curve_table

    info = weibull.curve_information_
    assert list(info.columns) == ["weibull_shape", "weibull_scale", "half_saturation", "shape"]
    table = curve_table(weibull)
    np.testing.assert_allclose(table["carry-over"],
                               (info["weibull_shape"] + info["weibull_scale"]) / 2)
    np.testing.assert_array_equal(table["curve shape"], info["shape"])

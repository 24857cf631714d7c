"""optimize_budget(objective="expected"): the split maximising the outcome averaged over draws."""

import warnings

import numpy as np
import pytest

from crmstats.attribution import MediaMixModel
from crmstats.datasets import simulate_media


@pytest.fixture(scope="module")
def two_channel():
    table, _ = simulate_media(4, n_weeks=104, n_channels=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MediaMixModel(n_draws=300, holdout_weeks=0).fit(table)


def _mean_outcome(model, split):
    return float(model.response(np.asarray(split, float), draws=True).sum(axis=1).mean())


def test_the_expected_split_maximises_the_outcome_averaged_over_the_draws(two_channel):
    model = two_channel
    total = float(model.current_spend_.sum())
    plug = model.optimize_budget(total)
    exp = model.optimize_budget(total, objective="expected")
    assert plug.objective == "plugin" and exp.objective == "expected"
    hi = exp.allocation["max_spend"].to_numpy()
    # an independent search: the two-channel split on a fine grid of the first channel's spend
    first = np.linspace(max(0.0, total - hi[1]), min(hi[0], total), 4001)
    grid_best = max(_mean_outcome(model, [a, total - a]) for a in first)
    got = _mean_outcome(model, exp.allocation["recommended"])
    assert got >= grid_best - 1e-6 * abs(grid_best)
    assert got >= _mean_outcome(model, plug.allocation["recommended"]) - 1e-9
    # the draws' spread makes the two objectives differ on this model
    assert not np.allclose(exp.allocation["recommended"], plug.allocation["recommended"],
                           rtol=1e-3)
    # gain and outcomes are averages over the draws, and the interval is around the gain
    rec, cur = exp.allocation["recommended"].to_numpy(), exp.allocation["current"].to_numpy()
    per_draw = (model.response(rec, draws=True) - model.response(cur, draws=True)).sum(axis=1)
    assert exp.gain == pytest.approx(per_draw.mean() * exp.weeks, rel=1e-9)
    np.testing.assert_allclose(exp.allocation["recommended_outcome"],
                               model.response(rec, draws=True).mean(axis=0), rtol=1e-9)
    assert exp.gain_lower_95 <= exp.gain <= exp.gain_upper_95


def test_without_draws_the_expected_split_is_the_plugin_split(two_channel):
    model = two_channel
    # the same curves at the point estimate, without draws (from_params keeps no covariance)
    point = MediaMixModel.from_params(model.params_,
                                      current_spend=model.current_spend_,
                                      max_spend=model.max_spend_)
    total = float(model.current_spend_.sum())
    plug = model.optimize_budget(total)
    exp = point.optimize_budget(total, objective="expected")
    np.testing.assert_allclose(exp.allocation["recommended"], plug.allocation["recommended"],
                               rtol=1e-6)
    assert exp.gain == pytest.approx(plug.gain, rel=1e-6)


def test_an_unknown_objective_is_refused(two_channel):
    with pytest.raises(ValueError, match="objective must be one of 'plugin', 'expected'"):
        two_channel.optimize_budget(objective="mean")

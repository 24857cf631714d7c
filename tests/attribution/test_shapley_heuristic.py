"""Shapley values (efficiency, symmetry, brute force) and the rule-based models."""

from itertools import permutations
from math import factorial

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats.attribution import ShapleyAttribution, heuristic


def brute_force_shapley(paths: pd.DataFrame, column: str = "conversions") -> pd.Series:
    """Average marginal contribution over every ordering of the channels, from the definition."""
    sets = [(frozenset(p), w) for p, w in zip(paths.path, paths[column], strict=True)]
    channels = sorted(set().union(*(s for s, _ in sets)))

    def worth(coalition):
        return sum(w for s, w in sets if s <= coalition)

    phi = dict.fromkeys(channels, 0.0)
    for order in permutations(channels):
        members = set()
        for ch in order:
            before = worth(members)
            members.add(ch)
            phi[ch] += worth(members) - before
    return pd.Series(phi) / factorial(len(channels))


def test_shapley_equals_brute_force_enumeration(random_paths):
    m = ShapleyAttribution().fit(random_paths)
    for col in ("conversions", "value"):
        want = brute_force_shapley(random_paths, col)
        np.testing.assert_allclose(m.attribution_[col], want[m.channels_], rtol=1e-10)


def test_shapley_efficiency_on_the_demo(demo_paths):
    m = ShapleyAttribution().fit(demo_paths)
    np.testing.assert_allclose(m.attribution_["conversions"].sum(),
                               demo_paths.conversions.sum(), rtol=1e-12)
    np.testing.assert_allclose(m.attribution_["value"].sum(), demo_paths.value.sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(m.worth_["conversions"].iloc[-1], demo_paths.conversions.sum())
    # for this worth the Shapley value splits each journey equally among its distinct channels
    simple = pd.Series(0.0, index=m.channels_)
    for p, c in zip(demo_paths.path, demo_paths.conversions, strict=True):
        for ch in set(p):
            simple[ch] += c / len(set(p))
    np.testing.assert_allclose(m.attribution_["conversions"], simple, rtol=1e-10)


def test_shapley_symmetric_channels_get_equal_credit():
    paths = pd.DataFrame({"path": [("a", "b"), ("b", "a", "c"), ("a",), ("b",), ("c", "a", "b")],
                          "conversions": [4, 2, 3, 3, 1], "nulls": [1, 1, 1, 1, 1]})
    m = ShapleyAttribution().fit(paths)
    assert m.attribution_.loc["a", "conversions"] == pytest.approx(
        m.attribution_.loc["b", "conversions"], rel=1e-12)
    assert m.attribution_.loc["c", "conversions"] < m.attribution_.loc["a", "conversions"]


def test_shapley_gives_nothing_to_a_channel_only_in_null_journeys():
    paths = pd.DataFrame({"path": [("a",), ("b", "z"), ("a", "b")],
                          "conversions": [2, 0, 1], "nulls": [0, 3, 0]})
    m = ShapleyAttribution().fit(paths)
    assert m.attribution_.loc["z", "conversions"] == 0.0


def test_shapley_refuses_too_many_channels():
    paths = pd.DataFrame({"path": [tuple(f"c{i}" for i in range(13))], "conversions": [1]})
    with pytest.raises(ValueError, match="13 channels, more than max_channels=12"):
        ShapleyAttribution().fit(paths)
    got = ShapleyAttribution(max_channels=13).fit(paths).attribution_["conversions"]
    np.testing.assert_allclose(got, 1 / 13, rtol=1e-12)


PATHS = pd.DataFrame({
    "path": [("a",), ("a", "b"), ("b", "c", "a"), ("c", "a", "b", "c")],
    "conversions": [1, 2, 1, 2], "value": [10.0, 20.0, 30.0, 40.0], "nulls": [5, 0, 0, 1],
})


@pytest.mark.parametrize("model, want", [
    ("first_touch", {"a": 1 + 2, "b": 1, "c": 2}),
    ("last_touch", {"a": 1 + 1, "b": 2, "c": 2}),
    ("linear", {"a": 1 + 1 + 1 / 3 + 2 / 4, "b": 1 + 1 / 3 + 2 / 4, "c": 1 / 3 + 4 / 4}),
    # 40/20/40: two touches split 50/50; three 0.4/0.2/0.4; four 0.4/0.1/0.1/0.4
    ("position_based", {"a": 1 + 1 + 0.4 + 0.2, "b": 1 + 0.4 + 0.2, "c": 0.2 + 1.6}),
])
def test_heuristic_models_by_hand(model, want):
    got = heuristic(PATHS, model)
    np.testing.assert_allclose(got["conversions"], pd.Series(want)[got.index], rtol=1e-12)
    assert got["conversions"].sum() == pytest.approx(PATHS.conversions.sum())
    assert got["value"].sum() == pytest.approx(PATHS.value.sum())


def test_position_weights_are_configurable_and_checked():
    got = heuristic(PATHS, "position_based", position_weights=(0.3, 0.4, 0.3))
    # c: the middle of b > c > a (0.4), both ends of the four-touch path (2 x 0.6)
    assert got.loc["c", "conversions"] == pytest.approx(0.4 + 2 * 0.6)
    with pytest.raises(ValueError, match="summing to 1"):
        heuristic(PATHS, "position_based", position_weights=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="model must be one of"):
        heuristic(PATHS, "u_shaped")


def test_time_decay_needs_touch_times_and_sums_to_the_totals(demo_paths):
    with pytest.raises(DataError, match="half_life"):
        heuristic(PATHS, "time_decay")
    got = heuristic(demo_paths, "time_decay")
    np.testing.assert_allclose(got.sum(), [demo_paths.conversions.sum(),
                                           demo_paths.value.sum()], rtol=1e-10)
    # single-touch journeys get their whole conversion under every rule
    single = demo_paths[demo_paths.path.map(len) == 1]
    got_single = heuristic(single, "time_decay")
    want = heuristic(single, "last_touch")
    np.testing.assert_allclose(got_single, want, rtol=1e-10)

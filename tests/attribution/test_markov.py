"""Markov attribution: chains solved by hand, Monte-Carlo runs of the same chain, edge cases."""

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats.attribution import MarkovAttribution, to_channelattribution


def hand_paths():
    # a > b > a converts (value 30), b does not, a converts (value 10)
    return pd.DataFrame({"path": [("a", "b", "a"), ("b",), ("a",)],
                         "conversions": [1, 0, 1], "value": [30.0, 0.0, 10.0],
                         "nulls": [0, 1, 0]})


def test_order_one_chain_solved_by_hand():
    """Solved by hand.

    Transitions: start->a 2/3, start->b 1/3; a->b 1/3, a->conv 2/3; b->a 1/2, b->null 1/2.
    x_a = 2/3 + x_b/3, x_b = x_a/2  =>  x_a = 4/5, x_b = 2/5; P(conv) = 2/3*4/5 + 1/3*2/5 = 2/3.
    Without a: nothing converts (RE 1). Without b: x_a = 2/3, P = 4/9, RE = 1/3.
    Credit of 2 conversions: a 2 * 1/(4/3) = 3/2, b 1/2.
    Value from a is 20 a conversion: y_a = 16, y_b = 8, E[V] = 40/3; without b: 80/9, RE 1/3;
    value credit: a 40 * 3/4 = 30, b 10.
    """
    m = MarkovAttribution(order=1).fit(hand_paths())
    np.testing.assert_allclose(m.conversion_probability_, 2 / 3, rtol=1e-12)
    np.testing.assert_allclose(m.removal_effects_[["a", "b"]], [1.0, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(m.value_removal_effects_[["a", "b"]], [1.0, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(m.attribution_.loc[["a", "b"], "conversions"], [1.5, 0.5],
                               rtol=1e-12)
    np.testing.assert_allclose(m.attribution_.loc[["a", "b"], "value"], [30.0, 10.0], rtol=1e-12)
    tm = m.transition_matrix_
    np.testing.assert_allclose(tm.loc["(start)", ["a", "b"]], [2 / 3, 1 / 3])
    np.testing.assert_allclose(tm.loc["a", ["b", "(conversion)", "(null)"]], [1 / 3, 2 / 3, 0])
    np.testing.assert_allclose(tm.loc["b", ["a", "(conversion)", "(null)"]], [1 / 2, 0, 1 / 2])
    np.testing.assert_allclose(tm.sum(axis=1), 1.0)


def test_order_two_chain_solved_by_hand():
    """Solved by hand.

    Paths a>b>c (1 conversion), b>c (1 null), a (1 conversion). States (a), (a,b), (b,c),
    (b); start->(a) 2/3, start->(b) 1/3; (a)->(a,b) 1/2, (a)->conv 1/2; (a,b)->(b,c);
    (b)->(b,c); (b,c)->conv 1/2, ->null 1/2.  P = 2/3 (1/2 + 1/2 * 1/2) + 1/3 * 1/2 = 2/3.
    Without a: P = 1/3 * 1/2 = 1/6, RE 3/4. Without b: P = 2/3 * 1/2 = 1/3, RE 1/2.
    Without c: same as without b, RE 1/2.
    """
    paths = pd.DataFrame({"path": [("a", "b", "c"), ("b", "c"), ("a",)],
                          "conversions": [1, 0, 1], "nulls": [0, 1, 0]})
    m = MarkovAttribution(order=2).fit(paths)
    assert set(m.states_) == {("a",), ("a", "b"), ("b", "c"), ("b",)}
    np.testing.assert_allclose(m.conversion_probability_, 2 / 3, rtol=1e-12)
    np.testing.assert_allclose(m.removal_effects_[["a", "b", "c"]], [0.75, 0.5, 0.5], rtol=1e-12)
    np.testing.assert_allclose(m.attribution_["conversions"].sum(), 2.0)
    np.testing.assert_allclose(m.transition_matrix_.loc["b > c", "(conversion)"], 0.5)


def simulate_chain(model: MarkovAttribution, n_walks: int, seed: int = 13):
    """Brute force: random walks on the fitted chain; returns (converted, visited channels)."""
    tm = model.transition_matrix_
    labels = list(tm.columns)
    conv_col, null_col = labels.index("(conversion)"), labels.index("(null)")
    rows = {name: i for i, name in enumerate(tm.index)}
    cum = np.cumsum(tm.to_numpy(), axis=1)
    cum[:, -1] = 1.0
    # row of each column state (columns are states, then the two absorbing states)
    col_to_row = np.array([rows.get(lbl, -1) for lbl in labels])
    chans = model.channels_
    state_mask = np.zeros(len(labels), dtype=np.int64)
    for i, lbl in enumerate(labels[:conv_col]):
        for ch in lbl.split(" > "):
            state_mask[i] |= 1 << chans.index(ch)
    rng = np.random.default_rng(seed)
    row = np.full(n_walks, rows["(start)"])
    visited = np.zeros(n_walks, dtype=np.int64)
    converted = np.zeros(n_walks, bool)
    alive = np.ones(n_walks, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        u = rng.random(len(idx))
        nxt = (cum[row[idx]] < u[:, None]).sum(axis=1)
        done_conv = nxt == conv_col
        done_null = nxt == null_col
        converted[idx[done_conv]] = True
        alive[idx[done_conv | done_null]] = False
        go = ~(done_conv | done_null)
        visited[idx[go]] |= state_mask[nxt[go]]
        row[idx[go]] = col_to_row[nxt[go]]
    return converted, visited


@pytest.mark.parametrize("order", [1, 2, 3])
def test_markov_equals_monte_carlo_simulation_of_the_same_chain(random_paths, order):
    m = MarkovAttribution(order=order).fit(random_paths)
    n = 200_000
    converted, visited = simulate_chain(m, n, seed=order)
    p_hat = converted.mean()
    se = np.sqrt(p_hat * (1 - p_hat) / n)
    assert abs(p_hat - m.conversion_probability_) < 4 * se
    # removal effect of c = P(walk visits c | it converts) (a converting walk that avoids c
    # converts in the chain with c redirected to null as well)
    conv_visits = visited[converted]
    for i, ch in enumerate(m.channels_):
        re_hat = ((conv_visits >> i) & 1).mean()
        se = np.sqrt(re_hat * (1 - re_hat) / len(conv_visits))
        assert abs(re_hat - m.removal_effects_[ch]) < 4 * se + 1e-12, (order, ch)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_chain_reproduces_the_observed_conversion_rate(demo_paths, order):
    m = MarkovAttribution(order=order).fit(demo_paths)
    observed = demo_paths.conversions.sum() / (demo_paths.conversions + demo_paths.nulls).sum()
    np.testing.assert_allclose(m.conversion_probability_, observed, rtol=1e-10)
    np.testing.assert_allclose(m.attribution_.sum(), [demo_paths.conversions.sum(),
                                                      demo_paths.value.sum()], rtol=1e-10)
    assert (m.removal_effects_ >= 0).all() and (m.removal_effects_ <= 1).all()


def test_repeated_channels_do_not_change_first_order_removal_effects(random_paths):
    collapsed = random_paths.assign(path=[tuple(c for i, c in enumerate(p) if i == 0
                                                or c != p[i - 1]) for p in random_paths.path])
    a = MarkovAttribution().fit(random_paths)
    b = MarkovAttribution().fit(collapsed)
    np.testing.assert_allclose(a.removal_effects_, b.removal_effects_, rtol=1e-10)


def test_single_touch_and_never_converting_channels():
    paths = pd.DataFrame({"path": [("a",), ("b",), ("c", "c"), ("a", "c")],
                          "conversions": [3, 1, 0, 0], "nulls": [1, 1, 5, 2]})
    m = MarkovAttribution().fit(paths)
    # 13 journeys, 4 conversions: P = 6/13 * 1/2 + 2/13 * 1/2 = 4/13. Without a only b converts
    # (1/13, RE 3/4); without b, 3/13 (RE 1/4); c never leads to a conversion (RE 0).
    np.testing.assert_allclose(m.conversion_probability_, 4 / 13, rtol=1e-12)
    np.testing.assert_allclose(m.removal_effects_[["a", "b", "c"]], [0.75, 0.25, 0.0],
                               atol=1e-12)
    assert m.attribution_.loc["c", "conversions"] == 0.0
    np.testing.assert_allclose(m.attribution_.loc[["a", "b"], "conversions"], [3.0, 1.0])


def test_channelattribution_format_gives_the_same_model(demo_paths):
    a = MarkovAttribution(order=2).fit(demo_paths)
    b = MarkovAttribution(order=2).fit(to_channelattribution(demo_paths))
    pd.testing.assert_frame_equal(a.attribution_, b.attribution_)


def test_bad_arguments():
    with pytest.raises(ValueError, match="order must be 1, 2 or 3"):
        MarkovAttribution(order=4).fit(hand_paths())
    with pytest.raises(DataError, match="no conversions"):
        MarkovAttribution().fit(hand_paths().assign(conversions=0))
    from crmstats import NotFittedError

    with pytest.raises(NotFittedError):
        MarkovAttribution().shares_  # noqa: B018

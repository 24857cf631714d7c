"""The lead-scoring fit's IRLS equals statsmodels' GLM (binomial) it replaces."""

import warnings

import numpy as np
import pytest

from crmstats.funnel._irls import logistic_irls


def _data(n, seed, separated=False):
    rng = np.random.default_rng(seed)
    level = rng.integers(0, 4, n)
    x = np.column_stack([np.ones(n), rng.normal(50, 15, n), *[(level == k) * 1.0
                                                             for k in (1, 2, 3)]])
    beta = np.array([-3.0, 0.05, 0.8, -0.5, 0.3])
    y = (rng.random(n) < 1 / (1 + np.exp(-x @ beta))) * 1.0
    if separated:  # every row of level 3 has the outcome
        y[level == 3] = 1.0
    return x, y


@pytest.mark.parametrize(("n", "seed", "separated"), [(400, 1, False), (20_000, 2, False),
                                                      (600, 3, True)])
def test_estimates_and_errors_equal_statsmodels(n, seed, separated):
    import statsmodels.api as sm

    x, y = _data(n, seed, separated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(y, x, family=sm.families.Binomial()).fit()
        params, std_err, p_value, converged = logistic_irls(x, y)
    assert converged
    np.testing.assert_allclose(params, ref.params, rtol=1e-9)
    np.testing.assert_allclose(std_err, ref.bse, rtol=1e-7)
    np.testing.assert_allclose(p_value, ref.pvalues, rtol=1e-7, atol=1e-300)
    if separated:
        assert abs(params[4]) > 10


def test_perfect_prediction_warns():
    x = np.column_stack([np.ones(40), np.r_[np.zeros(20), np.ones(20)]])
    y = np.r_[np.zeros(20), np.ones(20)]
    with pytest.warns(RuntimeWarning, match="separation"):
        logistic_irls(x, y)

"""The logistic link's own Newton fit against statsmodels' binomial GLM (an independent fit).

Issue 23/24: statsmodels' IRLS kept weighted copies of the design (836 MB more than its input
on the 10x demo's 367,305 path rows, the study's largest process); the logistic link is now
fitted by Newton's method on the design as it is, to the same optimum.
"""

import warnings

import numpy as np
import pytest

from crmstats.attribution.counterfactual import _logit_loglik, logit_fit


def _design(seed=4, n=3000):
    rng = np.random.default_rng(seed)
    x = np.column_stack([np.ones(n), rng.random((n, 3)) < 0.4,
                         rng.normal(size=(n, 2))]).astype(float)
    beta = np.array([-1.2, 0.6, 0.0, 0.3, 0.5, -0.2])
    trials = rng.integers(1, 6, n).astype(float)
    conv = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-(x @ beta)))).astype(float)
    trials[:10] = 0.0  # rows without journeys are left out
    conv[:10] = 0.0
    return x, conv, trials - conv


def test_logit_fit_equals_statsmodels_glm():
    import statsmodels.api as sm

    x, conv, nulls = _design()
    params, se, p_value, penalised, converged = logit_fit(x, conv, nulls)
    keep = (conv + nulls) > 0
    ref = sm.GLM(np.column_stack([conv, nulls])[keep], x[keep],
                 family=sm.families.Binomial()).fit(tol=1e-12)
    assert not penalised and converged
    assert np.allclose(params, ref.params, rtol=0, atol=1e-8)
    assert np.allclose(se, ref.bse, rtol=1e-7)
    assert np.allclose(p_value, ref.pvalues, rtol=1e-6, atol=1e-12)


def test_penalised_logit_fit_reaches_the_ridge_optimum():
    """The ridge objective of statsmodels' fit_regularized(L1_wt=0): ours is at least as high
    and its gradient is zero (statsmodels' coordinate descent stops ~1e-5 short of it)."""
    import statsmodels.api as sm

    x, conv, nulls = _design(seed=5)
    penalty = 0.01
    params, se, _, penalised, _ = logit_fit(x, conv, nulls, penalty=penalty)
    keep = (conv + nulls) > 0
    rows = int(keep.sum())

    def objective(b):
        return _logit_loglik(b, x, conv, nulls) / rows - penalty / 2 * np.sum(b[1:] ** 2)

    alpha = np.full(x.shape[1], penalty)
    alpha[0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(np.column_stack([conv, nulls])[keep], x[keep],
                     family=sm.families.Binomial()).fit_regularized(alpha=alpha, L1_wt=0.0)
    assert penalised and np.isnan(se).all()
    assert objective(params) >= objective(np.asarray(ref.params)) - 1e-12
    assert np.allclose(params, ref.params, atol=1e-4)
    p = 1 / (1 + np.exp(-(x @ params)))
    grad = x.T @ (conv - (conv + nulls) * p) / rows - penalty * np.r_[0.0, params[1:]]
    assert np.max(np.abs(grad)) < 1e-9


def test_separated_journeys_fall_back_to_the_ridge():
    """A channel present in every converting journey and no other: the maximum is at
    infinity, so the fit is the ridge one (statsmodels raised PerfectSeparationWarning)."""
    x = np.column_stack([np.ones(6), [1, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 1]]).astype(float)
    conv = np.array([3.0, 2.0, 4.0, 0.0, 0.0, 0.0])
    nulls = np.array([0.0, 0.0, 0.0, 5.0, 3.0, 2.0])
    params, _, _, penalised, converged = logit_fit(x, conv, nulls)
    assert penalised and converged
    assert np.all(np.isfinite(params)) and params[1] > 2.0


@pytest.mark.parametrize("seed", [1, 2])
def test_unpenalised_fit_is_the_maximum(seed):
    x, conv, nulls = _design(seed=seed)
    params, *_ = logit_fit(x, conv, nulls)
    p = 1 / (1 + np.exp(-(x @ params)))
    assert np.max(np.abs(x.T @ (conv - (conv + nulls) * p))) < 1e-6


@pytest.mark.parametrize("pen", [0.0, 5.0])
def test_chord_steps_of_a_bootstrap_refit_reach_the_full_newton_optimum(pen):
    """The bootstrap refits a resample from the full fit with the full fit's Hessian (chord
    steps, one product with the design each); they end where full Newton steps do."""
    from crmstats.attribution.counterfactual import _logit_hessian, _logit_newton, _ridge
    from crmstats.attribution.noisy_or import _expit

    x, conv, nulls = _design(seed=6)
    full, _, ok = _logit_newton(x, conv, nulls, pen)
    assert ok
    rng = np.random.default_rng(1)
    weights = rng.poisson(1.0, len(x)).astype(float)  # a resample of the rows
    c, n = conv * weights, nulls * weights
    hessian = _logit_hessian(x, conv + nulls, _expit(x @ full), _ridge(x.shape[1], pen))
    chord, used, ok_chord = _logit_newton(x, c, n, pen, start=full, tol=1e-10, hessian=hessian)
    newton, _, ok_newton = _logit_newton(x, c, n, pen)
    assert ok_chord and ok_newton
    assert used is hessian  # the chord steps converged: no Hessian of the resample was made
    assert np.allclose(chord, newton, rtol=0, atol=1e-8)
    assert not np.allclose(chord, full, atol=1e-3)  # a real refit, not the start returned

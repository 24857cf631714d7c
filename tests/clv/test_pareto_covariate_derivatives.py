"""Pareto/NBD with covariates: the analytic derivatives against the model's own likelihood.

:mod:`crmstats.clv.models._pareto_covariates` gives each covariate pattern's
log-likelihood, gradient and Hessian by Gauss-Jacobi quadrature of the death
integral; here they are checked against the model's hypergeometric likelihood
(``ParetoNBDModel._log_likelihood_rows``, Fader & Hardie's note) and central
differences of it, including the quadrature's wider rule and its
hypergeometric fallback (forced by lowering their thresholds).
"""

import numpy as np
import pandas as pd
import pytest

from crmstats import clv
from crmstats.clv import ParetoNBDModel
from crmstats.clv.models import _pareto_covariates as pc
from crmstats.clv.models import covariate_fit


def _customers(seed=3, n=4000, patterns=4):
    rng = np.random.default_rng(seed)
    code = rng.integers(0, patterns, n)
    x = rng.poisson(rng.gamma(0.6, 4, n)).astype(float)
    T = np.round(rng.uniform(2, 60, n) * 7) / 7
    tx = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T * 7) / 7, 0.0)
    tx[:5] = T[:5]  # a last purchase on the last day: no death term
    x[:5] = np.maximum(x[:5], 1)
    return code, x, tx, T


def _exact(code, x, tx, T, r, s, alpha, beta):
    """Each pattern's log-likelihood by the model's hypergeometric row formula."""
    model = ParetoNBDModel()
    return np.array([np.sum(model._log_likelihood_rows(
        (r, alpha[p], s, beta[p]),
        {"frequency": x[code == p], "recency": tx[code == p], "T": T[code == p]}))
        for p in range(len(alpha))])


CASES = [  # r, s, alpha per pattern, beta per pattern: alpha above, below and near beta
    (0.55, 0.6, [10.0, 3.0, 20.0, 5.0], [11.0, 40.0, 2.0, 5.0]),
    (1.1, 2.2, [9.7, 6.0, 14.0, 0.4], [61.0, 30.0, 90.0, 300.0]),
]


@pytest.mark.parametrize("r, s, alpha, beta", CASES)
@pytest.mark.parametrize("thresholds", ["default", "wide rule", "fallback"])
def test_value_gradient_and_hessian_equal_the_hypergeometric_likelihood(
        monkeypatch, r, s, alpha, beta, thresholds):
    if thresholds == "wide rule":
        monkeypatch.setattr(pc, "Z_NARROW", 0.05)
    elif thresholds == "fallback":
        monkeypatch.setattr(pc, "Z_NARROW", 0.05)
        monkeypatch.setattr(pc, "Z_WIDE", 0.3)
    code, x, tx, T = _customers()
    alpha, beta = np.array(alpha), np.array(beta)
    table = pc.PairTable(code, x, tx, T, np.ones(len(x)))
    f, g, h = pc.pattern_derivatives(table, r, s, alpha, beta)
    want = _exact(code, x, tx, T, r, s, alpha, beta)
    np.testing.assert_allclose(f, want, rtol=1e-12)
    for p in range(len(alpha)):
        theta = np.array([r, alpha[p], s, beta[p]])

        def exact_at(v, p=p):
            a, b = alpha.copy(), beta.copy()
            a[p], b[p] = v[1], v[3]
            return _exact(code, x, tx, T, v[0], v[2], a, b)[p]

        def grad_at(v, p=p):
            a, b = alpha.copy(), beta.copy()
            a[p], b[p] = v[1], v[3]
            return pc.pattern_derivatives(table, v[0], v[2], a, b, order=1)[1][p]

        fd_g = np.empty(4)
        fd_h = np.empty((4, 4))
        for j in range(4):
            e = np.zeros(4)
            e[j] = 1e-5 * theta[j]
            fd_g[j] = (exact_at(theta + e) - exact_at(theta - e)) / (2 * e[j])
            fd_h[:, j] = (grad_at(theta + e) - grad_at(theta - e)) / (2 * e[j])
        np.testing.assert_allclose(g[p], fd_g, rtol=1e-6, atol=1e-6 * np.abs(fd_g).max())
        np.testing.assert_allclose(h[p], fd_h, rtol=1e-5, atol=1e-6 * np.abs(fd_h).max())
        np.testing.assert_allclose(h[p], h[p].T)


def test_the_rule_kept_across_evaluations_gives_the_same_derivatives():
    """A rule kept from r + s = c0 and shifted by ρ^(c - c0) equals one computed afresh."""
    code, x, tx, T = _customers(seed=5)
    r, s, alpha, beta = 0.9, 1.3, np.array([8.0, 4.0, 12.0, 6.0]), np.array([30.0, 3.0, 9.0, 60.0])
    kept = pc.PairTable(code, x, tx, T, np.ones(len(x)))
    pc.pattern_derivatives(kept, r - 0.2, s, alpha, beta)  # rules kept at r + s - 0.2
    fresh = pc.PairTable(code, x, tx, T, np.ones(len(x)))
    for a, b in zip(pc.pattern_derivatives(kept, r, s, alpha, beta),
                    pc.pattern_derivatives(fresh, r, s, alpha, beta), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.fixture(scope="module")
def shop():
    from tests.clv.test_covariates import simulate_shop

    summary, customers = simulate_shop(seed=21, n=1500)
    X = clv.covariate_frame(customers, ["channel"], reference={"channel": "organic"})
    return summary, X


def test_fit_equals_the_fit_by_differences(shop, monkeypatch):
    """Newton on the analytic derivatives reaches the optimum of the earlier fit (L-BFGS on
    central differences of the hypergeometric likelihood), at least as high."""
    summary, X = shop
    monkeypatch.setattr(covariate_fit, "USE_ANALYTIC", True)  # off by default (see its note)
    new = ParetoNBDModel().fit(summary, covariates=X)
    monkeypatch.setattr(covariate_fit, "USE_ANALYTIC", False)
    old = ParetoNBDModel().fit(summary, covariates=X)
    assert new.converged_ and old.converged_
    assert new.log_likelihood_ >= old.log_likelihood_ - 1e-9
    assert new.log_likelihood_ == pytest.approx(old.log_likelihood_, rel=1e-9)
    np.testing.assert_allclose(new.params_.iloc[4:], old.params_.iloc[4:], atol=1e-4)
    np.testing.assert_allclose(new.params_.iloc[:4], old.params_.iloc[:4], rtol=1e-4)
    np.testing.assert_allclose(new.summary_["std_err"], old.summary_["std_err"], rtol=1e-3)


def test_numeric_covariates_make_every_pattern_unique(shop):
    """With a numeric covariate every customer is a pattern: the fit takes the same path
    (all patterns at once) and equals the log-likelihood the model computes for it."""
    summary, X = shop
    rng = np.random.default_rng(2)
    Xn = X.assign(age=rng.normal(size=len(X)).round(3))
    model = ParetoNBDModel().fit(summary, covariates=Xn)
    assert model.n_rows_ > 500
    assert model.log_likelihood(summary) == pytest.approx(model.log_likelihood_, rel=1e-12)
    table = pc.PairTable(np.arange(len(summary)), summary["frequency"].to_numpy(),
                         summary["recency"].to_numpy(), summary["T"].to_numpy(),
                         np.ones(len(summary)))
    assert table.n_patterns == len(summary)
    assert isinstance(model.summary_, pd.DataFrame)

"""Pareto/NBD with covariates: the analytic derivatives against the model's own likelihood.

:mod:`crmstats.clv.models._pareto_covariates` gives each covariate pattern's
log-likelihood, gradient and Hessian by Gauss-Jacobi quadrature of the death
integral; here they are checked against the model's hypergeometric likelihood
(Fader & Hardie's note, written here with scipy's ``hyp2f1``) and central
differences of it, including the quadrature's wider rule and its
hypergeometric fallback (forced by lowering their thresholds).
"""

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, hyp2f1

from crmstats import clv
from crmstats.clv import ParetoNBDModel
from crmstats.clv.models import _pareto_covariates as pc


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
    """Each pattern's log-likelihood by Fader & Hardie's hypergeometric form (eq. 11-12 of
    their 2005 note), written here with scipy's hyp2f1 (accurate at these parameters)."""
    out = []
    for p in range(len(alpha)):
        a, b = alpha[p], beta[p]
        xp, txp, Tp = x[code == p], tx[code == p], T[code == p]
        m = r + s + xp
        big, second = (a, s + 1) if a >= b else (b, r + xp)

        def f(u, big=big, second=second, m=m, a=a, b=b):
            return hyp2f1(m, second, m + 1, abs(a - b) / (big + u)) / (big + u) ** m

        alive = (a + Tp) ** -(r + xp) * (b + Tp) ** -s
        dead = s / m * (f(txp) - f(Tp))
        head = gammaln(r + xp) - gammaln(r) + r * np.log(a) + s * np.log(b)
        out.append(np.sum(head + np.log(alive + dead)))
    return np.array(out)


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


def test_fit_is_the_maximum_of_the_hypergeometric_likelihood(shop):
    """The Newton fit on the quadratures' derivatives sits where the likelihood written with
    scipy's hyp2f1 (``_exact``) is maximal: the same value there, and its central-difference
    gradient in (log r, log alpha, log s, log beta, coefficients) zero."""
    summary, X = shop
    model = ParetoNBDModel().fit(summary, covariates=X)
    assert model.converged_
    values, code = np.unique(X.to_numpy(dtype=float), axis=0, return_inverse=True)
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    names = list(model.params_.index)
    theta = np.concatenate([np.log(model.params_.iloc[:4]), model.params_.iloc[4:]])
    cols = list(X.columns)

    def loglik(th):
        r, a0, s, b0 = np.exp(th[:4])
        gp = np.array([th[names.index(f"purchase:{c}")] for c in cols])
        gd = np.array([th[names.index(f"dropout:{c}")] for c in cols])
        return _exact(code.ravel(), x, tx, T, r, s, a0 * np.exp(-values @ gp),
                      b0 * np.exp(-values @ gd)).sum()

    assert loglik(theta) == pytest.approx(model.log_likelihood_, rel=1e-10)
    grad = np.array([(loglik(theta + e) - loglik(theta - e)) / 2e-5
                     for e in np.eye(len(theta)) * 1e-5])
    assert np.abs(grad).max() < 1e-3  # at a log-likelihood of about -1e4


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


def test_subsample_warm_start_reaches_the_same_optimum(shop, monkeypatch):
    """Large fits start from the estimate on every 4th row (weights x 4): same optimum."""
    from crmstats.clv.models import covariate_fit

    summary, X = shop
    cold = ParetoNBDModel().fit(summary, covariates=X)
    monkeypatch.setattr(covariate_fit, "WARM_ROWS", 100)
    calls = []
    real = covariate_fit._subsample
    monkeypatch.setattr(covariate_fit, "_subsample",
                        lambda p, k=4: calls.append(k) or real(p, k))
    warm = ParetoNBDModel().fit(summary, covariates=X)
    assert calls == [16, 4] and warm.converged_  # both levels of the warm start
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(warm.params_.iloc[:4], cold.params_.iloc[:4], rtol=1e-5)
    np.testing.assert_allclose(warm.params_.iloc[4:], cold.params_.iloc[4:], atol=1e-5)

"""Pareto/NBD on data whose likelihood has its supremum at the edge: every fit ends, and says so.

The no-dropout shop with one random binary covariate ran for more than 10
minutes on the Newton path of 7d61f77 (its dropout scale ran off along a
ridge, each step 0.3-1 s in scipy's hyp2f1 near z = 1); see
:mod:`crmstats.clv.models._bounded_newton` and :mod:`._pareto_wide`. No timing
is asserted here: a hang shows as a test that does not finish.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceWarning
from crmstats.clv import ParetoNBDModel, with_units
from tests.clv.conftest import simulate_shop_without_dropout


def _flag(index, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"flag": rng.integers(0, 2, len(index)).astype(float)}, index=index)


def _fit(summary, covariates=None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ParetoNBDModel().fit(summary, covariates=covariates)
    return model, [str(w.message) for w in caught if w.category is ConvergenceWarning]


@pytest.fixture(scope="module")
def no_dropout():
    return simulate_shop_without_dropout(1000, 4)


def test_no_dropout_shop_with_a_covariate_ends_at_the_boundary(no_dropout):
    """The case that hung: the fit converges, names the boundary and warns."""
    X = _flag(no_dropout.index)
    model, caught = _fit(no_dropout, X)
    null = ParetoNBDModel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        null.fit(no_dropout)
    assert model.converged_
    assert "no measurable dropout" in model.boundary_
    assert any("ParetoNBDModel found no measurable dropout" in w for w in caught)
    assert model.log_likelihood_ >= null.log_likelihood_ - 1e-9
    assert np.all(np.isfinite(model.params_))
    p = model.probability_alive(no_dropout)
    assert p.between(0, 1).all()
    assert p[X["flag"] == 0].min() > 0.999  # the pattern whose dropout scale ran off


def test_everyone_buying_at_the_end_has_no_dropout(no_dropout):
    """recency = T for all: no death term anywhere, so the dropout rate runs to 0."""
    end = no_dropout.assign(frequency=np.maximum(no_dropout["frequency"], 1.0),
                            recency=no_dropout["T"])
    for X in (None, _flag(end.index)):
        model, caught = _fit(end, X)
        assert "no measurable dropout" in model.boundary_
        assert caught
        np.testing.assert_allclose(model.probability_alive(end), 1.0, atol=1e-6)


def test_one_repeat_purchase_each(no_dropout):
    """Every customer exactly one repeat purchase, at a random day: a finite fit either way."""
    rng = np.random.default_rng(1)
    one = no_dropout.assign(frequency=1.0,
                            recency=np.floor(no_dropout["T"] * 7 * rng.uniform(0, 1,
                                                                              len(no_dropout))) / 7)
    for X in (None, _flag(one.index)):
        model, _ = _fit(one, X)
        assert np.all(np.isfinite(model.params_)) and np.isfinite(model.log_likelihood_)
        assert model.converged_ or model.boundary_


def test_one_dropout_rate_for_everyone_is_the_s_to_infinity_edge():
    """Exponential lifetimes with one rate for all customers: s and beta grow together and the
    fit reports the common dropout rate s / beta, close to the simulated 1/30 per week."""
    rng = np.random.default_rng(5)
    n = 4000
    T = rng.uniform(20, 52, n).round()
    lam = rng.gamma(1.0, 1 / 2.0, n)
    life = rng.exponential(30.0, n)
    seen = np.minimum(life, T)
    x = rng.poisson(lam * seen)
    tx = np.where(x > 0, np.floor(seen * 7 * rng.beta(np.maximum(x, 1), 1)) / 7, 0.0)
    summary = with_units(pd.DataFrame(
        {"frequency": x.astype(float), "recency": tx, "T": T},
        index=pd.Index([f"C{i}" for i in range(n)], name="customer_id")), period="D",
        time_unit="W")
    model, caught = _fit(summary)
    s, beta = model.params_["s"], model.params_["beta"]
    if model.boundary_ is None:  # a sample may show some spread of dropout rates
        assert s > 5
    else:  # the limit, in plain words (crmstats.clv.models.limits): ranked like any fit
        assert caught
        assert model.boundary_.startswith("found no differences between customers in how "
                                          "soon they stop buying")
        assert "beta" not in model.boundary_
    assert s / beta == pytest.approx(1 / 30, rel=0.25)


@pytest.mark.slow
def test_random_shops_every_fit_ends_finite_and_no_dropout_is_seen():
    """Twelve random shops (no dropout, one exponential rate, or gamma-spread rates; half with
    two covariates): each fit returns finite parameters, likelihood and P(alive), and in a shop
    without dropout most customers are judged alive."""
    rng = np.random.default_rng(11)
    for i in range(12):
        n = int(rng.integers(200, 1000))
        mode = i % 3
        T = rng.uniform(10, 80, n).round()
        lam = rng.gamma(np.exp(rng.uniform(-1.5, 1.5)), 1 / np.exp(rng.uniform(0, 4)), n)
        if mode == 0:
            life = np.full(n, np.inf)
        elif mode == 1:
            life = rng.exponential(np.exp(rng.uniform(1, 5)), n)
        else:
            life = rng.exponential(1 / rng.gamma(0.5, 1 / np.exp(rng.uniform(-5, 0)), n))
        seen = np.minimum(life, T)
        x = rng.poisson(lam * seen)
        x[0] = max(x[0], 1)
        tx = np.where(x > 0, np.floor(seen * 7 * rng.beta(np.maximum(x, 1), 1)) / 7, 0.0)
        summary = with_units(pd.DataFrame(
            {"frequency": x.astype(float), "recency": tx, "T": T},
            index=pd.Index([f"C{j}" for j in range(n)], name="customer_id")), period="D",
            time_unit="W")
        X = pd.DataFrame({"a": rng.integers(0, 2, n).astype(float),
                          "b": rng.integers(0, 3, n).astype(float)},
                         index=summary.index) if i % 2 else None
        model, _ = _fit(summary, X)
        assert np.all(np.isfinite(model.params_)) and np.isfinite(model.log_likelihood_)
        alive = model.probability_alive(summary)
        assert np.isfinite(alive).all()
        if mode == 0:  # nobody dropped out: the fit sees most customers alive
            assert alive.median() > 0.9, (i, model.params_)


def _quad_loglik(params, x, tx, T):
    """Per-customer Pareto/NBD log-likelihood with the death integral by scipy's quad (eq. 11
    of Fader & Hardie's note before its hypergeometric closed form)."""
    from scipy import integrate
    from scipy.special import gammaln

    r, a, s, b = params
    out = []
    for xi, ti, Ti in zip(x, tx, T, strict=True):
        alive = -(r + xi) * np.log(a + Ti) - s * np.log(b + Ti)
        dead = 0.0
        if Ti > ti:
            dead = s * integrate.quad(lambda t, xi=xi, Ti=Ti: np.exp(
                -(r + xi) * np.log(a + t) - (s + 1) * np.log(b + t)
                + (r + xi) * np.log(a + Ti) + s * np.log(b + Ti)), ti, Ti,
                epsabs=0, epsrel=1e-12, limit=200)[0]
        out.append(gammaln(r + xi) - gammaln(r) + r * np.log(a) + s * np.log(b) + alive
                   + np.log1p(dead))
    return np.array(out)


@pytest.mark.parametrize("params", [(0.616, 13.9, 78.9, 5942.0),      # the demo's s = 79
                                    (0.616, 13.9, 31212.0, 2.36e6)])  # and at the s -> inf edge
def test_likelihood_and_p_alive_at_large_s_equal_direct_integration(params):
    """Far-apart scales with a large s: the 64-node rule was off by 27 in log J there, and
    scipy's hyp2f1 (the model's likelihood before) by 887 in the demo's log-likelihood; the
    second case failed on 08395d3."""
    from scipy.special import gammaln

    rng = np.random.default_rng(2)
    n = 60
    T = np.round(rng.uniform(30, 60, n) * 7) / 7
    x = rng.integers(0, 25, n).astype(float)
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, n) * T * 7) / 7, 0.0)
    summary = with_units(pd.DataFrame({"frequency": x, "recency": tx, "T": T},
                                      index=pd.Index([f"C{i}" for i in range(n)],
                                                     name="customer_id")),
                         period="D", time_unit="W")
    names = ["r", "alpha", "s", "beta"]
    model = ParetoNBDModel.from_params(dict(zip(names, params, strict=True)), time_unit="W",
                                       period="D")
    want = _quad_loglik(params, x, tx, T)
    assert model.log_likelihood(summary) == pytest.approx(want.sum(), rel=1e-10)
    r, a, s, b = params
    log_alive = -(r + x) * np.log(a + T) - s * np.log(b + T)
    head = gammaln(r + x) - gammaln(r) + r * np.log(a) + s * np.log(b)
    np.testing.assert_allclose(model.probability_alive(summary),
                               np.exp(head + log_alive - want), rtol=1e-9)

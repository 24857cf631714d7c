"""Pareto/NBD: the shortcuts of the fast path give what the long way gives.

- The quadrature's node count per pair comes from an error bound
  (:func:`crmstats.clv.models._pareto_covariates.small_tier_limits`): wherever it
  allows ``n`` nodes, ``n`` nodes agree with a 96-node rule.
- The plain fit does not evaluate the likelihood again at its optimum (its
  last Newton iteration did): the kept evaluation equals a fresh one.
No timings here (they belong in benchmarks/).
"""

import numpy as np
import pytest

from crmstats.clv import ParetoNBDModel
from crmstats.clv.models import _pareto_covariates as pc


def _log_g(m, n, z, q, reflect):
    """log G and its log-partials with an ``n``-node rule computed afresh at ``m``."""
    rule = tuple(p[0] for p in pc._rule_derivatives(np.array([m]), n))
    return np.array(pc._quadrature(z, q, reflect, rule))


@pytest.mark.parametrize("q", [1.05, 2.3, 6.0, 25.0])
@pytest.mark.parametrize("m", [0.7, 2.5, 9.0, 40.0])
def test_the_bound_never_allows_too_few_nodes(q, m):
    for n, z_max in pc.small_tier_limits(q):
        z = np.linspace(0.01, z_max, 25)
        for reflect in (False, True):
            want = _log_g(m, 96, z, q, reflect)
            got = _log_g(m, n, z, q, reflect)
            assert np.abs(got[0] - want[0]).max() < 1e-12  # log G
            for k in (2, 3, 7, 8, 9):  # its derivatives in z and q
                np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-9)


def test_the_bound_is_a_bound_not_a_guess():
    """Loosened a millionfold, it allows nodes that are measurably too few: it bites."""
    q, m = 2.3, 2.5
    n, z_max = pc.small_tier_limits(q, nodes=(8,), tol=1e-5)[0]
    z = np.array([z_max])
    err = np.abs(_log_g(m, n, z, q, True)[0] - _log_g(m, 96, z, q, True)[0])
    assert err.max() > 1e-12
    assert pc.small_tier_limits(q, nodes=(8,))[0][1] < z_max


def test_fewer_nodes_where_the_singularity_is_far():
    """Each larger rule reaches a larger z, and a steeper integrand (larger q) a smaller one."""
    for q in (1.5, 3.0, 12.0):
        limits = [z for _, z in pc.small_tier_limits(q)]
        assert limits == sorted(limits) and limits[0] > 0.05
    assert pc.small_tier_limits(12.0)[-1][1] < pc.small_tier_limits(1.5)[-1][1]


def test_plain_fit_reuses_its_last_evaluation(cdnow_calibration, monkeypatch):
    """After Newton's last iteration the fit asks nothing more of the quadratures, and the
    log-likelihood and standard errors it keeps equal a fresh evaluation at the optimum."""
    from crmstats.clv.models import _bounded_newton

    calls, at_end = [], []
    real = pc.pattern_derivatives
    monkeypatch.setattr(pc, "pattern_derivatives",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    newton = _bounded_newton.bounded_newton

    def counted(*a, **k):
        res = newton(*a, **k)
        at_end.append(len(calls))
        return res

    monkeypatch.setattr(_bounded_newton, "bounded_newton", counted)
    model = ParetoNBDModel().fit(cdnow_calibration)
    assert at_end and len(calls) == at_end[-1]  # nothing after the last Newton run
    monkeypatch.undo()
    assert model.log_likelihood(cdnow_calibration) == pytest.approx(model.log_likelihood_,
                                                                    rel=1e-13)
    fresh = ParetoNBDModel()
    data = fresh._prepare(cdnow_calibration)
    theta = model.params_.to_numpy(dtype=float)
    _, g, h = fresh._nll(np.log(theta), data, hessian=True)
    cov = np.linalg.inv((h - np.diag(g)) / np.outer(theta, theta))
    np.testing.assert_allclose(model.summary_["std_err"], np.sqrt(np.diag(cov)), rtol=1e-10)


def test_small_groups_in_one_call_equal_one_call_per_rule(monkeypatch):
    """The gathered quadrature (many rules, one call) equals one call per rule, on pairs of
    both Pfaff forms and of kept and freshly computed rules (x up to 40)."""
    from crmstats.clv.models import _pareto_quadrature as pq

    rng = np.random.default_rng(8)
    n = 3000
    code = rng.integers(0, 3, n)
    x = np.minimum(rng.poisson(rng.gamma(0.8, 6, n)), 40).astype(float)
    T = np.round(rng.uniform(2, 60, n) * 7) / 7
    tx = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T * 7) / 7, 0.0)
    r, s = 0.9, 1.4
    alpha, beta = np.array([9.0, 30.0, 4.0]), np.array([25.0, 6.0, 60.0])
    out = {}
    for below in (0, 10**9):
        monkeypatch.setattr(pq, "BATCH_BELOW", below)
        table = pc.PairTable(code, x, tx, T, np.ones(n))
        pc.pattern_derivatives(table, r - 0.1, s, alpha, beta)  # keep rules from r + s - 0.1
        out[below] = pc.pattern_derivatives(table, r, s, alpha, beta)
    for a, b in zip(out[0], out[10**9], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)


def test_the_bound_stays_finite_on_the_ridge():
    """A fit running toward s -> infinity (q in the thousands): no overflow warning, and no
    small rule for any pair (the steep integrand goes to the larger rules and panels)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limits = pc.small_tier_limits(5264.0)
    assert [z for _, z in limits] == [0.0] * len(limits)

"""BTYD models with covariates against a second, independent implementation (CDNOW).

The published likelihoods are written out here per customer in plain
numpy/scipy — BG/NBD as Fader, Hardie & Lee (2005, eq. 6), Pareto/NBD as
Fader & Hardie's (2005) note, eq. (11)-(12) — with the customer's scale
parameters of Fader & Hardie (2007): ``alpha_i = alpha_0 exp(-γ_p x_i)`` and
``b_i = b_0 exp(-γ_d x_i)`` (BG/NBD) / ``beta_i = beta_0 exp(-γ_d x_i)``
(Pareto/NBD). No compression, no analytic derivatives, no shared code with
crmstats: maximised by BFGS from a fixed start and polished by Newton steps on
central-difference derivatives. The covariate: a first order above the
median first order (CDNOW sample, 39-week calibration, weeks).
"""

import numpy as np
import pytest
from scipy import optimize
from scipy.special import betaln, gammaln, hyp2f1

from crmstats import clv
from crmstats.datasets import load_cdnow


@pytest.fixture(scope="module")
def data(cdnow_calibration):
    tx = load_cdnow("sample")
    tx = tx[tx["timestamp"] <= "1997-09-30"]
    first_day = tx.groupby("customer_id")["timestamp"].transform("min")
    first = tx[tx["timestamp"] == first_day].groupby("customer_id")["amount"].sum()
    big = (first > first.median()).astype(float).rename("big_first")
    s = cdnow_calibration
    return s, big.to_frame().loc[s.index]


def bgnbd_ll(theta, x, tx, T, z):
    r, alpha0, a, b0 = np.exp(theta[:4])
    gp, gd = theta[4], theta[5]
    alpha = alpha0 * np.exp(-gp * z)
    b = b0 * np.exp(-gd * z)
    head = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
            - (r + x) * np.log(alpha + T))
    ratio = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300)
                     * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
    return np.sum(head + np.log1p(ratio))


def pnbd_ll(theta, x, tx, T, z):
    r, alpha0, s, beta0 = np.exp(theta[:4])
    gp, gd = theta[4], theta[5]
    alpha = alpha0 * np.exp(-gp * z)
    beta = beta0 * np.exp(-gd * z)
    rsx = r + s + x
    big = np.maximum(alpha, beta)
    second = np.where(alpha >= beta, s + 1, r + x)

    def f(u):
        return hyp2f1(rsx, second, rsx + 1, np.abs(alpha - beta) / (big + u)) / (big + u) ** rsx

    alive = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s)
    dead = s / rsx * (f(tx) - f(T))
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    return np.sum(head + np.log(alive + dead))


def independent_fit(ll, args):
    """Maximise ``ll`` from a fixed start: Nelder-Mead, then Newton on central differences."""
    def nll(th):
        with np.errstate(all="ignore"):
            v = -ll(th, *args)
        return v if np.isfinite(v) else 1e300

    start = np.array([0.0, np.log(np.mean(args[2]) / 4), 0.0, np.log(np.mean(args[2]) / 4),
                      0.0, 0.0])
    bounds = [(-8, 8)] * 4 + [(-5, 5)] * 2
    th = optimize.minimize(nll, start, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 2000}).x
    h = 1e-4
    for _ in range(8):
        eye = np.eye(6) * h
        g = np.array([(nll(th + e) - nll(th - e)) / (2 * h) for e in eye])
        hess = np.array([[(nll(th + ei + ej) - nll(th + ei - ej) - nll(th - ei + ej)
                           + nll(th - ei - ej)) / (4 * h * h) for ej in eye] for ei in eye])
        step = np.linalg.solve(hess, g)
        while nll(th - step) > nll(th) + 1e-9:  # damped: never uphill
            step /= 2
        th = th - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return th


def _arrays(s, X):
    return (s["frequency"].to_numpy(float), s["recency"].to_numpy(float),
            s["T"].to_numpy(float), X["big_first"].to_numpy(float))


@pytest.mark.parametrize("cls, ll, base", [
    (clv.BetaGeoModel, bgnbd_ll, ["r", "alpha", "a", "b"]),
    (clv.ParetoNBDModel, pnbd_ll, ["r", "alpha", "s", "beta"]),
])
def test_cdnow_fit_equals_independent_implementation(data, cls, ll, base):
    s, X = data
    args = _arrays(s, X)
    model = cls().fit(s, covariates=X)
    names = [*base, "purchase:big_first", "dropout:big_first"]
    assert list(model.params_.index) == names
    est = model.params_.to_numpy()
    ours = np.concatenate([np.log(est[:4]), est[4:]])
    # the same log-likelihood at crmstats' estimate...
    assert model.log_likelihood_ == pytest.approx(ll(ours, *args), abs=1e-6)
    # ...and the same estimate from the independent maximisation
    theirs = independent_fit(ll, args)
    assert ll(theirs, *args) == pytest.approx(model.log_likelihood_, abs=1e-6)
    np.testing.assert_allclose(np.exp(theirs[:4]), est[:4], rtol=1e-6)
    np.testing.assert_allclose(theirs[4:], est[4:], atol=1e-6)
    # the covariate matters on CDNOW: a big first order goes with more purchasing
    assert model.params_["purchase:big_first"] > 0
    assert model.summary_.loc["purchase:big_first", "p_value"] < 0.01

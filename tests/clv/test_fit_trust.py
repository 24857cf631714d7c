"""Fits a reader can trust: boundary fits named and not ranked, bootstrap refits screened."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceWarning, clv
from crmstats.book import findings, report
from tests.clv.conftest import simulate_shop_without_dropout


def _quiet(fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit()


@pytest.fixture(scope="module")
def holdout_shop():
    """Seed 4: BG/NBD's b runs off to 1.7e7 and the fit does not converge."""
    return simulate_shop_without_dropout(1000, 4, holdout=39.0)


@pytest.fixture(scope="module")
def stuck(holdout_shop):
    """The BG/NBD fit of the holdout shop, with the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = clv.BetaGeoModel().fit(holdout_shop)
    return model, [str(w.message) for w in caught if w.category is ConvergenceWarning]


def test_no_dropout_fit_is_named_with_its_limiting_dropout_probability(holdout_shop, stuck):
    bg, caught = stuck
    assert any("BetaGeoModel found no measurable dropout" in w for w in caught)
    assert bg.params_["b"] > 1e6
    assert "no measurable dropout" in bg.boundary_ and "b ran off to" in bg.boundary_
    assert "limiting dropout probability a / (a + b) after each purchase: below 0.01 %" in (
        bg.boundary_)
    assert clv.fit_problem(bg).startswith("did not converge and found no measurable dropout")
    # its predictions are still those of the no-dropout limit: finite and not negative
    assert (bg.predict_purchases(holdout_shop, 52.0) >= 0).all()


def test_interior_fits_have_no_boundary(fitted):
    for model in fitted.values():
        assert model.boundary_ is None and clv.fit_problem(model) is None


def test_homogeneous_dropout_names_the_limit_too():
    """a and b both run off: one dropout probability a / (a + b) for everyone."""
    s = simulate_shop_without_dropout(1000, 3)
    bg = _quiet(lambda: clv.BetaGeoModel().fit(s))
    assert "same dropout probability for every customer" in bg.boundary_
    a, b = bg.params_["a"], bg.params_["b"]
    assert f"{100 * a / (a + b):.2g} %" in bg.boundary_


def test_compare_models_does_not_rank_a_boundary_fit(holdout_shop, stuck):
    # an interior Pareto/NBD beside the boundary BG/NBD: given parameters (on this shop
    # without dropout, Pareto/NBD's own fit also ends at a boundary: s and beta grow together)
    pareto = clv.ParetoNBDModel.from_params({"r": 1.06, "alpha": 21.65, "s": 1.64,
                                             "beta": 3976.0}, time_unit="W", period="D")
    models = {"BG/NBD": stuck[0], "Pareto/NBD": pareto}
    table = clv.compare_models(models, holdout_shop)
    assert list(table.index) == ["Pareto/NBD", "BG/NBD"]  # trusted first, whatever the mae
    assert table.loc["Pareto/NBD", "fit_problem"] == ""
    assert "no measurable dropout" in table.loc["BG/NBD", "fit_problem"]
    report.set_currency("$")
    try:
        values = pd.DataFrame({"clv": [100.0, 50.0, 10.0, 5.0]})
        text = findings.clv(table, values, type("P", (), {"top_share": 0.6})())
    finally:
        report.set_currency("")
    joined = " ".join(text)
    assert ("The BG/NBD fit of the holdout test did not converge and found no measurable "
            "dropout") in joined
    assert "its holdout ranking is not used" in joined
    assert "below 0.01 %" in joined
    assert "On the holdout period, Pareto/NBD predicted each customer's purchases best" in joined
    assert "BG/NBD predicted" not in joined
    assert 1 <= len(text) <= 5


def test_findings_do_not_headline_values_from_a_boundary_fit(holdout_shop, stuck):
    bg = stuck[0]
    gg = clv.GammaGammaModel().fit(holdout_shop)
    values = clv.customer_lifetime_value(bg, gg, holdout_shop, allow_unconverged=True)
    assert (values["clv"] >= 0).all() and (values["expected_purchases"] >= 0).all()
    pareto = clv.pareto_analysis(values)
    text = " ".join(findings.clv(None, values, pareto, gg.params_,
                                 fits={"BG/NBD": bg, "Gamma-Gamma": gg}))
    assert "The BG/NBD fit on the whole period did not converge and found no measurable" in text
    assert "not used as headline figures" in text
    assert "The average customer is worth" not in text


def test_bootstrap_drops_and_counts_degenerate_refits():
    """Seed 0: the fit is interior, but resamples of a shop without dropout send b off."""
    s = simulate_shop_without_dropout(1000, 0)
    bg, gg = clv.BetaGeoModel().fit(s), clv.GammaGammaModel().fit(s)
    assert bg.boundary_ is None and bg.converged_
    with pytest.warns(ConvergenceWarning, match=r"of 8 bootstrap refits were dropped"):
        boot = clv.bootstrap_clv(bg, gg, s, n_bootstrap=8)
    assert isinstance(boot, clv.BootstrapCLV)
    assert boot.n_dropped >= 1 and boot.n_used + boot.n_dropped == 8
    assert boot.dropped.sum() == boot.n_dropped
    assert set(boot.dropped.index) <= {"did not converge", "at the edge of the parameter space",
                                       "failed", "gave non-finite or negative values"}
    assert boot.withheld is None
    lo, mid, hi = boot.lower, boot.estimate, boot.upper
    assert (lo >= 0).all() and (lo <= mid).all() and (mid <= hi).all()
    assert (hi > lo).mean() > 0.9  # a real interval, not the point repeated
    # customer_lifetime_value's columns are the same interval
    with pytest.warns(ConvergenceWarning, match="were dropped"):
        values = clv.customer_lifetime_value(bg, gg, s, n_bootstrap=8)
    np.testing.assert_array_equal(values["clv_lower_90"], lo)
    np.testing.assert_array_equal(values["clv_upper_90"], hi)
    pd.testing.assert_series_equal(values["clv"], mid)


def test_bootstrap_interval_is_withheld_when_most_refits_degenerate():
    s = simulate_shop_without_dropout(1000, 3)  # the fit itself sits at the boundary
    bg = _quiet(lambda: clv.BetaGeoModel().fit(s))
    gg = clv.GammaGammaModel().fit(s)
    with pytest.warns(ConvergenceWarning, match="interval is withheld"):
        boot = clv.bootstrap_clv(bg, gg, s, n_bootstrap=3, allow_unconverged=True)
    assert boot.lower.isna().all() and boot.upper.isna().all()
    assert boot.n_used < 2 and "bootstrap refits were usable" in boot.withheld
    assert np.isfinite(boot.estimate).all()


def test_clv_kpis_headline_only_trusted_fits(stuck):
    from crmstats.datasets import load_cdnow

    fit = clv.fit_value(load_cdnow("sample"), horizon_months=12)
    pareto = clv.pareto_analysis(fit.values)
    assert set(fit.models) == {"BG/NBD", "Gamma-Gamma"}
    kpis = findings.clv_kpis(fit.values, pareto, fits=fit.models)
    assert kpis["average_clv"]["value"] == pytest.approx(fit.clv.mean())
    assert set(kpis) == {"average_clv", "top20_clv_share"}
    kpis = findings.clv_kpis(fit.values, pareto, fits={"BG/NBD": stuck[0]})
    assert set(kpis) == {"customers_valued"}  # no value from a fit not to be trusted
    assert "BG/NBD fit is not to be trusted" in kpis["customers_valued"]["label"]


def test_a_converged_fit_at_the_boundary_is_still_not_trusted(fitted):
    """On a real shop's log one bootstrap refit drove b to 1e8 and reported converged_ True."""
    import copy

    model = copy.deepcopy(fitted["bgnbd"])
    model.params_ = model.params_.copy()
    model.params_["b"] = 1e8
    model.boundary_ = model._at_boundary()
    assert model.converged_
    assert model.boundary_.startswith("found no measurable dropout: b ran off to 1e+08")
    assert clv.fit_problem(model) == model.boundary_
    pnbd = copy.deepcopy(fitted["pnbd"])
    pnbd.params_ = pnbd.params_.copy()
    pnbd.params_["beta"] = 1e12
    assert "no measurable dropout" in pnbd._at_boundary()
    gg = copy.deepcopy(fitted["gg"])
    gg.params_ = gg.params_.copy()
    gg.params_["q"] = 3e7
    assert gg._at_boundary().startswith("ran to the edge of its parameter space")


def _one_rate_pareto(rate=0.0133):
    """Pareto/NBD at its limit of one dropout rate for every customer (s, beta -> infinity)."""
    return clv.ParetoNBDModel.from_params({"r": 1.06, "alpha": 21.65, "s": 1e6,
                                           "beta": 1e6 / rate}, time_unit="W", period="D")


def test_one_dropout_rate_limit_is_said_in_plain_words():
    model = _one_rate_pareto()
    from crmstats.clv.models.limits import NO_DIFFERENCES, is_one_dropout_limit

    assert model.boundary_.startswith(NO_DIFFERENCES)
    assert "about 1.3 % of active customers stop buying each week" in model.boundary_
    for name in ("s =", "beta", "s /", "grow without bound"):
        assert name not in model.boundary_
    assert is_one_dropout_limit(clv.fit_problem(model))
    assert not is_one_dropout_limit("did not converge and " + model.boundary_)


def test_compare_models_ranks_the_one_dropout_limit_like_any_other(holdout_shop):
    """Its holdout error is real: ranked by mae with the interior fits, and the findings say
    what the limit means, rank it and may name it best; a failed fit is still not ranked."""
    bg = clv.BetaGeoModel.from_params({"r": 1.06, "alpha": 21.65, "a": 0.5, "b": 3.0},
                                      time_unit="W", period="D")
    limit = _one_rate_pareto(rate=1e-4)  # almost no dropout: close to this shop's truth
    table = clv.compare_models({"BG/NBD": bg, "Pareto/NBD": limit}, holdout_shop)
    assert table.loc["Pareto/NBD", "mae"] < table.loc["BG/NBD", "mae"]
    assert list(table.index) == ["Pareto/NBD", "BG/NBD"]  # by mae, though at its limit
    report.set_currency("$")
    try:
        values = pd.DataFrame({"clv": [100.0, 50.0, 10.0, 5.0]})
        text = " ".join(findings.clv(table, values, type("P", (), {"top_share": 0.6})()))
    finally:
        report.set_currency("")
    assert ("The Pareto/NBD fit of the holdout test found no differences between customers "
            "in how soon they stop buying") in text
    assert "it is ranked with the others" in text and "ranking is not used" not in text
    assert "On the holdout period, Pareto/NBD predicted each customer's purchases best" in text
    assert "beta" not in text and "s = " not in text


def test_homogeneous_dropout_bgnbd_is_ranked_too():
    """BG/NBD's limit (a, b -> infinity) is the same finding: ranked like any other."""
    s = simulate_shop_without_dropout(600, 5, holdout=39.0)
    bg = clv.BetaGeoModel.from_params({"r": 1.0, "alpha": 20.0, "a": 2e5, "b": 8e7},
                                      time_unit="W", period="D")
    assert bg.boundary_.startswith("found no differences between customers")
    assert "a and b" not in bg.boundary_
    pareto = clv.ParetoNBDModel.from_params({"r": 1.0, "alpha": 20.0, "s": 0.5, "beta": 50.0},
                                            time_unit="W", period="D")
    table = clv.compare_models({"Pareto/NBD": pareto, "BG/NBD": bg}, s)
    assert table["mae"].is_monotonic_increasing  # both ranked, by mae

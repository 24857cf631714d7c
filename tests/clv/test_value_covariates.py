"""The value functions with covariate models: covariates=, loaded models, templates refitted."""

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import DataError, clv
from crmstats.clv.covariate_keywords import refit_keywords
from crmstats.clv.value import _refit_problem, fit_problem
from crmstats.datasets.customer_effects import REFERENCE


@pytest.fixture(scope="module")
def demo():
    return crmstats.load_crm("demo:seed=2,n_contacts=12000")


@pytest.fixture(scope="module")
def X(demo):
    return clv.covariate_frame(demo.customers, ["acquisition_channel", "segment"],
                               reference=dict(REFERENCE))


@pytest.fixture(scope="module")
def fitted(demo, X):
    return clv.fit_value(demo.transactions, covariates=X, horizon_months=6)


def _loaded(model):
    return type(model).from_dict(model.to_dict())


def test_fit_value_with_covariates_fits_both_models_with_them(fitted, X):
    tm, sm, summary = fitted.transaction_model, fitted.spend_model, fitted.summary
    assert "purchase:segment[key_account]" in tm.params_.index
    assert "dropout:acquisition_channel[email]" in tm.params_.index
    assert "spend:segment[key_account]" in sm.params_.index
    direct = clv.BetaGeoModel().fit(summary, covariates=X)
    np.testing.assert_allclose(tm.params_, direct.params_.loc[tm.params_.index], rtol=1e-9)
    assert fitted.covariates is X
    # each customer valued with its own row: key accounts are worth more than the retail
    # customers of the same channel
    seg = pd.Series(X["segment[key_account]"].reindex(summary.index).to_numpy(),
                    index=summary.index)
    expected = fitted.values["expected_spend"][summary["frequency"] == 0]
    assert expected[seg == 1].mean() > 1.3 * expected[seg == 0].mean()


def test_a_covariate_template_is_refitted_with_its_covariates(demo, fitted, X):
    summary = fitted.summary
    template = clv.BetaGeoModel().fit(summary.iloc[:700], covariates=X,
                                      purchase=["segment[key_account]"],
                                      dropout=["segment[key_account]"],
                                      shared=["segment[key_account]"])
    gg_template = clv.GammaGammaModel().fit(summary.iloc[:700],
                                            covariates=X[["segment[key_account]"]])
    got = clv.fit_value(demo.transactions, transaction_model=template, spend_model=gg_template,
                        horizon_months=6)  # covariates= not given: the templates' kept rows
    names = got.transaction_model.params_.index.tolist()
    assert names == ["r", "alpha", "a", "b", "shared:segment[key_account]"]
    direct = clv.BetaGeoModel().fit(summary, covariates=X[["segment[key_account]"]],
                                    shared=True)
    np.testing.assert_allclose(got.transaction_model.params_, direct.params_, rtol=1e-8)
    assert got.spend_model.params_.index.tolist() == ["p", "q", "v",
                                                      "spend:segment[key_account]"]
    # refitted on every customer, not left at the template's 700
    assert got.transaction_model.n_obs_ == len(summary)
    assert template.n_obs_ == 700  # the caller's template is not touched


def test_a_loaded_covariate_model_values_customers_with_covariates(demo, fitted, X):
    tm, sm = _loaded(fitted.transaction_model), _loaded(fitted.spend_model)
    summary = fitted.summary
    with pytest.raises(DataError, match="have no covariates"):
        clv.customer_lifetime_value(tm, sm, summary, horizon_months=6)
    got = clv.customer_lifetime_value(tm, sm, summary, horizon_months=6, covariates=X)
    pd.testing.assert_frame_equal(got, fitted.values)
    kept = clv.fit_value(demo.transactions, transaction_model=tm, spend_model=sm,
                         refit=False, covariates=X, horizon_months=6)
    pd.testing.assert_frame_equal(kept.values, fitted.values)
    win = clv.winback_list(tm, sm, summary, covariates=X)
    ref = clv.winback_list(fitted.transaction_model, fitted.spend_model, summary)
    pd.testing.assert_frame_equal(win, ref)
    # a loaded template refits with the covariates it is given, or says it needs them
    refit = clv.fit_value(demo.transactions, transaction_model=tm, spend_model=sm,
                          covariates=X, horizon_months=6)
    np.testing.assert_allclose(refit.transaction_model.params_,
                               fitted.transaction_model.params_, rtol=1e-8)
    with pytest.raises(DataError, match="pass covariates="):
        clv.fit_value(demo.transactions, transaction_model=tm, horizon_months=6)


def test_bootstrap_refits_a_loaded_covariate_model_with_the_covariates(fitted, X):
    tm, sm = _loaded(fitted.transaction_model), _loaded(fitted.spend_model)
    summary = fitted.summary.iloc[:400]
    boot = clv.bootstrap_clv(tm, sm, summary, n_bootstrap=2, horizon_months=3, covariates=X,
                             seed=3)
    assert boot.n_used == 2
    assert (boot.lower <= boot.estimate).all() and (boot.estimate <= boot.upper).all()


def test_bad_covariates_are_refused_with_the_column(demo, fitted, X):
    tm = fitted.transaction_model
    with pytest.raises(DataError, match="no column 'segment"):
        refit_keywords(tm, X.drop(columns="segment[key_account]"))
    wider = X.assign(**{"acquisition_channel[tiktok]": 0.0})
    with pytest.raises(DataError, match=r"tiktok.*reference level"):
        clv.fit_value(demo.transactions, transaction_model=tm, covariates=wider)
    plain = clv.fit_value(demo.transactions, horizon_months=6)
    with pytest.raises(DataError, match="no model was fitted with covariates"):
        clv.customer_lifetime_value(plain.transaction_model, plain.spend_model, plain.summary,
                                    covariates=X)
    with pytest.raises(DataError, match="DataFrame"):
        clv.customer_lifetime_value(tm, fitted.spend_model, fitted.summary,
                                    covariates=X.to_numpy())
    # another attribute beside the model's is not used (an unrelated column)
    kw = refit_keywords(tm, X.assign(region=1.0))
    assert "region" not in kw["covariates"].columns
    # a model without covariates refits without them; an unfitted one takes them
    assert refit_keywords(plain.transaction_model, X) == {}
    assert refit_keywords(clv.BetaGeoModel(), X)["covariates"] is X


def test_one_rule_says_which_fit_is_not_to_be_trusted():
    class Fit:
        converged_ = True
        boundary_ = "found no measurable dropout (b at 1e10)"

    fit = Fit()
    assert fit_problem(fit) == "found no measurable dropout (b at 1e10)"
    assert _refit_problem([fit]) == "at the edge of the parameter space"
    fit.converged_ = False
    assert fit_problem(fit).startswith("did not converge and found no")
    assert _refit_problem([fit]) == "did not converge"
    fit.converged_, fit.boundary_ = True, None
    assert fit_problem(fit) is None and _refit_problem([fit]) is None


def test_a_loaded_model_builds_the_covariates_it_needs_from_the_customers_table(demo, fitted):
    tm, sm = _loaded(fitted.transaction_model), _loaded(fitted.spend_model)
    X = clv.covariates_for((tm, sm), demo.customers)
    assert list(X.columns) == list(dict.fromkeys(
        n.split(":", 1)[1] for m in (tm, sm) for n in m.params_.index if ":" in n))
    got = clv.customer_lifetime_value(tm, sm, fitted.summary, horizon_months=6, covariates=X)
    pd.testing.assert_frame_equal(got, fitted.values)
    # this week's customers, all from one channel (no constant-column refusal for predictions)
    week = demo.customers[demo.customers["acquisition_channel"] == "email"]
    one = clv.covariates_for(tm, week)
    assert (one["acquisition_channel[email]"] == 1).all()
    assert (one.drop(columns="acquisition_channel[email]").filter(like="channel[") == 0).all().all()
    # a channel the model never saw, beside the reference: refused, not counted as the reference
    odd = demo.customers.assign(acquisition_channel=demo.customers["acquisition_channel"]
                                .replace({"events": "tiktok"}))
    with pytest.raises(DataError, match="tiktok"):
        clv.covariates_for(tm, odd)
    blank = demo.customers.assign(segment=demo.customers["segment"].where(
        demo.customers.index > 2))
    with pytest.raises(DataError, match="missing value"):
        clv.covariates_for(tm, blank)
    assert clv.covariates_for(tm, blank, missing="reference").iloc[:3][
        "segment[key_account]"].eq(0).all()

"""Summaries carry their units; value functions read them, refuse mismatches and bad fits."""

import io

import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceError, DataError
from crmstats.clv import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    ValueFit,
    customer_lifetime_value,
    fit_value,
    rfm_summary,
    summary_units,
    tracking,
    winback_list,
    with_units,
)
from crmstats.datasets import load_cdnow

pytestmark = pytest.mark.filterwarnings("ignore::crmstats.DataWarning")


@pytest.fixture(scope="module")
def master():
    return load_cdnow("master")


@pytest.fixture(scope="module")
def daily(master):
    return rfm_summary(master)  # defaults: period="D", time_unit="D"


def test_clv_with_defaults_reads_the_summary_unit(master, daily):
    """The trap of issue 15: a daily summary valued as if in weeks gave a mean of 5.18."""
    bg, gg = BetaGeoModel().fit(daily), GammaGammaModel().fit(daily)
    days = customer_lifetime_value(bg, gg, daily)
    weekly = rfm_summary(master, time_unit="W")
    weeks = customer_lifetime_value(BetaGeoModel().fit(weekly), GammaGammaModel().fit(weekly),
                                    weekly)
    assert days["clv"].mean() == pytest.approx(33.10, abs=0.01)
    # the same model in another time scale values every customer the same
    np.testing.assert_allclose(days["clv"], weeks["clv"], rtol=2e-3)


def test_a_unit_that_contradicts_the_summary_is_an_error(daily):
    bg, gg = BetaGeoModel().fit(daily), GammaGammaModel().fit(daily)
    with pytest.raises(DataError, match="unit mismatch.*days.*weeks"):
        customer_lifetime_value(bg, gg, daily, time_unit="W")
    with pytest.raises(DataError, match="unit mismatch"):
        winback_list(bg, gg, daily, time_unit="W")


def test_a_model_refuses_a_summary_in_other_units(master, daily):
    bg = BetaGeoModel().fit(daily)
    weekly = rfm_summary(master, time_unit="W")
    with pytest.raises(DataError, match="fitted on a summary with period='D', time_unit='D'"):
        bg.predict_purchases(weekly, 10)
    gg = GammaGammaModel().fit(weekly)
    with pytest.raises(DataError, match="unit mismatch"):
        customer_lifetime_value(bg, gg, daily)


def test_units_survive_ordinary_pandas_use(daily):
    want = summary_units(daily)
    assert (want.period, want.time_unit) == ("D", "D")
    pieces = [
        daily[daily["frequency"] > 0], daily.iloc[:100], daily.head(), daily.copy(),
        daily.sample(50, random_state=1), daily[["frequency", "recency", "T"]],
        daily.assign(x=1.0), daily.sort_values("T"), daily.query("frequency > 0"),
        pd.concat([daily.iloc[:10], daily.iloc[10:20]]), daily.drop(columns="monetary_value"),
        pd.read_parquet(io.BytesIO(daily.to_parquet())),
    ]
    for piece in pieces:
        assert summary_units(piece) == want


def test_an_unlabelled_summary_needs_an_explicit_unit(daily):
    bare = pd.DataFrame(daily.to_numpy(), index=daily.index, columns=list(daily.columns))
    assert summary_units(bare) is None
    bg, gg = BetaGeoModel().fit(bare), GammaGammaModel().fit(bare)
    with pytest.raises(DataError, match="does not record its time unit"):
        customer_lifetime_value(bg, gg, bare)
    explicit = customer_lifetime_value(bg, gg, bare, time_unit="D")
    assert explicit["clv"].mean() == pytest.approx(33.10, abs=0.01)
    labelled = with_units(bare, period="D")
    assert summary_units(labelled).time_unit == "D" and bare.columns.name is None


def test_a_label_the_data_contradict_is_refused(daily):
    rescaled = daily.copy()
    rescaled["T"] = rescaled["T"] / 7  # now weeks, still labelled days
    rescaled["recency"] = rescaled["recency"] / 7
    with pytest.raises(DataError, match="not whole days"):
        BetaGeoModel().fit(rescaled)


def test_tracking_reads_units_from_the_model(master):
    cal = rfm_summary(master, observation_end="1997-09-30", time_unit="W")
    bg = BetaGeoModel().fit(cal)
    implicit = tracking(bg, master, calibration_end="1997-09-30", observation_end="1998-06-30")
    explicit = tracking(bg, master, period="D", time_unit="W", calibration_end="1997-09-30",
                        observation_end="1998-06-30")
    pd.testing.assert_frame_equal(implicit, explicit)
    with pytest.raises(DataError, match="unit mismatch"):
        tracking(bg, master, time_unit="D", calibration_end="1997-09-30")


def test_unconverged_fit_raises_from_value_functions(cdnow_calibration):
    """Before: a warning, then CLV of NaN or of the last iterate for every customer."""
    s = cdnow_calibration
    with pytest.warns(Warning, match="did not converge"):
        bad = ParetoNBDModel(maxiter=2).fit(s)
    assert bad.converged_ is False
    gg = GammaGammaModel().fit(s)
    with pytest.raises(ConvergenceError, match="ParetoNBDModel fit did not converge") as info:
        customer_lifetime_value(bad, gg, s)
    assert info.value.model == "ParetoNBDModel"
    with pytest.raises(ConvergenceError):
        winback_list(bad, gg, s)
    last = customer_lifetime_value(bad, gg, s, allow_unconverged=True)
    assert np.isfinite(last["clv"]).all()


def test_value_functions_never_return_nan(cdnow_calibration):
    s = cdnow_calibration
    bg, gg = BetaGeoModel().fit(s), GammaGammaModel().fit(s)
    broken = BetaGeoModel().fit(s)
    broken.params_ = broken.params_ * np.nan  # e.g. a model whose parameters are unusable
    with pytest.raises(Exception, match="non-finite clv"):
        customer_lifetime_value(broken, gg, s)
    assert np.isfinite(customer_lifetime_value(bg, gg, s)["clv"]).all()


def test_fit_value_equals_the_chain_it_replaces(master):
    fit = fit_value(master, horizon_months=12, discount_rate=0.01)
    assert isinstance(fit, ValueFit)
    summary = rfm_summary(master, time_unit="W")
    bg, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    chain = customer_lifetime_value(bg, gg, summary, horizon_months=12, discount_rate=0.01)
    pd.testing.assert_frame_equal(fit.values, chain)
    pd.testing.assert_series_equal(fit.transaction_model.params_, bg.params_)
    assert (fit.period, fit.time_unit) == ("D", "W")
    assert fit.clv.mean() == pytest.approx(33.10, abs=0.01)
    with pytest.raises(AttributeError):
        fit.values = None  # frozen


def test_fit_value_leaves_the_callers_estimator_and_data_alone(master):
    template = ParetoNBDModel(penalty=0.0)
    before = master.copy()
    fit = fit_value(master.iloc[:5000], transaction_model=template)
    assert not hasattr(template, "params_")
    assert isinstance(fit.transaction_model, ParetoNBDModel)
    pd.testing.assert_frame_equal(master, before)


def test_fit_value_restricted_to_some_customers(master):
    ids = master["customer_id"].drop_duplicates().iloc[:3000]
    fit = fit_value(master, customers=ids)
    assert set(fit.summary.index.astype(str)) == set(ids.astype(str))
    with pytest.raises(DataError, match="none of the given customers"):
        fit_value(master, customers=["nobody"])

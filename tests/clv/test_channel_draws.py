"""The interval of a new customer's value per channel: all draws at once equal one by one."""

import warnings

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import clv
from crmstats.clv import channels


@pytest.mark.parametrize("model", [clv.BetaGeoModel, clv.ParetoNBDModel])
def test_all_draws_at_once_equal_rebuilding_the_models_at_each_draw(model):
    crm = crmstats.load_crm("demo:seed=2,n_contacts=6000")
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = clv.fit_channel_value(summary, crm.customers, n_draws=0, allow_unconverged=True,
                                   transaction_model=model())
    tm, sm = cv.transaction_model, cv.spend_model
    patterns = pd.DataFrame(np.unique(cv.covariates.to_numpy(), axis=0),
                            columns=cv.covariates.columns)
    rng = np.random.default_rng(4)
    t_draws, s_draws = channels._draw_phi(tm, 6, rng), channels._draw_phi(sm, 6, rng)
    month = 365.25 / 12 / 7
    at_once = channels._drawn_clv(tm, sm, patterns, t_draws, s_draws, 9, 0.02, month)
    one_by_one = np.array([
        channels._new_customer_clv(channels._at_phi(tm, a), channels._at_phi(sm, b), patterns,
                                   9, 0.02, month)[2]
        for a, b in zip(t_draws, s_draws, strict=True)])
    assert at_once.shape == (6, len(patterns))
    np.testing.assert_allclose(at_once, one_by_one, rtol=1e-10)

"""The key-accounts page's tables: the MRR bridge in two, a churn model's drivers as ratios."""

import numpy as np
import pandas as pd
import pytest

from crmstats import churn
from crmstats.formatting import fmt_interval


@pytest.fixture(scope="module")
def key_accounts(small_crm):
    bridge = churn.mrr_bridge(small_crm.subscriptions, period="M")
    panel = churn.account_months(small_crm.subscriptions, small_crm.tickets)
    model = churn.CoxModel().fit(panel, covariates=["tickets_recent", "log_resolution_days"])
    return bridge, model


def test_the_bridge_in_two_tables_keeps_every_figure(key_accounts):
    bridge, _ = key_accounts
    before = bridge.copy()
    money, kept = churn.bridge_table(bridge), churn.retention_table(bridge)
    assert list(money.columns) == ["new", "expansion", "contraction", "churned", "reactivated",
                                   "end"]
    assert list(kept.columns) == ["accounts", "churned", "logo churn", "NRR", "GRR"]
    assert money.index.equals(bridge.index) and kept.index.equals(bridge.index)
    np.testing.assert_array_equal(kept["NRR"], bridge["nrr"])
    np.testing.assert_array_equal(money["end"], bridge["end"])
    pd.testing.assert_frame_equal(bridge, before)


def test_hazard_table_reads_the_models_ratios(key_accounts):
    _, model = key_accounts
    t = churn.hazard_table(model)
    table = model.table
    assert list(t.columns) == ["hazard ratio", "95 % interval", "p-value"]
    assert list(t.index) == ["tickets recent", "log resolution days"]
    np.testing.assert_array_equal(t["hazard ratio"], table["hazard_ratio"])
    assert t["95 % interval"].iloc[0] == fmt_interval(table["hazard_ratio_lower_95"].iloc[0],
                                                      table["hazard_ratio_upper_95"].iloc[0])

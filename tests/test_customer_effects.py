"""The simulator's covariate truth: channels and segments shift purchase rate, dropout, spend."""

import numpy as np
import pandas as pd
import pytest

from crmstats.datasets import simulate_crm
from crmstats.datasets.customer_effects import (
    BASELINE,
    channel_parameters,
    customer_parameters,
    true_coefficients,
)


def test_parameters_are_the_baseline_times_exp_of_the_coefficients():
    channels = ["paid_search", "email", "events"]
    coef = true_coefficients(channels)
    assert list(coef.index) == ["acquisition_channel[email]", "acquisition_channel[events]",
                                "segment[key_account]"]
    par = customer_parameters(np.array(["paid_search", "email", "events"]),
                              np.array(["retail", "key_account", "retail"]), channels)
    email, key = coef.loc["acquisition_channel[email]"], coef.loc["segment[key_account]"]
    assert par["alpha"][0] == BASELINE["alpha"] and par["v"][0] == BASELINE["v"]
    assert par["alpha"][1] == pytest.approx(
        BASELINE["alpha"] * np.exp(-email["purchase"] - key["purchase"]))
    assert par["b"][1] == pytest.approx(
        BASELINE["b"] * np.exp(-email["dropout"] - key["dropout"]))
    assert par["a"][1] == BASELINE["a"]
    assert par["v"][2] == pytest.approx(
        BASELINE["v"] * np.exp(coef.loc["acquisition_channel[events]", "spend"]))
    assert par["design"].loc[1].tolist() == [1.0, 0.0, 1.0]


def test_simulated_customers_draw_from_their_covariates_parameters():
    crm = simulate_crm(seed=5, n_contacts=20_000)
    truth = crm.truth
    ct = truth["customer_truth"]
    cust = crm.customers.set_index("customer_id").loc[ct.index]
    assert set(truth["clv_coefficients"].index) == {
        *(f"acquisition_channel[{c}]" for c in truth["channels"][1:]), "segment[key_account]"}
    pd.testing.assert_frame_equal(truth["bgnbd"], channel_parameters(truth["channels"])[
        ["r", "alpha", "a", "b"]].rename_axis(None))
    par = customer_parameters(cust["acquisition_channel"].to_numpy(),
                              cust["segment"].to_numpy(), truth["channels"])
    # E[λ] = r / α_i and E[ν] = q / v_i per (channel, segment) group, within 4 standard errors
    groups = cust.groupby(["acquisition_channel", "segment"]).indices
    assert len(groups) == 2 * len(truth["channels"])
    for rows in groups.values():
        n = len(rows)
        for drawn, shape, rate in ((ct["lambda"], par["r"], par["alpha"]),
                                   (ct["nu"], par["p"] * 0 + BASELINE["q"], par["v"])):
            mean = shape[rows[0]] / rate[rows[0]]
            se = np.sqrt(shape[rows[0]]) / rate[rows[0]] / np.sqrt(n)
            assert abs(drawn.to_numpy()[rows].mean() - mean) < 4 * se
        a, b = par["a"][rows[0]], par["b"][rows[0]]
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        assert abs(ct["p"].to_numpy()[rows].mean() - a / (a + b)) < 4 * sd / np.sqrt(n)
    # key accounts: about 3x the share among large companies
    big = cust["company_size"].isin(["201-1000", "1000+"])
    key = cust["segment"] == "key_account"
    assert key[big].mean() > 4 * key[~big].mean()

"""The demo CRM's media: spend brings contacts through known curves, and its truth adds up."""

import numpy as np
import pandas as pd
import pytest

from crmstats.attribution import media_table
from crmstats.datasets import simulate_crm
from crmstats.datasets.media import DEMO_MEDIA_SHARE


@pytest.fixture(scope="module")
def crm():
    return simulate_crm(seed=5, n_contacts=8000, media_share=DEMO_MEDIA_SHARE)


def test_weekly_spend_is_the_plan_and_the_spend_table_agrees(crm):
    truth = crm.truth["media"]
    table = media_table(crm, "conversions")
    weekly = truth["weekly_spend"].loc[table.index, table["spend"].columns]
    np.testing.assert_allclose(table["spend"].to_numpy(), weekly.to_numpy(), rtol=1e-6, atol=0.5)
    # flighted channels are off some weeks, always-on ones never
    assert (weekly["display"] == 0).mean() > 0.1 and (weekly["events"] == 0).mean() > 0.1
    assert (weekly["paid_search"] > 0).all()


def test_spend_brings_contacts_of_its_channel(crm):
    truth = crm.truth["media"]
    c = crm.contacts
    week = c["created_at"].dt.to_period("W-SUN").dt.start_time
    counts = c[c["channel"] == "display"].groupby(week).size()
    spend = truth["weekly_spend"]["display"].reindex(counts.index).fillna(0)
    on, off = counts[spend > 0].mean(), counts[spend == 0].mean()
    assert on > 1.3 * off
    # the mix of first channels stays the channels' popularity (media contacts are set in
    # proportion to it)
    share = c["channel"].value_counts(normalize=True)
    pop = pd.Series([0.22, 0.20, 0.15, 0.12, 0.10, 0.07, 0.05, 0.04],
                    index=truth["channels"])
    pop = pop / pop.sum()
    assert (share.reindex(pop.index) - pop).abs().max() < 0.02


def test_spend_reconciles_with_touch_costs_by_day(crm):
    tp = crm.touchpoints
    by_touch = tp.groupby([tp["timestamp"].dt.floor("D"), "channel"])["cost"].sum()
    by_touch = by_touch[by_touch.round(2) > 0]  # touches priced 0: the channel's week off air
    spend = crm.spend.set_index(["date", "channel"])["cost"].sort_index()
    np.testing.assert_allclose(spend.to_numpy(), by_touch.sort_index().to_numpy(), atol=0.011)
    assert crm.source == "demo:seed=5,n_contacts=8000,media_share=0.35"


def test_without_media_the_demo_is_as_before():
    plain = simulate_crm(seed=5, n_contacts=3000)
    assert "media" not in plain.truth
    assert (plain.spend["date"].dt.day == 1).all()  # monthly spend, as before


def test_truth_is_consistent(crm):
    truth = crm.truth["media"]
    roas, spend = truth["roas"], truth["weekly_spend"].sum()
    contrib = truth["contributions"].sum()
    assert ((roas > 0) & np.isfinite(roas)).all()
    # ROAS as the model defines it: the contributions over the weeks / the spend
    np.testing.assert_allclose(roas, contrib / spend, rtol=1e-12)
    # in-window contributions are part of all the conversions the spend brings
    every = truth["roas_all_conversions"]
    assert (roas <= every * (1 + 1e-9)).all() and (roas >= 0.6 * every).all()
    # the media's conversions are about its share of contacts' conversions
    media_conv = (every * spend).sum()
    assert 0.5 * DEMO_MEDIA_SHARE < media_conv / len(crm.conversions) < 2 * DEMO_MEDIA_SHARE
    # marginal below average: saturating curves
    assert (truth["mroas"] < truth["roas"] * 1.5).all()
    alloc = truth["optimal_allocation"]
    assert alloc.sum() == pytest.approx(truth["budget"], rel=1e-6)
    assert (alloc <= truth["bounds_upper"] + 1e-6).all()


def test_lift_test_results_calibrate_the_model_over_the_experiments_period():
    import warnings

    from crmstats.attribution import MediaMixModel, lift_test

    crm = simulate_crm(seed=2, n_contacts=6000, holdout_share=0.2, media_share=0.35)
    lifts = lift_test(crm.experiments, crm.conversions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MediaMixModel(n_draws=50, holdout_weeks=0).fit(crm, lift_tests=lifts)
    used = model.lift_tests_
    assert list(used["channel"]) == list(lifts.index.astype(str))
    np.testing.assert_allclose(used["lift"], lifts["incremental_conversions"])
    span = crm.experiments.groupby("channel")["started_at"].agg(["min", "max"])
    assert (used.set_index("channel")["start"] == span["min"].reindex(used["channel"])).all()
    assert model.diagnostics_["n_lift_tests"] == len(lifts)

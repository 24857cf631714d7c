"""Value migration: the matrix, the CLV bridge and the fallers, checked against the simulator."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import clv
from crmstats.clv.migration import COMPONENTS

MONTHS = 6


@pytest.fixture(scope="module")
def sim():
    return crmstats.load_crm("demo:seed=5,n_contacts=20000")


@pytest.fixture(scope="module")
def start(sim):
    return sim.transactions["timestamp"].max() - pd.DateOffset(months=MONTHS)


@pytest.fixture(scope="module")
def migration(sim, start):
    return clv.value_migration(sim.transactions, start)


def test_matrix_rows_sum_to_customers_present_at_start(migration, sim, start):
    present = clv.rfm_summary(sim.transactions, observation_end=start, time_unit="W")
    assert migration.counts.to_numpy().sum() == len(present)
    by_tier = clv.value_tiers(migration.customers["clv_start"].dropna(), migration.tiers)
    expected = by_tier["tier"].value_counts().reindex(migration.counts.index)
    np.testing.assert_array_equal(migration.counts.sum(axis=1).to_numpy(), expected.to_numpy())
    # value matrix rows hold the tier's CLV at the start
    np.testing.assert_allclose(migration.value_start.to_numpy().sum(),
                               migration.customers["clv_start"].sum(), rtol=1e-12)
    # new customers are those who first bought after the start
    first = sim.transactions.loc[sim.transactions["amount"] >= 0].groupby("customer_id")[
        "timestamp"].min()
    assert migration.new_customers.sum() == int((first > start).sum())


def test_decomposition_sums_to_the_change_in_total_clv(migration, sim, start):
    d = migration.decomposition
    assert list(d.index) == ["start", *COMPONENTS, "end"]
    assert math.isclose(d["start"] + math.fsum(d[list(COMPONENTS)]), d["end"], rel_tol=1e-12)
    # the totals are the CLV of the individual functions with the end-date fit
    s_end = clv.rfm_summary(sim.transactions, time_unit="W")
    s_start = clv.rfm_summary(sim.transactions, observation_end=start, time_unit="W")
    bg, gg = clv.BetaGeoModel().fit(s_end), clv.GammaGammaModel().fit(s_end)
    v_end = clv.customer_lifetime_value(bg, gg, s_end)["clv"]
    v_start = clv.customer_lifetime_value(bg, gg, s_start)["clv"]
    assert math.isclose(d["end"], v_end.sum(), rel_tol=1e-9)
    assert math.isclose(d["start"], v_start.sum(), rel_tol=1e-9)
    # every component is the sum of its customers' changes, and each customer is in one
    c = migration.customers
    assert c["component"].notna().all()
    assert (c.loc[c["component"] == "new", "clv_start"].isna()).all()
    assert (c.loc[c["component"] == "upgrades", "tier_move"] > 0).all()
    assert (c.loc[c["component"] == "downgrades", "tier_move"] < 0).all()
    assert d["new"] > 0 and d["lost"] < 0 and d["upgrades"] > 0 and d["downgrades"] < 0
    assert math.isclose(migration.net_migration, d["end"] - d["start"] - d["new"],
                        rel_tol=1e-9)


def test_fallers_are_ranked_by_value_lost(migration):
    f = migration.fallers
    assert len(f) > 0
    assert f["value_lost"].is_monotonic_decreasing
    moved = migration.customers.loc[f.index, "tier_move"]
    assert (moved <= -1).all()
    c = migration.customers
    assert len(f) == int((c["tier_move"] < 0).sum())
    down = c["clv_start"][c["tier_move"] < 0].sum() / c["clv_start"].sum()
    assert migration.share_value_moved_down == pytest.approx(down)
    assert 0 < migration.share_value_moved_down < 1


def test_top_decile_of_falling_value_is_enriched_in_truly_dead_customers(migration, sim):
    truth = sim.truth["customer_truth"]
    old = migration.customers[migration.customers["clv_start"].notna()]
    dead = ~truth["alive_at_end"].reindex(old.index).astype(bool)
    base = dead.mean()
    top = old["fall_share"].sort_values(ascending=False, kind="mergesort").index[: len(old) // 10]
    ratio = dead[top].mean() / base
    assert 0.1 < base < 0.5
    assert ratio >= 2.0, f"top decile {dead[top].mean():.3f} vs base {base:.3f}"
    # the money ranking of fallers is enriched too, though less
    money = migration.fallers.index[: len(old) // 10]
    assert dead[money].mean() / base >= 1.5


def test_start_boundaries_keep_the_cutoffs_and_each_reranks(sim, start, migration):
    c = migration.customers
    cut = migration.cutoffs
    for name in list(migration.tiers)[:-1]:
        assert (c.loc[c["tier_end"] == name, "clv_end"] >= cut[name]).all()
    each = clv.value_migration(sim.transactions, start, boundaries="each")
    expected = clv.value_tiers(each.customers["clv_end"], each.tiers)["tier"]
    pd.testing.assert_series_equal(each.customers["tier_end"], expected, check_names=False,
                                   check_categorical=False)


def test_refit_fits_at_each_date(sim, start):
    m = clv.value_migration(sim.transactions, start, refit=True)
    s_start = clv.rfm_summary(sim.transactions, observation_end=start, time_unit="W")
    bg, gg = clv.BetaGeoModel().fit(s_start), clv.GammaGammaModel().fit(s_start)
    expected = clv.customer_lifetime_value(bg, gg, s_start)["clv"]
    got = m.customers["clv_start"].dropna()
    np.testing.assert_allclose(got.reindex(expected.index).to_numpy(), expected.to_numpy(),
                               rtol=1e-9)
    assert m.refit and not clv.value_migration(sim.transactions, start).refit


def test_start_as_months_before_the_end(sim, start, migration):
    m = clv.value_migration(sim, MONTHS)
    assert m.start == start and m.end == sim.transactions["timestamp"].max()
    pd.testing.assert_series_equal(m.decomposition, migration.decomposition)
    with pytest.raises(ValueError, match="at least 1"):
        clv.value_migration(sim, 0)


def test_bad_dates_and_inputs_are_refused_without_touching_the_frame(sim, start):
    tx = sim.transactions.copy()
    before = tx.copy()
    with pytest.raises(ValueError, match="before end"):
        clv.value_migration(tx, "2030-01-01")
    with pytest.raises(ValueError, match="start 'last year' is not a date"):
        clv.value_migration(tx, "last year")
    with pytest.raises(ValueError, match="boundaries"):
        clv.value_migration(tx, start, boundaries="middle")
    with pytest.raises(crmstats.DataError, match="at least 20"):
        clv.value_migration(tx, tx["timestamp"].min() + pd.Timedelta(hours=1))
    pd.testing.assert_frame_equal(tx, before)


def test_plots(migration):
    import matplotlib.pyplot as plt

    ax = clv.plot_value_migration(migration)
    assert "tier on" in ax.get_xlabel()
    ax = clv.plot_value_bridge(migration)
    assert len(ax.patches) == len(COMPONENTS) + 2
    with pytest.raises(ValueError, match="ValueMigration"):
        clv.plot_value_bridge(migration.decomposition)
    plt.close("all")


def test_top_fallers_are_pseudonymous_and_map_back(migration):
    from crmstats.privacy import reidentify

    top = migration.top_fallers(10, key="test-key-0123456789")
    assert len(top) == 10 and top.index.name == "customer"
    assert all(str(p).startswith("C-") for p in top.index)
    assert not set(top.index) & set(migration.customers.index)
    back = reidentify(pd.Series(top.index), migration.customers.index, key="test-key-0123456789")
    assert list(back) == list(migration.fallers.index[:10])
    np.testing.assert_allclose(top["value_lost"], migration.fallers["value_lost"].iloc[:10])
    raw = migration.top_fallers(10, pseudonymous=False)
    assert list(raw.index) == list(migration.fallers.index[:10])
    assert set(top["tier_now"]) <= {*migration.tiers, "lost"}


def test_key_findings_are_written_from_the_migration(migration):
    from crmstats.book import findings
    from crmstats.book.report import fmt_money, fmt_pct, set_currency

    set_currency("€")
    try:
        text = findings.value_migration(migration, top_n=10)
    finally:
        set_currency("")
    assert 3 <= len(text) <= 5
    d = migration.decomposition
    assert fmt_money(d["start"], "€") in text[0] and fmt_money(d["end"], "€") in text[0]
    assert fmt_money(d["new"], "€") in text[1] and fmt_money(d["lost"], "€") in text[1]
    assert fmt_pct(migration.share_value_moved_down) in text[2]
    assert "10 accounts" in text[-1]


def test_an_untrusted_fit_on_a_real_shape_log_is_named_and_not_headlined():
    """The gift-shop invoice log (data/giftshop): its Gamma-Gamma fit runs off to q ~ 3e8.

    Value migration refuses such a fit by default; with ``allow_unconverged`` (as the study
    runs) it values the customers, the result names the fit, the findings say so first and
    headline no total, and the KPI record carries a count instead of money.
    """
    from pathlib import Path

    from crmstats.book import findings
    from crmstats.exceptions import ConvergenceError

    source = Path(__file__).resolve().parents[2] / "data" / "giftshop" / "crmstats.yml"
    crm = crmstats.load_crm(source)
    with pytest.warns(Warning), pytest.raises(ConvergenceError, match="GammaGamma"):
        clv.value_migration(crm, 6)
    with pytest.warns(Warning):
        m = clv.value_migration(crm, 6, allow_unconverged=True)
    assert clv.fit_problem(m.fits["Gamma-Gamma"])
    assert clv.fit_problem(m.fits["BG/NBD"]) is None
    lines = findings.value_migration(m)
    assert lines[0].startswith("The Gamma-Gamma fit used to value customers did not converge")
    assert not any(line.startswith("Expected customer value") for line in lines)
    kpis = findings.value_migration_kpis(m)
    assert set(kpis) == {"customers_valued_migration"}
    assert kpis["customers_valued_migration"]["value"] == len(m.customers)

"""customer_360: one row per customer and open lead, every score equal to its own function's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import clv, funnel
from crmstats.scores import COLUMNS, OPEN_LEAD_STAGES, customer_360

BOOT = 8


@pytest.fixture(scope="module")
def scores(small_crm):
    return customer_360(small_crm, n_bootstrap=BOOT)


def test_one_row_per_customer_and_open_lead(scores, small_crm):
    assert scores.index.is_unique and scores.index.name == "id"
    buyers = set(small_crm.transactions["customer_id"].astype(str))
    known = set(small_crm.customers["customer_id"].astype(str))
    customers = scores.index[scores["kind"] == "customer"]
    assert set(customers) == buyers | known
    stages = funnel.lifecycle_stage(small_crm, as_of=scores["as_of"].iloc[0])
    open_ids = set(stages.index[stages["stage"].astype(str).isin(OPEN_LEAD_STAGES)])
    assert set(scores.index[scores["kind"] == "lead"]) == open_ids - set(customers)
    assert set(scores.index[scores["open_lead"]]) == open_ids
    assert len(scores) == len(buyers | known | open_ids)
    assert (scores["kind"] == "lead").sum() > 0


def test_every_column_is_documented(scores):
    assert list(scores.columns) == list(COLUMNS)
    assert all(len(text) > 20 for text in COLUMNS.values())
    # each documented column is filled somewhere on the demo (none is a dead placeholder)
    assert scores.notna().any().all(), scores.columns[~scores.notna().any()].tolist()


def test_clv_tier_and_stage_equal_the_individual_functions(scores, small_crm):
    as_of = scores["as_of"].iloc[0]
    fit = clv.fit_value(small_crm.transactions, observation_end=as_of)
    summary, bg = fit.summary, fit.transaction_model
    with warnings.catch_warnings():  # some refits on 166 customers may not converge
        warnings.simplefilter("ignore", crmstats.ConvergenceWarning)
        value = clv.customer_lifetime_value(bg, fit.spend_model, summary, n_bootstrap=BOOT)
    np.testing.assert_array_equal(value["clv"], fit.clv)
    tiers = clv.value_tiers(value)
    got = scores.loc[value.index]
    for col in ("clv", "clv_lower_90", "clv_upper_90", "expected_purchases", "expected_spend"):
        np.testing.assert_allclose(got[col].to_numpy(float), value[col].to_numpy(), rtol=1e-12)
    assert (got["value_tier"].astype(str).to_numpy() == tiers["tier"].astype(str).to_numpy()).all()
    np.testing.assert_allclose(got["p_alive"], bg.probability_alive(summary), rtol=1e-12)
    np.testing.assert_array_equal(got["frequency"], summary["frequency"])
    segments = clv.rfm_segments(summary)
    assert (got["rfm_segment"].to_numpy() == segments["segment"].to_numpy()).all()
    stages = funnel.lifecycle_stage(small_crm, as_of=as_of)
    common = scores.index.intersection(stages.index)
    assert len(common) == len(scores)
    assert (scores["lifecycle_stage"].astype(str) == stages.loc[scores.index, "stage"].astype(
        str)).all()


def test_lead_scores_equal_the_lead_scoring_model(scores, small_crm):
    leads = funnel.lead_features(small_crm)
    features = ["engagement_score", "company_size_code", "industry", "job_title", "country"]
    model = funnel.LeadScoringModel().fit(leads, features=features, target="won")
    open_ids = scores.index[scores["open_lead"]]
    expected = model.predict_proba(leads.loc[open_ids])
    np.testing.assert_allclose(scores.loc[open_ids, "lead_score"], expected, rtol=1e-12)
    assert scores.loc[~scores["open_lead"], "lead_score"].isna().all()


def test_key_accounts_and_tickets_against_pandas(scores, small_crm):
    as_of = scores["as_of"].iloc[0]
    subs = small_crm.subscriptions
    month = subs["month"].dt.to_period("M")
    now = as_of.to_period("M")
    per = subs.groupby([subs["account_id"].astype(str), month])["mrr"].sum()
    mrr = per.xs(now, level=1).where(lambda s: s > 0)
    before = per.xs(now - 12, level=1).where(lambda s: s > 0)
    ka = scores[scores["key_account"]]
    assert set(ka.index) == set(subs["account_id"].astype(str))
    np.testing.assert_allclose(ka.loc[mrr.index, "mrr"], mrr)
    both = mrr.index.intersection(before.dropna().index)
    assert len(both) > 0
    np.testing.assert_allclose(ka.loc[both, "nrr_12m"], mrr[both] / before[both])
    risk = ka["churn_risk"].dropna()
    assert len(risk) > 0 and ((risk > 0) & (risk < 1)).all()
    t = small_crm.tickets
    open_ = t[(t["opened_at"] <= as_of) & (t["resolved_at"].isna() | (t["resolved_at"] > as_of))]
    expected = open_.groupby(open_["customer_id"].astype(str)).size()
    got = scores["open_tickets"].dropna()
    assert got.sum() == expected.sum()
    np.testing.assert_array_equal(got[expected.index], expected)
    done = t[t["resolved_at"] <= as_of]
    hours = (done["resolved_at"] - done["opened_at"]).dt.total_seconds() / 3600
    med = hours.groupby(done["customer_id"].astype(str)).median()
    np.testing.assert_allclose(scores.loc[med.index, "median_resolution_hours"], med, rtol=1e-9)


def test_as_of_cuts_every_table(small_crm):
    as_of = pd.Timestamp("2025-06-30 23:59:59")
    early = customer_360(small_crm, as_of, n_bootstrap=0)
    assert (early["as_of"] == as_of).all()
    assert (early["last_purchase"].dropna() <= as_of).all()
    assert (early["acquired_at"].dropna() <= as_of).all()
    buyers = small_crm.transactions.loc[(small_crm.transactions["timestamp"] <= as_of)
                                   & (small_crm.transactions["amount"] >= 0), "customer_id"]
    assert set(early.index[early["first_purchase"].notna()]) == set(buyers.astype(str))
    assert early["clv_lower_90"].isna().all()  # no bootstrap asked


@pytest.fixture(scope="module")
def plain(small_crm):
    """Without the bootstrap interval (refits that stop early amplify last-digit differences)."""
    return customer_360(small_crm, n_bootstrap=0)


def test_a_folder_source_gives_the_same_scores(tmp_path, small_crm, plain):
    crmstats.export_crm(small_crm, tmp_path)
    frames = plain
    folder = customer_360(str(tmp_path), n_bootstrap=0)
    pd.testing.assert_frame_equal(folder, frames, check_exact=False, rtol=1e-9,
                                  check_dtype=False, check_categorical=False)


def test_transactions_only_and_callers_frames_untouched():
    cdnow = crmstats.load_crm("cdnow:sample")
    before = cdnow.transactions.copy()
    s = customer_360(cdnow, n_bootstrap=0)
    pd.testing.assert_frame_equal(cdnow.transactions, before)
    assert (s["kind"] == "customer").all() and len(s) == 2357
    assert s["lifecycle_stage"].isna().all() and not s["key_account"].any()
    with pytest.raises(crmstats.DataError, match="transactions"):
        customer_360(crmstats.CRMData(customers=cdnow.transactions))


def test_a_duckdb_file_source_gives_the_same_scores(tmp_path, small_crm, plain):
    import duckdb

    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        for name, frame in small_crm.tables().items():
            con.register("frame", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
    got = customer_360(f"duckdb://{db}", n_bootstrap=0)
    pd.testing.assert_frame_equal(got, plain, check_exact=False, rtol=1e-9,
                                  check_dtype=False, check_categorical=False)


def test_plot_tier_by_stage(plain):
    from crmstats.scores import plot_tier_by_stage

    ax = plot_tier_by_stage(plain)
    assert ax.get_xlabel() == "lifecycle stage" and ax.get_ylabel() == "value tier"
    with pytest.raises(ValueError, match="customer_360"):
        plot_tier_by_stage(plain[["clv"]])


def test_as_of_given_as_a_date_includes_that_whole_day(small_crm):
    """As observation_end does: purchases later that day count (were cut at midnight)."""
    tx = small_crm.transactions
    days = tx.loc[tx["amount"] >= 0, "timestamp"].dt.normalize()
    day = days[days.between("2025-06-01", "2025-06-30")].value_counts().idxmax()
    scores = customer_360(small_crm, f"{day:%Y-%m-%d}", n_bootstrap=0)
    summary = clv.rfm_summary(tx, observation_end=f"{day:%Y-%m-%d}")
    summary.index = summary.index.astype(str)
    bought = tx.loc[(tx["timestamp"].dt.normalize() == day) & (tx["amount"] >= 0), "customer_id"]
    assert (scores.loc[bought.astype(str), "last_purchase"].dt.normalize() == day).all()
    freq = scores["frequency"].dropna()
    assert freq.equals(summary["frequency"].reindex(freq.index).astype(freq.dtype))


def test_bad_dates_are_named(small_crm):
    with pytest.raises(ValueError, match="as_of 'soon' is not a date"):
        customer_360(small_crm, "soon", n_bootstrap=0)
    with pytest.raises(crmstats.DataError, match="no transaction on or before as_of"):
        customer_360(small_crm, "2020-01-01", n_bootstrap=0)


@pytest.mark.parametrize("as_of", [None, "2025-06-30"])
def test_value_by_stage_is_the_360s_value_and_lifecycle_columns(small_crm, plain, as_of):
    """What plot_tier_by_stage draws, without lead scores, key accounts and tickets."""
    from crmstats.scores import plot_tier_by_stage, value_by_stage

    full = plain if as_of is None else customer_360(small_crm, as_of, n_bootstrap=0)
    got = value_by_stage(small_crm, as_of)
    pd.testing.assert_frame_equal(got, full[list(got.columns)])
    assert list(got.columns) == ["kind", "clv", "value_tier", "value_rank", "lifecycle_stage",
                                 "as_of"]
    assert plot_tier_by_stage(got).get_title() == plot_tier_by_stage(full).get_title()


def test_value_by_stage_on_transactions_only():
    from crmstats.scores import value_by_stage

    cdnow = crmstats.load_crm("cdnow:sample")
    got = value_by_stage(cdnow)
    pd.testing.assert_frame_equal(got, customer_360(cdnow, n_bootstrap=0)[list(got.columns)])
    assert got["lifecycle_stage"].isna().all()


def test_tables_cut_at_as_of_are_not_validated_again(small_crm):
    """A validated table cut by date stays valid: the 360 does not check it a second time,
    and gives what the same rows, given as frames and validated anew, give."""
    from crmstats.scores import value_by_stage
    from crmstats.validation.memory import COUNTS

    as_of = pd.Timestamp("2025-06-30 23:59:59")
    for name in ("transactions", "stage_events", "contacts", "customers"):
        small_crm.table(name)  # validated once, as a book kernel finds them
    cols = {"transactions": "timestamp", "stage_events": "entered_at", "contacts": "created_at",
            "customers": "acquired_at"}
    before = {name: COUNTS[name] for name in cols}
    got = value_by_stage(small_crm, as_of)
    assert {name: COUNTS[name] for name in cols} == before
    cut = crmstats.CRMData(**{name: getattr(small_crm, name).loc[
        getattr(small_crm, name)[col] <= as_of].reset_index(drop=True)
        for name, col in cols.items()})
    pd.testing.assert_frame_equal(got, value_by_stage(cut, as_of))


def test_a_table_empty_at_as_of_is_still_reported(small_crm):
    from crmstats.scores import value_by_stage

    first_event = small_crm.stage_events["entered_at"].min()
    events = small_crm.stage_events.copy()
    events["entered_at"] = events["entered_at"] + pd.DateOffset(years=3)  # all after as_of
    later = crmstats.CRMData(transactions=small_crm.transactions, stage_events=events)
    with pytest.raises(crmstats.DataError, match="stage_events table is empty"):
        value_by_stage(later, first_event + pd.Timedelta(days=200))

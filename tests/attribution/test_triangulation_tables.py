"""The side-by-side table on a book page: two narrow tables instead of one that scrolls."""

import numpy as np
import pandas as pd
import pytest

from crmstats import attribution as A
from crmstats import formatting
from crmstats.book import report


@pytest.fixture()
def table():
    journey = pd.Series({"paid_search": 50.0, "email": 30.0, "display": 20.0})
    lifts = pd.DataFrame({"incremental_conversions": [10.0, 6.0, 4.0],
                          "incremental_lower_95": [5.0, 1.0, -1.0],
                          "incremental_upper_95": [15.0, 11.0, 9.0]},
                         index=["paid_search", "email", "display"])
    spend = pd.DataFrame({"date": pd.Timestamp("2024-01-01"),
                          "channel": ["paid_search", "email", "display"],
                          "cost": [5000.0, 800.0, 1200.0]})
    t = A.triangulate(journey, lifts, spend=spend)
    # a third source, as triangulate_crm adds it from a fitted media-mix model
    t["mmm_share"] = [0.3, 0.2, 0.5]
    t["roas"] = [1.5, 4.0, 0.8]
    t["share_spread"] = t[["journey_share", "lift_share", "mmm_share"]].agg(np.ptp, axis=1)
    t["odd_source"] = ["", "", "the media-mix model"]
    return t


def test_the_two_tables_hold_the_view_with_short_headers(table):
    view = A.triangulation_view(table)
    shares, returns = A.triangulation_shares(table), A.triangulation_returns(table)
    assert list(shares.columns) == ["spend", "journeys", "experiments", "model", "apart"]
    assert list(returns.columns) == ["ROAS per 1", "calibrated per 1", "CAC", "CAC incremental"]
    assert shares.index.equals(view.index) and returns.index.equals(view.index)
    for short, long in (("spend", "spend"), ("journeys", "journey_share"),
                        ("experiments", "lift_share"), ("model", "mmm_share")):
        pd.testing.assert_series_equal(shares[short], view[long], check_names=False)
    for short, long in (("ROAS per 1", "roas"), ("calibrated per 1", "calibrated_roas"),
                        ("CAC", "cac"), ("CAC incremental", "incremental_cac")):
        pd.testing.assert_series_equal(returns[short], view[long], check_names=False)
    assert shares["apart"].tolist() == ["", "", "model"]
    assert not table.columns.isin(["journeys", "apart", "ROAS"]).any()  # caller's table as was


def test_each_table_fits_a_page(table):
    """A book page holds about six columns; each header is at most two words."""
    for frame, roles in ((A.triangulation_shares(table),
                          {"money": "spend", "pct": ["journeys", "experiments", "model"]}),
                         (A.triangulation_returns(table),
                          {"money": ["CAC", "CAC incremental"]})):
        assert len(frame.columns) <= 5
        assert all(len(str(c).split()) <= 3 for c in frame.columns)
        html = report.format_table(frame, currency="$", **roles)._repr_html_()
        assert "$5,000" in html or "ROAS" in html


def test_the_budget_table_shows_the_split_in_four_columns():
    alloc = pd.DataFrame({"current": [100.0, 300.0], "recommended": [250.0, 150.0],
                          "change": [150.0, -150.0], "current_outcome": [2.0, 9.0],
                          "recommended_outcome": [4.5, 7.0], "min_spend": [0.0, 0.0],
                          "max_spend": [600.0, 900.0]},
                         index=pd.Index(["email", "tv"], name="channel"))
    plan = A.BudgetPlan(alloc, 400.0, 13, 6.5, 1.0, 12.0, 0.06)
    t = A.budget_table(plan)
    assert list(t.columns) == ["current", "recommended", "change", "extra outcome"]
    assert t["extra outcome"].tolist() == [2.5, -2.0]
    named = A.budget_table(A.BudgetPlan(alloc, 400.0, 13, 6.5, 1.0, 12.0, 0.06,
                                        outcome="conversions"))
    assert named.columns[-1] == "extra conversions"
    pd.testing.assert_frame_equal(t[["current", "recommended", "change"]],
                                  alloc[["current", "recommended", "change"]])
    assert list(plan.allocation.columns)[-2:] == ["min_spend", "max_spend"]  # not changed


def test_small_returns_are_quoted_per_an_amount_of_spend_that_reads(table, monkeypatch):
    """ROAS of 0.0015 conversions per $1 reads as 1.5 per $1,000, and the header says so."""
    monkeypatch.setattr(formatting, "_state", {"currency": "$"})  # as a study page sets it
    small = table.assign(roas=table["roas"] / 1000)
    view = A.triangulation_view(small)
    returns = A.triangulation_returns(small)
    assert list(returns.columns)[:2] == ["ROAS per $1,000", "calibrated per $1,000"]
    pd.testing.assert_series_equal(returns["ROAS per $1,000"], 1000 * view["roas"],
                                   check_names=False)
    html = report.format_table(returns, money=["CAC", "CAC incremental"])._repr_html_()
    assert "ROAS per $1,000" in html.replace("&#36;", "$")
    assert small["roas"].tolist() == (table["roas"] / 1000).tolist()  # caller's table as was

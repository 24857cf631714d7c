"""The data overview's page table: table_overview's nine columns as four a reader can take in."""

import pandas as pd
import pytest

import crmstats
from crmstats import overview


def test_source_table_has_short_columns_and_keeps_the_figures(small_crm):
    ov = overview.table_overview(small_crm)
    before = ov.copy()
    t = overview.source_table(ov)
    pd.testing.assert_frame_equal(ov, before)
    assert list(t.columns) == ["rows", "ids", "time span", "status"]
    assert t.index.equals(ov.index) and t.index.name == "table"
    pd.testing.assert_series_equal(t["rows"], ov["rows"])
    pd.testing.assert_series_equal(t["ids"], ov["ids"])
    tx = small_crm.transactions
    assert t.loc["transactions", "time span"] == (
        f"{tx.timestamp.min():%Y-%m-%d} to {tx.timestamp.max():%Y-%m-%d}")
    assert t.loc["transactions", "status"] == "ok"
    # spend has no id column; the simulation has no experiments and no deals export
    assert pd.isna(t.loc["spend", "ids"]) and t.loc["spend", "time span"] != "—"
    for name in ("experiments", "deals"):
        assert t.loc[name, "status"] == "absent"
        assert t.loc[name, "time span"] == "—" and pd.isna(t.loc[name, "rows"])


def test_an_invalid_table_says_why_and_an_absent_one_says_absent(small_crm):
    broken = crmstats.CRMData(transactions=small_crm.transactions.drop(columns="amount"))
    ov = overview.table_overview(broken)
    t = overview.source_table(ov)
    status = t.loc["transactions", "status"]
    assert status.startswith("invalid: ") and "'amount'" in status
    assert status == f"invalid: {ov.loc['transactions', 'message']}"
    assert t.loc["transactions", "time span"] == "—" and pd.isna(t.loc["transactions", "rows"])
    assert t.loc["customers", "status"] == "absent"


def test_a_table_without_dates_has_no_span():
    exp = pd.DataFrame({"journey_id": ["a", "b"], "channel": "email",
                        "group": ["treatment", "holdout"]})
    t = overview.source_table(overview.table_overview(crmstats.CRMData(experiments=exp)))
    assert t.loc["experiments", "rows"] == 2 and t.loc["experiments", "ids"] == 2
    assert (t.loc["experiments", "time span"], t.loc["experiments", "status"]) == ("—", "ok")


def test_another_frame_is_refused_by_name():
    with pytest.raises(ValueError, match="expected the DataFrame returned by table_overview"):
        overview.source_table(pd.DataFrame({"rows": [1]}))

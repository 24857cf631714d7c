"""No silent traps: each one a clear DataError or a DataWarning naming table, column and count.

Every test here failed (a silently wrong number, or a raw DuckDB/Ibis/pandas
error) before the data gate of issue 13.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import CRMData, DataError, DataWarning, validate
from crmstats.clv import rfm_summary
from crmstats.funnel import lead_kpis, stage_conversion


def SourceTable(*args, **kwargs):  # noqa: N802 - imported late: the old gate lacked it
    from crmstats.validation import SourceTable as source_table

    return source_table(*args, **kwargs)


def _tx(ts, ids=None, amounts=None):
    n = len(ts)
    return pd.DataFrame({"customer_id": ids or [f"c{i % 3}" for i in range(n)],
                         "timestamp": ts, "amount": amounts or [10.0] * n})


def _events(rows):
    return pd.DataFrame(rows, columns=["lead_id", "stage", "entered_at", "channel"]).assign(
        entered_at=lambda d: pd.to_datetime(d["entered_at"]))


# ----------------------------------------------------------------------------- dates


def test_day_first_text_dates_in_a_frame_are_read_day_first_with_a_warning():
    frame = _tx(["02/03/2024", "13/03/2024", "25/12/2024 15:30"])
    before = frame.copy()
    with pytest.warns(DataWarning, match=r"timestamp'.*3 date\(s\).*day-first"):
        out = validate(frame, "transactions")
    # 02/03 is the 2nd of March (the column shows it is day-first), not February 3rd
    assert list(out["timestamp"]) == list(pd.to_datetime(
        ["2024-03-02 00:00", "2024-03-13 00:00", "2024-12-25 15:30"]))
    pd.testing.assert_frame_equal(frame, before)


def test_mixed_date_orders_are_an_error_not_a_guess():
    frame = _tx(["02/03/2024", "13/03/2024", "03/25/2024"])
    with pytest.raises(DataError, match="mixes day-first and month-first") as err:
        validate(frame, "transactions")
    assert err.value.table == "transactions" and err.value.column == "timestamp"


def test_dates_that_could_be_either_order_are_an_error():
    with pytest.raises(DataError, match="could be day-first or month-first"):
        validate(_tx(["02/03/2024", "04/05/2024"]), "transactions")


def test_day_first_dates_in_a_csv_are_a_clear_error_or_read_right(tmp_path):
    path = tmp_path / "orders.csv"
    pd.DataFrame({"customer_id": ["a", "b", "c"],
                  "timestamp": ["02/03/2024 10:00", "13/03/2024 11:00", "03/25/2024 12:00"],
                  "amount": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    with pytest.raises(DataError, match="transactions table, column 'timestamp': mixes"):
        crmstats.as_table(str(path), "transactions")
    pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["02/03/2024", "13/03/2024"],
                  "amount": [1.0, 2.0]}).to_csv(path, index=False)
    with pytest.warns(DataWarning, match="day-first"):
        got = crmstats.execute(crmstats.as_table(str(path), "transactions"))
    assert list(got["timestamp"]) == list(pd.to_datetime(["2024-03-02", "2024-03-13"]))


def test_a_declared_order_that_the_data_contradict_is_named(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("c;d;a\nx;02/03/2024;1\ny;03/25/2024;2\n")
    source = SourceTable(str(path), columns={"customer_id": "c", "timestamp": "d", "amount": "a"},
                         dayfirst=True)
    with pytest.raises(DataError, match=r"'d': unparsable timestamp\(s\) in 1 row"):
        crmstats.as_table(source, "transactions")


# ----------------------------------------------------------------------------- names


def test_stage_names_outside_the_funnel_are_listed_with_the_fix():
    events = _events([("l1", "MQL", "2024-01-01", "email"), ("l1", "won", "2024-02-01", "email"),
                      ("l2", "lead", "2024-01-02", "email"), ("l2", "SQL", "2024-01-05", "email")])
    with pytest.warns(DataWarning, match=r"2 row\(s\) have stage names outside the funnel.*"
                                         r"'MQL' \(1 rows\).*values: stage:"):
        stage_conversion(events)


def test_stages_out_of_order_are_flagged():
    events = _events([("l1", "lead", "2024-02-01", "email"), ("l1", "won", "2024-01-01", "email"),
                      ("l2", "lead", "2024-01-02", "email")])
    with pytest.warns(DataWarning, match=r"1 lead\(s\) entered a stage before an earlier"):
        stage_conversion(events)


def test_names_differing_only_in_case_or_spaces_are_flagged_and_a_source_file_merges_them():
    events = _events([(f"l{i}", "lead", f"2024-01-0{i % 9 + 1}", ch)
                      for i, ch in enumerate(["email", "Email ", "email", "paid_search"])])
    spend = pd.DataFrame({"date": pd.to_datetime(["2024-01-01"] * 2),
                          "channel": ["email", "paid_search"], "cost": [30.0, 10.0]})
    with pytest.warns(DataWarning, match=r"stage_events table, column 'channel': 1 name\(s\) "
                                         "differ from another only in upper/lower case"):
        lead_kpis(events, spend, period=None)  # a bare frame, as the notebooks pass it
    ids = _tx(["2024-01-01", "2024-01-02", "2024-01-03"], ids=["C1", "C1 ", "c2"])
    with pytest.warns(DataWarning, match=r"'customer_id': 1 value\(s\) differ from another "
                                         "only in upper/lower case"):
        CRMData(transactions=ids).table("transactions")
    mapped = CRMData(stage_events=SourceTable(events, trim=True,
                                              values={"channel": {"Email": "email"}}),
                     spend=spend)
    kpis = lead_kpis(mapped.stage_events, mapped.spend, period=None)
    assert kpis.loc["email", "leads"] == 3 and kpis.loc["email", "spend"] == 30.0


def test_blank_ids_are_an_error():
    for blank in ["", "   "]:
        with pytest.raises(DataError, match=r"'customer_id': blank id\(s\)"):
            validate(_tx(["2024-01-01", "2024-01-02"], ids=["c1", blank]), "transactions")


def test_exact_duplicate_rows_without_order_id_warn_and_a_source_file_drops_them():
    frame = _tx(["2024-01-01", "2024-01-02", "2024-01-02"], ids=["a", "b", "b"])
    with pytest.warns(DataWarning, match=r"transactions table: 1 row\(s\) exactly repeat"):
        CRMData(transactions=frame).table("transactions")
    deduped = CRMData(transactions=SourceTable(frame, drop_duplicates=True))
    revenue = crmstats.execute(deduped.table("transactions").amount.sum())
    assert revenue == 20.0


def test_int_and_text_ids_across_tables_join():
    from crmstats.churn import retention_matrix

    # customers 1 and 2 are first seen after the data's first month (whose buyers may have
    # been acquired before the data), and the log covers March to its last day
    tx = _tx(["2024-01-01", "2024-02-01", "2024-03-01", "2024-02-05", "2024-03-31"],
             ids=["0", "1", "1", "2", "0"])
    customers = pd.DataFrame({"customer_id": [0, 1, 2], "acquired_at": pd.to_datetime(
        ["2024-01-01", "2024-02-01", "2024-02-05"]),
        "acquisition_channel": ["email", "email", "social"]})
    out = retention_matrix(tx, by="acquisition_channel", customers=customers)
    assert set(out.index) == {"email", "social"}
    crm = CRMData(transactions=tx, customers=customers)
    assert crm.table("customers").customer_id.type().is_string()


# ----------------------------------------------------------------------------- periods


def test_a_date_as_observation_end_includes_that_whole_day():
    tx = _tx(["2024-01-01 09:00", "2024-02-01 15:00"], ids=["a", "a"])
    tx["timestamp"] = pd.to_datetime(tx["timestamp"])
    assert rfm_summary(tx, observation_end="2024-02-01").loc["a", "frequency"] == 1
    assert rfm_summary(tx, observation_end="2024-02-01 12:00").loc["a", "frequency"] == 0


def test_an_observation_end_far_past_the_data_warns():
    tx = _tx(pd.to_datetime(["2024-01-01", "2024-03-01", "2024-06-01"]))
    with pytest.warns(DataWarning, match=r"observation_end 2030-01-01 is 2,040 days after"):
        rfm_summary(tx, observation_end="2030-01-01")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        rfm_summary(tx, observation_end="2024-06-10")


def test_a_period_too_long_for_the_data_says_so():
    from crmstats.churn import churn_rate

    days = pd.date_range("2024-01-01", "2025-06-30", freq="7D")
    tx = _tx(list(days), ids=[f"c{i % 20}" for i in range(len(days))])
    with pytest.raises(DataError, match=r"span 2 period\(s\) of 'Y'.*shorter period"):
        churn_rate(tx, period="Y")
    assert len(churn_rate(tx, period="M")) > 0


# ----------------------------------------------------------------------------- raw errors


def test_a_corrupt_file_is_a_data_error_naming_the_table(tmp_path):
    path = tmp_path / "transactions.parquet"
    path.write_bytes(b"not a parquet file at all")
    with pytest.raises(DataError, match="transactions table: the database rejected"):
        crmstats.as_table(str(path), "transactions")
    with pytest.raises(DataError, match="transactions table"):
        crmstats.load_crm(tmp_path).table("transactions")


def test_european_numbers_without_a_source_file_point_to_the_option(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id;timestamp;amount\na;2024-01-01;1.234,50\n")
    with pytest.raises(DataError, match="not numbers.*decimal: ','"):
        crmstats.as_table(str(path), "transactions")
    source = SourceTable(str(path), decimal=",", thousands=".")
    got = crmstats.execute(crmstats.as_table(source, "transactions"))
    assert got["amount"].tolist() == [1234.5]
    assert np.issubdtype(got["timestamp"].dtype, np.datetime64)


def test_distinct_counts_match_a_pandas_reference():
    """deep_checks' counts (distinct values, and distinct once trimmed and lower-cased),
    computed on the distinct values only, equal pandas' on every row."""
    import ibis

    from crmstats.validation.deep import _distinct_counts

    frame = pd.DataFrame({
        "channel": ["Email", "email ", "email", None, "social", "Social", " social", "x"] * 3,
        "owner": ["a", "b", None, None, "a", "c", "c", "d"] * 3,
    })
    got = _distinct_counts(ibis.memtable(frame), ["channel", "owner"])
    assert got["__n__"] == (len(frame), 0)
    for name in ("channel", "owner"):
        values = frame[name].dropna()
        assert got[name] == (values.nunique(), values.str.strip().str.lower().nunique())
    assert got["channel"] == (7, 3)

import ibis
import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import DataError, validate
from crmstats.backend import execute as _execute
from crmstats.schema import TABLES
from crmstats.validation import SourceTable


def tx(**overrides):
    base = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "c"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-02-03", "2024-01-05", "2024-03-01"]),
            "amount": [10.0, 20.0, 5.5, 7.0],
            "order_id": ["o1", "o2", "o3", "o4"],
        },
        index=[100, 101, 102, 103],
    )
    for k, v in overrides.items():
        base[k] = v
    return base


def test_missing_customer_id_is_named():
    with pytest.raises(DataError, match="customer_id") as info:
        validate(tx().drop(columns="customer_id"), table="transactions")
    assert info.value.table == "transactions"
    assert info.value.column == "customer_id"
    assert "customer_id_col" in str(info.value)


def test_valid_frame_round_trips_without_mutation():
    frame = tx(timestamp=["2024-01-01", "2024-02-03", "2024-01-05", "2024-03-01"])
    before = frame.copy(deep=True)
    out = validate(frame, table="transactions")
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched
    assert out is not frame
    assert pd.api.types.is_datetime64_dtype(out["timestamp"])
    assert list(out.index) == [100, 101, 102, 103]
    assert out["amount"].tolist() == [10.0, 20.0, 5.5, 7.0]


def test_column_mapping_by_keyword_and_mapping():
    frame = tx().rename(columns={"customer_id": "cust", "amount": "revenue"})
    out = validate(frame, "transactions", customer_id_col="cust", amount_col="revenue")
    assert {"customer_id", "amount"} <= set(out.columns)
    out2 = validate(frame, "transactions", columns={"customer_id": "cust", "amount": "revenue"})
    pd.testing.assert_frame_equal(out, out2)


def test_error_names_callers_column_name():
    frame = tx(revenue=[1.0, np.nan, 2.0, 3.0]).drop(columns="amount")
    with pytest.raises(DataError, match=r"'revenue'.*rows 101") as info:
        validate(frame, "transactions", amount_col="revenue")
    assert info.value.column == "revenue"
    assert info.value.rows == [101]


@pytest.mark.parametrize(
    ("overrides", "column", "pattern"),
    [
        ({"customer_id": ["a", None, "b", "c"]}, "customer_id", r"null value.*rows 101"),
        ({"amount": [1.0, np.inf, 2.0, 3.0]}, "amount", r"non-finite.*rows 101"),
        ({"amount": [1.0, 2.0, -np.inf, np.nan]}, "amount", r"2 row\(s\).*rows 102, 103"),
        ({"amount": ["1", "2", "x", "4"]}, "amount", r"not numbers.*102 \('x'\)"),
        ({"timestamp": ["2024-01-01", "yesterday", "2024-01-02", None]}, "timestamp",
         r"unparsable.*101 \('yesterday'\)"),
        ({"timestamp": ["2024-01-01T10:00:00+01:00", "2024-01-01 10:00", "2024-01-02",
                        "2024-01-03"]}, "timestamp", "mixes timezone-aware and naive"),
        ({"timestamp": [1, 2, 3, 4]}, "timestamp", "where timestamps are expected"),
        ({"order_id": ["o1", "o1", "o3", "o4"]}, "order_id", "duplicated"),
        ({"amount": [True, False, True, True]}, "amount", "boolean"),
        ({"customer_id": [1.5, 2.0, 3.0, 4.0]}, "customer_id", "non-integer numeric ids"),
    ],
)
def test_transactions_problems(overrides, column, pattern):
    with pytest.raises(DataError, match=pattern) as info:
        validate(tx(**overrides), "transactions")
    assert info.value.column == column
    assert "transactions table" in str(info.value)


def test_refunds_are_accepted_but_negative_cost_is_not():
    out = validate(tx(amount=[10.0, -10.0, 5.0, 7.0]), "transactions")
    assert out["amount"].min() == -10.0
    spend = pd.DataFrame({"date": ["2024-01-01", "2024-02-01"], "channel": ["seo", "seo"],
                          "cost": [100.0, -5.0]})
    with pytest.raises(DataError, match=r"spend table, column 'cost': negative"):
        validate(spend, "spend")


def test_timezone_aware_values_become_utc_naive():
    frame = tx(timestamp=["2024-01-01T10:00:00+01:00", "2024-01-01T10:00:00-05:00",
                          "2024-01-02T00:00:00Z", "2024-01-03T00:00:00+00:00"])
    out = validate(frame, "transactions")
    assert out["timestamp"].dt.tz is None
    assert out["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 09:00")
    assert out["timestamp"].iloc[1] == pd.Timestamp("2024-01-01 15:00")
    aware = tx(timestamp=pd.to_datetime(["2024-01-01"] * 4).tz_localize("Europe/Budapest"))
    assert validate(aware, "transactions")["timestamp"].iloc[0] == pd.Timestamp("2023-12-31 23:00")


def test_empty_table():
    with pytest.raises(DataError, match="empty"):
        validate(tx().iloc[:0], "transactions")


def test_unknown_table_and_keyword():
    with pytest.raises(ValueError, match="unknown table"):
        validate(tx(), "orders")
    with pytest.raises(TypeError, match="unexpected keyword"):
        validate(tx(), "transactions", customer="x")


def test_not_a_table():
    with pytest.raises(DataError, match="expected a pandas DataFrame"):
        validate([1, 2, 3], "transactions")
    with pytest.raises(DataError, match="does not exist"):
        validate("/nonexistent/file.csv", "transactions")


def test_csv_and_parquet_paths(tmp_path):
    frame = tx()
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for path in (tmp_path / "t.csv", tmp_path / "t.parquet"):
        out = crmstats.execute(validate(path, "transactions"))
        assert sorted(out["amount"]) == sorted(frame["amount"])
        assert pd.api.types.is_datetime64_dtype(out["timestamp"])


def test_csv_with_bad_values_reports_ids(tmp_path):
    frame = tx(amount=["1", "2", "oops", "4"], timestamp=["2024-01-01"] * 4)
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"'amount'.*not numbers.*'o3'"):
        validate(tmp_path / "bad.csv", "transactions")


def test_ibis_table_input_is_checked_in_database():
    con = ibis.duckdb.connect()
    frame = tx(customer_id=["a", None, "b", "c"])
    table = con.create_table("tx", frame)
    with pytest.raises(DataError, match="customer_id.*null") as info:
        validate(table, "transactions")
    assert info.value.rows == ["o2"]  # reported by key, since the table has no index
    ok = con.create_table("tx_ok", tx().rename(columns={"amount": "value"}))
    out = validate(ok, "transactions", amount_col="value")
    assert isinstance(out, ibis.expr.types.Table)
    assert "amount" in out.columns


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_requires_its_columns(table):
    spec = TABLES[table]
    frame = pd.DataFrame({c: ["x"] for c in spec.required})
    with pytest.raises(DataError) as info:
        validate(frame.drop(columns=spec.required[0]), table)
    assert info.value.table == table
    assert info.value.column == spec.required[0]


def test_offending_rows_are_named_by_the_callers_index_labels():
    df = pd.DataFrame({"customer_id": [1, 2, None, 4], "amount": [1.0, -0.0, 2.0, np.inf],
                       "timestamp": pd.to_datetime(["2024-01-01"] * 4)},
                      index=["a", "b", "c", "d"])
    with pytest.raises(DataError, match=r"customer_id.*null.*\bc\b") as info:
        validate(df, "transactions")
    assert info.value.rows == ["c"]
    df.loc["c", "customer_id"] = 3
    with pytest.raises(DataError, match=r"amount.*non-finite") as info:
        validate(df, "transactions")
    assert info.value.rows == ["d"]


def test_experiment_groups_are_treatment_or_holdout():
    exp = pd.DataFrame({"journey_id": ["a", "b", "c", "d"], "channel": ["email"] * 4,
                        "group": ["treatment", "holdout", "control", None]},
                       index=[10, 11, 12, 13])
    with pytest.raises(DataError, match="'group'.*other than 'treatment', 'holdout'") as info:
        validate(exp.drop(index=13), "experiments")
    assert info.value.table == "experiments" and info.value.rows == [12]
    with pytest.raises(DataError, match="'group'.*null"):
        validate(exp.drop(index=12), "experiments")
    ok = validate(exp.drop(index=[12, 13]), "experiments")
    assert list(ok["group"]) == ["treatment", "holdout"]
    with pytest.raises(DataError, match=r"key \(journey_id, channel\) is duplicated"):
        validate(exp.iloc[[0, 0]], "experiments")


# ----------------------------------------------------------------------------- invoice lines


def _lines():
    return pd.DataFrame({"CustomerID": ["17850", "17850", "13047", "17850"],
                         "InvoiceDate": pd.to_datetime(["2024-01-01", "2024-01-01",
                                                        "2024-01-02", "2024-01-09"]),
                         "Quantity": [6, 2, 12, -2], "UnitPrice": ["2.55", "3.39", "0.85", "3.39"],
                         "InvoiceNo": ["536365", "536365", "536366", "C536370"],
                         "StockCode": ["85123A", "71053", "22633", "71053"]})


def test_amount_of_an_invoice_line_is_quantity_times_unit_price(tmp_path):
    lines = _lines()
    cols = {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "quantity": "Quantity",
            "unit_price": "UnitPrice", "order_id": "InvoiceNo", "product_category": "StockCode"}
    want = lines["Quantity"] * lines["UnitPrice"].astype(float)  # a returned line: a refund
    out = validate(lines, "transactions", columns=cols)
    np.testing.assert_allclose(out["amount"], want)
    lines.to_csv(tmp_path / "lines.csv", index=False)
    got = _execute(validate(str(tmp_path / "lines.csv"), "transactions",
                                       columns=cols))
    np.testing.assert_allclose(got["amount"], want)
    # without a unit price the amount is still missing, and the message says how to add it
    with pytest.raises(DataError, match="map quantity and unit_price"):
        validate(lines.drop(columns="UnitPrice"), "transactions", columns={
            k: v for k, v in cols.items() if k != "unit_price"})


# ----------------------------------------------------------------------------- deals


def _deals():
    return pd.DataFrame({"deal_id": ["d1", "d2", "d3", "d4"],
                         "stage": ["Prospecting", "Engaging", "won", "lost"],
                         "created_at": [None, "2024-01-03", "2024-01-05", "2024-02-01"],
                         "closed_at": [None, None, "2024-02-05", "2024-03-01"],
                         "amount": ["", "1200", "900", "0"]})


def test_deals_without_dates_or_amount_are_valid(tmp_path):
    deals = _deals()
    out = validate(deals, "deals")
    assert out["created_at"].isna().sum() == 1 and out["amount"].isna().sum() == 1
    deals.to_csv(tmp_path / "deals.csv", index=False)
    got = _execute(validate(str(tmp_path / "deals.csv"), "deals"))
    assert got["amount"].isna().sum() == 1 and got["closed_at"].isna().sum() == 2
    with pytest.raises(DataError, match="'amount'.*not numbers"):
        validate(deals.assign(amount=["", "1200", "n/a", "0"]), "deals")
    with pytest.raises(DataError, match="'closed_at'.*before 'created_at'"):
        validate(deals.assign(closed_at=[None, None, "2023-02-05", "2024-03-01"]), "deals")
    with pytest.raises(DataError, match="'amount'.*negative"):
        validate(deals.assign(amount=["", "-5", "900", "0"]), "deals")


def test_unmapped_closed_won_stage_names_are_flagged():
    deals = _deals().assign(stage=["Prospecting", "Engaging", "Closed Won", "closedlost"])
    with pytest.warns(crmstats.DataWarning, match="Closed Won: won"):
        validate(deals, "deals")


# ----------------------------------------------------------------------------- date messages


def _dates_csv(tmp_path, dates, ids=None):
    ids = ids or [f"{536365 + i}" for i in range(len(dates))]
    path = tmp_path / "orders.csv"
    path.write_text("InvoiceNo,Customer,Date,Amount\n" + "".join(
        f"{i},c{k},{d},1\n" for k, (i, d) in enumerate(zip(ids, dates, strict=True))))
    return SourceTable(str(path), columns={
        "order_id": "InvoiceNo", "customer_id": "Customer", "timestamp": "Date",
        "amount": "Amount"})


def test_impossible_dates_are_unparsable_not_a_mixed_order(tmp_path):
    source = _dates_csv(tmp_path, ["13/01/2024", "14/02/2024", "31/31/2023", "02/03/2024"])
    with pytest.warns(crmstats.DataWarning, match="read day-first"), \
            pytest.raises(DataError) as info:
        crmstats.as_table(source, "transactions")
    text = str(info.value)
    assert "mixes" not in text
    assert "unparsable timestamp(s) in 1 row(s)" in text
    assert "'31/31/2023'" in text and "read day-first" in text
    # rows of a file are named by their ids, and the message says so (not "rows 536367")
    assert "e.g. ids [536367] (column 'InvoiceNo')" in text
    frame = pd.DataFrame({"customer_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0],
                          "timestamp": ["13/01/2024", "31/31/2023", "02/02/2024"]})
    with pytest.raises(DataError, match=r"1 unparsable .*'31/31/2023'.*read day-first"):
        validate(frame)


def test_date_order_errors_quote_three_values(tmp_path):
    mixed = ["13/01/2024", "14/01/2024", "15/01/2024", "16/01/2024", "01/14/2024",
             "01/15/2024"]
    with pytest.raises(DataError) as info:
        crmstats.as_table(_dates_csv(tmp_path, mixed), "transactions")
    text = str(info.value)
    assert "4 value(s) can only be day-first (e.g. '13/01/2024', '14/01/2024', '15/01/2024')" \
        in text and "2 only month-first (e.g. '01/14/2024', '01/15/2024')" in text
    with pytest.raises(DataError, match=r"3 date\(s\) written like 02/03/2024 \(e\.g\. "
                                        r"'03/01/2024', '01/04/2024', '02/02/2024'\)"):
        validate(pd.DataFrame({"customer_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0],
                               "timestamp": ["03/01/2024", "01/04/2024", "02/02/2024"]}))

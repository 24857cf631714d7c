"""The same messy tables through both inputs of the gate: a DataFrame and a database table.

Each case says what the right outcome is (the canonical values, or an error on
a column), and both paths must give it. Before the text timestamps of a
DataFrame were parsed by the engine that parses files and databases, 8 of
these cases disagreed (blank optional dates, offsets, mixed zones, float ids,
written-out and compact dates, two-digit years) — some silently wrong on one
side (offsets dropped, the year 24). When numbers, ids and categories joined that engine,
:data:`MORE_CASES` were added: 5 of those 59 disagreed and 7 were wrong on one path or both
(a boolean among numbers read as 1.0 and datetimes as amounts read as epoch numbers from a
frame, ``1_000`` read as 1000 from a database, float ids too large for integers a raw pandas
error, text ids like ``123.0`` kept as text, boolean ids accepted, a categorical of numbers
turned into text).
"""

import warnings
from decimal import Decimal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import crmstats
from crmstats import DataError
from crmstats.backend import execute
from crmstats.validation import as_table

T = pd.Timestamp


def _tx(ts=("2024-01-01", "2024-01-02", "2024-01-03"), amount=(1.0, 2.0, 3.0),
        ids=("a", "b", "c")):
    return pd.DataFrame({"customer_id": list(ids), "timestamp": list(ts),
                         "amount": list(amount)})


def _tickets(resolved):
    return pd.DataFrame({"ticket_id": ["t1", "t2", "t3"], "customer_id": ["a", "b", "c"],
                         "opened_at": ["2024-01-01", "2024-01-02", "2024-01-03"],
                         "resolved_at": resolved})


def _deals(amount):
    return pd.DataFrame({"deal_id": ["d1", "d2", "d3"], "stage": ["open", "won", "lost"],
                         "amount": amount})


#: name -> (table, frame, column, expected values of that column or an error's column)
CASES = {
    "blank optional timestamp is missing": (
        "tickets", _tickets(["2024-01-05", "", None]), "resolved_at",
        [T("2024-01-05"), pd.NaT, pd.NaT]),
    "spaces optional timestamp is missing": (
        "tickets", _tickets(["2024-01-05", "  ", None]), "resolved_at",
        [T("2024-01-05"), pd.NaT, pd.NaT]),
    "blank required timestamp": ("transactions", _tx(ts=["2024-01-01", "", "2024-01-03"]),
                                 "timestamp", DataError),
    "spaced amount": ("transactions", _tx(amount=[" 12.5 ", "3", "4"]), "amount",
                      [12.5, 3.0, 4.0]),
    "nan text amount": ("transactions", _tx(amount=["nan", "2", "3"]), "amount", DataError),
    "blank nullable amount": ("deals", _deals(["", "2", "3"]), "amount", [None, 2.0, 3.0]),
    "thousands comma": ("transactions", _tx(amount=["1,234.5", "2", "3"]), "amount",
                        DataError),
    "offsets to UTC": ("transactions", _tx(ts=["2024-01-01T10:00:00+01:00",
                                               "2024-01-02T00:00:00Z",
                                               "2024-01-03T10:00:00-05:00"]), "timestamp",
                       [T("2024-01-01 09:00"), T("2024-01-02"), T("2024-01-03 15:00")]),
    "mixed aware and naive": ("transactions", _tx(ts=["2024-01-01T10:00:00+01:00",
                                                      "2024-01-02 10:00:00", "2024-01-03"]),
                              "timestamp", DataError),
    "fractional float ids": ("transactions", _tx(ids=[1.5, 2.0, 3.0]), "customer_id",
                             DataError),
    "whole float ids": ("transactions", _tx(ids=[1.0, 2.0, 3.0]), "customer_id", [1, 2, 3]),
    "month names": ("transactions", _tx(ts=["Jan 5, 2024", "1 February 2024", "Mar 3, 2024"]),
                    "timestamp", [T("2024-01-05"), T("2024-02-01"), T("2024-03-03")]),
    "compact dates": ("transactions", _tx(ts=["20240105", "20240201", "20240303"]),
                      "timestamp", [T("2024-01-05"), T("2024-02-01"), T("2024-03-03")]),
    "two-digit years": ("transactions", _tx(ts=["13/02/24", "01/03/24", "02/03/24"]),
                        "timestamp", [T("2024-02-13"), T("2024-03-01"), T("2024-03-02")]),
    "day-first with times": ("transactions",
                             _tx(ts=["13/02/2024 10:30", "01/03/2024 08:00:01", "02.03.2024"]),
                             "timestamp",
                             [T("2024-02-13 10:30"), T("2024-03-01 08:00:01"), T("2024-03-02")]),
    "ISO with T and fractions": ("transactions",
                                 _tx(ts=["2024-01-01T10:00:00.123", "2024-01-02T10:00",
                                         " 2024-01-03 10:00:00 "]), "timestamp",
                                 [T("2024-01-01 10:00:00.123"), T("2024-01-02 10:00"),
                                  T("2024-01-03 10:00")]),
    "garbage timestamp": ("transactions", _tx(ts=["soon", "2024-01-02", "2024-01-03"]),
                          "timestamp", DataError),
    "boolean amounts": ("transactions", _tx(amount=[True, False, True]), "amount", DataError),
    "numbers as timestamps": ("transactions", _tx(ts=[1, 2, 3]), "timestamp", DataError),
    "exponent and plus": ("transactions", _tx(amount=["1e3", "+5", "3"]), "amount",
                          [1000.0, 5.0, 3.0]),
}


def _touch(channel, cost=(1.0, 2.0, 3.0)):
    return pd.DataFrame({"journey_id": ["j1", "j2", "j3"],
                         "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
                         "channel": channel, "cost": list(cost)})


def _tx_with(**columns):
    frame = _tx()
    for name, values in columns.items():
        frame[name] = values
    return frame


#: numbers, ids and categories (name -> as CASES)
MORE_CASES = {
    # numbers
    "currency signs": ("transactions", _tx(amount=["$12.50", "€3", "4"]), "amount", DataError),
    "decimal comma undeclared": ("transactions", _tx(amount=["12,5", "3", "4"]), "amount",
                                 DataError),
    "blank required amount": ("transactions", _tx(amount=["", "2", "3"]), "amount", DataError),
    "spaces required amount": ("transactions", _tx(amount=["  ", "2", "3"]), "amount",
                               DataError),
    "NaN text nullable amount": ("deals", _deals(["NaN", "2", "3"]), "amount", DataError),
    "null text amount": ("transactions", _tx(amount=["null", "2", "3"]), "amount", DataError),
    "NULL text nullable amount": ("deals", _deals(["NULL", "2", "3"]), "amount", DataError),
    "infinity text": ("transactions", _tx(amount=["inf", "2", "3"]), "amount", DataError),
    "overflowing text": ("transactions", _tx(amount=["1e400", "2", "3"]), "amount", DataError),
    "None in nullable amount": ("deals", _deals([None, 2.0, 3.0]), "amount", [None, 2.0, 3.0]),
    "NaN in nullable amount": ("deals", _deals([float("nan"), 2.0, 3.0]), "amount",
                               [None, 2.0, 3.0]),
    "spaces nullable amount": ("deals", _deals(["  ", "2", "3"]), "amount", [None, 2.0, 3.0]),
    "boolean text": ("transactions", _tx(amount=["true", "false", "1"]), "amount", DataError),
    "a boolean among numbers": ("transactions", _tx(amount=[True, 2.0, 3.0]), "amount",
                                DataError),
    "huge Python ints": ("transactions", _tx(amount=[10**30, 2, 3]), "amount",
                         [1e30, 2.0, 3.0]),
    "uint64 amounts": ("transactions",
                       _tx_with(amount=np.array([2**64 - 1, 2, 3], dtype="uint64")), "amount",
                       [float(2**64 - 1), 2.0, 3.0]),
    "Int64 with a missing amount": ("transactions",
                                    _tx(amount=pd.array([1, None, 3], dtype="Int64")),
                                    "amount", DataError),
    "Decimal objects": ("transactions", _tx(amount=[Decimal("1.10"), Decimal("2"),
                                                    Decimal("3")]), "amount", [1.1, 2.0, 3.0]),
    "pandas string amounts": ("transactions",
                              _tx(amount=pd.array(["1.5", " 2", None], dtype="string")),
                              "amount", DataError),
    "hex text": ("transactions", _tx(amount=["0x10", "2", "3"]), "amount", DataError),
    "underscores in digits": ("transactions", _tx(amount=["1_000", "2", "3"]), "amount",
                              DataError),
    "negative in parentheses": ("transactions", _tx(amount=["(5)", "2", "3"]), "amount",
                                DataError),
    "booleans as objects": ("transactions", _tx(amount=pd.Series([True, False, True],
                                                                dtype=object)), "amount",
                            DataError),
    "nullable booleans": ("transactions", _tx_with(amount=pd.array([True, False, None],
                                                                   dtype="boolean")),
                          "amount", DataError),
    "timestamps as amounts": ("transactions", _tx_with(amount=pd.to_datetime(
        ["2024-01-01", "2024-01-02", "2024-01-03"])), "amount", DataError),
    "categorical amounts": ("transactions", _tx_with(amount=pd.Categorical([1.5, 2.0, 1.5])),
                            "amount", [1.5, 2.0, 1.5]),
    "numbers mixed with text numbers": ("transactions", _tx(amount=["1.5", 2.0, 3]), "amount",
                                        [1.5, 2.0, 3.0]),
    "tabs and newlines around numbers": ("transactions", _tx(amount=["\t2", "3\n", "4"]),
                                         "amount", [2.0, 3.0, 4.0]),
    "a non-breaking space": ("transactions", _tx(amount=["\u00a012.5", "2", "3"]), "amount",
                             DataError),
    "float32 amounts": ("transactions", _tx_with(amount=np.array([1.5, 2, 3], "float32")),
                        "amount", [1.5, 2.0, 3.0]),
    "integer amounts": ("transactions", _tx(amount=[1, 2, 3]), "amount", [1.0, 2.0, 3.0]),
    "blank optional quantity": ("transactions", _tx_with(quantity=["", "2", "3"]), "quantity",
                                DataError),
    "text costs": ("touchpoints", _touch(["a", "b", "c"], cost=[" 1.5", "2e1", "-0"]), "cost",
                   [1.5, 20.0, 0.0]),
    # ids
    "padded ids kept": ("transactions", _tx(ids=[" a", "a", "b"]), "customer_id",
                        [" a", "a", "b"]),
    "case ids kept": ("transactions", _tx(ids=["A", "a", "b"]), "customer_id", ["A", "a", "b"]),
    "leading zeros kept": ("transactions", _tx(ids=["001", "002", "010"]), "customer_id",
                           ["001", "002", "010"]),
    "digit text ids stay text": ("transactions", _tx(ids=["1", "2", "3"]), "customer_id",
                                 ["1", "2", "3"]),
    "float text ids": ("transactions", _tx(ids=["123.0", "124.0", "125.0"]), "customer_id",
                       [123, 124, 125]),
    "float text among text ids": ("transactions", _tx(ids=["123.0", "abc", "125"]),
                                  "customer_id", ["123.0", "abc", "125"]),
    "mixed-type ids": ("transactions", _tx(ids=[1, "a", 2.5]), "customer_id",
                       ["1", "a", "2.5"]),
    "missing float id": ("transactions", _tx(ids=[1.0, float("nan"), 3.0]), "customer_id",
                         DataError),
    "huge float ids": ("transactions", _tx(ids=[1e20, 2.0, 3.0]), "customer_id", DataError),
    "infinite float id": ("transactions", _tx(ids=[float("inf"), 2.0, 3.0]), "customer_id",
                          DataError),
    "float32 ids": ("transactions", _tx_with(customer_id=np.array([1, 2, 3], "float32")),
                    "customer_id", [1, 2, 3]),
    "Python int ids as objects": ("transactions", _tx(ids=pd.Series([1, 2, 3], dtype=object)),
                                  "customer_id", [1, 2, 3]),
    "Int64 ids": ("transactions", _tx(ids=pd.array([1, 2, 3], dtype="Int64")), "customer_id",
                  [1, 2, 3]),
    "categorical ids": ("transactions", _tx(ids=pd.Categorical(["a", "b", "a"])),
                        "customer_id", ["a", "b", "a"]),
    "blank id": ("transactions", _tx(ids=["", "b", "c"]), "customer_id", DataError),
    "boolean ids": ("transactions", _tx(ids=[True, False, True]), "customer_id", DataError),
    "missing string-dtype id": ("transactions",
                                _tx(ids=pd.array(["a", None, "c"], dtype="string")),
                                "customer_id", DataError),
    # categories
    "padded and cased channels kept": ("touchpoints", _touch([" email", "email", "Email"]),
                                       "channel", [" email", "email", "Email"]),
    "categorical channels": ("touchpoints", _touch(pd.Categorical(["email", "seo", "email"])),
                             "channel", ["email", "seo", "email"]),
    "integer categories kept": ("transactions", _tx_with(product_category=[1, 2, 3]),
                                "product_category", [1, 2, 3]),
    "categorical of numbers": ("transactions",
                               _tx_with(product_category=pd.Categorical([1, 2, 1])),
                               "product_category", [1, 2, 1]),
    "mixed-type categories": ("transactions", _tx_with(product_category=[1, "a", None]),
                              "product_category", ["1", "a", None]),
    "missing required channel": ("touchpoints", _touch([float("nan"), "seo", "email"]),
                                 "channel", DataError),
    "categorical with a missing value": ("transactions",
                                         _tx_with(product_category=pd.Categorical(
                                             ["a", None, "b"])), "product_category",
                                         ["a", None, "b"]),
    "experiment group in capitals": ("experiments", pd.DataFrame({
        "journey_id": ["j1", "j2", "j3"], "channel": ["email"] * 3,
        "group": ["Treatment", "holdout", "holdout"]}), "group", DataError),
    "padded stage names kept": ("deals", pd.DataFrame({
        "deal_id": ["d1", "d2", "d3"], "stage": ["won ", "lost", "open"]}), "stage",
        ["won ", "lost", "open"]),
}


def _database(frame: pd.DataFrame) -> ir.Table:
    """The frame as a database would hold it: mixed-type columns as text."""
    try:
        return ibis.memtable(pa.Table.from_pandas(frame, preserve_index=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        text = {c: frame[c].map(lambda v: v if v is None or v != v else str(v))
                for c in frame.columns if frame[c].dtype == object}
        return _database(frame.assign(**text))


def _run(table, data, column):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(execute(as_table(data, table))[column])
    except DataError as exc:
        return (DataError, exc.column)


def _same(got, want):
    if isinstance(want, type):
        return isinstance(got, tuple) and got[0] is want
    return isinstance(got, list) and len(got) == len(want) and all(
        _same_value(g, w) for g, w in zip(got, want, strict=True))


def _same_value(got, want) -> bool:
    """Equal, and of the same kind: text, integer or number (missing equals missing)."""
    if want is None or (not isinstance(want, str) and pd.isna(want)):
        return got is None or bool(pd.isna(got))
    if isinstance(want, str) or isinstance(got, str):
        return isinstance(got, str) and isinstance(want, str) and got == want
    if isinstance(want, int) and not isinstance(want, bool):
        return isinstance(got, int | np.integer) and not isinstance(got, bool) and got == want
    return got == want


@pytest.mark.parametrize("name", [*CASES, *MORE_CASES])
def test_a_frame_and_a_database_table_give_the_same_right_answer(name):
    table, frame, column, want = {**CASES, **MORE_CASES}[name]
    database = _database(frame)
    from_frame, from_database = _run(table, frame, column), _run(table, database, column)
    assert _same(from_frame, want), from_frame
    assert _same(from_database, want), from_database
    if isinstance(want, type):  # the same column is named
        assert from_frame == from_database == (DataError, column)


@pytest.mark.parametrize("name", [n for n, case in MORE_CASES.items()
                                  if not isinstance(case[3], type)])
def test_validate_gives_the_frame_the_engine_gave_and_leaves_the_callers_alone(name):
    table, frame, column, want = MORE_CASES[name]
    before = frame.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = crmstats.validate(frame, table)
    pd.testing.assert_frame_equal(frame, before)
    assert _same(list(out[column]), want), list(out[column])
    assert list(out.index) == list(frame.index)


def test_unchanged_columns_share_the_callers_memory():
    frame = _tx(amount=[1.5, 2.0, 3.0], ids=[1, 2, 3])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    out = crmstats.validate(frame, "transactions")
    for column in ("customer_id", "timestamp", "amount"):
        assert np.shares_memory(out[column].to_numpy(), frame[column].to_numpy()), column


def test_numbers_that_are_not_are_named_by_row_and_value_on_every_path():
    frame = _tx(amount=["12.50", "$12.50", "1.234,5"])
    frame.index = [101, 102, 103]
    with pytest.raises(DataError, match=r"2 value\(s\) are not numbers, e\.g\. rows 102 "
                                        r"\('\$12\.50'\), 103 \('1\.234,5'\).*currency") as info:
        as_table(frame, "transactions")
    assert info.value.rows == [102, 103]
    with pytest.raises(DataError, match=r"not numbers in 2 row\(s\).*'b', 'c'.*"
                                        r"the values, e\.g\. '\$12\.50', '1\.234,5'"):
        as_table(_database(frame), "transactions")


def test_a_type_that_cannot_hold_the_values_is_named_with_rows_on_every_path():
    frame = _tx(amount=[True, False, True])
    frame.index = [7, 8, 9]
    with pytest.raises(DataError, match=r"'amount': 3 boolean values where numbers are "
                                        r"expected, e\.g\. rows 7 \(True\)"):
        as_table(frame, "transactions")
    with pytest.raises(DataError, match=r"'amount': boolean values where numbers are "
                                        r"expected in 3 row\(s\), e\.g\. ids \['a'"):
        as_table(_database(frame), "transactions")

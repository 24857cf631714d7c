"""The same messy tables through both inputs of the gate: a DataFrame and a database table.

Each case says what the right outcome is (the canonical values, or an error on
a column), and both paths must give it. Before the text timestamps of a
DataFrame were parsed by the engine that parses files and databases, 8 of
these cases disagreed (blank optional dates, offsets, mixed zones, float ids,
written-out and compact dates, two-digit years) — some silently wrong on one
side (offsets dropped, the year 24).
"""

import warnings

import ibis
import pandas as pd
import pyarrow as pa
import pytest

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


def _run(table, data, column):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return list(execute(as_table(data, table))[column])
    except DataError as exc:
        return (DataError, exc.column)


def _same(got, want):
    if isinstance(want, type):
        return got[0] is want
    return len(got) == len(want) and all(
        (pd.isna(g) and (w is None or pd.isna(w))) or g == w for g, w in zip(got, want,
                                                                           strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_a_frame_and_a_database_table_give_the_same_right_answer(name):
    table, frame, column, want = CASES[name]
    database = ibis.memtable(pa.Table.from_pandas(frame, preserve_index=False))
    from_frame, from_database = _run(table, frame, column), _run(table, database, column)
    assert _same(from_frame, want), from_frame
    assert _same(from_database, want), from_database
    if isinstance(want, type):  # the same column is named
        assert from_frame == from_database == (DataError, column)

"""The two silent traps warn on a direct call too: exact duplicate rows, ids differing in case."""

import warnings

import ibis
import pandas as pd
import pytest

from crmstats import CRMData, DataWarning, clv

DUPLICATE = r"transactions table: 1 row\(s\) exactly repeat another row"
VARIANT = (r"transactions table, column 'customer_id': 1 value\(s\) differ from another only "
           r"in upper/lower case or surrounding spaces")


def _tx(ids, days, amounts, index=None):
    return pd.DataFrame({"customer_id": ids, "timestamp": pd.to_datetime(days),
                         "amount": amounts}, index=index)


def _duckdb(frame):
    con = ibis.duckdb.connect()
    return con.create_table("tx", frame.reset_index(drop=True))


def _trap_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if issubclass(w.category, DataWarning)
            and ("exactly repeat" in str(w.message) or "upper/lower case" in str(w.message))]


def test_duplicate_rows_warn_on_a_direct_call_naming_the_rows():
    frame = _tx(["a", "b", "b", "c"], ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"],
                [10.0, 5.0, 5.0, 7.0], index=["r1", "r2", "r3", "r4"])
    before = frame.copy()
    with pytest.warns(DataWarning, match=DUPLICATE + r".*rows \['r2', 'r3'\]"):
        clv.rfm_summary(frame, observation_end="2024-01-31")
    pd.testing.assert_frame_equal(frame, before)
    with pytest.warns(DataWarning,
                      match=DUPLICATE + r".*ids \['b', 'b'\] \(column 'customer_id'\)"):
        clv.rfm_summary(_duckdb(frame), observation_end="2024-01-31")


def test_ids_differing_only_in_case_or_spaces_warn_on_a_direct_call():
    frame = _tx(["C1", "C2", " c1", "C3"], ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-03"],
                [10.0, 5.0, 4.0, 7.0], index=[10, 11, 12, 13])
    with pytest.warns(DataWarning, match=VARIANT + r".*rows \[12, 10\]"):
        clv.rfm_summary(frame, observation_end="2024-01-31")
    with pytest.warns(DataWarning, match=VARIANT + r".*ids \[' c1', 'C1'\]"):
        clv.rfm_summary(_duckdb(frame), observation_end="2024-01-31")


def test_validate_warns_too():
    from crmstats import validate

    frame = _tx(["a", "a", "A"], ["2024-01-01", "2024-01-01", "2024-01-02"], [1.0, 1.0, 2.0])
    got = _trap_warnings(lambda: validate(frame, "transactions"))
    assert len(got) == 2 and "exactly repeat" in got[0] and "upper/lower case" in got[1]


def test_clean_data_and_integer_ids_pass_silently():
    clean = _tx(["a", "b", "b"], ["2024-01-01", "2024-01-02", "2024-01-03"], [1.0, 2.0, 3.0])
    ints = _tx([1, 2, 2], ["2024-01-01", "2024-01-02", "2024-01-03"], [1.0, 2.0, 3.0])
    for data in (clean, ints, _duckdb(clean)):
        assert _trap_warnings(lambda d=data: clv.rfm_summary(d, observation_end="2024-01-31")) \
            == []


def test_a_published_page_drops_the_example_rows():
    from crmstats.book.report import reader_text

    frame = _tx(["C1", "C1", " c1"], ["2024-01-01", "2024-01-01", "2024-01-05"], [1.0, 1.0, 2.0],
                index=["cust-C1", "x", "y"])
    got = _trap_warnings(lambda: clv.rfm_summary(frame, observation_end="2024-01-31"))
    assert len(got) == 2 and all("cust-C1" in g for g in got)
    assert not any("C1" in reader_text(g) or "c1" in reader_text(g) for g in got)


def test_a_bundle_warns_once_and_an_unchanged_frame_is_looked_at_once():
    frame = _tx(["a", "b", "b", "B "], ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-04"],
                [10.0, 5.0, 5.0, 1.0])
    crm = CRMData(transactions=frame)
    got = _trap_warnings(lambda: crm.table("transactions"))
    assert len(got) == 2, got  # one per trap: the bundle's deep checks do not repeat them
    # the same frame again: already looked at (repeated calls cost nothing)
    assert _trap_warnings(lambda: clv.rfm_summary(frame, observation_end="2024-01-31")) == []
    # a new frame with the same content is looked at again
    assert len(_trap_warnings(lambda: clv.rfm_summary(frame.copy(),
                                                      observation_end="2024-01-31"))) == 2

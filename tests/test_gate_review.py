"""Review leftovers of the gate: one query where two ran, warnings at the caller."""

import types
import warnings

import ibis
import pandas as pd
import pytest

from crmstats import DataError, DataWarning, validate
from crmstats.validation import as_table


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, DataWarning)]


def _events(**extra):
    return pd.DataFrame({"lead_id": ["a", "a", "b"], "stage": ["lead", "Won", "lead"],
                         "entered_at": pd.to_datetime(["2024-01-01", "2024-01-05",
                                                       "2024-01-02"]), **extra})


@pytest.mark.parametrize("make, table, text", [
    (lambda: pd.DataFrame({"customer_id": ["a"], "amount": [1.0],
                           "timestamp": [pd.Timestamp.now() + pd.Timedelta(days=30)]}),
     "transactions", "in the future"),  # content
    (lambda: pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.0, 2.0],
                           "timestamp": ["13/02/2024", "01/02/2024"]}),
     "transactions", "read day-first"),  # dates
    (lambda: _events(), "stage_events", "outside the funnel"),  # stages
    (lambda: _events(channel=["Email", "email ", "x"]), "stage_events", "differ from another"),
])
def test_warnings_of_the_gate_point_at_the_caller(make, table, text):
    from crmstats import clv, funnel

    frame = make()
    deeper = (lambda: clv.rfm_summary(make())) if table == "transactions" else (
        lambda: funnel.stage_conversion(make()))
    for call in (lambda: validate(frame, table), lambda: as_table(make(), table), deeper):
        got = [w for w in _caught(call) if text in str(w.message)]
        assert got and {w.filename for w in got} == {__file__}


def test_deep_check_warnings_point_at_the_caller():
    from crmstats import CRMData

    crm = CRMData(customers=pd.DataFrame({
        "customer_id": ["a", "A "], "acquired_at": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "acquisition_channel": ["x", "y"]}))
    got = [w for w in _caught(lambda: crm.table("customers")) if "upper/lower" in str(w.message)]
    assert got and {w.filename for w in got} == {__file__}


def test_a_database_refuses_day_month_dates_without_first_warning(monkeypatch):
    from crmstats.validation import timestamps

    t = ibis.memtable(pd.DataFrame({"customer_id": ["a", "b"], "amount": [1.0, 2.0],
                                    "timestamp": ["13/02/2024", "01/02/2024"]}))
    monkeypatch.setattr(timestamps, "_backend_of", lambda _t: types.SimpleNamespace(
        name="postgres"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="need timestamp_format"):
            as_table(t, "transactions")
    assert not [w for w in caught if issubclass(w.category, DataWarning)]


def test_deal_stages_are_fetched_once(monkeypatch):
    from crmstats.validation import stages

    queries = []
    real = stages.execute
    monkeypatch.setattr(stages, "execute", lambda e, *a, **k: (queries.append(e),
                                                                real(e, *a, **k))[1])
    deals = pd.DataFrame({"deal_id": ["d1", "d2"], "stage": ["Closed Won", "open"],
                          "amount": [1.0, 2.0]})
    got = [w for w in _caught(lambda: as_table(deals, "deals")) if "won" in str(w.message)]
    assert got and len(queries) == 1  # was 2: name variants, then the won/lost check


def test_a_database_url_is_checked_once_per_load(monkeypatch, tmp_path):
    import crmstats
    from crmstats import source_file, sources

    con = ibis.duckdb.connect(tmp_path / "crm.duckdb")
    con.create_table("transactions", pd.DataFrame({
        "customer_id": ["a"], "amount": [1.0], "timestamp": pd.to_datetime(["2024-01-01"])}))
    con.disconnect()
    calls = []
    real = source_file._check_url
    monkeypatch.setattr(sources, "_check_url", lambda *a: (calls.append(a), real(*a))[1])
    crm = crmstats.load_crm(f"duckdb:///{tmp_path / 'crm.duckdb'}")
    assert crm.transactions is not None and len(calls) == 1  # was 2: here and in _connect

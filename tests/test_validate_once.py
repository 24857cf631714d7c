"""Validate once per source, carry the result: counted validations, not timings."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import CRMData, DataError, DataWarning, clv
from crmstats.validation import as_table
from crmstats.validation.memory import COUNTS


def _tx(n=6):
    return pd.DataFrame({"customer_id": ["a", "b", "a", "c", "b", "a"][:n],
                         "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-09",
                                                      "2024-01-03", "2024-02-01",
                                                      "2024-02-10"][:n]),
                         "amount": [10.0, 5.0, 7.0, 3.0, 4.0, 6.0][:n]})


def _count(call, what="transactions"):
    before = COUNTS[what]
    out = call()
    return COUNTS[what] - before, out


def test_a_validated_table_knows_it_is_validated():
    t = as_table(_tx(), "transactions")
    n, same = _count(lambda: as_table(t, "transactions"))
    assert n == 0 and same is t
    n, _ = _count(lambda: clv.rfm_summary(t))
    assert n == 0
    # a derived expression, or the table given as another table, passes the gate again
    n, _ = _count(lambda: as_table(t.filter(t.amount >= 0), "transactions"))
    assert n == 1
    with pytest.raises(DataError):  # transactions are no spend table
        as_table(t, "spend")


def test_editing_the_frame_leaves_the_validated_table_as_it_was_checked():
    df = _tx()
    t = as_table(df, "transactions")
    before = clv.rfm_summary(t)
    df.loc[0, "amount"] = np.nan  # the caller's frame gets its own memory (copy-on-write)
    pd.testing.assert_frame_equal(clv.rfm_summary(t), before)
    with pytest.raises(DataError, match=r"amount.*non-finite"):
        clv.rfm_summary(df)  # the edited frame itself is checked


def test_a_bundle_validates_each_table_once_until_its_data_change():
    crm = CRMData(transactions=_tx())
    n, first = _count(lambda: [crm.table("transactions") for _ in range(5)])
    assert n == 1 and all(t is first[0] for t in first)
    crm.transactions.loc[1, "amount"] = -np.inf  # an in-place edit is noticed
    with pytest.raises(DataError, match="non-finite"):
        crm.table("transactions")
    crm.transactions = _tx(5)  # new data are checked
    n, _ = _count(lambda: (crm.table("transactions"), crm.table("transactions")))
    assert n == 1


def test_a_bundle_of_files_validates_once(tmp_path):
    path = tmp_path / "transactions.csv"
    _tx().to_csv(path, index=False)
    crm = CRMData(transactions=str(path))
    n, _ = _count(lambda: [crm.table("transactions") for _ in range(3)])
    assert n == 1
    _tx(4).to_csv(path, index=False)  # the file changed: read and checked again
    n, t = _count(lambda: crm.table("transactions"))
    assert n == 1 and int(t.count().execute()) == 4


def _trap_warnings(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [w for w in caught if issubclass(w.category, DataWarning)
            and ("exactly repeat" in str(w.message) or "upper/lower case" in str(w.message))]


def test_the_traps_warn_once_per_table_on_the_bundle_path():
    frame = pd.DataFrame({"customer_id": ["a", "a", "A ", "b"],
                          "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01",
                                                       "2024-01-02", "2024-01-03"]),
                          "amount": [1.0, 1.0, 2.0, 3.0]})
    crm = CRMData(transactions=frame)
    caught = _trap_warnings(lambda: [crm.table("transactions") for _ in range(3)])
    assert sorted("exactly repeat" in str(w.message) for w in caught) == [False, True]
    # the deep checks reuse the traps' counts
    assert crm._checked["transactions"]["duplicate_rows"] == 1
    assert crm._checked["transactions"]["case_variants_customer_id"] == 1
    # the warnings point at this file, not into crmstats
    assert {w.filename for w in caught} == {__file__}


def test_fit_value_checks_its_summary_once_per_model_columns(monkeypatch):
    import crmstats.clv.models.base as base

    calls = []
    checked = base.BaseModel._check_summary.__func__

    def counting(cls, summary, *args, **kwargs):
        calls.append(cls.__name__)
        return checked(cls, summary, *args, **kwargs)

    # the check itself (on the old code, _validate: the same body)
    monkeypatch.setattr(base.BaseModel, "_check_summary", classmethod(counting))
    units = []
    import crmstats.clv.units as units_module

    real = units_module._check_against_data
    monkeypatch.setattr(units_module, "_check_against_data",
                        lambda *a, **k: (units.append(1), real(*a, **k))[1])
    from crmstats.datasets import simulate_crm

    tx = simulate_crm(seed=3, n_contacts=2000).transactions
    clv.fit_value(tx)
    # was 17 (BG/NBD 14 times: fit, then 13 predictions; Gamma-Gamma 3) and 4 unit checks
    assert sorted(calls) == ["BetaGeoModel", "GammaGammaModel"]
    assert len(units) == 1


def test_a_source_file_is_read_once_per_version_in_a_process(tmp_path):
    import os

    import crmstats
    from crmstats.source_file import READS

    _tx().to_csv(tmp_path / "orders.csv", index=False)
    spec = tmp_path / "crmstats.yml"
    spec.write_text("name: Shop\ncurrency: EUR\ntables:\n  transactions: orders.csv\n")
    before = READS["count"]
    for _ in range(3):
        crm = crmstats.load_crm(str(tmp_path))
        assert crmstats.source_label(str(spec)) == "Shop"
        assert crmstats.sources.source_currency(str(tmp_path)) == "EUR"
    assert READS["count"] - before == 1  # was once per load_crm, plus once for the labels
    crm.source = "changed"  # every call gets its own copy of what was read
    assert crmstats.load_crm(str(spec)).source == str(spec)
    spec.write_text("name: Shop 2\ntables:\n  transactions: orders.csv\n")
    os.utime(spec, ns=(1, 1))  # another version of the file
    assert crmstats.source_label(str(spec)) == "Shop 2"
    assert READS["count"] - before == 2


def test_the_same_unchanged_frame_is_validated_once_across_calls():
    df = _tx()
    n, _ = _count(lambda: (clv.rfm_summary(df), clv.rfm_summary(df, time_unit="W"),
                           clv.fit_value(df, allow_unconverged=True)))
    assert n == 1
    renamed = df.rename(columns={"amount": "value"})
    n, _ = _count(lambda: (clv.rfm_summary(renamed, amount_col="value"),
                           clv.rfm_summary(renamed, amount_col="value")))
    assert n == 1


def test_stage_conversion_and_durations_validate_their_events_once(small_crm):
    import ibis

    from crmstats import funnel

    raw = ibis.duckdb.connect().create_table("events", small_crm.stage_events)  # a database
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        n, _ = _count(lambda: funnel.stage_conversion(raw), "stage_events")
        assert n == 1  # was 2: own_stages' table, then lead_stage_times' own
        # a canonical table needing no cast is itself the validated table: not checked again
        n, _ = _count(lambda: funnel.stage_durations(raw), "stage_events")
        assert n == 0
        renamed = raw.rename(step="stage")
        n, _ = _count(lambda: funnel.stage_durations(renamed, stage_col="step"), "stage_events")
        assert n == 1

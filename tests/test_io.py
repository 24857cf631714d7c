import ibis
import pandas as pd
import pytest

import crmstats
from crmstats import CRMData, DataError, load_crm
from tests.conftest import SMALL_DEMO


def test_load_crm_demo_is_deterministic_and_sized():
    a = load_crm(SMALL_DEMO)
    b = load_crm(SMALL_DEMO)
    assert a.source == b.source == SMALL_DEMO
    assert set(a.tables()) == set(b.tables())
    for name in a.tables():
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.truth is not None


def test_load_crm_cdnow_and_passthrough():
    crm = load_crm("cdnow:sample")
    assert list(crm.tables()) == ["transactions"]
    assert len(crm.transactions) == 6_919
    assert load_crm(crm) is crm


def test_export_and_reload_directory(small_crm, tmp_path):
    paths = crmstats.export_crm(small_crm, tmp_path / "crm")
    assert {p.stem for p in paths} == set(small_crm.tables())
    back = load_crm(tmp_path / "crm")
    assert set(back.tables()) == set(small_crm.tables())
    tx = crmstats.execute(crmstats.as_table(back.transactions, "transactions"))
    orig = small_crm.transactions
    assert len(tx) == len(orig)
    assert tx["amount"].sum() == pytest.approx(orig["amount"].sum())
    assert set(tx["customer_id"]) == set(orig["customer_id"])


@pytest.mark.parametrize("source", ["nonsense", "/no/such/dir", "demo:seed"])
def test_load_crm_rejects_unknown_sources(source):
    with pytest.raises((DataError, ValueError), match="data source"):
        load_crm(source)


def test_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="holds no"):
        load_crm(tmp_path)


def test_execute_runs_bound_tables_on_their_backend():
    con = ibis.duckdb.connect()
    t = con.create_table("x", pd.DataFrame({"a": [1, 2, 3]}))
    assert crmstats.execute(t.a.sum()) == 6
    assert crmstats.execute(ibis.memtable({"a": [1, 2]}).a.sum()) == 3


def test_crmdata_require_and_repr(small_crm):
    small_crm.require("transactions", "spend")
    with pytest.raises(DataError, match="has no subscriptions"):
        CRMData(transactions=small_crm.transactions).require("subscriptions")
    text = repr(small_crm)
    assert "transactions=" in text and "rows" in text
    assert "@" not in text


def test_a_csv_read_after_another_changed_keeps_its_own_data(tmp_path):
    """Cached CSV tables never share a name: a changed file once let a new file take it."""
    import time

    from crmstats.backend import execute, read_table

    paths = {n: tmp_path / f"{n}.csv" for n in "abc"}
    paths["a"].write_text("x\n1\n")
    paths["b"].write_text("x\n2\n")
    read_table(str(paths["a"])), read_table(str(paths["b"]))
    time.sleep(0.01)
    paths["a"].write_text("x\n11\n")  # a's stale entry is replaced
    read_table(str(paths["a"]))
    paths["c"].write_text("x\n3\n")
    read_table(str(paths["c"]))
    assert execute(read_table(str(paths["a"])))["x"].tolist() == [11]
    assert execute(read_table(str(paths["b"])))["x"].tolist() == [2]
    assert execute(read_table(str(paths["c"])))["x"].tolist() == [3]


def test_a_source_file_loads_each_csv_once():
    """Validation, the id-type check and the data-quality counts share one CSV load."""
    import importlib
    import warnings
    from pathlib import Path

    backend = importlib.import_module("crmstats.backend")
    acme = Path(__file__).parents[1] / "data" / "acme"
    for key in [k for k in backend._CSV_CACHE if k[0].startswith(str(acme.resolve()))]:
        del backend._CSV_CACHE[key]  # read here from scratch, whatever ran before
    before = set(backend._CSV_CACHE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crm = load_crm(str(acme))
        for name in crm.tables():
            crm.table(name)
        crmstats.data_quality(crm)
    added = [k for k in backend._CSV_CACHE if k not in before]
    files = {k[0] for k in added}
    assert len(files) == len(list(acme.glob("*.csv"))) and len(added) == len(files)

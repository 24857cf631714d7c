"""Data sources and the gate: one CRM behind five sources gives the same KPIs.

(a) the demo as DataFrames, (b) exported to a folder, (c) a messy export behind
a ``crmstats.yml`` (renamed columns, day-first dates, comma decimals, own stage
and channel names with case/space variants, duplicate and blank-id rows),
(d) a DuckDB file; PostgreSQL (e) is in ``tests/backends/test_postgres.py``.
"""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
import yaml

import crmstats
from crmstats import DataError, DataWarning, load_crm
from crmstats.datasets.messy import write_messy_export
from crmstats.validation import SourceTable
from tests.conftest import SMALL_DEMO
from tests.crm_kpis import assert_same_kpis, crm_kpis


@pytest.fixture(scope="module")
def reference(small_crm):
    return crm_kpis(small_crm)


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("acme")
    write_messy_export(folder, SMALL_DEMO)
    return folder


def _duckdb_file(crm, path) -> str:
    import duckdb

    con = duckdb.connect(str(path))
    for name, frame in crm.tables().items():
        con.register("frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        con.unregister("frame")
    con.close()
    return f"duckdb:///{path}"


def test_folder_source_gives_the_same_kpis(small_crm, reference, tmp_path):
    crmstats.export_crm(small_crm, tmp_path / "crm")
    crm = load_crm(tmp_path / "crm")
    assert crm.name == "crm"
    assert_same_kpis(crm_kpis(crm), reference)


@pytest.mark.slow  # 10-18 s: every KPI function on a whole messy export read back
def test_source_file_with_a_messy_export_gives_the_same_kpis(messy, reference):
    crm = load_crm(messy / "crmstats.yml")
    assert crm.name == "ACME CRM export"
    assert isinstance(crm.transactions, SourceTable)
    assert "Phone" in crm.personal["contacts"] or "phone" in crm.personal["contacts"]
    # the export really is messy: its own names, formats, and extra rows
    orders = pd.read_csv(messy / "orders.csv", sep=";", dtype=str, keep_default_na=False)
    assert "Customer ID" in orders.columns and orders["Revenue"].str.contains(",").mean() > 0.9
    assert orders["Order Date"].str.match(r"\d\d/\d\d/\d{4} ").all()
    assert (orders["Customer ID"] == "").sum() == 3
    assert orders.duplicated().sum() == 6
    assert_same_kpis(crm_kpis(crm), reference)
    # a folder holding crmstats.yml is the same source
    assert load_crm(messy).name == "ACME CRM export"


def test_duckdb_file_source_gives_the_same_kpis(small_crm, reference, tmp_path):
    url = _duckdb_file(small_crm, tmp_path / "crm.duckdb")
    crm = load_crm(url)
    assert set(crm.tables()) == set(small_crm.tables())
    assert crm.name == "crm (duckdb)"
    assert_same_kpis(crm_kpis(crm), reference)


def test_source_label_is_cheap_and_names_every_kind(messy, tmp_path):
    assert crmstats.source_label("demo") == "demo CRM"
    assert crmstats.source_label("demo:seed=3") == "demo CRM"
    assert crmstats.source_label("cdnow:sample") == "CDNOW"
    assert crmstats.source_label(messy) == "ACME CRM export"
    assert crmstats.source_label(messy / "crmstats.yml") == "ACME CRM export"
    assert crmstats.source_label(tmp_path / "mycompany") == "mycompany"
    assert crmstats.source_label("postgresql://crm@db/sales") == "sales (postgresql)"
    assert load_crm("cdnow:sample").name == "CDNOW"


def test_crm_table_returns_validated_canonical_tables(messy):
    crm = load_crm(messy)
    t = crm.table("stage_events")
    assert {"lead_id", "stage", "entered_at", "channel"} <= set(t.columns)
    stages = set(crmstats.execute(t.stage.name("s").as_table().distinct())["s"])
    assert stages <= set(crmstats.schema.SALES_STAGES)
    with pytest.raises(DataError, match="has no experiments"):
        crm.table("experiments")


def test_source_file_refuses_credentials_and_unknown_keys(tmp_path):
    spec = tmp_path / "crmstats.yml"
    spec.write_text("name: x\nlocation: postgresql://crm:s3cret@db/crm\n"
                    "tables: {transactions: {table: orders}}\n")
    with pytest.raises(DataError, match="password") as err:
        load_crm(spec)
    assert "s3cret" not in str(err.value)
    spec.write_text("name: x\ntables: {transactions: {file: a.csv, colums: {}}}\n")
    with pytest.raises(DataError, match="unknown key.*'colums'"):
        load_crm(spec)
    spec.write_text("name: x\ntables: {orders: {file: a.csv}}\n")
    with pytest.raises(DataError, match="unknown table 'orders'"):
        load_crm(spec)
    spec.write_text("name: x\ntables: {transactions: {file: a.csv}}\n")
    with pytest.raises(DataError, match="'a.csv' is not in"):
        load_crm(spec)


def test_folder_errors_list_what_the_folder_holds(tmp_path):
    (tmp_path / "orders.csv").write_text("a,b\n1,2\n")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="it holds notes.txt, orders.csv") as err:
        load_crm(tmp_path)
    assert "crmstats source init" in str(err.value)
    with pytest.raises(DataError, match="no such folder or file"):
        load_crm(tmp_path / "missing")
    with pytest.raises(DataError, match="no such folder or file"):
        load_crm("data/nowhere")


def test_source_init_writes_a_file_that_checks(messy, tmp_path):
    from crmstats.sources import init_source_file

    folder = tmp_path / "export"
    folder.mkdir()
    for p in messy.iterdir():
        if p.name != "crmstats.yml":
            (folder / p.name).write_bytes(p.read_bytes())
    text = init_source_file(folder, name="Mine")
    spec = yaml.safe_load(text)
    assert spec["name"] == "Mine"
    tx = spec["tables"]["transactions"]
    assert tx["file"] == "orders.csv"
    assert tx["columns"]["customer_id"] == "Customer ID"
    assert tx["dayfirst"] is True and tx["decimal"] == ","
    assert spec["tables"]["stage_events"]["values"]["stage"]["MQL"] == "lead"
    assert "Email" in spec["tables"]["contacts"]["personal"]
    (folder / "crmstats.yml").write_text(text)
    crm = load_crm(folder)
    assert crm.name == "Mine"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        crm.table("stage_events")


def test_cli_source_init_and_check(messy, tmp_path):
    from typer.testing import CliRunner

    from crmstats.cli import app

    runner = CliRunner()
    ok = runner.invoke(app, ["source", "check", str(messy / "crmstats.yml")])
    assert ok.exit_code == 0, ok.output
    assert "every table validates" in ok.output
    assert "exact duplicate rows and blank ids" in ok.output
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "orders.csv").write_text("Customer;Order Date;Revenue\nC1;2024-01-02;3,5\n"
                                       "C2;2024-01-03;4\n")
    made = runner.invoke(app, ["source", "init", str(folder)])
    assert made.exit_code == 0, made.output
    assert (folder / "crmstats.yml").exists()
    again = runner.invoke(app, ["source", "init", str(folder)])
    assert again.exit_code == 1 and "--force" in again.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "orders.csv").write_text("Customer;Order Date;Revenue\n;2024-01-02;3\n")
    (bad / "crmstats.yml").write_text(
        "name: bad\ntables:\n  transactions:\n    file: orders.csv\n    columns: "
        "{customer_id: Customer, timestamp: Order Date, amount: Revenue}\n")
    failed = runner.invoke(app, ["source", "check", str(bad)])
    assert failed.exit_code == 1
    assert "unusable" in failed.output


def test_data_quality_counts_what_was_dropped_and_flagged(messy):
    report = crmstats.data_quality(load_crm(messy))
    tx = report.loc["transactions"]
    assert tx["rows_read"] - tx["rows_used"] == 9
    assert tx["dropped_because"] == "exact duplicate rows and blank ids"
    assert report.loc["stage_events", "stages"] == 7
    assert report.loc["stage_events", "channels"] == 8
    assert "renamed" in report.loc["transactions", "mapping"]
    mapping = crmstats.source_mapping(load_crm(messy))
    assert ((mapping["exported"] == "MQL") & (mapping["canonical"] == "lead")).any()


@pytest.mark.slow
def test_the_committed_acme_example_is_reproducible_and_exact(tmp_path):
    """data/acme is what `crmstats data messy` writes, and maps back to its demo's KPIs."""
    from tests.conftest import ROOT

    acme = ROOT / "data" / "acme"
    source = "demo:seed=5,n_contacts=2500,holdout_share=0.1"
    assert source in (acme / "crmstats.yml").read_text()
    write_messy_export(tmp_path, source)
    for path in acme.iterdir():
        if path.suffix in (".csv", ".yml") and path.name != "run.yml":
            assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
        elif path.suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(path),
                                          pd.read_parquet(tmp_path / path.name))
    size = sum(p.stat().st_size for p in acme.iterdir())
    assert size < 2_000_000
    run = yaml.safe_load((acme / "run.yml").read_text())
    assert run["data_source"] == "data/acme"
    assert_same_kpis(crm_kpis(load_crm(acme)), crm_kpis(load_crm(source)))


@pytest.mark.parametrize("example, table", [("giftshop", "transactions"), ("deals", "deals")])
def test_source_init_recognises_the_real_shapes(example, table, tmp_path):
    """init on the bare example export writes a file giving the committed file's table."""
    from pathlib import Path

    from crmstats.backend import execute
    from crmstats.sources import init_source_file

    committed = Path(__file__).parents[1] / "data" / example
    folder = tmp_path / example
    folder.mkdir()
    for p in committed.glob("*.csv"):
        (folder / p.name).write_bytes(p.read_bytes())
    text = init_source_file(folder)
    spec = yaml.safe_load(text)
    assert list(spec["tables"]) == [table]
    (folder / "crmstats.yml").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing left unmapped or undeclared
        got = execute(load_crm(folder).table(table))
        want = execute(load_crm(committed).table(table))
    key = ["order_id", "product_category"] if table == "transactions" else ["deal_id"]
    cols = sorted(want.columns)
    pd.testing.assert_frame_equal(got[cols].sort_values(key).reset_index(drop=True),
                                  want[cols].sort_values(key).reset_index(drop=True),
                                  check_dtype=False)
    if table == "deals":  # the stage names in funnel order: open ones first
        assert list(spec["tables"]["deals"]["values"]["stage"].values()) == [
            "Prospecting", "Engaging", "lost", "won"]
    else:
        assert "computed as Quantity x UnitPrice" in text and "drop_blank_ids" in text


def test_a_deals_export_gives_the_same_pipeline_from_every_source_kind(tmp_path):
    """frames, a folder, the crmstats.yml of the export and a DuckDB file: one pipeline."""
    from pathlib import Path

    from crmstats import funnel
    from crmstats.backend import execute

    described = load_crm(Path(__file__).parents[1] / "data" / "deals")
    frames = crmstats.CRMData(deals=execute(described.table("deals")))
    crmstats.export_crm(frames, tmp_path / "folder")
    sources = {"crmstats.yml": described, "frames": frames,
               "folder": load_crm(tmp_path / "folder"),
               "duckdb": load_crm(_duckdb_file(frames, tmp_path / "crm.duckdb"))}
    stages = funnel.deal_stages(described)
    results = {k: funnel.pipeline(crm, stages=stages) for k, crm in sources.items()}
    want = results["crmstats.yml"]
    assert want.summary["open_deals"] == 283 and want.summary["open_undated"] == 115
    for kind, got in results.items():
        pd.testing.assert_series_equal(got.summary, want.summary, obj=kind)
        pd.testing.assert_frame_equal(got.open, want.open, obj=kind)
        for col in ("owner", "product", "account"):
            pd.testing.assert_frame_equal(got.by[col], want.by[col], check_dtype=False,
                                          obj=f"{kind} by {col}")


def test_source_check_names_example_rows_of_an_unusable_table(tmp_path):
    from typer.testing import CliRunner

    from crmstats.cli import app

    (tmp_path / "orders.csv").write_text("InvoiceNo,Customer,Date,Amount\n"
                                         "536365,c1,13/01/2024,5\n536366,c2,31/31/2023,6\n")
    (tmp_path / "crmstats.yml").write_text(
        "name: shop\ntables:\n  transactions:\n    file: orders.csv\n    dayfirst: true\n"
        "    columns: {customer_id: Customer, timestamp: Date, amount: Amount, "
        "order_id: InvoiceNo}\n")
    out = CliRunner().invoke(app, ["source", "check", str(tmp_path)])
    assert out.exit_code == 1
    assert "e.g. ids [536366] (column 'InvoiceNo')" in out.output
    assert "'31/31/2023'" in out.output and "read day-first as declared" in out.output


def test_the_invoice_log_reads_as_plain_pandas_reads_it():
    """data/giftshop through its crmstats.yml: line values, refunds, guests dropped, dates."""
    from pathlib import Path

    from crmstats import clv
    from crmstats.backend import execute

    base = Path(__file__).parents[1] / "data" / "giftshop"
    raw = pd.read_csv(base / "invoices.csv", dtype={"CustomerID": str, "InvoiceNo": str})
    raw = raw[raw["CustomerID"].notna()]
    raw["amount"] = raw["Quantity"] * raw["UnitPrice"]
    raw["when"] = pd.to_datetime(raw["InvoiceDate"], format="%d/%m/%Y %H:%M")
    crm = load_crm(base)
    assert crm.name == "Gift shop invoices" and crm.tables().keys() == {"transactions"}
    got = execute(crm.table("transactions"))
    assert len(got) == len(raw) and got["customer_id"].nunique() == raw["CustomerID"].nunique()
    assert got["amount"].sum() == pytest.approx(raw["amount"].sum(), rel=1e-12)
    refunds = raw["InvoiceNo"].str.startswith("C")
    assert (got["amount"] < 0).sum() == refunds.sum() > 0
    assert got["timestamp"].min() == raw["when"].min()
    assert got["timestamp"].max() == raw["when"].max()
    # RFM as lifetimes counts it: purchase days per customer, refunds never a purchase
    rfm = clv.rfm_summary(crm.transactions)
    buys = raw[~refunds].assign(day=lambda f: f["when"].dt.normalize())
    days = buys.groupby("CustomerID")["day"].nunique()
    assert rfm["frequency"].sum() == (days - 1).sum()

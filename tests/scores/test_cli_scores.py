"""`crmstats scores export` and `book build --export-scores`."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from crmstats.cli import app
from tests.conftest import SMALL_DEMO

runner = CliRunner()


def test_scores_export_to_parquet_and_duckdb(tmp_path):
    out = tmp_path / "scores.parquet"
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to", str(out), "--bootstrap",
                              "0", "--run-id", "nightly-1"])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert frame["id"].is_unique and (frame["run_id"] == "nightly-1").all()
    assert frame["as_of"].nunique() == 1
    assert f"wrote {len(frame):,} rows" in res.output
    db = tmp_path / "crm.duckdb"
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to", f"duckdb://{db}",
                              "--table", "scores", "--bootstrap", "0", "--as-of", "2025-06-30"])
    assert res.exit_code == 0, res.output
    with duckdb.connect(str(db)) as con:
        n, as_of = con.execute("SELECT count(*), max(as_of) FROM scores").fetchone()
    assert n > 0 and pd.Timestamp(as_of) == pd.Timestamp("2025-06-30")


def test_scores_export_refuses_personal_columns_and_bad_targets(tmp_path):
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to",
                              str(tmp_path / "s.parquet"), "--column", "email"])
    assert res.exit_code == 1
    assert "email" in res.output and "personal" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "s.parquet").exists()
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to", str(tmp_path / "s.xlsx"),
                              "--bootstrap", "0"])
    assert res.exit_code == 1 and "format" in res.output
    # a contacts column that is not personal is carried
    res = runner.invoke(app, ["scores", "export", SMALL_DEMO, "--to",
                              str(tmp_path / "s.csv"), "--column", "industry", "--bootstrap",
                              "0"])
    assert res.exit_code == 0, res.output
    assert "industry" in pd.read_csv(tmp_path / "s.csv").columns


@pytest.mark.slow
def test_book_build_exports_scores_after_a_successful_build(book_to_modify, tmp_path,
                                                           monkeypatch):
    book, _, _ = book_to_modify
    monkeypatch.chdir(book.parent)
    out = tmp_path / "scores.parquet"
    res = runner.invoke(app, ["book", "build", "--book-dir", str(book), "--only",
                              "data-overview", "--export-scores", str(out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    runs = sorted(p.name for p in (book / "runs").iterdir() if p.is_dir())
    assert (frame["run_id"] == runs[-1]).all()
    assert "scores exported" in res.output


def test_personal_columns_go_out_only_when_the_source_file_marks_them_exportable(tmp_path):
    import yaml

    import crmstats

    crmstats.export_crm(crmstats.load_crm(SMALL_DEMO), tmp_path)
    contacts = pd.read_parquet(tmp_path / "contacts.parquet").rename(columns={"name": "Full Name"})
    contacts.to_parquet(tmp_path / "contacts.parquet")
    tables = {p.stem: {"file": p.name} for p in tmp_path.glob("*.parquet")}
    tables["contacts"]["personal"] = ["Full Name"]

    def run(exportable, columns):
        tables["contacts"]["exportable"] = exportable
        (tmp_path / "crmstats.yml").write_text(yaml.safe_dump(
            {"name": "ACME", "tables": tables}, sort_keys=False))
        args = ["scores", "export", str(tmp_path / "crmstats.yml"), "--to",
                str(tmp_path / "out.parquet"), "--bootstrap", "0"]
        for col in columns:
            args += ["--column", col]
        return runner.invoke(app, args)

    res = run([], ["email"])
    assert res.exit_code == 1 and "email" in res.output and "exportable" in res.output
    res = run(["email"], ["email", "Full Name"])
    assert res.exit_code == 1 and "Full Name" in res.output
    assert not (tmp_path / "out.parquet").exists()
    res = run(["email", "Full Name"], ["email", "Full Name"])
    assert res.exit_code == 0, res.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert {"email", "Full Name"} <= set(out.columns)
    assert out.loc[out["kind"] == "customer", "email"].notna().all()


def test_scores_export_replaces_only_with_replace_and_never_the_sources_file(tmp_path):
    import crmstats

    folder = tmp_path / "crm"
    crmstats.export_crm(crmstats.load_crm(SMALL_DEMO), folder)
    out = tmp_path / "scores.csv"
    base = ["scores", "export", str(folder), "--bootstrap", "0"]
    res = runner.invoke(app, [*base, "--to", str(out), "--run-id", "one"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*base, "--to", str(out), "--run-id", "two"])
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if "error" in line]
    assert len(errors) == 1 and "--replace" in errors[0] and "Traceback" not in res.output
    assert set(pd.read_csv(out)["run_id"]) == {"one"}
    res = runner.invoke(app, [*base, "--to", str(out), "--run-id", "two", "--replace"])
    assert res.exit_code == 0, res.output
    assert set(pd.read_csv(out)["run_id"]) == {"two"}
    source_file = folder / "transactions.parquet"
    before = source_file.read_bytes()
    res = runner.invoke(app, [*base, "--to", str(source_file), "--replace"])
    assert res.exit_code == 1 and "source reads" in res.output
    assert source_file.read_bytes() == before


def test_scores_export_flags_raw_pseudonymize_and_the_personal_id_warning(tmp_path,
                                                                          monkeypatch):
    from crmstats.scores import customer360

    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "k" * 32)
    frame = pd.DataFrame({"acquisition_channel": ["=1+1", "email", "-2+3"],
                          "clv": [1.0, 2.0, 3.0], "as_of": pd.Timestamp("2025-06-30")},
                         index=pd.Index(["ann@example.com", "C2", "C3"], name="id"))
    monkeypatch.setattr(customer360, "customer_360", lambda *a, **k: frame)
    base = ["scores", "export", "demo:n_contacts=300,seed=2", "--bootstrap", "0"]
    res = runner.invoke(app, [*base, "--to", str(tmp_path / "a.csv")])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and "--pseudonymize" in warned[0] and "1 of 3" in warned[0]
    assert pd.read_csv(tmp_path / "a.csv")["acquisition_channel"].tolist() == [
        "'=1+1", "email", "'-2+3"]
    res = runner.invoke(app, [*base, "--to", str(tmp_path / "b.csv"), "--raw"])
    assert pd.read_csv(tmp_path / "b.csv")["acquisition_channel"].tolist() == [
        "=1+1", "email", "-2+3"]
    res = runner.invoke(app, [*base, "--to", str(tmp_path / "c.csv"), "--pseudonymize"])
    assert res.exit_code == 0 and "warning" not in res.output, res.output
    out = pd.read_csv(tmp_path / "c.csv")
    assert "id" not in out.columns and out["id_pseudonym"].str.startswith("C-").all()
    assert "example.com" not in (tmp_path / "c.csv").read_text()


def test_book_export_scores_replaces_a_file_only_with_replace_scores(tmp_path, monkeypatch):
    import types

    import typer

    from crmstats import cli
    from crmstats.scores import customer360

    frame = pd.DataFrame({"clv": [1.0, 2.0], "as_of": pd.Timestamp("2025-06-30")},
                         index=pd.Index(["C1", "C2"], name="id"))
    monkeypatch.setattr(customer360, "customer_360", lambda *a, **k: frame)
    book = tmp_path / "book"
    book.mkdir()
    (book / "studies.yml").write_text("defaults: {data_source: 'demo:n_contacts=300,seed=2'}\n")
    out = tmp_path / "scores.parquet"
    out.write_bytes(b"an older file")
    result = types.SimpleNamespace(run_dir=tmp_path / "runs" / "2025-07-01T06-00-00")
    with pytest.raises(typer.Exit):
        cli._export_book_scores(book, {}, result, str(out), "crmstats_scores")
    assert out.read_bytes() == b"an older file"
    cli._export_book_scores(book, {}, result, str(out), "crmstats_scores", True)
    assert pd.read_parquet(out)["run_id"].tolist() == ["2025-07-01T06-00-00"] * 2

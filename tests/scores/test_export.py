"""scores export: Parquet, CSV and DuckDB round trips; atomic table swap; personal columns."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from crmstats import CRMStatsError, DataError
from crmstats.scores import export_scores, new_run_id


def _scores(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "kind": pd.Categorical(rng.choice(["customer", "lead"], n)),
        "clv": rng.gamma(2.0, 30.0, n),
        "value_tier": pd.Categorical(rng.choice(["platinum", "gold", "iron"], n),
                                     categories=["platinum", "gold", "iron"], ordered=True),
        "open_tickets": pd.array(rng.integers(0, 3, n), dtype="Int64"),
        "open_lead": rng.random(n) < 0.3,
        "first_purchase": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 600, n),
                                                                       unit="D"),
        "as_of": pd.Timestamp("2025-12-31"),
    }, index=pd.Index([f"C{i:07d}" for i in range(n)], name="id"))
    frame.loc[frame.index[::7], "clv"] = np.nan
    return frame


def _expected(frame: pd.DataFrame, run_id: str) -> pd.DataFrame:
    out = frame.reset_index()
    out.insert(0, "run_id", run_id)
    return out


def _same(got: pd.DataFrame, frame: pd.DataFrame, run_id: str) -> None:
    exp = _expected(frame, run_id)
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got.columns) == list(exp.columns)
    for col in exp.columns:
        a, b = got[col], exp[col]
        if pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-12)
        elif pd.api.types.is_datetime64_any_dtype(b):
            assert (pd.to_datetime(a).to_numpy() == pd.to_datetime(b).to_numpy()).all(), col
        else:
            assert [None if pd.isna(x) else str(x) for x in a] == \
                   [None if pd.isna(x) else str(x) for x in b], col


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_file_round_trip(tmp_path, suffix):
    frame = _scores(500)
    target = tmp_path / "out" / f"scores.{suffix}"
    target.parent.mkdir()
    result = export_scores(frame, target, run_id="r1")
    assert result.rows == 500 and result.kind == suffix and result.run_id == "r1"
    got = pd.read_parquet(target) if suffix == "parquet" else pd.read_csv(
        target, parse_dates=["first_purchase", "as_of"])
    _same(got, frame, "r1")
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp left


def test_duckdb_round_trip_and_replacement(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    db = tmp_path / "crm.duckdb"
    first, second = _scores(300, seed=1), _scores(200, seed=2)
    export_scores(first, f"duckdb://{db}", table="scores", run_id="r1")
    export_scores(second, db, table="scores", run_id="r2")
    with duckdb.connect(str(db)) as con:
        got = con.execute("SELECT * FROM scores").df()
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    _same(got, second, "r2")
    assert tables == {"scores"}  # the staging table was renamed, nothing left behind


def test_duckdb_reader_sees_old_or_new_table_never_partial(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    db = str(tmp_path / "crm.duckdb")
    old, new = _scores(50_000, seed=1), _scores(400_000, seed=2)
    export_scores(old, db, table="scores", run_id="old")
    reader = duckdb.connect(db)  # the same database, another connection (as a reading app)
    seen, errors, done = [], [], threading.Event()

    def read():
        cur = reader.cursor()
        while not done.is_set():
            try:
                seen.append(cur.execute(
                    "SELECT count(*), min(run_id), max(run_id) FROM scores").fetchone())
            except duckdb.Error as exc:  # pragma: no cover - a failure of the guarantee
                errors.append(str(exc))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        export_scores(new, db, table="scores", run_id="new")
    finally:
        done.set()
        thread.join()
    seen.append(reader.cursor().execute(
        "SELECT count(*), min(run_id), max(run_id) FROM scores").fetchone())
    reader.close()
    assert not errors
    assert len(seen) > 2, "the reader never ran during the write"
    assert set(seen) <= {(50_000, "old", "old"), (400_000, "new", "new")}
    assert seen[0] == (50_000, "old", "old") and seen[-1] == (400_000, "new", "new")


@pytest.mark.parametrize("step", ["CREATE", "DROP", "ALTER"])
def test_a_failed_database_write_keeps_the_old_table(tmp_path, monkeypatch, step):
    duckdb = pytest.importorskip("duckdb")
    from crmstats.scores import export

    db = str(tmp_path / "crm.duckdb")
    export_scores(_scores(100), db, table="scores", run_id="good")
    real = export._run

    def failing(con, sql):
        real(con, sql)  # the step runs, then the write fails (as a crash or a full disk would)
        if sql.startswith(step):
            raise duckdb.IOException(f"injected failure after {step}")

    monkeypatch.setattr(export, "_run", failing)
    with pytest.raises(CRMStatsError, match="old table is unchanged"):
        export_scores(_scores(300), db, table="scores", run_id="bad")
    with duckdb.connect(db) as con:
        assert con.execute("SELECT count(*), min(run_id) FROM scores").fetchone() == (100,
                                                                                      "good")
        assert {r[0] for r in con.execute("SHOW TABLES").fetchall()} == {"scores"}


def test_personal_columns_are_refused_unless_exportable(tmp_path):
    frame = _scores(10).assign(email=[f"p{i}@example.com" for i in range(10)])
    with pytest.raises(DataError, match="email"):
        export_scores(frame, tmp_path / "s.parquet")
    with pytest.raises(DataError, match="Full Name"):
        export_scores(_scores(10).assign(**{"Full Name": "x"}), tmp_path / "s.parquet",
                      personal=["Full Name"])
    assert not (tmp_path / "s.parquet").exists()
    export_scores(frame, tmp_path / "s.parquet", exportable=["email"])
    assert "email" in pd.read_parquet(tmp_path / "s.parquet").columns


def test_bad_destinations_are_named(tmp_path):
    frame = _scores(5)
    with pytest.raises(CRMStatsError, match="format"):
        export_scores(frame, tmp_path / "scores.xlsx")
    with pytest.raises(CRMStatsError, match="scheme"):
        export_scores(frame, "mysql://db/crm")
    with pytest.raises(CRMStatsError, match="identifier"):
        export_scores(frame, tmp_path / "crm.duckdb", table="scores; DROP TABLE x")
    with pytest.raises(CRMStatsError, match="password"):
        export_scores(frame, "postgresql://crm:secret@localhost/db")
    with pytest.raises(DataError, match="DataFrame"):
        export_scores([1, 2], tmp_path / "s.parquet")


def test_run_ids_sort_by_time_and_differ():
    a, b = new_run_id(), new_run_id()
    assert a != b and a[:8].isdigit() and a.split("-")[0].endswith("Z")

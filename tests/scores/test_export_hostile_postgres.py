"""scores export into PostgreSQL against hostile targets (see test_export_hostile.py).

A table is replaced only when it is a crmstats scores table (its comment) or
with replace=True; never when a view or a foreign key depends on it, never a
view, never a table the source reads; a locked table or a failure at any step
is one line with the old table intact.
"""

from __future__ import annotations

import pytest

import crmstats
from crmstats import CRMStatsError
from crmstats.scores import export, export_scores
from tests.scores.test_export import _scores

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg_url(postgres):
    info = postgres.con.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


def _sql(url, sql, params=None):
    with psycopg.connect(url, autocommit=True) as con:
        cur = con.execute(sql, params)
        return cur.fetchall() if cur.description else None


def _one_line(exc: BaseException) -> str:
    assert "\n" not in str(exc) and "Traceback" not in str(exc), str(exc)
    return str(exc)


@pytest.fixture
def fresh(pg_url):
    """A clean schema per test (dropped with everything in it afterwards)."""
    name = "hostile"
    _sql(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")
    _sql(pg_url, f"CREATE SCHEMA {name}")
    yield name
    _sql(pg_url, f"DROP SCHEMA IF EXISTS {name} CASCADE")


def test_a_users_table_is_replaced_only_with_replace(pg_url, fresh):
    _sql(pg_url, f"CREATE TABLE {fresh}.y AS SELECT 42 AS answer")
    with pytest.raises(CRMStatsError, match="not a crmstats scores table; give --replace") as e:
        export_scores(_scores(5), pg_url, table=f"{fresh}.y")
    _one_line(e.value)
    assert _sql(pg_url, f"SELECT * FROM {fresh}.y") == [(42,)]
    export_scores(_scores(5), pg_url, table=f"{fresh}.y", replace=True, run_id="r")
    assert _sql(pg_url, f"SELECT count(*), min(run_id) FROM {fresh}.y") == [(5, "r")]


def test_a_scores_table_is_recognised_by_its_comment_or_its_columns(pg_url, fresh):
    table = f"{fresh}.scores"
    export_scores(_scores(5), pg_url, table=table, run_id="r1")
    assert _sql(pg_url, "SELECT obj_description(%s::regclass, 'pg_class')", [table]) == [
        (export.MARKER,)]
    export_scores(_scores(6), pg_url, table=table, run_id="r2")
    assert _sql(pg_url, f"SELECT count(*), min(run_id) FROM {table}") == [(6, "r2")]
    _sql(pg_url, f"CREATE TABLE {fresh}.legacy AS SELECT 'r0' AS run_id, 'C1' AS id, "
                 "DATE '2025-01-01' AS as_of")
    export_scores(_scores(7), pg_url, table=f"{fresh}.legacy", run_id="r3")
    assert _sql(pg_url, f"SELECT count(*) FROM {fresh}.legacy") == [(7,)]


@pytest.mark.parametrize("replace", [False, True])
def test_a_table_a_view_depends_on_is_never_replaced(pg_url, fresh, replace):
    table = f"{fresh}.scores"
    export_scores(_scores(5), pg_url, table=table, run_id="old")
    _sql(pg_url, f"CREATE VIEW {fresh}.top_customers AS SELECT id, clv FROM {table}")
    with pytest.raises(CRMStatsError, match="view.*'hostile.top_customers' depend on it") as e:
        export_scores(_scores(9), pg_url, table=table, run_id="new", replace=replace)
    assert "'hostile.scores'" in _one_line(e.value)
    assert _sql(pg_url, f"SELECT count(*), min(run_id) FROM {table}") == [(5, "old")]
    assert _sql(pg_url, f"SELECT count(*) FROM {fresh}.top_customers") == [(5,)]


def test_a_foreign_key_target_and_a_view_target_are_refused(pg_url, fresh):
    _sql(pg_url, f"CREATE TABLE {fresh}.parent (id int PRIMARY KEY)")
    _sql(pg_url, f"CREATE TABLE {fresh}.child (pid int REFERENCES {fresh}.parent(id))")
    _sql(pg_url, f"CREATE VIEW {fresh}.shown AS SELECT 1 AS x")
    with pytest.raises(CRMStatsError, match="'hostile.child' refer to it by a foreign key"):
        export_scores(_scores(5), pg_url, table=f"{fresh}.parent", replace=True)
    with pytest.raises(CRMStatsError, match="is not a table"):
        export_scores(_scores(5), pg_url, table=f"{fresh}.shown", replace=True)
    assert _sql(pg_url, f"SELECT * FROM {fresh}.shown") == [(1,)]


def test_a_table_the_source_reads_is_never_replaced(pg_url, postgres, fresh):
    demo = crmstats.load_crm("demo:n_contacts=300,seed=2")
    postgres.create_table("transactions", demo.transactions, database=fresh, overwrite=True)
    source = crmstats.CRMData(transactions=postgres.table("transactions", database=fresh),
                              source="postgresql")
    n = len(demo.transactions)
    with pytest.raises(CRMStatsError, match="table the source reads") as err:
        export_scores(_scores(5), pg_url, table=f"{fresh}.transactions", replace=True,
                      source=source)
    _one_line(err.value)
    assert _sql(pg_url, f"SELECT count(*) FROM {fresh}.transactions") == [(n,)]
    export_scores(_scores(5), pg_url, table=f"{fresh}.scores", source=source)  # beside it: fine


def test_a_locked_table_is_one_line_after_the_timeout(pg_url, fresh):
    table = f"{fresh}.scores"
    export_scores(_scores(5), pg_url, table=table, run_id="old")
    with psycopg.connect(pg_url) as reader:  # a long read holds the table
        reader.execute(f"SELECT count(*) FROM {table}").fetchone()
        with pytest.raises(CRMStatsError, match="in use by another session") as err:
            export_scores(_scores(9), pg_url, table=table, run_id="new", lock_timeout=0.2)
        assert "the old table is unchanged" in _one_line(err.value)
        reader.rollback()
    assert _sql(pg_url, f"SELECT count(*), min(run_id) FROM {table}") == [(5, "old")]
    assert _sql(pg_url, "SELECT count(*) FROM pg_tables WHERE schemaname = %s", [fresh]) == [
        (1,)]


@pytest.mark.parametrize("step, when", [(s, w) for s in ("CREATE", "COMMENT", "DROP", "ALTER")
                                        for w in ("before", "after")])
def test_a_failure_at_each_step_is_one_line_and_keeps_the_table(pg_url, fresh, monkeypatch,
                                                                step, when):
    table = f"{fresh}.scores"
    export_scores(_scores(50), pg_url, table=table, run_id="good")
    real = export._run

    def failing(cur, sql, params=None):
        if when == "after":
            real(cur, sql, params)
        if sql.startswith(step):
            raise psycopg.errors.DiskFull(f"injected: could not extend file at {step}")

    monkeypatch.setattr(export, "_run", failing)
    with pytest.raises(CRMStatsError, match="old table is unchanged") as err:
        export_scores(_scores(300), pg_url, table=table, run_id="bad")
    _one_line(err.value)
    assert _sql(pg_url, f"SELECT count(*), min(run_id) FROM {table}") == [(50, "good")]
    assert _sql(pg_url, "SELECT tablename FROM pg_tables WHERE schemaname = %s", [fresh]) == [
        ("scores",)]

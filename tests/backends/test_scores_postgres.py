"""customer_360 on a PostgreSQL source, and scores export into PostgreSQL (atomic table swap)."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats.scores import customer_360, export_scores

# one PostgreSQL server per worker that runs these: `make test` (pytest --dist loadfile) keeps
# a module on one worker


@pytest.fixture(scope="module")
def pg_url(postgres):
    info = postgres.con.info
    return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"


@pytest.fixture(scope="module")
def frame_scores(small_crm):
    return customer_360(small_crm, n_bootstrap=0)


def test_customer_360_on_postgres_equals_dataframes(small_crm, pg_tables, frame_scores):
    crm = crmstats.CRMData(**pg_tables, source="postgresql")
    got = customer_360(crm, n_bootstrap=0)
    pd.testing.assert_frame_equal(got, frame_scores, check_exact=False, rtol=1e-9,
                                  check_dtype=False, check_categorical=False)


def _read(url, table):
    import psycopg

    with psycopg.connect(url) as con, con.cursor() as cur:
        cur.execute(f'SELECT * FROM "{table}"')
        cols = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=cols)


def test_scores_round_trip_through_postgres(pg_url, frame_scores):
    result = export_scores(frame_scores, pg_url, table="scores_rt", run_id="run-1")
    assert result.rows == len(frame_scores) and result.kind == "postgresql"
    assert "crm@" not in result.target  # the target shown names no user
    got = _read(pg_url, "scores_rt").set_index("id").sort_index()
    exp = frame_scores.sort_index()
    assert (got["run_id"] == "run-1").all()
    assert list(got.columns[1:]) == list(exp.columns)
    for col in exp.columns:
        a, b = got[col], exp[col]
        if pd.api.types.is_bool_dtype(b):
            assert (a.astype(bool).to_numpy() == b.to_numpy()).all(), col
        elif pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(pd.to_numeric(a).astype(float), b.astype(float),
                                       rtol=1e-12, err_msg=col)
        elif pd.api.types.is_datetime64_any_dtype(b):
            pd.testing.assert_series_equal(pd.to_datetime(a).astype("datetime64[us]"), b,
                                           check_names=False)
        else:
            assert [None if pd.isna(x) else str(x) for x in a] == \
                   [None if pd.isna(x) else str(x) for x in b], col


def test_postgres_reader_sees_old_or_new_table_never_partial(pg_url):
    import psycopg

    n_old, n_new = 20_000, 150_000
    rng = np.random.default_rng(3)

    def scores(n):
        return pd.DataFrame({"clv": rng.gamma(2.0, 30.0, n)},
                            index=pd.Index([f"C{i:07d}" for i in range(n)], name="id"))

    export_scores(scores(n_old), pg_url, table="scores_swap", run_id="old")
    seen, errors, done = [], [], threading.Event()

    def read():
        with psycopg.connect(pg_url, autocommit=True) as con:
            while not done.is_set():
                try:
                    seen.append(con.execute('SELECT count(*), min(run_id), max(run_id) '
                                            'FROM "scores_swap"').fetchone())
                except psycopg.Error as exc:  # pragma: no cover - a failure of the guarantee
                    errors.append(str(exc))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        export_scores(scores(n_new), pg_url, table="scores_swap", run_id="new")
    finally:
        done.set()
        thread.join()
    assert not errors
    assert len(seen) > 2
    assert set(seen) <= {(n_old, "old", "old"), (n_new, "new", "new")}
    assert seen[0] == (n_old, "old", "old")
    with psycopg.connect(pg_url) as con:
        assert con.execute('SELECT count(*), min(run_id) FROM "scores_swap"').fetchone() == (
            n_new, "new")
        names = [r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'scores_swap%'").fetchall()]
    assert names == ["scores_swap"]

"""The aggregation layer runs unchanged on a real PostgreSQL server and equals DuckDB's results.

Each function gets the same table twice: as a pandas frame (the embedded DuckDB
computes) and as an Ibis table living in PostgreSQL (the server computes; only
the small result comes back).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crmstats.churn import churn_rate, cohort_table, cross_sell, mrr_bridge, service_kpis
from crmstats.clv import calibration_holdout_split, rfm_summary
from crmstats.funnel import lead_kpis, stage_conversion
from crmstats.overview import customer_revenue, monthly_activity, spend_by_channel, stage_counts

# one PostgreSQL server per worker that runs these: `make test` (pytest --dist loadfile) keeps
# a module on one worker

CASES = {
    "rfm_summary-days": ("transactions", lambda t: rfm_summary(t)),
    "rfm_summary-weeks": ("transactions", lambda t: rfm_summary(t, period="W")),
    "rfm_summary-months": ("transactions", lambda t: rfm_summary(t, period="M")),
    "rfm_summary-fractional-weeks": ("transactions", lambda t: rfm_summary(t, time_unit="W")),
    "calibration_holdout_split": ("transactions", lambda t: calibration_holdout_split(
        t, calibration_end="2025-01-01", observation_end="2025-12-31", time_unit="W")),
    "monthly_activity": ("transactions", lambda t: monthly_activity(t, period="M")),
    "customer_revenue": ("transactions", lambda t: customer_revenue(t).to_frame()),
    "stage_counts": ("stage_events", lambda t: stage_counts(t)),
    "spend_by_channel": ("spend", lambda t: spend_by_channel(t, period="M")),
    "cohort_table": ("transactions", lambda t: cohort_table(t, period="M")),
    "cohort_table-weeks-revenue": ("transactions",
                                   lambda t: cohort_table(t, period="W", metric="revenue")),
    "churn_rate": ("transactions", lambda t: churn_rate(t, lapsed_after=2)),
    "mrr_bridge": ("subscriptions", lambda t: mrr_bridge(t)),
    "cross_sell": ("subscriptions", lambda t: cross_sell(t)),
    "service_kpis": ("tickets", lambda t: service_kpis(t)),
    "stage_conversion": ("stage_events", lambda t: stage_conversion(t)),
    "stage_conversion-by-channel": ("stage_events", lambda t: stage_conversion(t, by="channel")),
}


def test_lead_kpis_on_postgres_equals_duckdb(small_crm, pg_tables):
    expected = lead_kpis(small_crm.stage_events, small_crm.spend)
    got = lead_kpis(pg_tables["stage_events"], pg_tables["spend"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False,
                                  check_exact=False, rtol=1e-9)


@pytest.mark.parametrize("name", list(CASES))
def test_postgres_equals_duckdb(name, small_crm, pg_tables):
    table, fn = CASES[name]
    expected = fn(getattr(small_crm, table))
    got = fn(pg_tables[table])
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False,
                                  check_exact=False, rtol=1e-9)


def test_postgres_validation_names_the_problem(postgres, small_crm):
    from crmstats import DataError

    bad = small_crm.transactions.copy()
    bad.loc[3, "amount"] = float("nan")
    postgres.create_table("bad_transactions", bad, overwrite=True)
    with pytest.raises(DataError, match="amount"):
        rfm_summary(postgres.table("bad_transactions"))


def _sorted_paths(frame):
    out = frame.copy()
    out["path"] = out["path"].map(tuple)
    return out.sort_values("path").reset_index(drop=True)


def test_build_paths_on_postgres_equals_duckdb(small_crm, pg_tables):
    from crmstats.attribution import build_paths

    expected = build_paths(small_crm.touchpoints, small_crm.conversions)
    got = build_paths(pg_tables["touchpoints"], pg_tables["conversions"])
    assert len(expected) > 10
    pd.testing.assert_frame_equal(_sorted_paths(got), _sorted_paths(expected),
                                  check_dtype=False, check_exact=False, rtol=1e-9)


def test_a_database_url_is_a_data_source(postgres, pg_tables, small_crm):
    import crmstats

    con_url = f"postgresql://crm@127.0.0.1:{postgres.con.info.port}/postgres"
    crm = crmstats.load_crm(con_url)
    assert set(small_crm.table_names()) <= set(crm.table_names()) | {"contacts"}
    assert crm.transactions.get_backend().name == "postgres"
    pd.testing.assert_frame_equal(rfm_summary(crm.transactions),
                                  rfm_summary(small_crm.transactions),
                                  check_dtype=False, check_index_type=False)
    # canonical tables can map to other names, e.g. a view
    postgres.raw_sql("CREATE OR REPLACE VIEW orders_view AS SELECT * FROM transactions")
    mapped = crmstats.load_crm(con_url + "?transactions=orders_view")
    assert mapped.transactions.get_name() == "orders_view"


def test_database_url_errors_are_clear(postgres):
    import crmstats
    from crmstats import DataError

    port = postgres.con.info.port
    with pytest.raises(DataError, match="password"):
        crmstats.load_crm(f"postgresql://crm:hunter2@127.0.0.1:{port}/postgres")
    with pytest.raises(DataError, match="nope_table"):
        crmstats.load_crm(f"postgresql://crm@127.0.0.1:{port}/postgres?transactions=nope_table")
    with pytest.raises(DataError, match="cannot connect"):
        crmstats.load_crm("postgresql://crm@127.0.0.1:1/postgres")


@pytest.mark.slow
def test_a_study_runs_on_the_database(postgres, pg_tables, tmp_path):
    from crmstats.book import read_kpis, run_study
    from tests.conftest import ROOT

    url = f"postgresql://crm@127.0.0.1:{postgres.con.info.port}/postgres"
    out = run_study(ROOT / "notebooks" / "data_overview.ipynb", tmp_path / "overview.ipynb",
                    {"data_source": url}, cwd=ROOT)
    kpis = read_kpis(out)
    crm_rows = pg_tables["transactions"].filter(pg_tables["transactions"].amount >= 0)
    assert kpis["customers"]["value"] == crm_rows.customer_id.nunique().execute()


def test_every_crmdata_function_and_kpi_on_postgres_equals_the_frames(postgres, pg_tables,
                                                                       small_crm):
    """(e) of the five sources: the whole CRM in PostgreSQL gives the frames' KPIs."""
    import crmstats
    from tests.crm_kpis import assert_same_kpis, crm_kpis

    url = f"postgresql://crm@127.0.0.1:{postgres.con.info.port}/postgres"
    crm = crmstats.load_crm(url)
    assert set(crm.tables()) == set(small_crm.tables())
    assert crm.table("contacts").get_backend().name == "postgres"
    assert_same_kpis(crm_kpis(crm), crm_kpis(small_crm))


def test_a_source_file_maps_database_tables(postgres, pg_tables, tmp_path):
    """A crmstats.yml over a database: renamed table and columns, mapped stage names."""
    import crmstats
    from crmstats.funnel import stage_conversion as conversion

    postgres.raw_sql("CREATE OR REPLACE VIEW pipeline AS SELECT lead_id AS \"Lead\", "
                     "CASE stage WHEN 'lead' THEN 'MQL' WHEN 'qualified' THEN 'SQL' "
                     "ELSE stage END AS \"Stage\", entered_at AS \"Entered\", channel "
                     "FROM stage_events")
    port = postgres.con.info.port
    (tmp_path / "crmstats.yml").write_text(
        f"name: Warehouse\nlocation: postgresql://crm@127.0.0.1:{port}/postgres\n"
        "tables:\n  stage_events:\n    table: pipeline\n"
        "    columns: {lead_id: Lead, stage: Stage, entered_at: Entered}\n"
        "    values: {stage: {MQL: lead, SQL: qualified}}\n")
    crm = crmstats.load_crm(tmp_path / "crmstats.yml")
    assert crm.name == "Warehouse"
    pd.testing.assert_frame_equal(conversion(crm.stage_events),
                                  conversion(pg_tables["stage_events"]))


def _decay(frame):
    """The time-decay columns as flat arrays, rows in path order."""
    out = _sorted_paths(frame)
    return (np.concatenate([np.asarray(v, float) for v in out["decay_conversions"]]),
            np.concatenate([np.asarray(v, float) for v in out["decay_value"]]))


def assert_same_decay_paths(crm, tables):
    """build_paths with time-decay weights on ``tables`` (a database's) equals the frames'."""
    from crmstats.attribution import build_paths

    expected = build_paths(crm.touchpoints, crm.conversions, half_life=7.0)
    got = build_paths(tables["touchpoints"], tables["conversions"], half_life=7.0)
    cols = ["path", "conversions", "value", "nulls"]
    pd.testing.assert_frame_equal(_sorted_paths(got)[cols], _sorted_paths(expected)[cols],
                                  check_dtype=False, check_exact=False, rtol=1e-9)
    for a, b in zip(_decay(got), _decay(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert _decay(expected)[0].sum() == pytest.approx(expected["conversions"].sum())


def test_time_decay_paths_on_postgres_equal_duckdb(small_crm, pg_tables):
    assert_same_decay_paths(small_crm, pg_tables)

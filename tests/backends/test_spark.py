"""The aggregation layer on Spark (local mode) equals DuckDB's results.

Run with ``make test-spark`` (installs the ``spark`` extra — PySpark; Java 17
must be on the machine). ``make test`` leaves these out: they need a JVM and
take a minute to start.
"""

from __future__ import annotations

import shutil
import tempfile

import pandas as pd
import pytest

from tests.backends.test_postgres import CASES, _sorted_paths

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    """A local Spark session and its Ibis connection."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java (apt-get install openjdk-17-jre-headless)")
    import ibis
    from pyspark.sql import SparkSession

    warehouse = tempfile.mkdtemp(prefix="crmstats-spark-")
    spark = (SparkSession.builder.master("local[2]").appName("crmstats-tests")
             .config("spark.sql.warehouse.dir", warehouse)
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4")
             .getOrCreate())
    yield spark, ibis.pyspark.connect(spark)
    spark.stop()
    shutil.rmtree(warehouse, ignore_errors=True)


def _views(spark, crm, prefix=""):
    """Every table of ``crm`` as a Spark view (named ``prefix + table``), as Ibis tables."""
    session, con = spark
    tables = {}
    for name, frame in crm.tables().items():
        session.createDataFrame(frame).createOrReplaceTempView(prefix + name)
        tables[name] = con.table(prefix + name)
    return tables


@pytest.fixture(scope="module")
def spark_tables(small_crm, spark):
    return _views(spark, small_crm)


@pytest.mark.parametrize("name", list(CASES))
def test_spark_equals_duckdb(name, small_crm, spark_tables):
    table, fn = CASES[name]
    expected = fn(getattr(small_crm, table))
    got = fn(spark_tables[table])
    assert len(expected) > 0
    # Spark's timestamp arithmetic rounds differently in the last digits (1e-8 relative)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False,
                                  check_exact=False, rtol=1e-6)


def test_build_paths_on_spark_equals_duckdb(small_crm, spark_tables):
    from crmstats.attribution import build_paths

    expected = build_paths(small_crm.touchpoints, small_crm.conversions)
    got = build_paths(spark_tables["touchpoints"], spark_tables["conversions"])
    pd.testing.assert_frame_equal(_sorted_paths(got), _sorted_paths(expected),
                                  check_dtype=False, check_exact=False, rtol=1e-9)


def test_lead_kpis_on_spark_equals_duckdb(small_crm, spark_tables):
    from crmstats.funnel import lead_kpis

    expected = lead_kpis(small_crm.stage_events, small_crm.spend)
    got = lead_kpis(spark_tables["stage_events"], spark_tables["spend"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False,
                                  check_exact=False, rtol=1e-6)


def test_media_table_and_media_mix_on_spark_equal_duckdb(spark):
    """The weekly media table (issue 24) aggregates on Spark as on DuckDB, so the model agrees."""
    from crmstats import CRMData
    from crmstats.attribution import MediaMixModel, media_table
    from crmstats.datasets import simulate_crm

    crm = simulate_crm(seed=4, n_contacts=3000, media_share=0.35)  # daily spend
    views = _views(spark, crm, prefix="media_")
    on_spark = CRMData(**{name: views[name] for name in ("conversions", "transactions", "spend")})
    for outcome in ("conversions", "conversion_value", "revenue"):
        expected = media_table(crm, outcome)
        got = media_table(on_spark, outcome)
        assert len(expected) > 50
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False,
                                      rtol=1e-9)
    expected = MediaMixModel(seed=0).fit(crm).roas_
    got = MediaMixModel(seed=0).fit(on_spark).roas_
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-6)


def test_lifecycle_on_spark_equals_duckdb(small_crm, spark_tables):
    """The contacts' first stage entries are read as Arrow arrays on any backend."""
    from crmstats import CRMData, funnel

    on_spark = CRMData(**{name: spark_tables[name]
                          for name in ("contacts", "stage_events", "transactions")})
    expected = funnel.lifecycle_stage(small_crm)
    got = funnel.lifecycle_stage(on_spark)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
    flows = funnel.stage_flows(on_spark, start="2025-06-01")
    pd.testing.assert_frame_equal(flows, funnel.stage_flows(small_crm, start="2025-06-01"))


def test_time_decay_paths_on_spark_equal_duckdb(small_crm, spark_tables):
    from tests.backends.test_postgres import assert_same_decay_paths

    assert_same_decay_paths(small_crm, spark_tables)

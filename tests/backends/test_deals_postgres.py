"""A deals export living in PostgreSQL gives the pipeline the embedded DuckDB gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import crmstats
from crmstats import funnel
from crmstats.backend import execute

DEALS = Path(__file__).parents[2] / "data" / "deals"


def test_pipeline_of_deals_on_postgres_equals_duckdb(postgres):
    described = crmstats.load_crm(DEALS)
    frame = execute(described.table("deals"))
    postgres.create_table("deals", frame, overwrite=True)
    try:
        stages = funnel.deal_stages(described)
        on_server = funnel.pipeline(crmstats.CRMData(deals=postgres.table("deals")),
                                    stages=stages)
        local = funnel.pipeline(described, stages=stages)
    finally:  # the server is the session's: a CRM loaded from it later has no deals table
        postgres.drop_table("deals")
    assert local.summary["open_deals"] == 283
    pd.testing.assert_series_equal(on_server.summary, local.summary, check_exact=False,
                                   rtol=1e-9)
    pd.testing.assert_frame_equal(on_server.open, local.open)
    for col in ("owner", "product", "account"):
        pd.testing.assert_frame_equal(on_server.by[col], local.by[col], check_dtype=False,
                                      check_exact=False, rtol=1e-9)

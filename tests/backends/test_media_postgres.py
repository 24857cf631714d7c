"""The weekly media table on a real PostgreSQL server equals DuckDB's (issue 24)."""

from __future__ import annotations

import pandas as pd

from crmstats import CRMData
from crmstats.attribution import media_table
from crmstats.datasets import simulate_crm


def test_media_table_on_postgres_equals_duckdb(postgres):
    crm = simulate_crm(seed=4, n_contacts=3000, media_share=0.35)  # daily spend
    for name in ("conversions", "transactions", "spend"):
        postgres.create_table(f"media_{name}", getattr(crm, name), overwrite=True)
    in_pg = CRMData(conversions=postgres.table("media_conversions"),
                    transactions=postgres.table("media_transactions"),
                    spend=postgres.table("media_spend"))
    for outcome in ("conversions", "conversion_value", "revenue"):
        expected = media_table(crm, outcome)
        got = media_table(in_pg, outcome)
        assert len(expected) > 50
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=False,
                                      rtol=1e-9)

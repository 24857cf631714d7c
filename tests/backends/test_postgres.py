"""The aggregation layer runs unchanged on a real PostgreSQL server and equals DuckDB's results.

Each function gets the same table twice: as a pandas frame (the embedded DuckDB
computes) and as an Ibis table living in PostgreSQL (the server computes; only
the small result comes back).
"""

from __future__ import annotations

import pandas as pd
import pytest

from crmstats.clv import calibration_holdout_split, rfm_summary
from crmstats.overview import customer_revenue, monthly_activity, spend_by_channel, stage_counts

pytestmark = pytest.mark.xdist_group("postgres")

CASES = {
    "rfm_summary-days": ("transactions", lambda t: rfm_summary(t)),
    "rfm_summary-weeks": ("transactions", lambda t: rfm_summary(t, freq="W")),
    "rfm_summary-months": ("transactions", lambda t: rfm_summary(t, freq="M")),
    "rfm_summary-fractional-weeks": ("transactions", lambda t: rfm_summary(t, time_unit="W")),
    "calibration_holdout_split": ("transactions", lambda t: calibration_holdout_split(
        t, calibration_end="2025-01-01", observation_end="2025-12-31", time_unit="W")),
    "monthly_activity": ("transactions", lambda t: monthly_activity(t, period="M")),
    "customer_revenue": ("transactions", lambda t: customer_revenue(t).to_frame()),
    "stage_counts": ("stage_events", lambda t: stage_counts(t)),
    "spend_by_channel": ("spend", lambda t: spend_by_channel(t, period="M")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_postgres_equals_duckdb(name, demo, pg_tables):
    table, fn = CASES[name]
    expected = fn(getattr(demo, table))
    got = fn(pg_tables[table])
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False,
                                  check_exact=False, rtol=1e-9)


def test_postgres_validation_names_the_problem(postgres, demo):
    from crmstats import DataError

    bad = demo.transactions.copy()
    bad.loc[3, "amount"] = float("nan")
    postgres.create_table("bad_transactions", bad, overwrite=True)
    with pytest.raises(DataError, match="amount"):
        rfm_summary(postgres.table("bad_transactions"))


def _sorted_paths(frame):
    out = frame.copy()
    out["path"] = out["path"].map(tuple)
    return out.sort_values("path").reset_index(drop=True)


def test_build_paths_on_postgres_equals_duckdb(demo, pg_tables):
    from crmstats.attribution import build_paths

    expected = build_paths(demo.touchpoints, demo.conversions)
    got = build_paths(pg_tables["touchpoints"], pg_tables["conversions"])
    assert len(expected) > 10
    pd.testing.assert_frame_equal(_sorted_paths(got), _sorted_paths(expected),
                                  check_dtype=False, check_exact=False, rtol=1e-9)

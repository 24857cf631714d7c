"""Benchmark: in-database monthly activity (crmstats, DuckDB) vs a plain pandas groupby.

Usage: ``python benchmarks/overview.py [N_ROWS]`` (default 5,000,000). Writes a
Parquet file of synthetic transactions to a temporary folder, then times
``crmstats.overview.monthly_activity`` on the file and on an in-memory frame
beside the same aggregation in pandas (the anchor), each in a fresh process.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import report, run_case  # noqa: E402


def write_transactions(path: Path, n: int, seed: int = 13) -> None:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01T00:00:00")
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, max(n // 20, 1), n).astype("int64"),
            "timestamp": start + rng.integers(0, 3 * 365 * 86400, n).astype("timedelta64[s]"),
            "amount": np.round(rng.gamma(2.0, 25.0, n), 2),
        }
    )
    frame.to_parquet(path, index=False)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tx.parquet"
        write_transactions(path, n)
        load = f"import pandas as pd; tx = pd.read_parquet({str(path)!r})"
        pandas_stmt = (
            "p = tx.timestamp.dt.to_period('M').dt.to_timestamp(); b = tx.amount > 0; "
            "g = tx.assign(p=p)[b].groupby('p'); "
            "r = (g.size(), g.customer_id.nunique(), tx.groupby(p).amount.sum())"
        )
        results = {
            "pandas groupby (in memory)": run_case(load, pandas_stmt),
            "crmstats, DataFrame input": run_case(
                load + "; from crmstats.overview import monthly_activity",
                "monthly_activity(tx)",
            ),
            "crmstats, Parquet path input": run_case(
                "from crmstats.overview import monthly_activity",
                f"monthly_activity({str(path)!r})",
            ),
        }
    report(f"monthly_activity on {n:,} transactions", results, anchor="pandas groupby (in memory)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000)

"""Benchmark: in-database cohort table (crmstats, DuckDB) vs a plain pandas groupby.

Usage: ``python benchmarks/churn.py [N_ROWS]`` (default 10,000,000). Writes
synthetic transactions (1M customers, three years) to Parquet in a temporary
folder, then times :func:`crmstats.churn.cohort_table` (monthly cohorts,
distinct customers) on the Parquet path and on an in-memory frame beside the
same table computed with pandas (the anchor), each in a fresh process, and
checks that the tables agree.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import report, run_case  # noqa: E402

PANDAS_COHORTS = (
    "b = tx[tx.amount >= 0]; m = b.timestamp.dt.year * 12 + b.timestamp.dt.month - 1; "
    "first = m.groupby(b.customer_id).transform('min'); "
    "r = b.assign(cohort=first, age=m - first).groupby(['cohort', 'age']).customer_id.nunique()"
    ".unstack(fill_value=0)"
)


def write_transactions(path: Path, n: int, seed: int = 21) -> None:
    rng = np.random.default_rng(seed)
    customers = max(n // 10, 1)
    start = np.datetime64("2022-01-01T00:00:00")
    birth = rng.integers(0, 2 * 365 * 86400, customers)
    owner = rng.integers(0, customers, n)
    offset = (rng.exponential(200 * 86400, n)).astype("int64")
    ts = start + (birth[owner] + offset).clip(max=3 * 365 * 86400 - 1).astype("timedelta64[s]")
    pd.DataFrame({"customer_id": owner.astype("int64"), "timestamp": ts,
                  "amount": np.round(rng.gamma(2.0, 25.0, n), 2)}).to_parquet(path, index=False)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tx.parquet"
        write_transactions(path, n)
        out_pd, out_cs = Path(tmp) / "pandas.parquet", Path(tmp) / "crmstats.parquet"
        load = f"import pandas as pd; tx = pd.read_parquet({str(path)!r})"
        results = {
            "pandas groupby (in memory)": run_case(
                load, PANDAS_COHORTS,
                after=f"r.columns = r.columns.astype(str); r.to_parquet({str(out_pd)!r})"),
            "crmstats, DataFrame input": run_case(
                load + "; from crmstats.churn import cohort_table", "r = cohort_table(tx)"),
            "crmstats, Parquet path input": run_case(
                "from crmstats.churn import cohort_table", f"r = cohort_table({str(path)!r})",
                after=f"r.columns = r.columns.astype(str); r.to_parquet({str(out_cs)!r})"),
        }
        a, b = pd.read_parquet(out_pd), pd.read_parquet(out_cs)
        same = np.allclose(a.to_numpy(float), b.fillna(0).to_numpy(float)[:, : a.shape[1]])
    report(f"cohort_table (monthly cohorts, customers) on {n:,} transactions", results,
           anchor="pandas groupby (in memory)")
    print(f"tables agree with pandas: {same}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)

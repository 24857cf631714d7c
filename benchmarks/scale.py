"""Benchmark: 100M transactions on one machine, out of core.

Usage: ``python benchmarks/scale.py [N_ROWS] [MEMORY_LIMIT]`` (defaults
100,000,000 and "3GB"). Writes simulated transactions (10 per customer, three
years) to a folder of Parquet files in chunks of 10M rows — never holding the
whole log in memory — then runs :func:`crmstats.clv.rfm_summary` and
:func:`crmstats.churn.cohort_table` on the folder, each in a fresh process
with DuckDB limited to ``MEMORY_LIMIT`` (it spills to disk beyond), and prints
wall time and peak RSS. Goal (issue 8): peak RSS <= 4 GB on a 2-core, 24 GiB
machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import run_case  # noqa: E402

CHUNK = 10_000_000


def write_chunks(folder: Path, n: int, seed: int = 5) -> int:
    """Write ``n`` transactions as Parquet chunks; customers are spread over the chunks."""
    rng = np.random.default_rng(seed)
    customers = max(n // 10, 1)
    start = np.datetime64("2022-01-01T00:00:00")
    written = 0
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        owner = rng.integers(0, customers, m)
        # each customer's first purchase day is a hash of its id; later ones follow it
        birth = (owner * 2654435761 % (730 * 86400)).astype("int64")
        offset = rng.exponential(180 * 86400, m).astype("int64")
        ts = start + np.minimum(birth + offset, 3 * 365 * 86400 - 1).astype("timedelta64[s]")
        pd.DataFrame({"customer_id": owner.astype("int64"), "timestamp": ts,
                      "amount": np.round(rng.gamma(2.0, 25.0, m), 2)}).to_parquet(
            folder / f"part-{i // CHUNK:04d}.parquet", index=False)
        written += m
    return written


def main(n: int, limit: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "transactions"
        folder.mkdir()
        t0 = time.perf_counter()
        rows = write_chunks(folder, n)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**30
        print(f"wrote {rows:,} transactions ({size:.1f} GiB Parquet) in "
              f"{time.perf_counter() - t0:.0f} s")
        os.environ["CRMSTATS_MEMORY_LIMIT"] = limit
        os.environ["CRMSTATS_TEMP_DIR"] = str(Path(tmp) / "spill")
        cases = {
            "rfm_summary (daily occasions)": (
                "from crmstats.clv import rfm_summary",
                f"r = rfm_summary({str(folder)!r})"),
            "cohort_table (monthly, customers)": (
                "from crmstats.churn import cohort_table",
                f"r = cohort_table({str(folder)!r})"),
        }
        print(f"\nDuckDB memory_limit {limit}; 2-core machine")
        print(f"{'case':<36}{'seconds':>10}{'peak RSS GB':>13}{'result rows':>13}")
        for name, (setup, stmt) in cases.items():
            r = run_case(setup, stmt, repeat=1, after="extra = {'rows': len(r)}")
            goal = "ok" if r["peak_rss_mb"] <= 4096 else "OVER 4 GB"
            print(f"{name:<36}{r['seconds']:>10.1f}{r['peak_rss_mb'] / 1024:>13.2f}"
                  f"{r['rows']:>13,}  {goal}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000_000,
         sys.argv[2] if len(sys.argv) > 2 else "3GB")

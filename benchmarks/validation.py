"""Validation of a 1M-row pandas transactions table: the gate's own time, by input shape.

Each case builds one frame of ``--rows`` rows in a fresh interpreter, then
times :func:`crmstats.as_table` on a new shallow copy of it each repeat (a new
object, so nothing the gate remembers is reused) and reports the best of
``--repeat`` runs and the process's peak RSS. Cases: a clean frame (text ids,
datetime timestamps, float amounts), integer ids and amounts, float ids, text
timestamps (``pd.read_csv`` without ``parse_dates``), text amounts, and
categorical channels-like columns.

    python benchmarks/validation.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import textwrap

from _harness import report, run_case

SETUP = """
import numpy as np, pandas as pd, warnings
from crmstats import as_table
warnings.simplefilter("ignore")
rng = np.random.default_rng(7)
n = {rows}
ids = pd.Series(rng.integers(0, n // 10, n))
seconds = pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s")
ts = pd.Series(pd.Timestamp("2023-01-01") + seconds)
amount = rng.gamma(2.0, 30.0, n).round(2)
frame = pd.DataFrame({{"customer_id": "C" + ids.astype(str), "timestamp": ts,
                       "amount": amount}})
{variant}
"""

VARIANTS = {
    "clean (text ids, datetimes, floats)": "",
    "integer ids and amounts": "frame['customer_id'] = ids.to_numpy(); "
                               "frame['amount'] = (amount * 100).astype('int64')",
    "float ids": "frame['customer_id'] = ids.to_numpy().astype('float64')",
    "text timestamps (ISO)": "frame['timestamp'] = ts.dt.strftime('%Y-%m-%d %H:%M:%S')",
    "text amounts": "frame['amount'] = pd.Series(amount).astype(str)",
    "categorical category": "frame['product_category'] = pd.Categorical("
                            "rng.choice(['a', 'b', 'c'], n))",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for name, variant in VARIANTS.items():
        # the harness dedents its script: every line of the setup at its indentation
        setup = textwrap.indent(SETUP.format(rows=args.rows, variant=variant), " " * 8).strip()
        results[name] = run_case(setup,
                                 "as_table(frame.copy(deep=False), 'transactions')",
                                 repeat=args.repeat)
    report(f"as_table on {args.rows:,} pandas rows (load {os.getloadavg()[0]:.1f})",
           results, anchor="clean (text ids, datetimes, floats)")


if __name__ == "__main__":
    main()

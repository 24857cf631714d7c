"""Benchmark: import time of crmstats beside pandas and lifetimes, each in a fresh process.

Usage: ``python benchmarks/imports.py [ROUNDS]`` (default 7).

Every round runs each statement below once in a new interpreter (``python -c``), in
an order that rotates from round to round, and times the whole process from the
parent (interpreter start included, as a user waits for it). It prints, per
statement, the median and the range over the rounds, and, per round, the paired
differences and ratios the goals are about (both sides of a pair measured in the
same round, so a burst of load on this shared machine hits both):

* ``import crmstats`` minus ``import pandas`` — goal <= 0.15 s;
* ``import crmstats.clv`` / ``import lifetimes`` — goal < 1;
* ``from crmstats.clv import BetaGeoModel, rfm_summary`` /
  ``from lifetimes import BetaGeoFitter`` — what a script that fits a model imports,
  reported beside the goal because lazy imports move work to first use;
* a structural line: which of the heavy modules each statement loads.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "python": "pass",
    "pandas": "import pandas",
    "crmstats": "import crmstats",
    "crmstats.clv": "import crmstats.clv",
    "lifetimes": "import lifetimes",
    "clv names": "from crmstats.clv import BetaGeoModel, rfm_summary",
    "lifetimes names": "from lifetimes import BetaGeoFitter",
}
HEAVY = ("matplotlib", "scipy.stats", "scipy.optimize", "statsmodels", "ibis", "duckdb",
         "seaborn", "pyarrow")


def run_once(stmt: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", stmt], check=True, capture_output=True)
    return time.perf_counter() - start


def loaded(stmt: str) -> list[str]:
    code = (f"import sys, json\n{stmt}\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return (f"median {fmt.format(statistics.median(values))} "
            f"(range {fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})")


def main(rounds: int) -> None:
    print(f"load average before: {os.getloadavg()}")
    names = list(CASES)
    for name in names:  # warm the page cache and the bytecode caches once
        run_once(CASES[name])
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        if r % 2:
            order.reverse()
        for name in order:
            times[name].append(run_once(CASES[name]))
    print(f"load average after:  {os.getloadavg()}")
    print(f"\n{'statement':<52}{'seconds':>46}")
    for name in names:
        print(f"{CASES[name]:<52}{spread(times[name]):>46}")

    def paired(a: str, b: str, op) -> list[float]:
        return [op(x, y) for x, y in zip(times[a], times[b], strict=True)]

    print("\npaired per round:")
    print(f"  import crmstats - import pandas: "
          f"{spread(paired('crmstats', 'pandas', float.__sub__))} s  (goal <= 0.15 s)")
    print(f"  import crmstats.clv / import lifetimes: "
          f"{spread(paired('crmstats.clv', 'lifetimes', float.__truediv__), '{:.2f}')}"
          "  (goal < 1)")
    print(f"  clv names / lifetimes names: "
          f"{spread(paired('clv names', 'lifetimes names', float.__truediv__), '{:.2f}')}")
    print("\nheavy modules loaded:")
    for name in names[1:]:
        print(f"  {CASES[name]:<52} {', '.join(loaded(CASES[name])) or '-'}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

"""Benchmark: BG/NBD and Pareto/NBD with time-invariant covariates beside the fits without.

Usage: ``python benchmarks/clv_covariates.py [N_CUSTOMERS] [--rounds R] [--pareto]
[--levels 4,3,5]`` (defaults: 100,000 customers, 3 rounds, BG/NBD only).

A simulated shop (weekly BG/NBD, purchases merged per day) whose customers have
three categorical covariates (by default channel with 4 levels, segment with 3,
region with 5: 60 covariate patterns); channel and segment shift the purchase
rate and dropout by known coefficients. Timed in-process, data in memory, each
case once per round in alternating order: ``BetaGeoModel().fit(summary)``
and ``BetaGeoModel().fit(summary, covariates=X)`` (which includes the
no-covariate fit it starts from and tests against), the same for Pareto/NBD
with ``--pareto``. The load average is printed before and after: the machine
is shared. Goal: 100,000 customers with 3 categorical covariates in <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_note  # noqa: E402

BASE = {"r": 0.8, "alpha": 7.0, "a": 0.6, "b": 3.0}
#: True coefficients per level (level 0 is the reference): purchase, dropout.
EFFECTS = {"channel": ([0.0, 0.4, -0.3, 0.2], [0.0, 0.5, 0.0, -0.4]),
           "segment": ([0.0, 0.3, -0.2], [0.0, -0.3, 0.4]),
           "region": ([0.0] * 5, [0.0] * 5)}


def simulate(n: int, levels: list[int], seed: int = 13):
    """Return (summary, customers) of a simulated shop with covariate effects."""
    from crmstats import clv

    rng = np.random.default_rng(seed)
    names = list(EFFECTS)
    cats = {name: rng.integers(0, k, n) for name, k in zip(names, levels, strict=True)}
    eta_p = np.zeros(n)
    eta_d = np.zeros(n)
    for name, k in zip(names, levels, strict=True):
        gp, gd = EFFECTS[name]
        gp = np.resize(np.asarray(gp, dtype=float), k)
        gd = np.resize(np.asarray(gd, dtype=float), k)
        gp[0] = gd[0] = 0.0
        eta_p += gp[cats[name]]
        eta_d += gd[cats[name]]
    lam = rng.gamma(BASE["r"], 1.0 / (BASE["alpha"] * np.exp(-eta_p)))
    p = rng.beta(BASE["a"], BASE["b"] * np.exp(-eta_d))
    T = np.round(rng.uniform(10, 78, n) * 7) / 7
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        t[idx] += rng.exponential(1.0 / lam[idx])
        bought = t[idx] <= T[idx]
        done = idx[~bought]
        active[done] = False
        b_idx = idx[bought]
        x[b_idx] += 1
        tx[b_idx] = t[b_idx]
        active[b_idx[rng.random(len(b_idx)) < p[b_idx]]] = False
    tx = np.minimum(np.ceil(tx * 7) / 7, T)
    ids = pd.Index([f"C{i:07d}" for i in range(n)], name="customer_id")
    summary = clv.with_units(pd.DataFrame({"frequency": x, "recency": tx, "T": T}, index=ids),
                             period="D", time_unit="W")
    customers = pd.DataFrame({"customer_id": ids,
                              **{name: pd.Series(cats[name]).map(lambda v: f"L{v}").to_numpy()
                                 for name in names}})
    return summary, customers


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    from crmstats import clv

    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pareto", action="store_true")
    ap.add_argument("--levels", default="4,3,5")
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    print(load_note(), "(before)")
    summary, customers = simulate(args.n, levels)
    X = clv.covariate_frame(customers, list(EFFECTS), reference={k: "L0" for k in EFFECTS})
    patterns = len(X.drop_duplicates())
    print(f"{args.n:,} customers, {X.shape[1]} indicator columns, {patterns} covariate patterns")
    models = [clv.BetaGeoModel] + ([clv.ParetoNBDModel] if args.pareto else [])
    cases = {}
    for cls in models:
        cases[f"{cls.__name__}.fit(summary)"] = (cls, None)
        cases[f"{cls.__name__}.fit(summary, covariates=X)"] = (cls, X)
    times = {name: [] for name in cases}
    fitted = {}
    for rnd in range(args.rounds):
        order = list(cases) if rnd % 2 == 0 else list(reversed(cases))
        for name in order:
            cls, covs = cases[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                model = cls().fit(summary, covariates=covs)
                times[name].append(time.perf_counter() - start)
            fitted[name] = model
    print(f"\n{'case':<48}{'seconds: median (min-max)':>30}")
    for name, secs in times.items():
        print(f"{name:<48}{statistics.median(secs):>12.3f} ({min(secs):.3f}-{max(secs):.3f})")
    for cls in models:
        plain = statistics.median(times[f"{cls.__name__}.fit(summary)"])
        cov = statistics.median(times[f"{cls.__name__}.fit(summary, covariates=X)"])
        model = fitted[f"{cls.__name__}.fit(summary, covariates=X)"]
        print(f"\n{cls.__name__}: with covariates / without = {cov / plain:.1f}x; "
              f"{model.n_rows_:,} distinct rows; converged {model.converged_}; "
              f"LR statistic {model.lr_test_['statistic']:.1f} on {int(model.lr_test_['df'])} df")
        if cls is clv.BetaGeoModel:
            print(model.summary_.round(3).to_string())
    print("\n" + load_note(), "(after)")


if __name__ == "__main__":
    main()

"""Benchmark: the BTYD and spend models with time-invariant covariates beside the fits without.

Usage: ``python benchmarks/clv_covariates.py [N_CUSTOMERS] [--rounds R]
[--models bgnbd,mbgnbd,pnbd,gg] [--levels 4,3,5] [--whole] [--old-src DIR]``
(defaults: 100,000 customers, 3 rounds, every model).

A simulated shop (weekly BG/NBD, purchases merged per day, Gamma-Gamma spend)
whose customers have three categorical covariates (by default channel with 4
levels, segment with 3, region with 5: 60 covariate patterns); channel and
segment shift the purchase rate, dropout and spend by known coefficients.

In-process (data in memory, each case once per round, the order reversed every
other round): ``Model().fit(summary)`` and ``Model().fit(summary,
covariates=X)`` (which includes the fit without covariates it starts from and
tests against), wall clock and the process's CPU time. ``--whole``: also each
fit with covariates in a fresh interpreter (import, simulation and fit: what a
user waits for), alternating with the same in the source tree ``--old-src``
(e.g. an export of an earlier commit's ``src``) when given. The load average
is printed before and after: the machine is shared, and wall times under load
are several times the CPU times. Goal: 100,000 customers with 3 categorical
covariates in <= 2 s.
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
from _harness import load_note, spread, whole_process  # noqa: E402

BASE = {"r": 0.8, "alpha": 7.0, "a": 0.6, "b": 3.0}
#: Gamma-Gamma spend: p, q, v (mean spend per purchase p v / (q - 1) = 30).
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}
#: True coefficients per level (level 0 is the reference): purchase, dropout, spend.
EFFECTS = {"channel": ([0.0, 0.4, -0.3, 0.2], [0.0, 0.5, 0.0, -0.4], [0.0, 0.2, -0.1, 0.0]),
           "segment": ([0.0, 0.3, -0.2], [0.0, -0.3, 0.4], [0.0, 0.3, -0.2]),
           "region": ([0.0] * 5, [0.0] * 5, [0.0] * 5)}
MODELS = {"bgnbd": "BetaGeoModel", "mbgnbd": "ModifiedBetaGeoModel", "pnbd": "ParetoNBDModel",
          "gg": "GammaGammaModel"}


def simulate(n: int, levels: list[int], seed: int = 13):
    """Return (summary, customers) of a simulated shop with covariate effects.

    The summary has ``monetary_value`` (mean spend of the repeat purchases; 0
    for customers without one) beside frequency, recency and T.
    """
    from crmstats import clv

    rng = np.random.default_rng(seed)
    names = list(EFFECTS)
    cats = {name: rng.integers(0, k, n) for name, k in zip(names, levels, strict=True)}
    eta = np.zeros((3, n))
    for name, k in zip(names, levels, strict=True):
        for j, coefs in enumerate(EFFECTS[name]):
            g = np.resize(np.asarray(coefs, dtype=float), k)
            g[0] = 0.0
            eta[j] += g[cats[name]]
    lam = rng.gamma(BASE["r"], 1.0 / (BASE["alpha"] * np.exp(-eta[0])))
    p = rng.beta(BASE["a"], BASE["b"] * np.exp(-eta[1]))
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
    # spend: nu ~ Gamma(q, rate v_i), the mean of x purchases ~ Gamma(p x, rate nu x)
    nu = rng.gamma(SPEND["q"], 1.0 / (SPEND["v"] * np.exp(eta[2])))
    xs = np.maximum(x, 1)
    money = np.where(x > 0, rng.gamma(SPEND["p"] * xs, 1.0 / (nu * xs)), 0.0)
    ids = pd.Index([f"C{i:07d}" for i in range(n)], name="customer_id")
    summary = clv.with_units(pd.DataFrame({"frequency": x, "recency": tx, "T": T,
                                           "monetary_value": money}, index=ids),
                             period="D", time_unit="W")
    customers = pd.DataFrame({"customer_id": ids,
                              **{name: pd.Series(cats[name]).map(lambda v: f"L{v}").to_numpy()
                                 for name in names}})
    return summary, customers


def covariates(customers):
    """The indicator frame of the three categorical columns (reference level L0)."""
    from crmstats import clv

    return clv.covariate_frame(customers, list(EFFECTS), reference={k: "L0" for k in EFFECTS})


def _timed(cls, summary, covs) -> tuple[float, float, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wall, cpu = time.perf_counter(), time.process_time()
        model = cls().fit(summary, covariates=covs)
        return time.perf_counter() - wall, time.process_time() - cpu, model


def _whole_code(src: str | None, name: str, n: int, levels: str) -> str:
    paths = [p for p in (src, str(Path(__file__).parent)) if p]
    return (f"import sys; sys.path[:0] = {paths!r}\n"
            "import warnings; warnings.simplefilter('ignore')\n"
            "from clv_covariates import simulate, covariates\n"
            "from crmstats import clv\n"
            f"s, c = simulate({n}, [{levels}])\n"
            f"clv.{name}().fit(s, covariates=covariates(c))\n")


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    from crmstats import clv

    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", default="bgnbd,mbgnbd,pnbd,gg")
    ap.add_argument("--levels", default="4,3,5")
    ap.add_argument("--whole", action="store_true")
    ap.add_argument("--old-src", default=None)
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    print(load_note(), "(before)")
    start_all = time.perf_counter()
    summary, customers = simulate(args.n, levels)
    X = covariates(customers)
    patterns = len(X.drop_duplicates())
    print(f"{args.n:,} customers, {X.shape[1]} indicator columns, {patterns} covariate patterns")
    cases = {}
    for key in keys:
        cls = getattr(clv, MODELS[key])
        cases[f"{cls.__name__}.fit(summary)"] = (cls, None)
        cases[f"{cls.__name__}.fit(summary, covariates=X)"] = (cls, X)
    wall = {name: [] for name in cases}
    cpu = {name: [] for name in cases}
    fitted = {}
    for rnd in range(args.rounds):
        for name in (list(cases) if rnd % 2 == 0 else list(reversed(cases))):
            w, c, fitted[name] = _timed(cases[name][0], summary, cases[name][1])
            wall[name].append(w)
            cpu[name].append(c)
    print(f"\n{'in-process case':<52}{'wall s: median (range, n)':>30}{'CPU s':>8}")
    for name in cases:
        print(f"{name:<52}{spread(wall[name], '{:.3f}'):>30}"
              f"{statistics.median(cpu[name]):>8.3f}")
    for key in keys:
        cls = getattr(clv, MODELS[key])
        plain = statistics.median(wall[f"{cls.__name__}.fit(summary)"])
        cov = statistics.median(wall[f"{cls.__name__}.fit(summary, covariates=X)"])
        model = fitted[f"{cls.__name__}.fit(summary, covariates=X)"]
        print(f"{cls.__name__}: with covariates / without = {cov / plain:.1f}x; "
              f"{model.n_rows_:,} distinct rows; converged {model.converged_}; "
              f"log-likelihood {model.log_likelihood_:,.6f}; LR statistic "
              f"{model.lr_test_['statistic']:.1f} on {int(model.lr_test_['df'])} df")
    if args.whole:
        sides = {"new": None} if args.old_src is None else {"old": args.old_src, "new": None}
        print(f"\n{'whole process (import, simulate, fit)':<52}{'wall s: median (range)':>30}"
              f"{'CPU s':>8}")
        for key in keys:
            runs = {side: [] for side in sides}
            for rnd in range(args.rounds):
                for side in (list(sides) if rnd % 2 == 0 else list(reversed(sides))):
                    runs[side].append(whole_process(_whole_code(
                        sides[side], MODELS[key], args.n, args.levels)))
            for side, res in runs.items():
                secs = [r["seconds"] for r in res]
                cpus = [r["cpu_seconds"] for r in res]
                print(f"{side + ' ' + MODELS[key] + ' with covariates':<52}"
                      f"{spread(secs, '{:.3f}'):>30}{statistics.median(cpus):>8.3f}")
    print(f"\nwhole benchmark {time.perf_counter() - start_all:.1f} s; {load_note()} (after)")


if __name__ == "__main__":
    main()

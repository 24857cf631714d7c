"""crmstats' MediaMixModel beside pymc-marketing's MMM on the same simulated plans.

Usage: ``python benchmarks/mmm_pymc.py [SEEDS] [--pymc PYTHON] [--dir DIR]``
(defaults: 2 seeds; ``/work/pymc-venv/bin/python``; ``/tmp/mmm-pymc``).
pymc-marketing is installed **aside**, in its own virtual environment (never
a crmstats dependency): ``python -m venv /work/pymc-venv &&
/work/pymc-venv/bin/pip install pymc-marketing``. For each seed the weekly
table of :func:`crmstats.datasets.simulate_media` (156 weeks × 8 channels) is
written to ``DIR/s<seed>.csv``; ``benchmarks/_pymc_fit.py`` fits
pymc-marketing's documented MMM there (geometric adstock ``l_max=8``,
logistic saturation, yearly seasonality 2, the control; NUTS with the
sampler's defaults) in a child process and writes its ROAS (posterior mean
and 95 % interval) to ``DIR/s<seed>.json`` — an existing JSON is reused, as
a fit takes many minutes here. crmstats' model is fitted in this process.

Printed per seed and model: median absolute relative ROAS error against the
truth, 95 % interval coverage, wall time of the fit (pymc-marketing: the
sampling call, model compilation included, import excluded) and the speed
ratio. Goal (issue 24): at least as accurate, at least 50 x faster. The load
average is printed: the machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from crmstats.attribution import MediaMixModel
from crmstats.datasets import simulate_media

HERE = Path(__file__).resolve().parent


def _arg(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2
    pymc = _arg("--pymc", "/work/pymc-venv/bin/python")
    folder = Path(_arg("--dir", "/tmp/mmm-pymc"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    for seed in range(1, seeds + 1):
        table, truth = simulate_media(seed)
        flat = table["spend"].copy()
        flat.insert(0, "outcome", table[("outcome", "revenue")])
        flat["promotion"] = table[("control", "promotion")]
        csv, out = folder / f"s{seed}.csv", folder / f"s{seed}.json"
        flat.reset_index().to_csv(csv, index=False)
        if not out.exists():
            t0 = time.perf_counter()
            run = subprocess.run([pymc, str(HERE / "_pymc_fit.py"), str(csv), str(out),
                                  str(seed)], capture_output=True, text=True)
            if run.returncode != 0:
                print(f"seed {seed}: pymc-marketing failed after "
                      f"{time.perf_counter() - t0:.0f} s:\n{run.stderr[-2000:]}")
                continue
        res = json.loads(out.read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            ours = MediaMixModel().fit(table)
            seconds = time.perf_counter() - t0
        true = truth["roas"]
        theirs = pd.DataFrame({"estimate": res["roas_mean"], "lower_95": res["roas_lower"],
                               "upper_95": res["roas_upper"]},
                              index=pd.Index(res["channels"], name="channel"))
        for name, r, secs in (("crmstats", ours.roas_, seconds),
                              ("pymc-marketing", theirs, res["seconds_fit"])):
            r = r.reindex(true.index)
            rows.append({
                "seed": seed, "model": name,
                "median_abs_rel_err": float((r["estimate"] / true - 1).abs().median()),
                "coverage": float(((r["lower_95"] <= true) & (true <= r["upper_95"])).mean()),
                "seconds": secs,
                "divergences": res.get("divergences") if name != "crmstats" else None})
    frame = pd.DataFrame(rows)
    print(frame.round(3).to_string(index=False))
    if len(frame):
        agg = frame.groupby("model")[["median_abs_rel_err", "coverage", "seconds"]].median()
        print(agg.round(3).to_string())
        if {"crmstats", "pymc-marketing"} <= set(agg.index):
            ratio = agg.loc["pymc-marketing", "seconds"] / agg.loc["crmstats", "seconds"]
            print(f"speed: crmstats {ratio:.0f} x faster (goal >= 50 x); error "
                  f"{agg.loc['crmstats', 'median_abs_rel_err']:.1%} vs "
                  f"{agg.loc['pymc-marketing', 'median_abs_rel_err']:.1%} (goal: at most "
                  "pymc-marketing's)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

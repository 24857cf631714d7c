"""Fit pymc-marketing's MMM on one weekly CSV and write its ROAS (run in pymc-marketing's venv).

Usage: ``/work/pymc-venv/bin/python benchmarks/_pymc_fit.py DATA.csv OUT.json SEED``.
The CSV has ``week``, ``outcome``, one column per channel and ``promotion``
(written by ``benchmarks/mmm_pymc.py``). The model is pymc-marketing's
documented MMM: geometric adstock (``l_max=8``), logistic saturation, yearly
seasonality of order 2, the control; ``fit`` with the sampler's defaults. Not
part of crmstats: pymc-marketing is never one of its dependencies.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd


def main(path: str, out: str, seed: int) -> None:
    t0 = time.perf_counter()
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    t_import = time.perf_counter() - t0
    data = pd.read_csv(path, parse_dates=["week"])
    channels = [c for c in data.columns if c not in ("week", "outcome", "promotion")]
    X, y = data.drop(columns=["outcome"]), data["outcome"]
    model = MMM(date_column="week", channel_columns=channels, control_columns=["promotion"],
                adstock=GeometricAdstock(l_max=8), saturation=LogisticSaturation(),
                yearly_seasonality=2)
    t1 = time.perf_counter()
    model.fit(X, y, random_seed=seed, progressbar=False)
    t_fit = time.perf_counter() - t1
    contrib = model.compute_channel_contribution_original_scale().sum("date")
    roas = contrib / data[channels].sum().to_numpy()
    flat = roas.stack(sample=("chain", "draw"))
    result = {
        "channels": channels,
        "roas_mean": [float(v) for v in flat.mean("sample").to_numpy()],
        "roas_lower": [float(v) for v in flat.quantile(0.025, "sample").to_numpy()],
        "roas_upper": [float(v) for v in flat.quantile(0.975, "sample").to_numpy()],
        "seconds_fit": t_fit, "seconds_import": t_import,
        "divergences": int(model.idata.sample_stats["diverging"].sum()),
    }
    with open(out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))

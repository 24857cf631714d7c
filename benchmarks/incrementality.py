"""Accuracy of incrementality measurement on the simulator, by holdout share and confounding.

Usage: ``python benchmarks/incrementality.py [N_CONTACTS] [SEEDS]`` (defaults
40,000 and 5). For every ``holdout_share`` in 0.05, 0.1, 0.2 and
``confounding`` in 0 and 0.5, simulates the demo CRM per seed and prints
averages over the seeds of:

* ``coverage``: share of channels whose lift test's 95 % interval covers the
  true lift (``truth["channel_lift"]``), and ``halfwidth``: the median
  half-width of those intervals, in conversion-rate points;
* the mean absolute error (share points, over channels) of the credit shares
  against the true incremental shares (``truth["attribution_shares"]``) of:
  the best and the worst journey model (first/last touch, linear, position
  based, Markov order 1, Shapley), the counterfactual ``IncrementalityModel``
  without and with the contacts' features as covariates (engagement score,
  company size, industry, job title: what retargeting in the simulator keys
  on), the lift tests alone, and :func:`calibrate` applied to the
  counterfactual models and to Markov.

This is an accuracy benchmark (no timing); it takes a few minutes.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from crmstats import attribution as A
from crmstats.datasets import simulate_crm

COVARIATES = ["engagement_score", "company_size", "industry", "job_title"]
JOURNEY = ("first touch", "last touch", "linear", "position based", "Markov", "Shapley")


def one(seed: int, n: int, holdout: float, confounding: float) -> dict:
    crm = simulate_crm(seed=seed, n_contacts=n, holdout_share=holdout, confounding=confounding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = A.build_paths(crm.touchpoints, crm.conversions)
        cells = A.build_paths(crm.touchpoints, crm.conversions, contacts=crm.contacts,
                              by=COVARIATES)
    truth = crm.truth["attribution_shares"]
    lifts = A.lift_test(crm.experiments, crm.conversions)
    models = {
        "first touch": A.heuristic(paths, "first_touch"),
        "last touch": A.heuristic(paths, "last_touch"),
        "linear": A.heuristic(paths, "linear"),
        "position based": A.heuristic(paths, "position_based"),
        "Markov": A.MarkovAttribution().fit(paths),
        "Shapley": A.ShapleyAttribution().fit(paths),
    }
    model = A.IncrementalityModel(n_bootstrap=30).fit(paths)
    models["counterfactual"] = model
    models["lift tests alone"] = lifts["incremental_conversions"].clip(lower=0).rename(
        "conversions").to_frame()
    adjusted = A.IncrementalityModel(n_bootstrap=30, covariates=COVARIATES).fit(cells)
    models["counterfactual + contacts"] = adjusted
    models["calibrated counterfactual"] = A.calibrate(model, lifts)
    models["calibrated counterfactual + contacts"] = A.calibrate(adjusted, lifts)
    models["calibrated Markov"] = A.calibrate(models["Markov"], lifts)
    err = A.share_error(A.credit_shares(models), truth)["mae"]
    true = crm.truth["channel_lift"]["lift"].reindex(lifts.index)
    out = {
        "coverage": float(((lifts.lower_95 <= true) & (true <= lifts.upper_95)).mean()),
        "halfwidth": float(((lifts.upper_95 - lifts.lower_95) / 2).median()),
        "best journey model": float(err[list(JOURNEY)].min()),
        "worst journey model": float(err[list(JOURNEY)].max()),
    }
    for name in ("counterfactual", "counterfactual + contacts", "lift tests alone",
                 "calibrated counterfactual", "calibrated counterfactual + contacts",
                 "calibrated Markov"):
        out[name] = float(err[name])
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rows = []
    for confounding in (0.0, 0.5):
        for holdout in (0.05, 0.1, 0.2):
            runs = pd.DataFrame([one(s, n, holdout, confounding) for s in range(1, seeds + 1)])
            row = runs.mean()
            row["confounding"], row["holdout_share"] = confounding, holdout
            rows.append(row)
            print(f"confounding {confounding}, holdout {holdout}: done", flush=True)
    table = pd.DataFrame(rows).set_index(["confounding", "holdout_share"])
    pct = [c for c in table.columns if c not in ("coverage",)]
    shown = table.copy()
    shown[pct] = (100 * shown[pct]).round(2)
    shown["coverage"] = (100 * shown["coverage"]).round(1)
    print(f"n_contacts={n}, seeds 1-{seeds}; share errors and half-widths in points, "
          "coverage in %")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string())
    np.set_printoptions()


if __name__ == "__main__":
    main()

"""Recovery of the simulator's customer effects by the CLV models with covariates (issue 25).

Usage: ``python benchmarks/clv_recovery.py [--seeds 1 2 3 4 5] [--contacts 120000]
[--draws 200]``

For each seed, :func:`crmstats.datasets.simulate_crm` draws a CRM whose
acquisition channels and segments shift purchase rate, dropout and spend by
known coefficients (``truth["clv_coefficients"]``,
:mod:`crmstats.datasets.customer_effects`). BG/NBD and Gamma-Gamma are fitted
with the covariates ``acquisition_channel`` and ``segment``
(:func:`crmstats.clv.fit_channel_value`, reference levels those of the truth),
and two goals are measured:

1. **Coverage**: the share of true coefficients (purchase, dropout, spend; all
   seeds together) inside the fit's 95 % interval. Goal: >= 90 %.
2. **Value per channel**: the expected CLV of a new customer per channel
   (:func:`crmstats.clv.channel_value`, 12 months, 1 % a month) against the
   same quantity at the true parameters over the same customers. Goal: within
   10 % for every channel (the share of channel-seeds within 10 % is printed),
   and the truth inside the 95 % interval.

Not a test: the numbers are printed (with the time and the load average) for
the report; nothing is asserted. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd


def true_models(truth: dict):
    """The BG/NBD and Gamma-Gamma models at the simulator's true parameters."""
    from crmstats.clv import BetaGeoModel, GammaGammaModel

    base = truth["clv_baseline"]
    coef = truth["clv_coefficients"]
    tm = {k: base[k] for k in ("r", "alpha", "a", "b")}
    tm.update({f"purchase:{c}": coef.loc[c, "purchase"] for c in coef.index})
    tm.update({f"dropout:{c}": coef.loc[c, "dropout"] for c in coef.index})
    sm = {k: base[k] for k in ("p", "q", "v")}
    sm.update({f"spend:{c}": coef.loc[c, "spend"] for c in coef.index})
    unit = truth["time_unit_bgnbd"]
    return BetaGeoModel.from_params(tm, time_unit=unit), GammaGammaModel.from_params(
        sm, time_unit=unit)


def one_seed(seed: int, n_contacts: int, n_draws: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coefficient coverage and channel values of one simulated CRM."""
    from crmstats import clv
    from crmstats.datasets import simulate_crm
    from crmstats.datasets.customer_effects import REFERENCE

    crm = simulate_crm(seed=seed, n_contacts=n_contacts)
    truth = crm.truth
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit=truth["time_unit_bgnbd"],
                              observation_end=truth["observation_end"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = clv.fit_channel_value(summary, crm.customers, reference=dict(REFERENCE),
                                   n_draws=n_draws, seed=seed)
    coef = truth["clv_coefficients"]
    rows = []
    for model, processes in ((cv.transaction_model, ("purchase", "dropout")),
                             (cv.spend_model, ("spend",))):
        sm = model.summary_
        for process in processes:
            for cov in coef.index:
                name = f"{process}:{cov}"
                true = float(coef.loc[cov, process])
                rows.append({"seed": seed, "coefficient": name, "truth": true,
                             "estimate": sm.loc[name, "estimate"],
                             "lower_95": sm.loc[name, "lower_95"],
                             "upper_95": sm.loc[name, "upper_95"],
                             "covered": sm.loc[name, "lower_95"] <= true
                             <= sm.loc[name, "upper_95"]})
    tm_true, sm_true = true_models(truth)
    known = crm.customers[crm.customers["customer_id"].isin(cv.covariates.index)]
    true_value = clv.channel_value(tm_true, sm_true, known, cv.covariates, n_draws=0)
    values = cv.values.copy()
    values["true_clv"] = true_value["clv"]
    values["relative_error"] = values["clv"] / values["true_clv"] - 1
    values["covered"] = ((values["clv_lower_95"] <= values["true_clv"])
                         & (values["true_clv"] <= values["clv_upper_95"]))
    values["seed"] = seed
    return pd.DataFrame(rows), values


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--contacts", type=int, default=120_000)
    parser.add_argument("--draws", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; seeds {args.seeds}, "
          f"{args.contacts:,} contacts each, {args.draws} parameter draws")
    coefs, values = [], []
    for seed in args.seeds:
        t0 = time.perf_counter()
        c, v = one_seed(seed, args.contacts, args.draws)
        coefs.append(c)
        values.append(v)
        print(f"seed {seed}: {int(v['customers'].sum()):,} customers, coverage "
              f"{c['covered'].mean():.0%}, channel CLV error median "
              f"{v['relative_error'].abs().median():.1%} max "
              f"{v['relative_error'].abs().max():.1%} ({time.perf_counter() - t0:.0f} s)")
    coefs = pd.concat(coefs, ignore_index=True)
    values = pd.concat(values)
    pd.set_option("display.width", 160)
    print("\nCoverage of the 95 % intervals by process (all seeds):")
    coefs["process"] = coefs["coefficient"].str.split(":").str[0]
    print(coefs.groupby("process")["covered"].agg(["mean", "sum", "count"]).to_string())
    total = coefs["covered"].mean()
    print(f"\nAll coefficients: {coefs['covered'].sum()} of {len(coefs)} covered "
          f"({total:.1%}); goal >= 90 %: {'met' if total >= 0.9 else 'NOT met'}")
    print("\nExpected CLV of a new customer per channel, estimate vs truth (all seeds):")
    per = values.reset_index().groupby("acquisition_channel").agg(
        customers=("customers", "mean"), true_clv=("true_clv", "mean"),
        mean_abs_error=("relative_error", lambda e: e.abs().mean()),
        max_abs_error=("relative_error", lambda e: e.abs().max()),
        interval_covers=("covered", "mean"))
    print(per.round(3).to_string())
    within = (values["relative_error"].abs() <= 0.10).mean()
    print(f"\nChannel-seeds within 10 % of the truth: {within:.1%} "
          f"({int((values['relative_error'].abs() <= 0.10).sum())} of {len(values)}); "
          f"truth inside the 95 % interval: {values['covered'].mean():.1%}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

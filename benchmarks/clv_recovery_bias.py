"""Where the small systematic part of the channel CLV error comes from (issue 25's accuracy goal).

Usage: ``python benchmarks/clv_recovery_bias.py [--seeds 1 ... 20] [--contacts 120000]``
(about 15 s a seed at 120,000 contacts on the shared 2-core machine).

:mod:`clv_recovery` finds the error of a new customer's expected CLV per
channel to be sampling noise with a mean slightly below 0 (about -1 % at
120,000 contacts). This splits that mean, paired on the same simulated CRMs,
into:

1. **the daily summary**: :func:`crmstats.clv.rfm_summary` with ``period="D"``
   merges purchases of one customer on one day into one occasion (and counts
   recency and T in whole days); the same orders summarised exactly (each
   order an occasion, exact times) give the difference;
2. **the estimator**: purchases drawn from the models themselves
   (:func:`clv_recovery.draw_repeat_purchases`) for the same customers (their
   covariates and exact T), so that no property of the simulator's data can
   play a part: what is left is the maximum-likelihood fit's own small-sample
   bias of the value (a non-linear function of the estimates).

Each figure is the mean over seeds of the channels' mean relative error
(estimate / truth - 1) with its standard error; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd
from clv_recovery import draw_repeat_purchases, true_models


def _weeks(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / (7 * 86400)


def exact_summary(transactions: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Each order an occasion, recency and T in exact weeks (no merging, no whole days)."""
    buys = transactions[transactions["amount"] >= 0].sort_values(
        ["customer_id", "timestamp", "order_id"], kind="mergesort")
    repeat = buys[buys.duplicated("customer_id")]  # every order but each customer's first
    g = repeat.groupby("customer_id")
    start = buys.groupby("customer_id")["timestamp"].min()
    out = pd.DataFrame({"T": _weeks(end - start)})
    out["frequency"] = g.size().reindex(out.index).fillna(0).astype(float)
    last = g["timestamp"].max()
    out["recency"] = _weeks(last - start.reindex(last.index)).reindex(out.index).fillna(0.0)
    out["monetary_value"] = g["amount"].mean().reindex(out.index).fillna(0.0)
    return out[["frequency", "recency", "T", "monetary_value"]]


def model_summary(crm, rng: np.random.Generator) -> pd.DataFrame:
    """The same customers' purchases drawn from the models (true parameters, exact T)."""
    from crmstats.datasets.customer_effects import customer_parameters

    truth = crm.truth
    cust = crm.customers.set_index("customer_id")
    par = customer_parameters(cust["acquisition_channel"].to_numpy(),
                              cust["segment"].to_numpy(), list(truth["channels"]))
    T = _weeks(pd.Timestamp(truth["observation_end"]) - cust["acquired_at"]).to_numpy()
    owner, when, amount = draw_repeat_purchases(par, T, rng)
    n = len(T)
    x = np.bincount(owner, minlength=n).astype(float)
    recency = np.zeros(n)
    np.maximum.at(recency, owner, when)
    total = np.bincount(owner, weights=amount, minlength=n)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": T,
                         "monetary_value": np.where(x > 0, total / np.maximum(x, 1), 0.0)},
                        index=cust.index)


def one_seed(seed: int, n_contacts: int) -> dict:
    """The channels' mean relative error of a new customer's CLV, three ways, on one CRM."""
    from crmstats import clv
    from crmstats.datasets import simulate_crm
    from crmstats.datasets.customer_effects import REFERENCE

    crm = simulate_crm(seed=seed, n_contacts=n_contacts)
    truth = crm.truth
    end = pd.Timestamp(truth["observation_end"])
    X = clv.covariate_frame(crm.customers, ["acquisition_channel", "segment"],
                            reference=dict(REFERENCE))
    tm_true, sm_true = true_models(truth)
    true_value = clv.channel_value(tm_true, sm_true, crm.customers, X, n_draws=0)["clv"]
    summaries = {
        "daily summary": clv.rfm_summary(crm.transactions, period="D", time_unit="W",
                                         observation_end=end),
        "exact summary": exact_summary(crm.transactions, end),
        "model's own draws": model_summary(crm, np.random.default_rng(10_000 + seed)),
    }
    out = {}
    for name, summary in summaries.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tm = clv.BetaGeoModel().fit(summary, covariates=X)
            sm = clv.GammaGammaModel().fit(summary, covariates=X)
            value = clv.channel_value(tm, sm, crm.customers, X, n_draws=0, time_unit="W",
                                      allow_unconverged=True)["clv"]
        out[name] = float((value / true_value - 1).mean())
    out["customers"] = len(summaries["daily summary"])
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 21)))
    parser.add_argument("--contacts", type=int, default=120_000)
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; seeds {args.seeds}, "
          f"{args.contacts:,} contacts")
    rows = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        row = one_seed(seed, args.contacts)
        rows.append(row)
        print(f"seed {seed}: {row['customers']:,} customers; " + ", ".join(
            f"{k} {v:+.2%}" for k, v in row.items() if k != "customers")
            + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    r = pd.DataFrame(rows)
    k = len(r)

    def mean_se(s: pd.Series) -> str:
        return f"{s.mean():+.2%} +- {s.std(ddof=1) / np.sqrt(k):.2%}" if k > 1 else \
            f"{s.mean():+.2%}"

    print(f"\nMean relative error of a new customer's CLV per channel, over {k} seeds "
          f"(~{r['customers'].mean():,.0f} customers each):")
    for name in ("daily summary", "exact summary", "model's own draws"):
        print(f"  {name:<18} {mean_se(r[name])}")
    print(f"  merging same-day purchases (daily - exact, paired): "
          f"{mean_se(r['daily summary'] - r['exact summary'])}")
    beyond = r["exact summary"] - r["model's own draws"]
    print(f"  the simulator's data beyond the model (exact - model's own draws): "
          f"{mean_se(beyond)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

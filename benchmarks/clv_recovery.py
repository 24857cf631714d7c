"""Recovery of the simulator's customer effects by the CLV models with covariates (issue 25).

Usage: ``python benchmarks/clv_recovery.py [--seeds 1 2 3 4 5] [--contacts 120000 400000]
[--draws 200] [--mc-draws 200000] [--csv out.csv]`` (about 2 minutes a size at 120,000
contacts and 5 at 400,000 on the shared 2-core machine).

For each size and seed, :func:`crmstats.datasets.simulate_crm` draws a CRM whose
acquisition channels and segments shift purchase rate, dropout and spend by
known coefficients (``truth["clv_coefficients"]``,
:mod:`crmstats.datasets.customer_effects`). BG/NBD and Gamma-Gamma are fitted
with the covariates ``acquisition_channel`` and ``segment``
(:func:`crmstats.clv.fit_channel_value`, reference levels those of the truth),
and these are measured:

1. **Coverage**: the share of true coefficients (purchase, dropout, spend; all
   seeds together) inside the fit's 95 % interval. Goal: >= 90 %.
2. **Value per channel**: the expected CLV of a new customer per channel
   (:func:`crmstats.clv.channel_value`, 12 months, 1 % a month) against the
   truth: the same quantity at the true parameters over the same customers
   (so the same mix of segments within each channel). Goal: within 10 % for
   every channel-seed. Printed per channel and seed with the channel's
   customers, and beside it the coverage of the 95 % intervals.
3. **Noise or bias**: whether the misses are sampling noise or a bias. The
   truth's definition is checked first against the simulator itself: a
   Monte Carlo of new customers drawn by the simulator's story (Gamma
   purchase rates, a Poisson process, Beta-geometric dropout after a
   purchase, Gamma-Gamma spend, each purchase discounted by the month it
   falls in), written here independently of the models' closed forms, per
   (channel, segment) pattern, in units of its standard error. Then, over the
   seeds: each channel's mean signed error with its standard error (a bias
   shows as a mean far from 0 in those units), the errors standardised by the
   intervals' half-widths (noise: about standard normal), and how the errors
   shrink with the size (noise: as 1 / sqrt(customers)).
4. **The size at which the goal is met**: observed (every channel-seed within
   10 %) at each size asked for, and projected from the intervals: the
   contacts at which the smallest channel's 95 % interval is within ±10 %
   (noise shrinks as 1 / sqrt(customers)).

Not a test: the numbers are printed (with the time and the load average) for
the report; nothing is asserted. The machine is shared: timings are noisy.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
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


def draw_repeat_purchases(par: dict, T: np.ndarray, rng: np.random.Generator):
    """Draw each customer's repeat purchases over ``(0, T]`` by the simulator's story.

    ``par``: per customer (arrays, or one value each) ``r, alpha, a, b, p, q,
    v`` (weeks); ``T`` the weeks observed per customer. Purchase rate ``λ ~
    Gamma(r, rate alpha)``, repeat purchases a Poisson process, dropout after
    repeat purchase ``j ~ Geometric(p)`` with ``p ~ Beta(a, b)``, each order
    ``~ Gamma(p, rate ν)`` with ``ν ~ Gamma(q, rate v)`` — the models' own
    assumptions, written here independently of their closed forms.

    Returns ``(owner, when, amount)``: one entry per purchase, in time order
    within each customer.
    """
    T = np.asarray(T, dtype=float)
    n = len(T)
    lam = rng.gamma(par["r"], 1.0 / np.asarray(par["alpha"]), n)
    drop = rng.beta(par["a"], par["b"], n)
    nu = rng.gamma(par["q"], 1.0 / np.asarray(par["v"]), n)
    in_window = rng.poisson(lam * T)
    bought = np.minimum(in_window, rng.geometric(drop))
    owner = np.repeat(np.arange(n), in_window)
    when = rng.random(len(owner)) * np.repeat(T, in_window)
    order = np.lexsort((when, owner))
    when, owner = when[order], owner[order]
    rank = np.arange(len(when)) - np.repeat(np.cumsum(in_window) - in_window, in_window)
    keep = rank < np.repeat(bought, in_window)
    when, owner = when[keep], owner[keep]
    shape = np.broadcast_to(np.asarray(par["p"], dtype=float), (n,))[owner]
    return owner, when, rng.gamma(shape, 1.0 / nu[owner])


def simulated_new_customer_value(par: dict, n: int, horizon_months: int, discount_rate: float,
                                 rng: np.random.Generator) -> tuple[float, float]:
    """Mean and standard error of a new customer's discounted repeat value, by simulation.

    ``par``: one customer's ``r, alpha, a, b, p, q, v`` (weeks); ``n`` new
    customers are drawn by :func:`draw_repeat_purchases` over the horizon,
    and a purchase at week ``t`` is discounted by ``(1 + rate)^-m`` for the
    month ``m = ceil(t / month)`` it falls in.
    """
    month = 365.25 / 12 / 7
    owner, when, amount = draw_repeat_purchases(par, np.full(n, horizon_months * month), rng)
    factor = (1.0 + discount_rate) ** -np.ceil(when / month)
    value = np.bincount(owner, weights=amount * factor, minlength=n)
    return float(value.mean()), float(value.std(ddof=1) / np.sqrt(n))


def check_truth(truth: dict, horizon_months: int, discount_rate: float, n: int,
                seed: int = 0) -> pd.DataFrame:
    """The truth's definition against the simulator: formula vs Monte Carlo, per pattern."""
    from crmstats import clv
    from crmstats.datasets.customer_effects import customer_parameters

    channels = list(truth["channels"])
    combos = [(c, s) for c in channels for s in ("retail", "key_account")]
    chan = np.array([c for c, _ in combos])
    seg = np.array([s for _, s in combos])
    par = customer_parameters(chan, seg, channels)
    ids = [f"{c}/{s}" for c, s in combos]
    X = par["design"].set_axis(ids)
    customers = pd.DataFrame({"customer_id": ids, "pattern": ids})
    tm, sm = true_models(truth)
    formula = clv.channel_value(tm, sm, customers, X, by="pattern", n_draws=0,
                                horizon_months=horizon_months, discount_rate=discount_rate)
    rng = np.random.default_rng(seed)
    rows = []
    for i, name in enumerate(ids):
        mean, se = simulated_new_customer_value({k: par[k][i] for k in "r alpha a b p q v".split()},
                                                n, horizon_months, discount_rate, rng)
        rows.append({"pattern": name, "formula": formula.loc[name, "clv"], "simulated": mean,
                     "simulated_se": se})
    out = pd.DataFrame(rows).set_index("pattern")
    out["relative_difference"] = out["formula"] / out["simulated"] - 1
    out["z"] = (out["formula"] - out["simulated"]) / out["simulated_se"]
    return out


def one_seed(seed: int, n_contacts: int, n_draws: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                  dict]:
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
    # the interval's half-width on the log scale, as a standard error of log(clv) (noise: the
    # log error over it is about standard normal)
    values["log_se"] = np.log(values["clv_upper_95"] / values["clv_lower_95"]) / (2 * 1.96)
    values["z"] = np.log(values["clv"] / values["true_clv"]) / values["log_se"]
    values["seed"] = seed
    values["contacts"] = n_contacts
    return pd.DataFrame(rows), values, truth


def report_size(coefs: pd.DataFrame, values: pd.DataFrame, n_contacts: int) -> None:
    """Print the goals at one size: coverage, channel values per seed, noise or bias."""
    print(f"\n=== {n_contacts:,} contacts: {values['seed'].nunique()} seeds, "
          f"{values.groupby('seed')['customers'].sum().mean():,.0f} customers a seed ===")
    coefs = coefs.assign(process=coefs["coefficient"].str.split(":").str[0])
    by = coefs.groupby("process")["covered"].agg(["sum", "count"])
    print("Coefficients inside their 95 % interval: " + ", ".join(
        f"{p} {r['sum']}/{r['count']}" for p, r in by.iterrows())
        + f"; all {coefs['covered'].sum()} of {len(coefs)} ({coefs['covered'].mean():.1%}; "
        f"goal >= 90 %: {'met' if coefs['covered'].mean() >= 0.9 else 'NOT met'})")
    v = values.reset_index()
    print("\nRelative error of a new customer's CLV per channel (estimate / truth - 1), "
          "by seed; * = truth outside the 95 % interval:")
    cell = (v["relative_error"] * 100).map("{:+.1f}%".format) + np.where(v["covered"], " ",
                                                                          "*")
    table = v.assign(cell=cell).pivot(index="acquisition_channel", columns="seed", values="cell")
    per = v.groupby("acquisition_channel").agg(
        customers=("customers", "mean"), true_clv=("true_clv", "mean"),
        half_width=("log_se", lambda s: 1.96 * s.mean()),
        mean_error=("relative_error", "mean"),
        error_se=("relative_error", lambda e: e.std(ddof=1) / np.sqrt(len(e))),
        max_abs_error=("relative_error", lambda e: e.abs().max()),
        covered=("covered", "mean"))
    per["bias_t"] = per["mean_error"] / per["error_se"]
    out = pd.concat([per[["customers", "true_clv"]].round(1), table], axis=1)
    out = out.sort_values("customers")
    print(out.to_string())
    print("\nNoise or bias, per channel over the seeds (half_width: the 95 % interval's "
          "mean half-width, relative; bias_t: mean error / its standard error):")
    cols = ["customers", "half_width", "mean_error", "error_se", "bias_t", "max_abs_error",
            "covered"]
    print(per[cols].sort_values("customers").to_string(float_format=lambda x: f"{x:.3f}"))
    within = v["relative_error"].abs() <= 0.10
    z = v["z"].to_numpy(dtype=float)
    print(f"\nChannel-seeds within 10 % of the truth: {int(within.sum())} of {len(v)} "
          f"({within.mean():.1%}; goal: all). Truth inside the 95 % interval: "
          f"{int(v['covered'].sum())} of {len(v)} ({v['covered'].mean():.1%}). Log errors over "
          f"the intervals' standard errors: mean {np.nanmean(z):+.2f}, sd {np.nanstd(z):.2f} "
          "(noise: about 0 and 1). Channels whose mean error is more than 3 standard errors "
          f"from 0: {int((per['bias_t'].abs() > 3).sum())} of {len(per)}.")
    # the channels of one seed share the base parameters' errors: test the mean over seeds
    by_seed = v.groupby("seed")["z"].mean()
    if len(by_seed) > 1:
        t = by_seed.mean() / (by_seed.std(ddof=1) / np.sqrt(len(by_seed)))
        print(f"Bias check over the {len(by_seed)} seeds (each seed's mean standardised log "
              f"error): mean {by_seed.mean():+.2f}, t = {t:+.2f} -> "
              + ("no bias detectable: the misses are sampling noise" if abs(t) < 2.5
                 else "a bias: look for it"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--contacts", type=int, nargs="+", default=[120_000, 400_000])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--mc-draws", type=int, default=200_000,
                        help="simulated new customers per pattern for the truth's check (0: skip)")
    parser.add_argument("--csv", help="write every channel-seed row here")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}; seeds {args.seeds}, "
          f"contacts {args.contacts}, {args.draws} parameter draws")
    everything = []
    per_size = {}
    truth = None
    for n_contacts in args.contacts:
        coefs, values = [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            c, v, truth = one_seed(seed, n_contacts, args.draws)
            coefs.append(c)
            values.append(v)
            print(f"{n_contacts:,} contacts, seed {seed}: {int(v['customers'].sum()):,} "
                  f"customers, coefficients covered {c['covered'].mean():.0%}, channel CLV "
                  f"error max {v['relative_error'].abs().max():.1%} "
                  f"({time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f})",
                  flush=True)
        coefs, values = pd.concat(coefs, ignore_index=True), pd.concat(values)
        report_size(coefs, values, n_contacts)
        everything.append(values)
        per_size[n_contacts] = values
    if args.mc_draws and truth is not None:
        check = check_truth(truth, 12, 0.01, args.mc_draws)
        print(f"\nThe truth's definition against the simulator ({args.mc_draws:,} simulated new "
              "customers per pattern; formula = channel_value at the true parameters):")
        print(check.to_string(float_format=lambda x: f"{x:.4f}"))
        print(f"largest |z| {check['z'].abs().max():.2f} (noise: below ~3 for "
              f"{len(check)} patterns); largest relative difference "
              f"{check['relative_difference'].abs().max():.2%}")
    print("\nThe size at which every channel-seed is within 10 %:")
    for n_contacts, values in per_size.items():
        within = (values["relative_error"].abs() <= 0.10).mean()
        smallest = values.groupby(level=0)["customers"].mean().idxmin()
        hw = 1.96 * values.loc[[smallest], "log_se"].mean()
        need = n_contacts * (hw / np.log(1.10)) ** 2
        print(f"  {n_contacts:>9,} contacts: {within:.1%} within 10 %; smallest channel "
              f"{smallest} (~{values.loc[[smallest], 'customers'].mean():.0f} customers) has a "
              f"95 % half-width of ±{np.expm1(hw):.1%}: its interval is within ±10 % from "
              f"~{need:,.0f} contacts")
    if args.csv:
        pd.concat(everything).to_csv(args.csv)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark: CLV summaries and BG/NBD fitting, crmstats beside lifetimes in the same run.

Usage: ``python benchmarks/clv.py [N_CUSTOMERS] [--all-models]`` (default
1,000,000 customers, which gives about 10M transactions).

1. Draws a BG/NBD purchase log (Fader, Hardie & Lee 2005) for ``N_CUSTOMERS``
   customers acquired over a year and observed for three, with Gamma spend, and
   writes it to Parquet in a temporary folder.
2. Summary: lifetimes' ``summary_data_from_transaction_data`` (the anchor)
   beside :func:`crmstats.clv.rfm_summary` on the same in-memory frame and on
   the Parquet path; daily occasions, recency and T in days.
3. Fit: lifetimes' ``BetaGeoFitter`` on the uncompressed per-customer summary
   (the anchor) beside :class:`crmstats.clv.BetaGeoModel` on the same summary
   (which collapses identical rows into weights and takes Newton steps with an
   analytic gradient and Hessian).
   Both estimates are scored with the same likelihood; the script prints the
   relative difference of the log-likelihoods and the largest relative
   parameter difference.

With ``--all-models``, Gamma-Gamma, MBG/NBD and Pareto/NBD are also fitted on
the daily summary beside lifetimes' fitters (one run each; no goal).

Goals (issue 3): summary >= 10x faster, fit >= 20x faster, log-likelihood equal
to 1e-6 relative. Each case runs in a fresh process (time and peak RSS) and
reports the best of three runs, the anchors as well as crmstats.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import report, run_case  # noqa: E402

TRUE = {"r": 0.8, "alpha": 7.0, "a": 0.4, "b": 3.0}  # weekly BG/NBD parameters
OBSERVATION_END = pd.Timestamp("2024-12-31")
START = pd.Timestamp("2022-01-01")


def simulate_log(n_customers: int, seed: int = 7) -> pd.DataFrame:
    """A BG/NBD transaction log: first purchase plus Poisson repeats until dropout."""
    rng = np.random.default_rng(seed)
    birth_days = rng.uniform(0, 365, n_customers)
    horizon_weeks = ((OBSERVATION_END - START).days - birth_days) / 7.0
    lam = rng.gamma(TRUE["r"], 1.0 / TRUE["alpha"], n_customers)
    p = rng.beta(TRUE["a"], TRUE["b"], n_customers)
    # repeats while alive: dropout after each repeat with probability p
    alive_repeats = rng.geometric(np.clip(p, 1e-9, 1.0))
    arrivals = rng.poisson(lam * horizon_weeks)
    n_repeat = np.minimum(arrivals, alive_repeats)
    # the first n_repeat of `arrivals` uniform arrival times, in order
    owner = np.repeat(np.arange(n_customers), arrivals)
    u = rng.uniform(0, 1, owner.size) * horizon_weeks[owner]
    order = np.lexsort((u, owner))
    owner, u = owner[order], u[order]
    rank = np.arange(owner.size) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < n_repeat[owner]
    owner, weeks = owner[keep], u[keep]
    cust = np.concatenate([np.arange(n_customers), owner])
    days = np.concatenate([birth_days, birth_days[owner] + weeks * 7.0])
    nu = rng.gamma(6.0, 1.0 / 20.0, n_customers)  # spend rate per customer
    amount = np.round(rng.gamma(3.0, 1.0 / nu[cust]), 2)
    frame = pd.DataFrame(
        {
            "customer_id": cust.astype("int64"),
            "timestamp": START + pd.to_timedelta(np.round(days * 86400), unit="s"),
            "amount": amount,
        }
    )
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def main(n_customers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tx_path = tmp / "tx.parquet"
        log = simulate_log(n_customers)
        log.to_parquet(tx_path, index=False)
        n_tx = len(log)
        del log
        end = repr(str(OBSERVATION_END.date()))
        load = f"import pandas as pd; tx = pd.read_parquet({str(tx_path)!r})"
        lt_sum, cs_sum = tmp / "lifetimes_summary.parquet", tmp / "crmstats_summary.parquet"

        summaries = {
            "lifetimes summary_data_from_tx": run_case(
                load + "; from lifetimes.utils import summary_data_from_transaction_data as f",
                "s = f(tx, 'customer_id', 'timestamp', monetary_value_col='amount', "
                f"observation_period_end={end}, freq='D')",
                after=f"s.to_parquet({str(lt_sum)!r})",
            ),
            "crmstats rfm_summary (DataFrame)": run_case(
                load + "; from crmstats.clv import rfm_summary",
                f"s = rfm_summary(tx, observation_end={end}, freq='D')",
                after=f"s.to_parquet({str(cs_sum)!r})",
            ),
            "crmstats rfm_summary (Parquet)": run_case(
                "from crmstats.clv import rfm_summary",
                f"s = rfm_summary({str(tx_path)!r}, observation_end={end}, freq='D')",
            ),
        }
        a = pd.read_parquet(lt_sum).sort_index()
        b = pd.read_parquet(cs_sum).sort_index()
        a.index = a.index.astype("int64")
        b.index = b.index.astype("int64")
        cols = ["frequency", "recency", "T", "monetary_value"]
        same_index = a.index.equals(b.index)
        diff = (a[cols] - b[cols]).abs().max().max() if same_index else float("nan")
        report(
            f"rfm_summary: {n_tx:,} transactions, {n_customers:,} customers",
            summaries,
            anchor="lifetimes summary_data_from_tx",
        )
        speed = summaries["lifetimes summary_data_from_tx"]["seconds"] / min(
            summaries["crmstats rfm_summary (DataFrame)"]["seconds"],
            summaries["crmstats rfm_summary (Parquet)"]["seconds"],
        )
        print(f"summary speed-up (best crmstats case): {speed:.1f}x  (goal >= 10x)")
        print(f"same customers: {same_index}; largest absolute difference: {diff:.3g}")

        weekly_sum = tmp / "weekly_summary.parquet"
        run_case(
            "from crmstats.clv import rfm_summary",
            f"s = rfm_summary({str(tx_path)!r}, observation_end={end}, freq='W')",
            repeat=1,
            after=f"s.to_parquet({str(weekly_sum)!r})",
        )
        for label, path in [("days", cs_sum), ("weeks, purchases merged by week", weekly_sum)]:
            fit_case(label, path, n_customers)
        if "--all-models" in sys.argv:
            other_models(cs_sum, n_customers)


#: The other models with a lifetimes counterpart: (crmstats class, lifetimes fitter, fit call).
OTHER_MODELS = [
    ("GammaGammaModel", "GammaGammaFitter",
     "r = s[s['frequency'] > 0]; m = F().fit(r['frequency'], r['monetary_value'])"),
    ("ModifiedBetaGeoModel", "ModifiedBetaGeoFitter",
     "m = F().fit(s['frequency'], s['recency'], s['T'])"),
    ("ParetoNBDModel", "ParetoNBDFitter", "m = F().fit(s['frequency'], s['recency'], s['T'])"),
]


def other_models(summary_path: Path, n_customers: int) -> None:
    """Gamma-Gamma, MBG/NBD and Pareto/NBD beside lifetimes' fitters (one run each)."""
    read = f"import pandas as pd; s = pd.read_parquet({str(summary_path)!r})"
    summary = pd.read_parquet(summary_path)
    for ours, theirs, call in OTHER_MODELS:
        fits = {
            f"lifetimes {theirs}": run_case(
                read + f"; from lifetimes import {theirs} as F", call, repeat=1,
                after="extra = {'params': {k: float(v) for k, v in m.params_.items()}}",
            ),
            f"crmstats {ours}": run_case(
                read + f"; from crmstats.clv import {ours}", f"m = {ours}().fit(s)", repeat=1,
                after="extra = {'params': m.params_.to_dict()}",
            ),
        }
        report(f"{ours} fit on {n_customers:,} customers (days)", fits,
               anchor=f"lifetimes {theirs}")
        import crmstats.clv as clv

        scorer = getattr(clv, ours)()
        ll = {k: scorer.log_likelihood(summary, pd.Series(v["params"])) for k, v in fits.items()}
        ll_lt, ll_cs = ll[f"lifetimes {theirs}"], ll[f"crmstats {ours}"]
        speed = fits[f"lifetimes {theirs}"]["seconds"] / fits[f"crmstats {ours}"]["seconds"]
        print(f"speed-up: {speed:.1f}x; log-likelihood lifetimes {ll_lt:,.4f}, crmstats "
              f"{ll_cs:,.4f} (crmstats higher by {ll_cs - ll_lt:.3g})")


def fit_case(label: str, summary_path: Path, n_customers: int) -> None:
    """Fit BG/NBD with lifetimes and crmstats on the same summary; compare speed and fit."""
    read = f"import pandas as pd; s = pd.read_parquet({str(summary_path)!r})"
    fits = {
        "lifetimes BetaGeoFitter": run_case(
            read + "; from lifetimes import BetaGeoFitter",
            "m = BetaGeoFitter().fit(s['frequency'], s['recency'], s['T'])",
            after="extra = {'params': m.params_.to_dict()}",
        ),
        "crmstats BetaGeoModel": run_case(
            read + "; from crmstats.clv import BetaGeoModel",
            "m = BetaGeoModel().fit(s)",
            after="extra = {'params': m.params_.to_dict(), 'rows': m.n_rows_}",
        ),
    }
    report(
        f"BG/NBD fit on {n_customers:,} customers (recency and T in {label})",
        fits,
        anchor="lifetimes BetaGeoFitter",
    )
    from crmstats.clv import BetaGeoModel

    summary = pd.read_parquet(summary_path)
    scorer = BetaGeoModel()
    lt_params = pd.Series(fits["lifetimes BetaGeoFitter"]["params"])
    cs_params = pd.Series(fits["crmstats BetaGeoModel"]["params"])
    ll_lt = scorer.log_likelihood(summary, lt_params)
    ll_cs = scorer.log_likelihood(summary, cs_params)
    fit_speed = (
        fits["lifetimes BetaGeoFitter"]["seconds"] / fits["crmstats BetaGeoModel"]["seconds"]
    )
    print(
        f"fit speed-up: {fit_speed:.1f}x  (goal >= 20x); "
        f"distinct summary rows: {fits['crmstats BetaGeoModel']['rows']:,}"
    )
    print(
        f"log-likelihood: lifetimes {ll_lt:,.4f}, crmstats {ll_cs:,.4f}, "
        f"relative difference {abs(ll_cs - ll_lt) / abs(ll_lt):.2e}  (goal <= 1e-6)"
    )
    print(
        "largest relative parameter difference crmstats vs lifetimes: "
        f"{((cs_params - lt_params).abs() / lt_params).max():.2e}"
    )
    if label == "days":
        weekly = cs_params.copy()
        weekly["alpha"] = weekly["alpha"] / 7.0  # days -> weeks, to compare with the truth
        print(
            "crmstats estimates (alpha in weeks) vs simulated truth: "
            + ", ".join(f"{k} {weekly[k]:.3f}/{v}" for k, v in TRUE.items())
        )


if __name__ == "__main__":
    sizes = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(sizes[0]) if sizes else 1_000_000)

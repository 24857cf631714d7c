"""Benchmark: CLV summaries and BG/NBD fitting, crmstats beside lifetimes in the same run.

Usage: ``python benchmarks/clv.py [N_CUSTOMERS] [--rounds R] [--pipeline-rows N]
[--all-models] [--no-pipeline] [--fits-only]``
(defaults: 1,000,000 customers, about 9.3M transactions; 3 rounds;
a 2,000,000-row log for the whole-process pipeline).

Every comparison runs R rounds; each round runs every case once, in a fresh
process, in an order that alternates from round to round, and the script prints
each case's median and range and each ratio's median and range over the rounds
(both sides of a ratio measured in the same round). The load average is printed
before and after: on a shared machine the spread is part of the result.

1. **Whole process** (what a user waits for: interpreter start, imports, reading
   the Parquet file, computing): ``rfm_summary`` + BG/NBD fit on a ~2M-row log.
   lifetimes' documented way: ``summary_data_from_transaction_data``, then the
   summary collapsed to distinct (frequency, recency, T) rows and
   ``BetaGeoFitter.fit(..., weights=...)``. crmstats: ``rfm_summary`` on the read
   frame and on the Parquet path, then ``BetaGeoModel().fit``. Wall time from the
   parent, CPU time and peak RSS from the child's rusage (as ``/usr/bin/time -v``).
   Goal: >= 3x faster than lifetimes.
2. **Summary, in-process** on N_CUSTOMERS customers (timed call only, data already
   in memory): lifetimes' ``summary_data_from_transaction_data``, crmstats'
   ``rfm_summary`` on the frame and on the Parquet path, and the bare DuckDB SQL
   of the same summary on the same frame (no input checks, no sorting, fetched
   as a DataFrame). Goals: within 1.2x of the bare query, >= 7x lifetimes.
   Every side is warmed by one call on 1,000 rows (connections, compiled
   code, lazily imported modules): the timed call is the computation.
3. **Fit, in-process** on the daily and the weekly summary of those customers:
   lifetimes' ``BetaGeoFitter`` with ``weights=`` (the collapse to distinct rows
   timed with it) beside ``BetaGeoModel().fit`` (which collapses rows itself).
   Both estimates are scored with the same likelihood. Goal: weekly >= 20x.

With ``--all-models``, Gamma-Gamma, MBG/NBD and Pareto/NBD are also fitted on
the daily summary beside lifetimes' fitters (one run each; no goal).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (  # noqa: E402
    load_note,
    paired_ratios,
    report,
    report_rounds,
    rounds,
    run_case,
    spread,
    whole_process,
)

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


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


#: The summary as one SQL statement on the registered frame ``tx`` (DuckDB dialect), with the
#: same semantics as rfm_summary (amounts summed as exact decimals, as crmstats does).
BARE_SQL = """
WITH occ AS (
  SELECT customer_id, floor(epoch("timestamp") / 86400) AS period,
         sum(CAST(amount AS DECIMAL(38, 9))) AS value
  FROM tx WHERE amount >= 0 AND "timestamp" <= TIMESTAMP '{end}'
  GROUP BY customer_id, period)
SELECT customer_id, CAST(count(*) - 1 AS DOUBLE) AS frequency,
       max(period) - min(period) AS recency,
       floor(epoch(TIMESTAMP '{end}') / 86400) - min(period) AS T,
       CAST(CASE WHEN count(*) > 1 THEN (sum(value) - arg_min(value, period)) / (count(*) - 1)
            ELSE 0 END AS DOUBLE) AS monetary_value
FROM occ GROUP BY customer_id
"""


def pipeline(tmp: Path, n_rows: int, n_rounds: int) -> None:
    """Whole process: import + read + rfm_summary + BG/NBD fit, crmstats vs lifetimes."""
    n_customers = int(round(n_rows / 9.34))  # the simulator draws ~9.34 rows per customer
    log = simulate_log(n_customers, seed=11)
    path = tmp / "pipeline.parquet"
    log.to_parquet(path, index=False)
    end = repr(str(OBSERVATION_END.date()))
    params = "import json; print(json.dumps({'params': {k: float(v) for k, v in p.items()}}))"
    lifetimes = f"""
        import pandas as pd
        from lifetimes import BetaGeoFitter
        from lifetimes.utils import summary_data_from_transaction_data
        tx = pd.read_parquet({str(path)!r})
        s = summary_data_from_transaction_data(tx, "customer_id", "timestamp",
                                               observation_period_end={end}, freq="D")
        g = s.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
        p = BetaGeoFitter().fit(g["frequency"], g["recency"], g["T"], weights=g["n"]).params_
        {params}
        """
    ours = """
        import pandas as pd
        from crmstats.clv import BetaGeoModel, rfm_summary
        {read}
        s = rfm_summary({source}, observation_end={end}, freq="D", monetary=False)
        p = BetaGeoModel().fit(s).params_
        {params}
        """
    cases = {
        "lifetimes (summary, collapse, fit weights=)": lambda: whole_process(lifetimes),
        "crmstats (read frame, rfm_summary, fit)": lambda: whole_process(ours.format(
            read=f"tx = pd.read_parquet({str(path)!r})", source="tx", end=end, params=params)),
        "crmstats (rfm_summary on the Parquet path, fit)": lambda: whole_process(ours.format(
            read="", source=repr(str(path)), end=end, params=params)),
    }
    print(f"\n[1] whole process, {len(log):,} transactions, {n_customers:,} customers; "
          f"{load_note()}")
    res = rounds(cases, n_rounds)
    print(f"after: {load_note()}")
    report_rounds("whole process: import + read + rfm_summary + BG/NBD fit", res)
    anchor = "lifetimes (summary, collapse, fit weights=)"
    for name in list(cases)[1:]:
        print(f"lifetimes / {name}: {spread(paired_ratios(res, anchor, name))}x  (goal >= 3x)")
    a = pd.Series(res[anchor][0]["params"])
    b = pd.Series(res["crmstats (read frame, rfm_summary, fit)"][0]["params"])
    print(f"largest relative parameter difference: {((a - b).abs() / a.abs()).max():.2e}")


def summaries(tmp: Path, tx_path: Path, n_customers: int, n_tx: int, n_rounds: int) -> Path:
    """In-process rfm_summary vs lifetimes vs the bare DuckDB query; returns the daily summary."""
    end = repr(str(OBSERVATION_END.date()))
    load = f"import pandas as pd; tx = pd.read_parquet({str(tx_path)!r})"
    lt_sum, cs_sum = tmp / "lifetimes_summary.parquet", tmp / "crmstats_summary.parquet"
    sql = BARE_SQL.format(end=str(OBSERVATION_END.date()))
    # every side is warmed by one call on 1,000 rows first (connections, compiled code, lazy
    # imports): the timed call is the computation; import costs are in the whole-process case
    warm = "; {call}"
    cases = {
        "lifetimes summary_data_from_transaction_data": lambda: run_case(
            load + "; from lifetimes.utils import summary_data_from_transaction_data as f"
            + warm.format(call="f(tx.head(1000), 'customer_id', 'timestamp', "
                          f"monetary_value_col='amount', observation_period_end={end})"),
            "s = f(tx, 'customer_id', 'timestamp', monetary_value_col='amount', "
            f"observation_period_end={end}, freq='D')",
            repeat=1, after=f"s.to_parquet({str(lt_sum)!r})"),
        "crmstats rfm_summary (DataFrame)": lambda: run_case(
            load + "; from crmstats.clv import rfm_summary"
            + warm.format(call=f"rfm_summary(tx.head(1000), observation_end={end})"),
            f"s = rfm_summary(tx, observation_end={end}, freq='D')",
            repeat=1, after=f"s.to_parquet({str(cs_sum)!r})"),
        "crmstats rfm_summary (Parquet path)": lambda: run_case(
            "import pandas as pd; from crmstats.clv import rfm_summary"
            + warm.format(call=f"rfm_summary(pd.read_parquet({str(tx_path)!r}).head(1000), "
                          f"observation_end={end})"),
            f"s = rfm_summary({str(tx_path)!r}, observation_end={end}, freq='D')", repeat=1),
        "bare DuckDB SQL on the frame": lambda: run_case(
            load + f"; import duckdb; con = duckdb.connect(); q = {sql!r}; "
            "con.register('tx', tx.head(1000)); con.sql(q).df(); con.register('tx', tx)",
            "s = con.sql(q).df()", repeat=1),
    }
    print(f"\n[2] rfm_summary in-process, {n_tx:,} transactions, {n_customers:,} customers; "
          f"{load_note()}")
    res = rounds(cases, n_rounds)
    print(f"after: {load_note()}")
    report_rounds("rfm_summary, timed call only (each round in fresh processes)", res)
    lt, ours = "lifetimes summary_data_from_transaction_data", "crmstats rfm_summary (DataFrame)"
    print(f"lifetimes / crmstats (frame): {spread(paired_ratios(res, lt, ours))}x  (goal >= 7x)")
    print(f"crmstats (frame) / bare DuckDB SQL: "
          f"{spread(paired_ratios(res, ours, 'bare DuckDB SQL on the frame'))}x  (goal <= 1.2x)")
    path_ratio = paired_ratios(res, "crmstats rfm_summary (Parquet path)",
                               "bare DuckDB SQL on the frame")
    print(f"crmstats (Parquet path) / bare DuckDB SQL on the frame: {spread(path_ratio)}x")
    a = pd.read_parquet(lt_sum).sort_index()
    b = pd.read_parquet(cs_sum).sort_index()
    a.index, b.index = a.index.astype("int64"), b.index.astype("int64")
    cols = ["frequency", "recency", "T", "monetary_value"]
    same = a.index.equals(b.index)
    diff = (a[cols] - b[cols]).abs().max().max() if same else float("nan")
    print(f"same customers: {same}; largest absolute difference: {diff:.3g}")
    return cs_sum


def main(n_customers: int) -> None:
    n_rounds = _arg("--rounds", 3)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "--no-pipeline" not in sys.argv:
            pipeline(tmp, _arg("--pipeline-rows", 2_000_000), n_rounds)
        tx_path = tmp / "tx.parquet"
        log = simulate_log(n_customers)
        log.to_parquet(tx_path, index=False)
        n_tx = len(log)
        del log
        end = repr(str(OBSERVATION_END.date()))
        if "--fits-only" in sys.argv:
            cs_sum = tmp / "crmstats_summary.parquet"
            run_case("from crmstats.clv import rfm_summary",
                     f"s = rfm_summary({str(tx_path)!r}, observation_end={end}, freq='D')",
                     repeat=1, after=f"s.to_parquet({str(cs_sum)!r})")
        else:
            cs_sum = summaries(tmp, tx_path, n_customers, n_tx, n_rounds)
        weekly_sum = tmp / "weekly_summary.parquet"
        run_case(
            "from crmstats.clv import rfm_summary",
            f"s = rfm_summary({str(tx_path)!r}, observation_end={end}, freq='W')",
            repeat=1,
            after=f"s.to_parquet({str(weekly_sum)!r})",
        )
        for label, path in [("days", cs_sum), ("weeks, purchases merged by week", weekly_sum)]:
            fit_case(label, path, n_customers, n_rounds)
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


def fit_case(label: str, summary_path: Path, n_customers: int, n_rounds: int) -> None:
    """Fit BG/NBD with weighted lifetimes and with crmstats on the same summary."""
    read = f"import pandas as pd; s = pd.read_parquet({str(summary_path)!r})"
    anchor, ours = "lifetimes BetaGeoFitter, weights=", "crmstats BetaGeoModel"
    cases = {
        anchor: lambda: run_case(
            read + "; from lifetimes import BetaGeoFitter; "
            "BetaGeoFitter().fit(s['frequency'][:2000], s['recency'][:2000], s['T'][:2000])",
            "g = s.groupby(['frequency', 'recency', 'T']).size().rename('n').reset_index(); "
            "m = BetaGeoFitter().fit(g['frequency'], g['recency'], g['T'], weights=g['n'])",
            repeat=1, after="extra = {'params': m.params_.to_dict(), 'rows': len(g)}"),
        ours: lambda: run_case(
            read + "; from crmstats.clv import BetaGeoModel; BetaGeoModel().fit(s.head(2000))",
            "m = BetaGeoModel().fit(s)",
            repeat=1, after="extra = {'params': m.params_.to_dict(), 'rows': m.n_rows_}"),
    }
    print(f"\n[3] BG/NBD fit in-process, {n_customers:,} customers, recency and T in {label}; "
          f"{load_note()}")
    res = rounds(cases, n_rounds)
    print(f"after: {load_note()}")
    report_rounds("BG/NBD fit, timed call only (each round in fresh processes)", res)
    goal = "  (goal >= 20x)" if label.startswith("weeks") else ""
    print(f"weighted lifetimes / crmstats: {spread(paired_ratios(res, anchor, ours))}x{goal}; "
          f"distinct rows: lifetimes {res[anchor][0]['rows']:,}, crmstats "
          f"{res[ours][0]['rows']:,}")
    from crmstats.clv import BetaGeoModel

    summary = pd.read_parquet(summary_path)
    scorer = BetaGeoModel()
    lt_params = pd.Series(res[anchor][0]["params"])
    cs_params = pd.Series(res[ours][0]["params"])
    ll_lt = scorer.log_likelihood(summary, lt_params)
    ll_cs = scorer.log_likelihood(summary, cs_params)
    print(
        f"log-likelihood: lifetimes {ll_lt:,.4f}, crmstats {ll_cs:,.4f}, "
        f"relative difference {abs(ll_cs - ll_lt) / abs(ll_lt):.2e}  (goal <= 1e-6); "
        "largest relative parameter difference "
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

"""Benchmark: exact Markov attribution (crmstats) vs ChannelAttribution's simulated markov_model.

Usage: ``python benchmarks/attribution.py [N_JOURNEYS] [N_CHANNELS] [--rounds R]``
(defaults 1,000,000, 8 and 3). Draws journeys as the demo simulator does (a first channel
by popularity, each next touch repeating the previous channel with
probability 0.35, 1-8 touches, conversion probability rising with the
distinct channels touched), counts the distinct paths in ChannelAttribution's
format, and times, each in a fresh process on the same path counts:

* ``MarkovAttribution(order=1).fit`` (crmstats: sparse linear solves);
* ChannelAttribution's ``markov_model`` with its defaults (single thread;
  it simulates random walks until its convergence check passes) — the anchor;
* ``markov_model`` with 10x the simulations and a 100-step walk limit, to show
  its removal effects approach the exact ones as simulation error shrinks;
* ``build_paths`` (DuckDB) on the 1M journeys' touchpoints, for scale.

It prints the time ratio and the largest difference in removal effects.
ChannelAttribution is not a crmstats dependency: ``pip install
channelattribution`` (compiles C++; needs matplotlib) to run the comparison;
without it the script says so and times crmstats alone.
"""

from __future__ import annotations

import importlib.util
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

POPULARITY = np.array([0.22, 0.20, 0.15, 0.12, 0.10, 0.07, 0.05, 0.04, 0.03, 0.02])
EFFECT = np.array([0.10, 0.06, 0.04, 0.08, 0.02, 0.14, 0.20, 0.03, 0.12, 0.16])
CHANNELS = ("paid_search", "organic_search", "social", "email", "display",
            "referral", "events", "affiliate", "webinar", "partner")


def simulate_journeys(n: int, k: int, seed: int = 13):
    """Return (channel code per touch, touches per journey, converted, value)."""
    rng = np.random.default_rng(seed)
    pop = POPULARITY[:k] / POPULARITY[:k].sum()
    lengths = np.minimum(1 + rng.poisson(1.8, n), 8)
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(total) - np.repeat(starts, lengths)
    fresh = rng.choice(k, total, p=pop)
    repeat = rng.random(total) < 0.35
    chan = fresh.copy()
    for p in range(1, 8):
        idx = np.flatnonzero(pos == p)
        chan[idx] = np.where(repeat[idx], chan[idx - 1], fresh[idx])
    touched = np.zeros((n, k), bool)
    touched[np.repeat(np.arange(n), lengths), chan] = True
    p_win = 0.3 * (1 - 0.75 * np.prod(np.where(touched, 1 - EFFECT[:k], 1.0), axis=1))
    converted = rng.random(n) < p_win
    value = np.where(converted, np.round(rng.gamma(6.0, 5.0, n), 2), 0.0)
    return chan, lengths, converted, value


def path_counts(chan, lengths, converted, value, k: int) -> pd.DataFrame:
    """Distinct paths in ChannelAttribution's format (integer keys, then strings)."""
    n = len(lengths)
    starts = np.cumsum(lengths) - lengths
    pos = np.arange(len(chan)) - np.repeat(starts, lengths)
    key = np.zeros(n, dtype=np.int64)
    np.add.at(key, np.repeat(np.arange(n), lengths), (chan + 1) * (k + 1) ** pos)
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    m = len(uniq)
    names = np.array(CHANNELS[:k], dtype=object)
    paths = [" > ".join(names[chan[starts[i]:starts[i] + lengths[i]]]) for i in first]
    return pd.DataFrame({
        "path": paths,
        "total_conversions": np.bincount(inverse, weights=converted, minlength=m).astype(int),
        "total_conversion_value": np.bincount(inverse, weights=value, minlength=m),
        "total_null": np.bincount(inverse, weights=~converted, minlength=m).astype(int),
    })


def touchpoints(chan, lengths, converted, value, k: int, seed: int = 13):
    """Canonical touchpoints and conversions tables of the same journeys."""
    rng = np.random.default_rng(seed + 1)
    n = len(lengths)
    owner = np.repeat(np.arange(n), lengths)
    t0 = np.datetime64("2024-01-01T00:00:00")
    start = t0 + rng.integers(0, 365 * 86400, n).astype("timedelta64[s]")
    gaps = rng.exponential(4 * 86400, len(chan)).astype("int64").astype("timedelta64[s]")
    starts = np.cumsum(lengths) - lengths
    gaps[starts] = np.timedelta64(0, "s")
    cum = np.cumsum(gaps.astype("int64"))
    offset = cum - np.repeat(cum[starts], lengths)
    ts = start[owner] + offset.astype("timedelta64[s]")
    tp = pd.DataFrame({"journey_id": owner, "timestamp": ts,
                       "channel": np.array(CHANNELS[:k])[chan]})
    last = ts[np.cumsum(lengths) - 1]
    cv = pd.DataFrame({"journey_id": np.flatnonzero(converted),
                       "timestamp": last[converted] + np.timedelta64(3600, "s"),
                       "value": value[converted]})
    return tp, cv


def main(n: int, k: int, n_rounds: int = 3) -> None:
    if not 6 <= k <= 10:
        raise SystemExit("N_CHANNELS must be 6-10")
    has_ca = importlib.util.find_spec("ChannelAttribution") is not None
    chan, lengths, converted, value = simulate_journeys(n, k)
    paths = path_counts(chan, lengths, converted, value, k)
    print(f"{n:,} journeys over {k} channels: {len(paths):,} distinct paths, "
          f"{int(paths.total_conversions.sum()):,} conversions")
    with tempfile.TemporaryDirectory() as tmp:
        ppath = Path(tmp) / "paths.parquet"
        paths.to_parquet(ppath, index=False)
        tp, cv = touchpoints(chan, lengths, converted, value, k)
        tp.to_parquet(Path(tmp) / "touchpoints.parquet", index=False)
        cv.to_parquet(Path(tmp) / "conversions.parquet", index=False)
        load = f"import pandas as pd; paths = pd.read_parquet({str(ppath)!r})"
        dump = "extra = {'removal_effects': re}"
        ca_kw = ("var_value='total_conversion_value', var_null='total_null', out_more=True, "
                 "verbose=False, flg_pro=False")
        ca_call = ("with contextlib.redirect_stdout(io.StringIO()): "
                   "res = markov_model(paths, 'path', 'total_conversions', {extra}**kw)")
        ca_setup = (load + "; import contextlib, io; from ChannelAttribution import markov_model"
                    f"; kw = dict({ca_kw})")
        ca_after = ("r = res['removal_effects']; "
                    "re = dict(zip(r['channel_name'], r['removal_effects_conversion'])); " + dump)
        # in-process: the timed fit only (crmstats warmed by one fit on 100 paths: lazy imports)
        cases = {"crmstats MarkovAttribution": lambda: run_case(
            load + "; from crmstats.attribution import MarkovAttribution"
            "; MarkovAttribution(order=1).fit(paths.head(100))",
            "m = MarkovAttribution(order=1).fit(paths)",
            after="re = m.removal_effects_.to_dict(); " + dump, repeat=1)}
        # whole process: interpreter start, imports, reading the path counts, the fit
        whole = {"crmstats MarkovAttribution": lambda: whole_process(
            f"import pandas as pd\nfrom crmstats.attribution import MarkovAttribution\n"
            f"paths = pd.read_parquet({str(ppath)!r})\nMarkovAttribution(order=1).fit(paths)\n")}
        if has_ca:
            cases["ChannelAttribution markov_model"] = lambda: run_case(
                ca_setup, ca_call.format(extra=""), after=ca_after, repeat=1)
            whole["ChannelAttribution markov_model"] = lambda: whole_process(
                "import contextlib, io\nimport pandas as pd\n"
                "from ChannelAttribution import markov_model\n"
                f"paths = pd.read_parquet({str(ppath)!r})\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n"
                f"    markov_model(paths, 'path', 'total_conversions', {ca_kw})\n")
        print(f"\nwhole process, {n_rounds} rounds; {load_note()}")
        whole_res = rounds(whole, n_rounds)
        print(f"after: {load_note()}")
        report_rounds("Markov attribution, whole process: import + read path counts + fit",
                      whole_res)
        print(f"\nin-process, {n_rounds} rounds; {load_note()}")
        res = rounds(cases, n_rounds)
        print(f"after: {load_note()}")
        report_rounds("Markov attribution, in-process (timed fit only)", res)
        ours = res["crmstats MarkovAttribution"][0]
        results = {}
        if has_ca:
            results["ChannelAttribution, 10x sims"] = run_case(
                ca_setup, ca_call.format(extra="nsim_start=1e6, max_step=100, "),
                after=ca_after, repeat=1)
        results["crmstats build_paths (DuckDB)"] = run_case(
            "from crmstats.attribution import build_paths",
            f"p = build_paths({str(Path(tmp) / 'touchpoints.parquet')!r}, "
            f"{str(Path(tmp) / 'conversions.parquet')!r})", repeat=1)
        report("single runs", results, anchor="crmstats build_paths (DuckDB)")
    if not has_ca:
        print("\nChannelAttribution is not installed (pip install channelattribution): "
              "timed crmstats alone.")
        return
    anchor = "ChannelAttribution markov_model"
    ratio = paired_ratios(whole_res, anchor, "crmstats MarkovAttribution")
    print(f"\nwhole process, ChannelAttribution / crmstats: {spread(ratio)}x  (goal > 1x)")
    ratio = paired_ratios(res, anchor, "crmstats MarkovAttribution")
    print(f"in-process fit, ChannelAttribution / crmstats: {spread(ratio)}x")
    exact = pd.Series(ours["removal_effects"])
    sims = {anchor: res[anchor][0], "ChannelAttribution, 10x sims":
            results["ChannelAttribution, 10x sims"]}
    for name, r in sims.items():
        sim = pd.Series(r["removal_effects"]).reindex(exact.index)
        diff = (sim - exact).abs()
        print(f"largest |removal effect difference| vs {name}: {diff.max():.4f} "
              f"({diff.idxmax()}); mean {diff.mean():.4f}")
    table = pd.DataFrame({"crmstats (exact)": exact,
                          **{n_: pd.Series(r["removal_effects"]) for n_, r in sims.items()}})
    print("\nremoval effects\n" + table.round(4).to_string())


if __name__ == "__main__":
    argv, n_rounds = sys.argv[1:], 3
    if "--rounds" in argv:
        i = argv.index("--rounds")
        n_rounds = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    main(int(argv[0]) if argv else 1_000_000, int(argv[1]) if len(argv) > 1 else 8, n_rounds)

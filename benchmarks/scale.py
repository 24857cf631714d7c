"""Benchmark: 100M transactions on one machine, out of core.

Usage: ``python benchmarks/scale.py [N_ROWS] [MEMORY_LIMIT]`` (defaults
100,000,000 and "3GB"). Writes simulated transactions (10 per customer, three
years) to a folder of Parquet files in chunks of 10M rows — never holding the
whole log in memory — then runs :func:`crmstats.clv.rfm_summary` and
:func:`crmstats.churn.cohort_table` on the folder, each in a fresh process
with DuckDB limited to ``MEMORY_LIMIT`` (it spills to disk beyond), and prints
wall time and peak RSS. Goal (issue 8): peak RSS <= 4 GB on a 2-core, 24 GiB
machine.

``python benchmarks/scale.py book [--contacts N] [--jobs J] [--only SLUG ...] [--default]
[--repeat R] [--json FILE]`` builds a copy of the repository's book on ``demo:n_contacts=N``
(default 400,000: ten times the default demo) and prints each study's time
(total, kernel start, import cell, the rest; papermill's timings) and its
kernel's peak RSS (VmHWM, sampled inside the kernel by a ``sitecustomize``
probe on the kernels' ``PYTHONPATH``; warm kernels forked by
``crmstats.book.warm`` included), with the load before and after. With
``--default`` it builds the default demo's book first and prints the ratio
(goal of issue 23: the 10x book in at most twice the default book's time and
<= 1.5 GB); ``--repeat R`` builds R such pairs one after the other and prints
the median ratio and its spread. ``--json`` keeps the figures and each build's KPI records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_note, run_case  # noqa: E402

from book import breakdown  # noqa: E402

CHUNK = 10_000_000


def write_chunks(folder: Path, n: int, seed: int = 5) -> int:
    """Write ``n`` transactions as Parquet chunks; customers are spread over the chunks."""
    rng = np.random.default_rng(seed)
    customers = max(n // 10, 1)
    start = np.datetime64("2022-01-01T00:00:00")
    written = 0
    for i in range(0, n, CHUNK):
        m = min(CHUNK, n - i)
        owner = rng.integers(0, customers, m)
        # each customer's first purchase day is a hash of its id; later ones follow it
        birth = (owner * 2654435761 % (730 * 86400)).astype("int64")
        offset = rng.exponential(180 * 86400, m).astype("int64")
        ts = start + np.minimum(birth + offset, 3 * 365 * 86400 - 1).astype("timedelta64[s]")
        pd.DataFrame({"customer_id": owner.astype("int64"), "timestamp": ts,
                      "amount": np.round(rng.gamma(2.0, 25.0, m), 2)}).to_parquet(
            folder / f"part-{i // CHUNK:04d}.parquet", index=False)
        written += m
    return written


def main(n: int, limit: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "transactions"
        folder.mkdir()
        t0 = time.perf_counter()
        rows = write_chunks(folder, n)
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**30
        print(f"wrote {rows:,} transactions ({size:.1f} GiB Parquet) in "
              f"{time.perf_counter() - t0:.0f} s")
        os.environ["CRMSTATS_MEMORY_LIMIT"] = limit
        os.environ["CRMSTATS_TEMP_DIR"] = str(Path(tmp) / "spill")
        cases = {
            "rfm_summary (daily occasions)": (
                "from crmstats.clv import rfm_summary",
                f"r = rfm_summary({str(folder)!r})"),
            "cohort_table (monthly, customers)": (
                "from crmstats.churn import cohort_table",
                f"r = cohort_table({str(folder)!r})"),
        }
        print(f"\nDuckDB memory_limit {limit}; 2-core machine")
        print(f"{'case':<36}{'seconds':>10}{'peak RSS GB':>13}{'result rows':>13}")
        for name, (setup, stmt) in cases.items():
            r = run_case(setup, stmt, repeat=1, after="extra = {'rows': len(r)}")
            goal = "ok" if r["peak_rss_mb"] <= 4096 else "OVER 4 GB"
            print(f"{name:<36}{r['seconds']:>10.1f}{r['peak_rss_mb'] / 1024:>13.2f}"
                  f"{r['rows']:>13,}  {goal}")




# --- the whole book on a larger demo, per study ----------------------------------------------

#: Put on the kernels' PYTHONPATH as ``sitecustomize``: a Jupyter kernel samples its own peak
#: resident memory (VmHWM) and the code it has run, and writes both to ``$_SCALE_PROBE_DIR``
#: (the code tells which study the kernel ran; the executed notebooks hold the same cells).
_PROBE = '''
import os, threading
_dir = os.environ.get("_SCALE_PROBE_DIR")
try:
    _cmd = open("/proc/self/cmdline", "rb").read().split(b"\\0")
except OSError:
    _cmd = []
_kernel = any(b"ipykernel" in part for part in _cmd)
# forks the study kernels: a server interpreter, or `crmstats book build`, which forks it
_server = (any(b"crmstats.book.warm" in part for part in _cmd)
           or (b"book" in _cmd and b"build" in _cmd))
if _dir and (_kernel or _server):
    import atexit, json, time

    _seen = {"inputs": []}

    def _hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _write():
        try:
            import sys
            ip = sys.modules.get("IPython")
            shell = ip.get_ipython() if ip else None
            if shell is not None and len(shell.user_ns.get("In", [])) > len(_seen["inputs"]):
                _seen["inputs"] = list(shell.user_ns["In"])
            path = os.path.join(_dir, f"{os.getpid()}.json")
            with open(path + ".tmp", "w") as f:
                t = os.times()
                json.dump({"peak_rss_mb": _hwm(), "cpu_seconds": t.user + t.system,
                           "inputs": _seen["inputs"]}, f)
            os.replace(path + ".tmp", path)
        except Exception:
            pass

    def _loop():
        while True:
            time.sleep(0.5)
            _write()

    def _start():
        _seen["inputs"] = []
        threading.Thread(target=_loop, daemon=True).start()
        atexit.register(_write)

    if _kernel:
        _start()
    else:  # a warm-kernel server (or the build that forks it): sample in every kernel it
        # forks; a forked server keeps the handler, so its kernels sample too (the server's
        # own record has no cells and is left out)
        os.register_at_fork(after_in_child=_start)
'''


def _kernel_peaks(probe_dir: Path, studies: Path) -> dict[str, dict]:
    """Each study's kernel peak RSS (MB) and CPU seconds, matched by the code the kernel ran."""
    cells = {}
    for nb_path in studies.glob("*.ipynb"):
        nb = json.loads(nb_path.read_text())
        cells[nb_path.stem] = {"".join(c["source"]).strip() for c in nb["cells"]
                               if c["cell_type"] == "code"}
    peaks: dict[str, dict] = {}
    for record in probe_dir.glob("*.json"):
        data = json.loads(record.read_text())
        ran = {str(s).strip() for s in data["inputs"] if str(s).strip()}
        if not ran or not cells:
            continue
        slug = max(cells, key=lambda s: len(cells[s] & ran))
        if cells[slug] & ran:
            peaks[slug] = {"rss": data["peak_rss_mb"], "cpu": data.get("cpu_seconds", 0.0)}
    return peaks


def _load_seconds(studies: Path) -> dict[str, float]:
    """Per study: seconds of the cell that loads the data (``load_crm``; the demo is simulated)."""
    out = {}
    for nb_path in studies.glob("*.ipynb"):
        nb = json.loads(nb_path.read_text())
        out[nb_path.stem] = sum(
            float(c["metadata"].get("papermill", {}).get("duration") or 0.0)
            for c in nb["cells"] if c["cell_type"] == "code"
            and any(call in "".join(c["source"]) for call in ("load_crm(", "experiment_data(")))
    return out


def _kpis(runs: Path) -> dict:
    """The KPI records of the build's run (``book/runs/<stamp>/kpis.json``)."""
    found = sorted(runs.glob("*/kpis.json"))
    return json.loads(found[-1].read_text()) if found else {}


def build_book(contacts: int | None, jobs: int, only: list[str]) -> dict:
    """Build a copy of the repository's book on ``demo:n_contacts=contacts`` (None: default)."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(root / "notebooks", repo / "notebooks")
        shutil.copytree(root / "book", repo / "book",
                        ignore=shutil.ignore_patterns("_build*", "studies", "runs", ".build.lock"))
        probe, hook = Path(tmp) / "probe", Path(tmp) / "hook"
        probe.mkdir()
        hook.mkdir()
        (hook / "sitecustomize.py").write_text(_PROBE)
        cmd = [str(Path(sys.executable).with_name("crmstats")), "book", "build",
               "--jobs", str(jobs), "--keep-going"]
        if contacts:
            (repo / "run.yml").write_text(f"data_source: 'demo:n_contacts={contacts}'\n")
            cmd += ["--params", "run.yml"]
        for slug in only:
            cmd += ["--only", slug]
        env = dict(os.environ, _SCALE_PROBE_DIR=str(probe),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(hook),
                                                            os.environ.get("PYTHONPATH")])))
        before = load_note()
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        log = proc.stdout.read()
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"book build failed (studies below may be partial):\n{log[-3000:]}")
        return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "max_child_rss_mb": usage.ru_maxrss / 1024, "load_before": before,
                "load_after": load_note(),
                "studies": breakdown(repo / "book" / "studies"),
                "kpis": _kpis(repo / "book" / "runs"),
                "load": _load_seconds(repo / "book" / "studies"),
                "peaks": _kernel_peaks(probe, repo / "book" / "studies")}


def print_book(label: str, r: dict) -> None:
    print(f"\n{label}: {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU "
          f"(build and kernels), largest process {r['max_child_rss_mb'] / 1024:.2f} GB")
    print(f"  before: {r['load_before']}\n  after:  {r['load_after']}")
    print(f"  {'study':<26}{'total s':>9}{'kernel s':>10}{'imports s':>11}{'load s':>8}"
          f"{'rest s':>9}{'kernel CPU s':>14}{'peak RSS MB':>13}")
    for slug, s in r["studies"].items():
        peak = r["peaks"].get(slug)
        shown = f"{peak['cpu']:>14.1f}{peak['rss']:>13.0f}" if peak else f"{'?':>14}{'?':>13}"
        load = r.get("load", {}).get(slug, 0.0)
        print(f"  {slug:<26}{s['total']:>9.1f}{s['kernel']:>10.1f}{s['imports']:>11.1f}"
              f"{load:>8.1f}{s['rest'] - load:>9.1f}{shown}")
    print("  (load: the cell that loads the data source; a demo is simulated there, per kernel)")


def book_main(argv: list[str]) -> None:
    """``scale.py book [--contacts N] [--jobs J] [--only SLUG ...] [--default]``."""
    def arg(name: str, default: int) -> int:
        return int(argv[argv.index(name) + 1]) if name in argv else default

    contacts, jobs = arg("--contacts", 400_000), arg("--jobs", 2)
    repeat = arg("--repeat", 1)
    only = [argv[i + 1] for i, a in enumerate(argv) if a == "--only"]
    label = f"demo:n_contacts={contacts:,}"
    pairs = []
    for i in range(repeat):  # pairs one after the other: default, 10x, default, 10x, ...
        results = {}
        if "--default" in argv:
            results["default demo"] = build_book(None, jobs, only)
            print_book("default demo", results["default demo"])
        results[label] = build_book(contacts, jobs, only)
        print_book(label, results[label])
        if "--default" in argv:
            ratio = results[label]["seconds"] / results["default demo"]["seconds"]
            peak = max([results[label]["max_child_rss_mb"],
                        *[p["rss"] for p in results[label]["peaks"].values()]])
            print(f"\n10x / default (pair {i + 1} of {repeat}): {ratio:.2f}x wall "
                  f"(goal <= 2x); largest process {peak / 1024:.2f} GB (goal <= 1.5 GB)")
            results["ratio"] = ratio
        pairs.append(results)
    if "--default" in argv and repeat > 1:
        ratios = sorted(p["ratio"] for p in pairs)
        print(f"\n10x / default over {repeat} pairs: median {ratios[len(ratios) // 2]:.2f}x, "
              f"from {ratios[0]:.2f}x to {ratios[-1]:.2f}x")
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(
            json.dumps(pairs if repeat > 1 else pairs[0], indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["book"]:
        book_main(sys.argv[2:])
        sys.exit()
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000_000,
         sys.argv[2] if len(sys.argv) > 2 else "3GB")

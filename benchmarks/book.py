"""Benchmark: the whole book, cold and warm, and where each study's time goes.

Usage: ``python benchmarks/book.py [--runs R] [--jobs J] [--ordinary] [--params FILE]
[--kpis PATH] [--tree DIR] [--keep DIR] [--json FILE]`` (defaults 2 runs, 2 jobs).
``--ordinary`` starts an ordinary kernel per study (``CRMSTATS_WARM_KERNELS=0``) instead of
forking warm ones, to compare; ``--params`` passes a run file (e.g. ``data_source:
"demo:n_contacts=400000"``); ``--kpis`` keeps the last run's ``kpis.json``; ``--tree``
builds another source tree's book with its package (e.g. an unpacked ``git archive`` of an
earlier commit: its ``src`` goes first on ``PYTHONPATH``), to compare before and after in
alternation; ``--keep`` copies the last run's published HTML there (to compare pages);
``--json`` writes every run's numbers (wall, CPU, each study's times and kernel CPU) to a
file. Each run also counts the models fitted and shared (the run's ``fits.log``), and with
warm kernels it reports each study kernel's own CPU seconds (the kernel server's log,
matched to the notebooks by start time).

Copies the repository's ``book/`` sources and ``notebooks/`` into a temporary
folder and runs ``crmstats book build`` there R times in a row, each as a fresh
process timed from outside (wall clock, and the build's CPU time from rusage).
The first run is "cold" for the build's own files; later runs are "warm"
(bytecode and file caches filled by the run before). For every run it reads
the executed notebooks' papermill timings and splits each study's time into
kernel start and teardown (the notebook's time outside its cells), the first
cell (the imports) and the rest, so the share of start-up in the book is
measured rather than guessed. Goal: the warm book in <= 35 s on this 2-core machine.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_note  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def breakdown(studies: Path) -> dict[str, dict[str, float]]:
    """Per executed notebook: total, kernel start/teardown, first (import) cell, the rest."""
    out = {}
    for nb_path in sorted(studies.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        total = float(nb["metadata"]["papermill"]["duration"])
        cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
        durations = [float(c["metadata"].get("papermill", {}).get("duration") or 0.0)
                     for c in cells]
        first = durations[0] if durations else 0.0
        out[nb_path.stem] = {"total": total, "kernel": total - sum(durations),
                             "imports": first, "rest": sum(durations) - first}
    return out


def _opt(name: str) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


def kernel_cpu(studies: Path, log: Path) -> dict[str, float]:
    """Each study kernel's CPU seconds: the server's log entry whose start and end match best."""
    import datetime as dt

    if not log.exists():
        return {}
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    spans = {}
    for nb_path in sorted(studies.glob("*.ipynb")):
        meta = json.loads(nb_path.read_text())["metadata"]["papermill"]
        if meta.get("start_time") and meta.get("end_time"):
            spans[nb_path.stem] = [dt.datetime.fromisoformat(meta[k]).timestamp()
                                   for k in ("start_time", "end_time")]
    pairs = sorted((abs(e["start"] - a) + abs(e["end"] - b), slug, i)
                   for slug, (a, b) in spans.items() for i, e in enumerate(entries))
    out, used = {}, set()
    for gap, slug, i in pairs:  # greedy, closest first, each entry once
        if slug not in out and i not in used and gap < 10:
            out[slug] = entries[i]["cpu"]
            used.add(i)
    return out


def build_once(repo: Path, jobs: int) -> dict:
    exe = Path(sys.executable).with_name("crmstats")
    env = dict(os.environ)
    if "--ordinary" in sys.argv:
        env["CRMSTATS_WARM_KERNELS"] = "0"
    if _opt("--tree"):
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(Path(_opt("--tree")).resolve() / "src"), env.get("PYTHONPATH")]))
    kernel_log = repo / "kernels.log"
    kernel_log.unlink(missing_ok=True)
    env["CRMSTATS_KERNEL_LOG"] = str(kernel_log)
    extra = ["--params", str(Path(_opt("--params")).resolve())] if _opt("--params") else []
    start = time.perf_counter()
    proc = subprocess.Popen([str(exe), "book", "build", "--jobs", str(jobs), *extra], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    log = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"book build failed:\n{log[-3000:]}")
    run = max((repo / "book" / "runs").iterdir())
    fits = (run / "fits.log").read_text().split() if (run / "fits.log").exists() else []
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "studies": breakdown(repo / "book" / "studies"), "run": run,
            "kernel_cpu": kernel_cpu(repo / "book" / "studies", kernel_log),
            "fits": {e: sum(1 for i in range(0, len(fits), 3) if fits[i] == e)
                     for e in ("fit", "hit")},
            # what a reader of the build's console would take for a failure
            "console_errors": [line for line in log.splitlines()
                               if "ERROR" in line or "Traceback" in line]}


def main() -> None:
    runs, jobs = _arg("--runs", 2), _arg("--jobs", 2)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        tree = Path(_opt("--tree")).resolve() if _opt("--tree") else ROOT
        shutil.copytree(tree / "notebooks", repo / "notebooks")
        shutil.copytree(tree / "book", repo / "book",
                        ignore=shutil.ignore_patterns("_build*", "studies", "runs", ".build.lock"))
        results = []
        for i in range(runs):
            print(f"run {i + 1}: {load_note()}", flush=True)
            results.append(build_once(repo, jobs))
        print(f"after: {load_note()}")
        if _opt("--kpis"):
            shutil.copy2(results[-1]["run"] / "kpis.json", _opt("--kpis"))
        if _opt("--json"):  # every run's numbers, e.g. to compare cold and warm per study
            Path(_opt("--json")).write_text(json.dumps(
                [{k: v for k, v in r.items() if k != "run"} for r in results], indent=1))
        if _opt("--keep"):
            shutil.rmtree(_opt("--keep"), ignore_errors=True)
            shutil.copytree(repo / "book" / "_build" / "html", _opt("--keep"))
    print(f"\nbook build, {jobs} jobs, {len(results[0]['studies'])} studies")
    print(f"{'run':<8}{'wall s':>9}{'CPU s':>9}{'studies s':>11}{'kernel s':>10}"
          f"{'imports s':>11}{'start+imports':>15}{'kernels CPU s':>15}{'rest CPU s':>12}")
    for i, r in enumerate(results):
        parts = {k: sum(s[k] for s in r["studies"].values())
                 for k in ("total", "kernel", "imports", "rest")}
        share = (parts["kernel"] + parts["imports"]) / parts["total"]
        label = "cold" if i == 0 else "warm"
        print(f"{label:<8}{r['seconds']:>9.1f}{r['cpu_seconds']:>9.1f}{parts['total']:>11.1f}"
              f"{parts['kernel']:>10.1f}{parts['imports']:>11.1f}{share:>15.0%}"
              f"{sum(r['kernel_cpu'].values()):>15.1f}"
              f"{r['cpu_seconds'] - sum(r['kernel_cpu'].values()):>12.1f}")
    warm = [r["seconds"] for r in results[1:]] or [results[0]["seconds"]]
    print(f"\nwarm book: {statistics.median(warm):.1f} s (goal <= 35 s)")
    print(f"models fitted / taken from the build's cache (last run): "
          f"{results[-1]['fits']['fit']} / {results[-1]['fits']['hit']}")
    for i, r in enumerate(results):
        for line in r["console_errors"]:
            print(f"run {i + 1} console: {line}")
    cpu = results[-1]["kernel_cpu"]
    print("\nper study (last run): total / kernel start / imports / rest, seconds; kernel CPU s")
    for slug, s in results[-1]["studies"].items():
        print(f"  {slug:<28}{s['total']:>7.2f}{s['kernel']:>7.2f}{s['imports']:>7.2f}"
              f"{s['rest']:>7.2f}{cpu.get(slug, float('nan')):>8.2f}")
    if cpu:
        print(f"  {'all kernels':<49}{sum(cpu.values()):>8.2f}")


if __name__ == "__main__":
    main()

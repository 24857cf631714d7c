"""Run benchmark cases in fresh subprocesses; report wall time and peak RSS.

Each case runs in its own interpreter so its peak resident memory is its own
(``ru_maxrss`` of the child); the anchor case is measured in the same run, and
ratios against it are what the benchmark reports.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable


def run_case(setup: str, stmt: str, repeat: int = 3, after: str = "") -> dict:
    """Run ``setup`` once then ``stmt`` ``repeat`` times in a child; return best time and RSS.

    ``after`` runs once, untimed, after the measurements; if it binds a dict
    named ``extra`` (JSON-serialisable), its items are added to the result.
    """
    code = textwrap.dedent(
        f"""
        import json, resource, time
        {setup}
        times = []
        for _ in range({repeat}):
            t0 = time.perf_counter()
            {stmt}
            times.append(time.perf_counter() - t0)
        try:  # VmHWM is this process's own peak; ru_maxrss can carry the parent's over exec
            rss = [int(line.split()[1]) for line in open("/proc/self/status")
                   if line.startswith("VmHWM:")][0] / 1024
        except (OSError, IndexError):
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        extra = {{}}
        {after}
        print(json.dumps({{"seconds": min(times), "peak_rss_mb": rss, **extra}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark case failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(title: str, results: dict[str, dict], anchor: str) -> None:
    """Print a table of cases with time and memory ratios against ``anchor``."""
    base = results[anchor]
    print(f"\n{title}")
    print(f"{'case':<34}{'seconds':>10}{'x anchor':>10}{'peak RSS MB':>13}{'x anchor':>10}")
    for name, r in results.items():
        print(
            f"{name:<34}{r['seconds']:>10.3f}{r['seconds'] / base['seconds']:>10.2f}"
            f"{r['peak_rss_mb']:>13.0f}{r['peak_rss_mb'] / base['peak_rss_mb']:>10.2f}"
        )


# --- repeated runs, alternating sides, with the spread of the ratios -----------------------


def whole_process(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; return its wall time, CPU time and peak RSS.

    What a user waits for from the shell: interpreter start, imports, reading
    the data and computing (like ``/usr/bin/time -v``: wall clock measured by
    the parent, CPU and maximum resident set size from the child's rusage).
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read(), proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark case failed:\n{err[-3000:]}")
    lines = out.strip().splitlines()
    extra = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return {"seconds": wall, "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, **extra}


def rounds(cases: dict[str, Callable[[], dict]], n: int) -> dict[str, list[dict]]:
    """Run every case once per round, ``n`` rounds, alternating the order between rounds.

    Round ``r`` runs the cases in order, round ``r + 1`` in reverse, so a burst of
    load on a shared machine does not always hit the same side first.
    """
    names = list(cases)
    out: dict[str, list[dict]] = {name: [] for name in names}
    for r in range(n):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(cases[name]())
    return out


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``median (min-max, n=...)`` of ``values``."""
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}-{fmt.format(max(values))}, n={len(values)})")


def paired_ratios(results: dict[str, list[dict]], slower: str, faster: str,
                  key: str = "seconds") -> list[float]:
    """Per round, ``slower / faster`` (both measured in the same round)."""
    return [a[key] / b[key] for a, b in zip(results[slower], results[faster], strict=True)]


def report_rounds(title: str, results: dict[str, list[dict]]) -> None:
    """Print each case's median time, its range over the rounds, CPU time and peak RSS."""
    print(f"\n{title}")
    print(f"{'case':<44}{'seconds: median (range, n)':>32}{'CPU s':>9}{'peak RSS MB':>13}")
    for name, runs in results.items():
        secs = [r["seconds"] for r in runs]
        cpu = [r.get("cpu_seconds", float("nan")) for r in runs]
        rss = max(r["peak_rss_mb"] for r in runs)
        print(f"{name:<44}{spread(secs, '{:.3f}'):>32}{statistics.median(cpu):>9.2f}"
              f"{rss:>13.0f}")


def load_note() -> str:
    """The machine's load averages, to print beside the figures (this machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"

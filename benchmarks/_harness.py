"""Run benchmark cases in fresh subprocesses; report wall time and peak RSS.

Each case runs in its own interpreter so its peak resident memory is its own
(``ru_maxrss`` of the child); the anchor case is measured in the same run, and
ratios against it are what the benchmark reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


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

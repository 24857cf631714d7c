"""Benchmark: where a book build's own process spends its time, phase by phase.

Usage: ``python benchmarks/book_phases.py [--runs R] [--jobs J]`` (defaults 1 run, 2 jobs).

Copies ``book/`` and ``notebooks/`` into a temporary folder (as ``book.py`` does) and runs
:func:`crmstats.book.build.build_book` there in a fresh interpreter with each step of the
build wrapped: wall seconds, the build process's own CPU seconds and its waited-for
children's (the kernel server with its kernels, Jupyter Book). The server is forked from the
build as ``crmstats book build`` does (``fork_server=True``). The phases nest (the studies
run inside the kernel server's context), so the table is a trace, not a sum; "imports" is
the build's import of :mod:`crmstats.book.build` and the command line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import resource, sys, time

def clock():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.perf_counter(), me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime)

t0 = clock()
import crmstats.cli  # noqa: F401  (what the command imports)
from crmstats.book import build, runner, warm, needs, scan, kpis, archive, publish
from crmstats import privacy
t1 = clock()
rows = [("imports", 0, [b - a for a, b in zip(t0, t1)])]
depth = [0]

def timed(owner, name, label=None):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = clock()
        depth[0] += 1
        try:
            return inner(*args, **kwargs)
        finally:
            depth[0] -= 1
            rows.append((label or name, depth[0], [b - a for a, b in zip(start, clock())]))
    setattr(owner, name, wrapper)

def timed_context(owner, name):
    inner = getattr(owner, name)
    import contextlib
    @contextlib.contextmanager
    def wrapper(*args, **kwargs):
        start = clock()
        with inner(*args, **kwargs) as value:
            rows.append((name + " (start)", depth[0], [b - a for a, b in zip(start, clock())]))
            yield value
        rows.append((name + " (whole)", depth[0], [b - a for a, b in zip(start, clock())]))
    setattr(owner, name, wrapper)

for owner, name in [(build, "recover"), (build, "_load_sources"), (build, "_unavailable"),
                    (build, "_kept_studies"), (build, "run_studies"), (build, "_archive"),
                    (build, "_personal_values"), (build, "strip_kpi_records"),
                    (build, "summary_page"), (build, "write_toc"), (build, "_jupyter_book"),
                    (build, "scan_book"), (build, "_publish"), (build, "prune_runs"),
                    (build, "_run_studies"), (build, "_publish_book")]:
    timed(owner, name)
for owner, name in [(warm, "_prepare"), (warm, "validate_preloaded"),
                    (warm, "_render_inline_figures_once"), (warm, "_fork_server"),
                    (privacy, "scan_text"), (privacy, "scan_html"),
                    (privacy, "scan_search_index")]:
    timed(owner, name)
timed_context(runner, "warm_kernels")
start = clock()
build.build_book("book", jobs=int(sys.argv[1]), fork_server=True)  # as the command line
rows.append(("build_book", 0, [b - a for a, b in zip(start, clock())]))
merged = {}
for label, level, (wall, cpu, kids) in rows:
    key = (label, level)
    n, w, c, k = merged.get(key, (0, 0.0, 0.0, 0.0))
    merged[key] = (n + 1, w + wall, c + cpu, k + kids)
print(f"{'phase':<34}{'n':>3}{'wall s':>9}{'CPU s':>8}{'children CPU s':>16}")
for (label, level), (n, w, c, k) in merged.items():
    print(f"{'  ' * level + label:<34}{n:>3}{w:>9.2f}{c:>8.2f}{k:>16.2f}")
total = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"process CPU {total.ru_utime + total.ru_stime:.2f} s, "
      f"children {kids.ru_utime + kids.ru_stime:.2f} s")
"""


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _harness import load_note

    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 1
    jobs = sys.argv[sys.argv.index("--jobs") + 1] if "--jobs" in sys.argv else "2"
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        shutil.copytree(ROOT / "notebooks", repo / "notebooks")
        shutil.copytree(ROOT / "book", repo / "book",
                        ignore=shutil.ignore_patterns("_build*", "studies", "runs", ".build.lock"))
        for i in range(runs):
            print(f"run {i + 1}: {load_note()}", flush=True)
            subprocess.run([sys.executable, "-c", CHILD, jobs], cwd=repo, check=True)
        print(f"after: {load_note()}")


if __name__ == "__main__":
    main()

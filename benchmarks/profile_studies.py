"""Profile: where each study's CPU goes, cell by cell and function by function.

Usage: ``python benchmarks/profile_studies.py [--source S] [--only a,b] [--top N]
[--out DIR] [--no-profile] [--no-validate]`` from the repository root. ``--no-profile``
times the cells without cProfile (whose overhead inflates Python-heavy code);
``--modules`` lists what each study imported that the preloaded process had not;
``--no-validate`` leaves the preloaded sources unvalidated (as before the kernel
server validated them); ``--idle-redraw`` keeps pyplot's redraw of every figure after each
cell (the kernel server lays figures out instead: ``warm._render_inline_figures_once``).

Runs like a warm book build, without Jupyter: one process imports what the
warm kernel server imports and makes the studies' built-in sources once
(:func:`crmstats.sources.preload_sources`), then forks one child per study (in
sequence, so the CPU figures do not fight each other). The child runs the
study's template cells, parameterized as the book does, in an IPython shell
with the inline Matplotlib backend (figures are rendered to PNG as in a
kernel) under cProfile, and prints each cell's CPU seconds and the functions
with the most cumulative time. Kernel start-up and papermill are not in these
figures; ``benchmarks/book.py`` measures the whole build.
"""

from __future__ import annotations

import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import load_note  # noqa: E402

#: Modules of the preloaded process (before the studies' children fork).
_BEFORE: set[str] = set()


def _opt(name: str, default: str | None = None) -> str | None:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def _cells(template: Path, parameters: dict) -> list[str]:
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(template))
    nb = parameterize_notebook(nb, parameters, report_mode=False)
    return ["".join(c.source) for c in nb.cells if c.cell_type == "code"]


def _run_child(slug: str, cells: list[str], top: int, out: Path | None) -> None:
    import cProfile

    profile = "--no-profile" not in sys.argv

    from IPython.core.interactiveshell import InteractiveShell

    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # the inline backend needs no GUI loop
            pass

    shell = Shell.instance()
    shell.enable_matplotlib("inline")
    devnull = open(os.devnull, "w")  # noqa: SIM115
    times = []
    prof = cProfile.Profile()
    t0, c0 = time.perf_counter(), time.process_time()
    for i, src in enumerate(cells):
        w, c = time.perf_counter(), time.process_time()
        stdout = sys.stdout
        sys.stdout = devnull
        try:
            if profile:
                prof.enable()
            res = shell.run_cell(src, store_history=False)
            prof.disable()
        finally:
            sys.stdout = stdout
        times.append((i, time.process_time() - c, time.perf_counter() - w, src))
        if not res.success:
            print(f"  {slug}: cell {i} failed: {res.error_in_exec or res.error_before_exec!r}")
            break
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    if "--modules" in sys.argv:  # what the study imported that the server had not
        new = sorted(set(sys.modules) - _BEFORE)
        print(f"  {slug} imported: {', '.join(new)}")
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n=== {slug}: CPU {cpu:.2f} s, wall {wall:.2f} s, peak RSS {peak:.0f} MB")
    for i, c, w, src in sorted(times, key=lambda t: -t[1])[:8]:
        first = next((ln for ln in src.splitlines() if ln.strip() and not ln.startswith("#")), "")
        print(f"  cell {i:>2} CPU {c:6.2f} wall {w:6.2f}  {first[:90]}")
    if not profile:
        sys.stdout.flush()
        os._exit(0)
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    print("\n".join(ln for ln in buf.getvalue().splitlines()[6:] if ln.strip()))
    if out is not None:
        stats.dump_stats(str(out / f"{slug}.prof"))
    sys.stdout.flush()
    os._exit(0)


def main() -> None:
    import importlib
    import warnings

    from crmstats.book.studies import load_studies
    from crmstats.book.warm import PRELOAD, validate_preloaded
    from crmstats.sources import preload_sources

    source = _opt("--source")
    only = set((_opt("--only") or "").split(",")) - {""}
    top = int(_opt("--top", "25"))
    out = Path(_opt("--out")) if _opt("--out") else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    studies = load_studies(Path("book/studies.yml"),
                           overrides={"data_source": source} if source else None)
    studies = [s for s in studies if not only or s.slug in only]
    print(load_note(), flush=True)
    c0, w0 = time.process_time(), time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        importlib.import_module("IPython.core.interactiveshell")
    c1 = time.process_time()
    made = preload_sources({str(s.parameters.get("data_source", "demo")) for s in studies})
    if "--idle-redraw" not in sys.argv:  # as the kernel server does (figures rendered once)
        from crmstats.book.warm import _render_inline_figures_once

        _render_inline_figures_once()
    if "--no-validate" not in sys.argv:
        validate_preloaded()
    print(f"server: imports CPU {c1 - c0:.2f} s, sources {made} CPU "
          f"{time.process_time() - c1:.2f} s, wall {time.perf_counter() - w0:.2f} s", flush=True)
    import gc

    gc.collect()
    gc.freeze()  # as the kernel server does before it forks
    _BEFORE.update(sys.modules)
    summary = {}
    for study in studies:
        cells = _cells(study.template, study.parameters)
        r, w = os.pipe()
        before = os.times()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _run_child(study.slug, cells, top, out)
        os.close(w)
        os.close(r)
        os.waitpid(pid, 0)
        after = os.times()
        summary[study.slug] = (after.children_user + after.children_system
                               - before.children_user - before.children_system)
    print(f"\n{load_note()}\nchild CPU per study (s):")
    for slug, cpu in sorted(summary.items(), key=lambda kv: -kv[1]):
        print(f"  {slug:<22}{cpu:7.2f}")
    print(f"  {'total':<22}{sum(summary.values()):7.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown (DuckDB's bindings report "leaks" at exit)

"""Build the Jupyter Book aside, scan it, then switch it in with one atomic step.

``build_book`` runs every study (papermill is the only executor; Jupyter Book
runs with execution off), assembles the book's sources and the executed
notebooks in a staging folder with a table of contents generated from
``studies.yml``, builds the HTML there, scans every page and published source
for personal data, credentials and machine paths (:func:`scan_book`), and only
when everything succeeded publishes it.

Publishing is crash-safe. The published book ``book/_build/html`` is a
symbolic link to ``book/_build/releases/<run>``; a new book is moved into
``releases/`` and the link replaced by a rename of a temporary link — one
atomic step, so a reader (or a crash) sees the old book or the new one, never
none. Every build first repairs what a killed build may have left
(:func:`recover`): a missing or dangling link is pointed at the last good
book, half-made links, unpublished releases and the staging folder are
removed, and the published run's record is brought up to date. A
``book/_build/html`` folder of an older crmstats is moved into ``releases/``
by the same repair. A failing study, build or scan leaves the published book
untouched. A lock file keeps two builds of the same book from running at once
(taken with ``flock`` before the holder's pid is written, so a refused build
never erases it); the Jupyter Book process runs in its own process group and
dies with the build (also when the build is killed). Every filesystem error
(a full disk, a permission) is a one-line :class:`~crmstats.StudyError` naming
the step and the cause, and the staging folder is removed on every exit.

Every run is archived under ``book/runs/<stamp>/`` (the newest 30 are kept, and
always the latest published one; see ``keep_runs``): the executed notebooks and
``kpis.json``, the KPI records each study made with
:func:`crmstats.book.record_kpis`, with the run's parameters and each study's
status. The book opens with a summary page written from those records,
showing the change against the previous published run.

With ``keep_going``, a failed study does not stop the others, and the book is
published with the failed study marked as failed (a page naming notebook, cell
and error type, with values redacted, and a warning on the summary);
:attr:`BuildResult.failures` lists them, and the command line exits non-zero.

Modules: this one runs a build (:func:`build_book`); :mod:`crmstats.book.publish`
locks, switches and recovers; :mod:`crmstats.book.archive` keeps and prunes runs;
:mod:`crmstats.book.scan` checks what may be published; :mod:`crmstats.book.needs`
tells which studies have their data. Their public names are re-exported here.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmstats.book import runner as _runner
from crmstats.book.archive import (
    _archive,
    _kept_banner,
    _kept_notebook,
    _kept_studies,
    _published,
    _runs,
    last_seconds,
    prune_runs,
)
from crmstats.book.early import EarlyStudy, early_candidate
from crmstats.book.kpis import (
    NOT_AVAILABLE_PAGE,
    strip_kpi_records,
    summary_page,
)
from crmstats.book.needs import (
    _load_sources,
    _not_available_page,
    _source_of,
    _unavailable,
    needs_text,
    unmet_needs,
)
from crmstats.book.publish import (
    PUBLISH_STEPS,
    _fs_step,
    _os_cause,
    _publish,
    _reached,
    build_lock,
    recover,
)
from crmstats.book.runner import StudyResult, run_studies
from crmstats.book.scan import (
    _failure_page,
    _personal_values,
    _public_record,
    public_error,
    scan_book,
    scan_refusal,
)
from crmstats.book.stopping import STOP, Terminated, raise_if_stopped
from crmstats.book.studies import Study, load_studies, source_label
from crmstats.exceptions import StudyError
from crmstats.privacy import check_key

__all__ = ["PUBLISH_STEPS", "BuildResult", "build_book", "build_lock", "needs_text",
           "prune_runs", "recover", "scan_book", "scan_refusal", "unmet_needs", "write_toc"]



#: Files and folders of ``book/`` that are generated, never book sources.
GENERATED = {"_build", "studies", "studies.yml", "_toc.yml", "runs", "summary.md"}


@dataclass
class BuildResult:
    """Outcome of :func:`build_book`.

    Attributes
    ----------
    html : pathlib.Path
        The published HTML folder (``book/_build/html``).
    studies : list of StudyResult
        Per-study outcomes.
    published : bool
        Whether the new HTML replaced the old one.
    run_dir : pathlib.Path or None
        The run's archive folder (``book/runs/<stamp>``).
    recovered : list of str
        What :func:`recover` repaired before this build (an interrupted earlier one).
    unavailable : dict
        ``{slug: unmet requirements}`` of the studies not run because their
        source lacks what they need (each requirement a list of alternatives).
    """

    html: Path
    studies: list[StudyResult] = field(default_factory=list)
    published: bool = False
    run_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    unavailable: dict[str, list[list[str]]] = field(default_factory=dict)

    @property
    def failures(self) -> list[StudyResult]:
        """Studies that failed."""
        return [r for r in self.studies if not r.ok]


def write_toc(studies: list[Study], path: Path, *, root: str = "summary",
              front_pages: list[str] | None = None, extra_pages: list[str] | None = None) -> None:
    """Write a Jupyter Book ``_toc.yml``: the root page, front pages, then each study."""
    chapters = [{"file": f"studies/{s.slug}", "title": s.title} for s in studies]
    chapters += [{"file": p} for p in (extra_pages or [])]
    parts = []
    if front_pages:
        parts.append({"caption": "About", "chapters": [{"file": p} for p in front_pages]})
    parts.append({"caption": "Studies", "chapters": chapters})
    toc = {"format": "jb-book", "root": root, "parts": parts}
    path.write_text(yaml.safe_dump(toc, sort_keys=False))


def _jupyter_book_command(source: Path, out: Path, strict: bool) -> list[str]:
    import importlib.util

    from crmstats.book.lean import JUPYTER_BOOK

    if importlib.util.find_spec("jupyter_book") is not None:  # this interpreter's, lean
        cmd = [sys.executable, "-c", JUPYTER_BOOK]
    else:
        exe = Path(sys.executable).with_name("jupyter-book")
        cmd = [str(exe) if exe.exists() else "jupyter-book"]
    cmd += ["build", str(source), "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    return cmd


#: Run a command so that it dies with the thread that started it (Linux
#: PR_SET_PDEATHSIG), also when the build is killed with SIGKILL.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "parent = int(sys.argv[1])\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "if os.getppid() != parent:\n"
    "    sys.exit(137)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _jupyter_book(source: Path, out: Path, strict: bool) -> None:
    cmd = _jupyter_book_command(source, out, strict)
    if sys.platform.startswith("linux"):
        cmd = [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *cmd]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
    except OSError as exc:
        raise StudyError(f"building the HTML failed: cannot start jupyter-book "
                         f"({_os_cause(exc)})") from None
    try:
        output, _ = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted: the builder and its children go with us
            _kill_group(proc)
    if proc.returncode != 0:
        cause = re.findall(r"\[Errno \d+\] ([^:\n]+)", output or "")
        if cause:
            raise StudyError(f"building the HTML failed: {cause[-1].strip()} "
                             f"(jupyter-book exit {proc.returncode})")
        tail = "\n".join((output or "").strip().splitlines()[-25:])
        raise StudyError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")


@contextmanager
def _terminate_on_sigterm():
    """In the main thread, turn SIGTERM into an exception so cleanup runs.

    The exception (:class:`crmstats.book.stopping.Terminated`) is caught by no
    error handler, and the request stays recorded for the steps that check it
    (:mod:`crmstats.book.stopping`); whatever ends the build after a request
    leaves it as the one-line "build stopped by SIGTERM" error. (As a
    StudyError raised by the handler, a SIGTERM while the sources were made was
    taken for a source's error and the build ran to its end; one that
    interrupted a DuckDB query left DuckDB's error and a traceback.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        STOP.set()
        raise Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except BaseException:
        if STOP.is_set():
            raise StudyError("build stopped by SIGTERM; the published book is unchanged") \
                from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        STOP.clear()


def build_book(
    book_dir: str | Path = "book",
    *,
    params: dict[str, Any] | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    keep_going: bool = False,
    strict: bool = True,
    on_done: Callable[[StudyResult], None] | None = None,
    keep_runs: int = 30,
    params_file: str | None = None,
    fork_server: bool = False,
) -> BuildResult:
    """Run every study of ``book_dir/studies.yml`` that its source can serve; publish the book.

    A study whose data source lacks what it ``requires`` (see
    :mod:`crmstats.book.studies`) is not run: it is listed on one page, "Not
    available for this source", with what it needs and how to add it — this is
    not a failure. A study that applies and fails is one.

    Parameters
    ----------
    book_dir : str or Path
        The book folder (holding ``_config.yml``, ``intro.md``, ``studies.yml``).
    params : dict, optional
        Run-wide parameters (``--params run.yml``) for the studies that declare them.
    only : list of str, optional
        Run only these study slugs; the others keep their last published pages
        (a study never published before is left out of this book).
    jobs : int, optional
        Studies executed in parallel; default the number of cores.
    keep_going : bool
        Run every study even after a failure and publish the book with the
        failed studies marked as failed. Without it, a failure publishes
        nothing.
    strict : bool
        Treat Sphinx warnings as errors.
    on_done : callable, optional
        Progress callback, given each :class:`StudyResult`.
    keep_runs : int
        Run archives kept in ``book/runs`` after this run (the newest ones, and
        always the latest published one); 0 keeps them all.
    params_file : str, optional
        The file ``params`` came from, named in errors about them.
    fork_server : bool
        Fork the studies' kernel server from this process once it has made the
        built-in sources (:func:`crmstats.book.warm.warm_kernels`): the command
        line does, its process does nothing but the build. A process with state
        of its own (a Matplotlib backend or style, pandas options, open
        figures) leaves it off, and the server is a fresh interpreter.

    Returns
    -------
    BuildResult

    Raises
    ------
    StudyError
        When a study fails (without ``keep_going``) or the book build fails,
        naming each failed notebook and cell; the previously published HTML
        stays in place.
    """
    from crmstats.book.lean import import_jsonschema

    import_jsonschema()  # before papermill imports it: without what a build never uses
    book_dir = Path(book_dir).resolve()
    studies = load_studies(book_dir / "studies.yml", overrides=params, params_file=params_file)
    check_key()  # a short key fails here once; a new key is announced here, not on a page
    chosen = {s.slug for s in studies}
    if only:  # the other studies keep their last published pages
        unknown = set(only) - chosen
        if unknown:
            raise StudyError(f"{book_dir / 'studies.yml'}: no study with slug(s) "
                             f"{sorted(unknown)}")
        chosen = set(only)
    html = book_dir / "_build" / "html"
    result = BuildResult(html=html)
    with _terminate_on_sigterm(), build_lock(book_dir):
        result.recovered = recover(book_dir)
        now = _dt.datetime.now(_dt.UTC)
        started = now.isoformat(timespec="seconds")
        runs_dir = book_dir / "runs"
        run_dir = runs_dir / now.strftime("%Y-%m-%d_%H%M%S")
        while run_dir.exists():  # two runs in one second: keep both
            run_dir = run_dir.with_name(run_dir.name + "x")
        result.run_dir = run_dir
        try:
            return _run_and_publish(book_dir, studies, result, run_dir, params, started,
                                    jobs=jobs, keep_going=keep_going, strict=strict,
                                    on_done=on_done, chosen=chosen, fork_server=fork_server)
        finally:
            shutil.rmtree(book_dir / "_build.staging", ignore_errors=True)
            prune_runs(runs_dir, keep_runs)


def _run_and_publish(book_dir: Path, studies: list[Study], result: BuildResult, run_dir: Path,
                     params, started: str, *, jobs, keep_going, strict, on_done,
                     chosen: set[str], fork_server: bool = False) -> BuildResult:
    """Run the studies, archive the run and (unless a study failed) publish the book."""
    root = book_dir.parent
    expected = last_seconds(run_dir.parent)
    with ExitStack() as server:
        # the kernel server imports, makes the built-in sources and validates them while
        # this process loads the sources to check the studies' needs; it ends with the studies
        os.environ["MPLBACKEND"] = _runner.INLINE_BACKEND
        fits = server.enter_context(_runner._fit_cache(None))  # also for the early study
        early: list[EarlyStudy] = []
        server.callback(lambda: [study.cancel() for study in early])  # done: a no-op
        first = early_candidate([s for s in studies if s.slug in chosen], expected)

        def start_early() -> None:  # the lean server serves: start its longest study
            if first is not None:
                early.append(EarlyStudy(first, book_dir / "studies", root))

        kernel = server.enter_context(_runner.warm_kernels(
            root, {str(s.parameters.get("data_source", "demo")) for s in studies
                   if s.slug in chosen}, fork=fork_server, on_lean=start_early))
        raise_if_stopped()
        crms, to_run, studies, unavailable, kept, record = _run_studies(
            book_dir, studies, result, run_dir, params, started, kernel, jobs=jobs,
            keep_going=keep_going, on_done=on_done, chosen=chosen, fits=fits,
            early=early[0] if early else None, expected=expected)
    if not keep_going and (result.failures or len(result.studies) < len(to_run)):
        lines = [str(r.error) for r in result.failures]
        skipped = len(to_run) - len(result.studies)
        if skipped:
            lines.append(f"{skipped} study(ies) not run after the first failure "
                         "(use --keep-going to run them all)")
        raise StudyError("study failed; the book was not published:\n  "
                         + "\n  ".join(lines))
    return _publish_book(book_dir, studies, result, run_dir, root, crms, unavailable, kept,
                         record, strict=strict)


def _run_studies(book_dir: Path, studies: list[Study], result: BuildResult, run_dir: Path,
                 params, started: str, kernel: str, *, jobs, keep_going, on_done,
                 chosen: set[str], fits: str, early: EarlyStudy | None,
                 expected: dict[str, float]) -> tuple:
    """Check the studies' needs, run those that apply, archive the run.

    ``early`` is a study already started (it is discarded, if its source turns
    out not to serve it); ``fits`` the folder of the build's fitted models.
    """
    root, runs_dir = book_dir.parent, run_dir.parent
    crms = _load_sources(studies, root)
    raise_if_stopped()  # a source's loading tolerates errors
    unavailable = _unavailable(studies, crms)
    result.unavailable = {slug: [list(item) for item in unmet]
                          for slug, unmet in unavailable.items()}
    available = [s for s in studies if s.slug not in unavailable]
    kept = _kept_studies([s for s in available if s.slug not in chosen], runs_dir)
    # --only: a study not chosen keeps its published page, or is left out of this book
    studies = [s for s in studies if s.slug in chosen or s.slug in kept or s.slug in unavailable]
    to_run = [s for s in available if s.slug in chosen]
    result.studies = run_studies(to_run, book_dir / "studies", jobs=jobs, cwd=root,
                                 keep_going=keep_going, on_done=on_done, fit_cache=fits,
                                 kernel_name=kernel, expected=expected, early=early)
    with _fs_step("archiving the run"):
        record = _archive(run_dir, studies, result.studies, params, started, kept,
                          unavailable)
        if (Path(fits) / "fits.log").exists():  # which models were fitted, which shared
            shutil.copy2(Path(fits) / "fits.log", run_dir / "fits.log")
    return crms, to_run, studies, unavailable, kept, record


def _publish_book(book_dir: Path, studies: list[Study], result: BuildResult, run_dir: Path,
                  root: Path, crms, unavailable, kept, record, *, strict) -> BuildResult:
    """Assemble, build, scan and publish the book of a run whose studies are done."""
    from crmstats.privacy import machine_paths

    runs_dir = run_dir.parent
    staging = book_dir / "_build.staging"
    personal = _personal_values(studies, crms)
    raise_if_stopped()  # a table that does not load gives no values
    paths = machine_paths([root, book_dir, staging])
    source = staging / "src"
    with _fs_step("assembling the book sources"):
        if staging.exists():
            shutil.rmtree(staging)
        source.mkdir(parents=True)
        for item in book_dir.iterdir():
            if item.name in GENERATED or item.name.startswith((".", "_build")):
                continue
            target = source / item.name
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        (source / "studies").mkdir()
        by_slug = {r.slug: r for r in result.studies}
        for study in studies:
            res = by_slug.get(study.slug)
            published = source / "studies" / f"{study.slug}.ipynb"
            if study.slug in unavailable:
                continue  # listed on the one "not available" page
            name = source_label(_source_of(study), root)
            if study.slug in kept:
                folder, old = kept[study.slug]
                strip_kpi_records(_kept_notebook(kept, study.slug), published,
                                  title=study.title, source_name=name,
                                  banner=_kept_banner(old.get("from_run") or folder.name))
            elif res is not None and res.ok:
                strip_kpi_records(res.output, published, title=study.title, source_name=name)
            else:
                error = str(res.error) if res is not None else "not run"
                (source / "studies" / f"{study.slug}.md").write_text(
                    _failure_page(study, public_error(error, personal, paths), run_dir.name))
        earlier = [data for folder, data in _published(_runs(runs_dir))
                   if folder.name < run_dir.name]
        page = summary_page(_public_record(record, personal, paths), earlier, root=root)
        (source / "summary.md").write_text(page)
        (run_dir / "summary.md").write_text(page)
        # every other Markdown page of the book folder, the intro first
        pages = sorted(p.stem for p in source.glob("*.md") if p.stem != "summary")
        front = sorted(pages, key=lambda name: (name != "intro", name))
        extra = []
        if unavailable:
            (source / "studies" / f"{NOT_AVAILABLE_PAGE}.md").write_text(
                _not_available_page(studies, unavailable, root))
            extra.append(f"studies/{NOT_AVAILABLE_PAGE}")
        write_toc([s for s in studies if s.slug not in unavailable], source / "_toc.yml",
                  root="summary", front_pages=front, extra_pages=extra)
    _jupyter_book(source, staging / "out", strict)
    new_html = staging / "out" / "_build" / "html"
    _reached("built")
    with _fs_step("scanning the book"):
        findings = scan_book(new_html, personal=personal, paths=paths)
    if findings:
        raise StudyError(scan_refusal(new_html, findings, personal=personal, paths=paths))
    _reached("scanned")
    raise_if_stopped()
    _publish(new_html, book_dir, run_dir.name)
    result.published = True
    return result

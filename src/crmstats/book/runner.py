"""Execute study templates with papermill, one or many in parallel.

Kernels run with the repository root as working directory (so relative data
paths in parameters mean the same as on the command line) and with
matplotlib's inline backend, so figures are saved in the executed notebook
even when the calling process set ``MPLBACKEND=Agg`` (kernels inherit the
environment, and a non-inline backend would silently drop every figure). A failing cell becomes a
:class:`~crmstats.StudyError` naming the notebook, the cell and the error —
not a page of traceback.

Studies of one :func:`run_studies` call share a cache of fitted models
(:mod:`crmstats.fitcache`): the runner names a fresh folder in the kernels'
environment (``CRMSTATS_FIT_CACHE``), so the same model fitted to the same data
is fitted once per build; the folder is removed when the studies are done.
Their kernels are forked from one process that imported the stack once
(:mod:`crmstats.book.warm`), each study still in a fresh kernel of its own.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmstats.book.stopping import raise_if_stopped
from crmstats.book.studies import Study, validate_parameters
from crmstats.book.warm import warm_kernels
from crmstats.book.warm_policy import kernel_for
from crmstats.exceptions import StudyError

__all__ = ["StudyResult", "run_studies", "run_study"]

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass
class StudyResult:
    """Outcome of one study run.

    Attributes
    ----------
    slug : str
        The study.
    output : pathlib.Path
        The executed notebook (also written on failure, with the error in it).
    seconds : float
        Wall time.
    error : StudyError or None
        The failure, if any.
    """

    slug: str
    output: Path
    seconds: float
    error: StudyError | None = None

    @property
    def ok(self) -> bool:
        """Whether the study ran without error."""
        return self.error is None


def _describe_failure(template: Path, exc: Exception) -> StudyError:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        cell = f"cell {exc.cell_index}"
        if exc.exec_count is not None:
            cell += f" (execution count {exc.exec_count})"
        return StudyError(f"{template.name}: {cell} failed: {exc.ename}: {exc.evalue}")
    return StudyError(f"{template.name}: {type(exc).__name__}: {exc}")


def run_study(
    template: str | Path,
    output: str | Path,
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    kernel_name: str = "python3",
    progress: bool = False,
) -> Path:
    """Run one study template to an executed notebook.

    Parameters
    ----------
    template : str or Path
        The template notebook.
    output : str or Path
        Where the executed notebook goes (its folder is created).
    parameters : dict, optional
        Parameters injected after the template's ``parameters`` cell.
    cwd : str or Path, optional
        Working directory of the kernel; default the current one.
    kernel_name : str
        Jupyter kernel; ``python3`` resolves to this interpreter's environment.
    progress : bool
        Show papermill's cell progress bar.

    Returns
    -------
    pathlib.Path
        The executed notebook.

    Raises
    ------
    StudyError
        If a cell fails (naming notebook, cell and error), the template is
        missing or not a notebook, or a parameter is not plain data of its
        declared type, is undeclared or looks like a credential (checked here,
        before papermill writes any value into the notebook).
    """
    from crmstats.book.lean import import_jsonschema

    import_jsonschema()  # before papermill imports it (crmstats.book.lean)
    import papermill

    template, output = Path(template), Path(output)
    params = dict(parameters or {})
    validate_parameters(params, template, template.name)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"{template.name}: cannot create the output folder "
                         f"{output.parent} ({exc.strerror or exc})") from None
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    attempt = 0
    while True:
        attempt += 1
        try:
            papermill.execute_notebook(
                str(template),
                str(output),
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(cwd) if cwd else None,
                progress_bar=progress,
                log_output=False,
                # written once at the end (and on a failure, with the error), not before and
                # after every cell: each write serialises and schema-checks the whole notebook,
                # figures included (~400 writes a book, seconds of the build's CPU)
                request_save_on_cell_execute=False,
                # the kernel's own start-up chatter (transport warnings) is not the study's
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
            return output
        except Exception as exc:  # papermill raises several types; all become a StudyError
            if attempt < _KERNEL_START_ATTEMPTS and _kernel_failed_to_start(exc):
                continue  # e.g. two kernels drew the same free TCP port: start afresh
            raise _describe_failure(template, exc) from None


#: Attempts to start a study's kernel before its failure to start is reported.
_KERNEL_START_ATTEMPTS = 3


def _kernel_failed_to_start(exc: Exception) -> bool:
    """Whether ``exc`` is a kernel that died or never answered before running any cell.

    Jupyter picks each kernel's TCP ports by asking the OS for free ones and
    closing them again; kernels started at the same moment can draw the same
    port and one of them dies ("Address already in use"). No cell has run
    then, so running the study again is safe.
    """
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return False
    text = f"{type(exc).__name__}: {exc}"
    return any(sign in text for sign in ("Kernel died before replying to kernel_info",
                                         "Address already in use",
                                         "Kernel didn't respond in"))


def run_studies(
    studies: list[Study],
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    cwd: str | Path | None = None,
    keep_going: bool = False,
    on_done: Callable[[StudyResult], None] | None = None,
    fit_cache: str | Path | None = None,
    kernel_name: str | None = None,
    expected: dict[str, float] | None = None,
    early=None,
) -> list[StudyResult]:
    """Run studies in parallel into ``out_dir/<slug>.ipynb``.

    Parameters
    ----------
    studies : list of Study
        What to run.
    out_dir : str or Path
        Folder of the executed notebooks.
    jobs : int, optional
        Parallel kernels; default the number of cores.
    cwd : str or Path, optional
        Working directory of the kernels.
    keep_going : bool
        Run every study even after one failed; otherwise studies not yet
        started are skipped after the first failure.
    on_done : callable, optional
        Called with each :class:`StudyResult` as it finishes (progress display).
    fit_cache : str or Path, optional
        An existing folder for the studies' shared fitted models (it keeps
        ``fits.log``); default a temporary folder removed afterwards.
    kernel_name : str, optional
        Kernels already served (a build starts :func:`~crmstats.book.warm.warm_kernels`
        early, so the server makes its sources while the build checks them); default
        warm kernels started here for these studies.
    expected : dict, optional
        ``{slug: seconds}`` each study is expected to take (a build gives its last
        run's): the studies start longest first, so the last one to start is a short
        one and no core idles while a long study ends. Studies without an expected
        time start first, in their order; without ``expected`` all keep their order.
    early : crmstats.book.early.EarlyStudy, optional
        One of ``studies`` already running in a process of its own (a build starts
        it while it makes its sources): it counts as one of the ``jobs`` until it
        ends, and its result is collected here. Cancelled if the run is interrupted.

    Returns
    -------
    list of StudyResult
        In the order of ``studies`` (skipped studies are absent).
    """
    out_dir = Path(out_dir)
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    failed = False
    results: dict[str, StudyResult] = {}

    workers: set[threading.Thread] = set()  # the threads that run studies

    def one(study: Study) -> StudyResult:
        workers.add(threading.current_thread())
        start = time.perf_counter()
        output = out_dir / f"{study.slug}.ipynb"
        try:
            run_study(study.template, output, study.parameters, cwd=cwd,
                      kernel_name=kernel_for(kernel, study))
            return StudyResult(study.slug, output, time.perf_counter() - start)
        except StudyError as exc:
            return StudyResult(study.slug, output, time.perf_counter() - start, exc)

    os.environ["MPLBACKEND"] = INLINE_BACKEND  # before the kernel server imports Matplotlib
    sources = {str(s.parameters.get("data_source", "demo")) for s in studies}
    served = nullcontext(kernel_name) if kernel_name else warm_kernels(cwd, sources)
    if early is not None and early.slug not in {s.slug for s in studies}:
        early.cancel()
        early = None
    # started here in this order as kernels free up (the early study counts as one), so
    # the longest-first order holds
    pending = deque(s for s in longest_first(studies, expected)
                    if early is None or s.slug != early.slug)
    with _fit_cache(fit_cache), served as kernel:
        pool = ThreadPoolExecutor(max_workers=jobs + (early is not None))
        running = {pool.submit(early.result)} if early is not None else set()
        try:
            while running or pending:
                raise_if_stopped()
                while pending and len(running) < jobs and (keep_going or not failed):
                    running.add(pool.submit(one, pending.popleft()))
                if not running:
                    break  # a study failed: the others are not started
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    results[result.slug] = result
                    if not result.ok:
                        failed = True
                    if on_done is not None:
                        on_done(result)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): start no further study
            # and do not wait for the running ones: their kernels end with the servers
            # (here, or the build's), and then their threads
            pool.shutdown(wait=False, cancel_futures=True)
            _quiet_abandoned(workers)
            if early is not None:
                early.cancel()
            raise
        pool.shutdown()
    return [results[s.slug] for s in studies if s.slug in results]


def _quiet_abandoned(threads: set[threading.Thread]) -> None:
    """Drop what papermill logs from ``threads`` while they last: studies left running.

    An interrupted run does not wait for its running studies; their kernels
    end with the servers, and papermill's client in each thread then logs that
    the kernel died ("Kernel died while waiting for execute reply.") after the
    run's own one-line error. Only records of those threads, while they are
    alive, are dropped (a thread's id may be reused by a later one).
    """
    import logging

    abandoned = set(threads)

    def keep(record: logging.LogRecord) -> bool:
        return not any(t.ident == record.thread and t.is_alive() for t in abandoned)

    logging.getLogger("papermill").addFilter(keep)


def longest_first(studies: list[Study], expected: dict[str, float] | None) -> list[Study]:
    """Order ``studies`` for a pool of kernels: unknown times first, then longest first.

    The order of equal times (and of unknown ones) is the studies' own. Greedy
    longest-first keeps the last core from working alone at the end of a build.
    """
    if not expected:
        return list(studies)
    rank = {s.slug: i for i, s in enumerate(studies)}
    return sorted(studies, key=lambda s: (s.slug in expected, -expected.get(s.slug, 0.0),
                                          rank[s.slug]))


@contextmanager
def _fit_cache(folder: str | Path | None):
    """Name the build's fitted-model cache in the environment the kernels inherit; yield it.

    ``folder`` None: a temporary folder, removed at the end.
    """
    from crmstats.fitcache import ENV

    before = os.environ.get(ENV)
    made = nullcontext(folder) if folder else tempfile.TemporaryDirectory(prefix="crmstats-fits-")
    with made as path:
        os.environ[ENV] = str(Path(path).resolve())
        try:
            yield os.environ[ENV]
        finally:
            if before is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = before


def print_progress(result: StudyResult, stream=None) -> None:
    """Print one line per finished study (the default progress display)."""
    stream = stream or sys.stderr
    mark = "ok  " if result.ok else "FAIL"
    line = f"  [{mark}] {result.slug:<28} {result.seconds:6.1f} s"
    if not result.ok:
        line += f"\n         {result.error}"
    print(line, file=stream, flush=True)

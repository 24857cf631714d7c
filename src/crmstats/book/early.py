"""A study that starts while the build still makes its sources: one process forked early.

``crmstats book build`` prepares its kernel server in its own process
(:mod:`crmstats.book.warm`): it imports the stack, forks the lean server,
then makes and validates the built-in sources — on the 10x demo about 7 s on
one core, while the other core has nothing to do, and before any study may
start. A study whose kernel comes from the lean server
(:func:`crmstats.book.warm_policy.kernel_for`: it makes its own data) needs
none of that. :class:`EarlyStudy` runs one such study from the moment the lean
server serves: the build forks a child (it is single-threaded then, so the
fork is safe) that runs the study with papermill, as the build's own threads
would, and reports its outcome on a pipe; the build then makes its sources
while that study runs, and :func:`crmstats.book.runner.run_studies` counts
the child as one of its ``jobs`` until it ends.

The child dies with the build (Linux ``PR_SET_PDEATHSIG``), lets go of the
build's lock, and ends with ``os._exit``: nothing of the build's state runs
again in it. Its kernel is the lean server's, which ends with the build.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from crmstats.book.runner import StudyResult, run_study
from crmstats.book.studies import Study
from crmstats.book.warm_policy import KERNEL_NAME, LEAN_KERNEL_NAME, kernel_for
from crmstats.exceptions import StudyError

__all__ = ["EarlyStudy", "early_candidate"]


def early_candidate(studies: list[Study], expected: dict[str, float] | None = None) -> Study | None:
    """Return the study to start early: the longest of those run on a lean kernel, or None.

    Lean kernels are those of :func:`~crmstats.book.warm_policy.kernel_for`
    (a study that makes its own data, on a demo source). Without an expected
    time for each, the first of them in ``studies``' order.
    """
    lean = [s for s in studies if kernel_for(KERNEL_NAME, s) == LEAN_KERNEL_NAME]
    if not lean:
        return None
    if expected and all(s.slug in expected for s in lean):
        return max(lean, key=lambda s: expected[s.slug])  # max keeps the first of equals
    return lean[0]


class EarlyStudy:
    """One study run in a child process forked now, its outcome read when the build wants it.

    Parameters
    ----------
    study : Study
        The study (its kernel comes from the lean server).
    out_dir : str or Path
        Folder of the executed notebook (``out_dir/<slug>.ipynb``).
    cwd : str or Path, optional
        Working directory of its kernel.

    Notes
    -----
    Create it only in a process with no other thread (the fork copies no
    thread, but it copies the locks they hold). :meth:`result` waits for the
    child; :meth:`cancel` ends it. One of the two must be called.
    """

    def __init__(self, study: Study, out_dir: str | Path, cwd: str | Path | None = None):
        self.study = study
        self.slug = study.slug
        self.output = Path(out_dir) / f"{study.slug}.ipynb"
        self._started = time.perf_counter()
        self._result: StudyResult | None = None
        self._collecting = threading.Lock()  # one reader of the pipe
        self._reaping = threading.Lock()
        self._reaped = False
        _import_papermill()  # here, once: the child and this process both use it
        read, write = os.pipe()
        parent = os.getpid()
        sys.stdout.flush()  # what this process buffered is printed once, by this process
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into the build's code
            os.close(read)
            _run_in_child(study, self.output, cwd, write, parent)
        os.close(write)
        self._read = read

    def result(self) -> StudyResult:
        """Wait for the study and return its :class:`~crmstats.book.runner.StudyResult`."""
        with self._collecting:
            if self._result is None:
                self._result = self._collect()
            return self._result

    def cancel(self) -> None:
        """End the study's process now (the build is interrupted, or does not need the study).

        Its kernel, forked by the lean server, ends when that server does (with
        the build's kernels).
        """
        with self._reaping:
            if not self._reaped:  # never a pid that may since belong to another process
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
        self.result()

    def _collect(self) -> StudyResult:
        data = b""
        try:
            while chunk := os.read(self._read, 65536):
                data += chunk
        finally:
            os.close(self._read)
            with self._reaping:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(self.pid, 0)
                self._reaped = True
        try:
            outcome = json.loads(data)
            seconds, error = float(outcome["seconds"]), outcome["error"]
        except (ValueError, KeyError, TypeError):  # ended (or was ended) before it could say
            seconds = time.perf_counter() - self._started
            error = f"{self.study.template.name}: the study's process ended without a result"
        return StudyResult(self.slug, self.output, seconds,
                           None if error is None else StudyError(str(error)))


def _import_papermill() -> None:
    from crmstats.book.lean import import_jsonschema

    import_jsonschema()  # before papermill imports it (crmstats.book.lean)
    import papermill  # noqa: F401


def _run_in_child(study: Study, output: Path, cwd: Any, pipe: int, parent: int) -> None:
    """In the forked child: run the study, write its outcome as JSON to ``pipe``, exit."""
    code = 1
    try:
        _die_with(parent)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the build's handler is the build's
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from crmstats.book.warm import _close_build_locks

        _close_build_locks()
        start = time.perf_counter()
        error = None
        try:
            run_study(study.template, output, study.parameters, cwd=cwd,
                      kernel_name=LEAN_KERNEL_NAME)
        except StudyError as exc:
            error = str(exc)
        data = json.dumps({"seconds": time.perf_counter() - start, "error": error}).encode()
        while data:
            data = data[os.write(pipe, data):]
        code = 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _die_with(parent: int) -> None:
    """Linux: end this process when the build (``parent``) does, also when it is SIGKILLed."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the build ended before the call took effect
        os._exit(1)

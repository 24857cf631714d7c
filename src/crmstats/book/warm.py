"""Warm kernels for a book build: study kernels forked from one process that imported the stack.

Each study runs in a fresh kernel (nothing leaks from one study into the
next), but starting Python, ipykernel, pandas, Ibis, DuckDB, SciPy,
statsmodels, Matplotlib and crmstats costs every kernel 3-4 s of CPU — on a
12-study book more than the studies' own work. :func:`warm_kernels` starts one
server process per build that holds all of that once and then forks a
kernel for every study that asks:

* ``crmstats book build`` imports the stack, makes the built-in sources (the
  demo, CDNOW) and validates them in its own process, then forks the server
  (:func:`_fork_server`): the build checks the studies' needs on the same
  sources, and no second interpreter imports everything and simulates the demo
  again; any other caller (a session with state of its own) starts the server
  as a new interpreter (``python -m crmstats.book.warm``), which does the same
  work itself;
* a kernel spec ``crmstats-warm`` (in a temporary Jupyter path) whose command
  is :mod:`crmstats.book._warm_launch`, a standard-library script that sends
  its arguments, folder and environment to the server over a Unix socket and
  stays alive as the process Jupyter manages (forwarding interrupts; exiting
  when the kernel does);
* the server forks: the child takes the launcher's folder and environment,
  resets its signal handlers and becomes an ipykernel on the connection file
  Jupyter wrote. The server imports no Matplotlib backend and opens no
  database connection, so the child sets up the inline backend and DuckDB as
  a fresh kernel does (figures and results are the same);
* when the server cannot be reached the launcher starts an ordinary kernel.
* a study that makes its own data (:mod:`crmstats.book.warm_policy`) gets its
  kernel (spec ``crmstats-warm-lean``) from a lean server, forked after the
  imports and before the sources are made: a fork maps all of the server's
  pages, so its kernel would count the preloaded demo it never reads. A build
  starts the longest of those studies as soon as the lean server serves, while
  it still makes the sources (``on_lean``, :mod:`crmstats.book.early`).

The server exits when the build's context ends or the build process dies. The
server waits for its kernels, so their CPU time is counted in the build's.

(Over 500 lines: the servers' preparation, their forks, their loop and the
kernels' start are one mechanism, whose order matters; split, it reads worse.)
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from crmstats.book.stopping import raise_if_stopped
from crmstats.book.warm_policy import (
    KERNEL_NAME,
    LEAN_KERNEL_NAME,
    one_blas_thread,
    release_free_memory,
)

__all__ = ["KERNEL_NAME", "OFF_ENV", "PRELOAD", "validate_preloaded", "warm_kernels"]

#: ``CRMSTATS_WARM_KERNELS=0`` turns warm kernels off (ordinary kernels, e.g. to compare).
OFF_ENV = "CRMSTATS_WARM_KERNELS"
#: A file the server appends each kernel's times to (``benchmarks/book.py``); unset: none.
KERNEL_LOG_ENV = "CRMSTATS_KERNEL_LOG"

#: What the server imports before forking kernels: what every study kernel imports.
PRELOAD = (
    "ipykernel.kernelapp", "ipykernel.ipkernel", "IPython.core.pylabtools",
    "pandas", "numpy", "scipy.optimize", "scipy.special", "scipy.stats",
    "statsmodels.api", "ibis", "ibis.backends.duckdb", "duckdb", "matplotlib",
    "matplotlib.pyplot", "papermill.translators",
    "crmstats", "crmstats.clv", "crmstats.churn", "crmstats.attribution", "crmstats.funnel",
    "crmstats.overview", "crmstats.scores", "crmstats.book", "crmstats.book.report",
    "crmstats.book.findings",
)

#: Modules that must not be imported before the fork: the child's IPython shell must import
#: (and so activate) the inline Matplotlib backend itself.
_NOT_BEFORE_FORK = ("matplotlib_inline.backend_inline",)


@contextlib.contextmanager
def warm_kernels(cwd: str | Path | None = None, sources=(), *, fork: bool = False,
                 on_lean: Callable[[], None] | None = None):
    """Serve warm kernels under the kernel name :data:`KERNEL_NAME` while the context lasts.

    ``sources`` are the studies' data sources: the built-in ones (the
    simulated demo, CDNOW) are made once in the server before it forks
    (:func:`crmstats.sources.preload_sources`), so no kernel simulates the
    demo again.

    With ``fork=True`` the server is forked from this process: the imports,
    the built-in sources and their validation are done here, once, and this
    process keeps them too (a build checks the studies' needs on the same
    sources), instead of a second interpreter importing the stack and
    simulating the demo again while this one does. Only a process that holds
    nothing else the kernels could inherit should ask for it (``crmstats book
    build`` does): a session's Matplotlib backend and style, pandas options or
    open figures would reach every kernel. Otherwise (the default, and always
    when other threads run, whose locks a fork could copy held) the server is a
    new interpreter.

    ``on_lean`` is called in this process as soon as the lean server serves
    (:mod:`crmstats.book.warm_policy`), before the sources are made — only
    when the server is forked from this process: this process is then still
    single-threaded, so the call may fork a process that runs studies on lean
    kernels while this one makes the sources (a build does:
    :class:`crmstats.book.early.EarlyStudy`).

    Sets ``JUPYTER_PATH`` so the kernel spec is found; yields the kernel name.
    With the environment variable ``CRMSTATS_WARM_KERNELS=0`` it yields
    ``"python3"`` and starts nothing: every study starts an ordinary kernel.
    """
    if os.environ.get(OFF_ENV, "").strip() == "0":
        yield "python3"
        return
    with tempfile.TemporaryDirectory(prefix="crmstats-kernels-") as tmp:
        sock = Path(tmp) / "server.sock"
        _kernel_spec(Path(tmp), KERNEL_NAME, sock)
        _kernel_spec(Path(tmp), LEAN_KERNEL_NAME, _lean_socket(sock))
        sources = sorted({str(x) for x in sources})
        before = os.environ.get("JUPYTER_PATH")
        # before the servers start: what on_lean forks finds the kernel specs
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [tmp, before]))
        stop = None
        try:
            if fork and _can_fork():
                stop = _fork_server(sock, sources, on_lean)
            else:
                stop = _spawn_server(sock, sources, cwd)
            yield KERNEL_NAME
        finally:
            if before is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = before
            if stop is not None:
                stop()


def _kernel_spec(folder: Path, name: str, sock: Path) -> None:
    """Write the kernel spec ``name``: a launcher asking the server listening on ``sock``."""
    spec = folder / "kernels" / name
    spec.mkdir(parents=True)
    launcher = Path(__file__).with_name("_warm_launch.py")
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-I", "-S", str(launcher), str(sock),
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (crmstats build)", "language": "python",
        "interrupt_mode": "signal"}))


def _can_fork() -> bool:
    """Whether this process may fork the server: POSIX, and no other Python thread running."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def _spawn_server(sock: Path, sources: list[str], cwd) -> Callable[[], None]:
    """Start the server as a new interpreter; return what ends it."""
    server = subprocess.Popen([sys.executable, "-m", "crmstats.book.warm", str(sock),
                               json.dumps(sources)],
                              cwd=str(cwd) if cwd else None, stdin=subprocess.DEVNULL)
    _wait_for_socket(sock, server)

    def stop() -> None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    return stop


def _fork_server(sock: Path, sources: list[str],
                 on_lean: Callable[[], None] | None = None) -> Callable[[], None]:
    """Prepare the server's state in this process, fork it; return what ends it.

    The lean server (:mod:`crmstats.book.warm_policy`) is forked from here
    too, after the imports and before the sources are made; ``on_lean`` is
    called right after it (:func:`warm_kernels`).
    """
    lean = _prepare(sources, _listen(str(_lean_socket(sock))), on_lean)
    listener = _listen(str(sock))
    parent = os.getpid()
    sys.stdout.flush()  # what this process buffered is printed once, by this process
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the server: it never returns into the build's code
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the loop sets its own
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _close_build_locks()
            _loop(listener, parent)
        finally:
            os._exit(1)
    listener.close()

    def stop() -> None:
        for server in (pid, lean):
            _stop_forked(server)

    return stop


def _stop_forked(pid: int | None) -> None:
    """End a server this process forked and wait for it (SIGKILL after 30 s)."""
    import time

    if pid is None:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                time.sleep(0.02)
                continue
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _close_build_locks() -> None:
    """In a server forked from a build: let go of the build's lock (it is the build's to hold)."""
    publish = sys.modules.get("crmstats.book.publish")
    for fd in getattr(publish, "_HELD", ()):
        with contextlib.suppress(OSError):
            os.close(fd)


def _child(conn: socket.socket, request: dict) -> None:
    """In the forked child: become the study's kernel (never returns)."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.setsid()
        _watch_launcher(conn)
        one_blas_thread()  # kernels run side by side, one per core (warm_policy)
        from ipykernel.kernelapp import IPKernelApp

        from crmstats.book.kernel_log import quiet_shutdown_interrupt

        quiet_shutdown_interrupt()  # Jupyter interrupts every kernel it shuts down
        # the server is the kernel's parent: the kernel ends with it (and prints no banner)
        sys.argv = ["ipykernel_launcher", *request["args"],
                    f"--IPKernelApp.parent_handle={os.getppid()}"]
        IPKernelApp.launch_instance()
        code = 0
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _watch_launcher(conn: socket.socket) -> None:
    """End the kernel when its launcher (the process Jupyter manages) is gone."""
    import threading

    def watch():
        try:
            while conn.recv(64):
                pass
        except OSError:
            pass
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="crmstats-launcher-watch").start()


def _read_request(conn: socket.socket) -> dict:
    data = b""
    conn.settimeout(10)
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise OSError("launcher closed the connection")
        data += chunk
        if len(data) > 4_000_000:
            raise OSError("request too long")
    conn.settimeout(None)
    request = json.loads(data)
    if not (isinstance(request.get("args"), list) and isinstance(request.get("cwd"), str)
            and isinstance(request.get("env"), dict)):
        raise OSError("malformed request")
    return request


def serve(path: str, sources=()) -> None:
    """Import :data:`PRELOAD` and make ``sources``, then fork a kernel per launcher."""
    parent = os.getppid()
    listener = _listen(path)  # first: a launcher that comes early waits for the imports
    lean = _prepare(sources, _listen(str(_lean_socket(Path(path)))))
    _loop(listener, parent, lean)


def _listen(path: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    return listener


def _prepare(sources, lean: socket.socket | None = None,
             on_lean: Callable[[], None] | None = None) -> int | None:
    """Import :data:`PRELOAD`, make and validate the built-in ``sources``: what kernels inherit.

    With ``lean`` (a listening socket), the lean server
    (:mod:`crmstats.book.warm_policy`) is forked on it after the imports,
    before the sources are made, and ``on_lean`` is called then; returns
    the lean server's process id.
    """
    import importlib
    import warnings

    from crmstats.book.lean import import_jsonschema

    import_jsonschema()  # before papermill.translators imports it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in PRELOAD:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    lean_pid = None if lean is None else _fork_lean(lean)
    if lean_pid is not None and on_lean is not None:
        on_lean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from crmstats.exceptions import CRMStatsError
        from crmstats.sources import preload_sources

        for source in sources:  # one by one: a kernel reports a source that fails itself
            with contextlib.suppress(CRMStatsError, OSError, ValueError):
                preload_sources([source])
            raise_if_stopped()  # a stop request is no source's error
    _ready_to_fork()
    return lean_pid


def _ready_to_fork() -> None:
    """Take the last steps before kernels are forked: figures, validation, no connection, waste."""
    _render_inline_figures_once()
    validate_preloaded()
    _no_connection_yet()
    for name in _NOT_BEFORE_FORK:  # a preloaded module pulled it in: leave it to the kernel
        sys.modules.pop(name, None)
    release_free_memory()


# --- the lean server (crmstats.book.warm_policy.kernel_for; helper big10x, issue 23) ---

def _lean_socket(sock: Path) -> Path:
    """Return the lean server's socket, beside the server's."""
    return sock.with_name("lean.sock")


def _fork_lean(listener: socket.socket) -> int:
    """Fork the lean server on ``listener`` (this process imported the stack, made no source)."""
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the lean server: it never returns
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # until the loop sets its own
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _close_build_locks()
            _ready_to_fork()
            _loop(listener, parent)
        finally:
            os._exit(1)
    listener.close()
    return pid


def _render_inline_figures_once() -> None:
    """Let the kernels lay each figure out as before but draw it only for its page.

    In an IPython kernel in interactive mode, pyplot draws every changed
    figure after each cell (``post_execute``: ``draw_all``, for windows on a
    screen), and then the inline backend renders it for the notebook
    (``flush_figures``: the PNG, with its tight bounding box). With the inline
    backend nobody sees that first drawing; only its layout matters: a
    constrained layout starts from the positions of the layout before, so the
    PNG depends on how often the layout ran. The kernels therefore run the
    figure's layout engine where pyplot would draw, and skip the drawing
    itself (the rendering of every patch, line and label): the PNGs are the
    same bytes, for about 60 % less CPU in that step (4.4 -> 1.7 CPU s for the
    83 redraws of nine studies). Other backends keep pyplot's redraw.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    redraw = getattr(plt, "_draw_all_if_interactive", None)
    backend = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
    if redraw is None or backend is None or getattr(redraw, "_crmstats_layout_only", False):
        return  # another Matplotlib: its own redraw stays

    def _draw_all_if_interactive() -> None:
        if backend() != _INLINE:
            redraw()
            return
        from matplotlib._pylab_helpers import Gcf

        if not matplotlib.is_interactive():
            return
        for manager in Gcf.get_all_fig_managers():
            figure = manager.canvas.figure
            engine = figure.get_layout_engine()
            # what Figure.draw does before it renders (a stale figure, as draw_all's)
            if figure.stale and figure.get_visible() and figure.axes and engine is not None:
                with contextlib.suppress(ValueError):
                    engine.execute(figure)

    _draw_all_if_interactive._crmstats_layout_only = True
    plt._draw_all_if_interactive = _draw_all_if_interactive


#: The inline Matplotlib backend of the kernels (crmstats.book.runner.INLINE_BACKEND).
_INLINE = "module://matplotlib_inline.backend_inline"


def _loop(listener: socket.socket, parent: int, lean: int | None = None) -> None:
    """Fork a kernel for every launcher until told to stop or the parent is gone; exit.

    ``lean``: the lean server this server forked (ended and waited for at the end).
    """
    import gc
    import time

    gc.collect()
    gc.freeze()  # the kernels' collections skip what was imported here (and leave it shared)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    kernels: dict[int, float] = {}
    try:
        while not stop and os.getppid() == parent:
            ready, _, _ = select.select([listener], [], [], 0.2)
            if ready:
                conn, _ = listener.accept()
                try:
                    request = _read_request(conn)
                except (OSError, ValueError):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    conn.sendall(f"{os.getpid()}\n".encode())
                    _child(conn, request)
                kernels[pid] = time.time()
                conn.close()  # the child holds the launcher's connection
            _reap(kernels, block=False)
    finally:
        listener.close()
        # the build is over (or died): a kernel still running has no study left to serve
        for pid in kernels:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        _reap(kernels, block=True)
        with contextlib.suppress(OSError):
            if lean is not None:
                os.kill(lean, signal.SIGTERM)
                os.waitpid(lean, 0)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # no interpreter teardown: DuckDB's bindings report "leaks" at exit otherwise


def validate_preloaded() -> list[str]:
    """Validate every table of the preloaded sources once, here, for all the kernels.

    Every study kernel validates the tables it reads (:meth:`crmstats.CRMData.table`:
    the gate's checks, the deep checks), about a second of CPU per kernel on the
    demo and much more on a large one. Done once in the server before it forks,
    each kernel inherits the validated tables (the source's memo and the gate's)
    and finds them checked. A source whose validation warns (a data note its
    studies must show) or fails is left as it was, for each kernel to validate
    and report itself. The DuckDB connection the checks opened is closed again
    (a fork must not inherit its threads); each kernel opens its own.

    Returns
    -------
    list of str
        The sources validated here.
    """
    import sys
    import warnings

    from crmstats import _frames
    from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataWarning
    from crmstats.sources import _PRELOADED
    from crmstats.validation import memory, traps

    backend = sys.modules["crmstats.backend"]  # the module (crmstats.backend is a function)
    # every memo the gate keeps: restored when a source's validation is undone
    memos = (_frames._FRAMES, memory._INPUTS, memory._VALIDATED, traps._TRAPS_SEEN,
             backend._CSV_CACHE)
    package = str(Path(__file__).resolve().parents[1])
    done = []
    for text, crm in _PRELOADED.items():
        before = [dict(memo) for memo in memos]
        ok = True
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                for name in crm.tables():
                    crm.table(name)
            except (CRMStatsError, OSError, ValueError):
                raise_if_stopped()  # a stop request is no source's error
                ok = False
        ok = ok and not any(issubclass(w.category, DataWarning | ConvergenceWarning)
                            or str(w.filename).startswith(package) for w in caught)
        if ok:
            done.append(text)
            continue
        # undo: the kernels validate this source themselves and show what it gives
        crm._validated.clear()
        crm._checked.clear()
        for live, kept in zip(memos, before, strict=True):
            live.clear()
            live.update(kept)
    if backend._BACKEND is not None:
        backend._BACKEND.disconnect()  # its threads end with it: the fork is safe again
        backend._BACKEND = None
        backend._CSV_CACHE.clear()  # tables read on that connection
    _frames.COUNTS.clear()  # validations a kernel counts are its own
    return done


def _wait_for_socket(sock: Path, server: subprocess.Popen, limit: float = 60.0) -> None:
    """Wait until the server listens (it binds first), so no launcher comes too early.

    A launcher that finds no socket starts an ordinary kernel: on a loaded
    machine the server's interpreter can take seconds to start, and every study
    then lost the warm kernel without a word. A server that exits, or does not
    listen within ``limit`` seconds, leaves the studies to ordinary kernels.
    """
    import time

    end = time.monotonic() + limit
    while not sock.exists() and server.poll() is None and time.monotonic() < end:
        time.sleep(0.02)


def _no_connection_yet() -> None:
    """Refuse to fork with a database connection open (its threads would not survive a fork)."""
    module = sys.modules.get("crmstats.backend")  # the module (crmstats.backend is a function)
    if module is not None and module._BACKEND is not None:
        raise RuntimeError("crmstats.book.warm: a DuckDB connection was opened before the fork")


def _reap(kernels: dict[int, float], *, block: bool) -> None:
    """Wait for ended kernels (so their CPU time counts in the build's).

    With :data:`KERNEL_LOG_ENV` set (benchmarks), each kernel's start, end, CPU
    seconds and peak memory are appended to that file as a line of JSON.
    """
    import time

    log = os.environ.get(KERNEL_LOG_ENV)
    while kernels:
        try:
            pid, _, usage = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            kernels.clear()
            return
        if pid == 0:
            return
        start = kernels.pop(pid, None)
        if log and start is not None:
            with contextlib.suppress(OSError), open(log, "a") as out:
                out.write(json.dumps({"start": start, "end": time.time(),
                                      "cpu": usage.ru_utime + usage.ru_stime,
                                      "maxrss_mb": usage.ru_maxrss / 1024}) + "\n")


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else ())

"""Which warm kernel carries which data: the lean server's kernels, the server's freed memory.

A kernel forked from :mod:`crmstats.book.warm`'s server counts every page the
server holds as its own (a fork maps them all): the stack's imports, the
preloaded sources and memory the server freed but its allocators kept. Issue
23 asks for the book on the 10x demo in at most 1.5 GB per process, so:

* a study that makes its own data never reads the preloaded demo; its
  kernel comes from a *lean* server, forked after the imports and before the
  sources are made (:func:`kernel_for`, :data:`LEAN_KERNEL_NAME`);
* before forking, the servers give the memory their allocators freed back to
  the system (:func:`release_free_memory`);
* each kernel runs OpenBLAS on one thread (:func:`one_blas_thread`).
"""

from __future__ import annotations

import contextlib

__all__ = ["LEAN_KERNEL_NAME", "blas_threads", "kernel_for", "one_blas_thread",
           "release_free_memory"]

#: The kernel spec of studies that make their own data (:func:`kernel_for`): forked from a
#: server that imported the stack but holds none of the preloaded sources.
LEAN_KERNEL_NAME = "crmstats-warm-lean"

#: The warm kernels' name (:mod:`crmstats.book.warm` serves them; defined here so that
#: this module needs nothing from it).
KERNEL_NAME = "crmstats-warm"


def kernel_for(kernel_name: str, study) -> str:
    """Return the kernel ``study`` runs in: :data:`LEAN_KERNEL_NAME` when it makes its own data.

    On a simulated demo source, a study that requires ``experiments`` or
    weekly ``spend`` loads its data with
    :func:`~crmstats.attribution.experiment_data` or
    :func:`~crmstats.attribution.media_data`, which simulate a demo of their own
    (with holdout tests, with media spend): such a study never reads the
    preloaded demo, yet a kernel forked from the server that holds it counts
    its pages as its own (a fork maps them all: on the 10x demo ~250 MB of
    every kernel's peak). Its kernel is forked from the lean server instead,
    which imported the stack and made no source. Only where kernels come from
    changes: a lean kernel that does read the demo simulates it itself (the
    same data). Other kernel names are returned as they are.
    """
    if kernel_name != KERNEL_NAME:
        return kernel_name
    source = str(study.parameters.get("data_source", "demo")).strip()
    if source.partition(":")[0] != "demo":
        return kernel_name
    tables = {option.partition(".")[0] for item in study.requires for option in item}
    return LEAN_KERNEL_NAME if tables & {"experiments", "spend@weekly"} else kernel_name


def release_free_memory() -> None:
    """Give the memory freed while the sources were made back to the system before forking.

    Every kernel forked from a server counts the server's resident pages as its own (a
    fork maps them all), freed-but-kept ones too: Arrow's allocator and
    glibc's malloc keep what the simulation freed (on the 10x demo ~300 MB
    beside the ~250 MB of tables) for their next allocations.
    """
    import ctypes

    with contextlib.suppress(ImportError, AttributeError):
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


#: What OpenBLAS builds call their thread-count setters and getters (a plain build, and the
#: builds in NumPy's and SciPy's wheels: 64-bit integers, 32-bit integers).
_SET_THREADS = ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                "scipy_openblas_set_num_threads")
_GET_THREADS = ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
                "scipy_openblas_get_num_threads")


def _openblas_libraries() -> list:
    """Return the OpenBLAS libraries loaded in this process (Linux: ``/proc/self/maps``)."""
    import ctypes
    from pathlib import Path

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    paths = sorted({line.split()[-1] for line in maps.splitlines()
                    if "openblas" in line.rsplit("/", 1)[-1].lower() and ".so" in line})
    libraries = []
    for path in paths:
        with contextlib.suppress(OSError):
            libraries.append(ctypes.CDLL(path))  # already loaded: its handle, nothing new
    return libraries


def one_blas_thread() -> int:
    """Run every OpenBLAS loaded in this process (NumPy's, SciPy's) on one thread.

    A build runs its study kernels side by side, one per core (``--jobs``, by
    default the number of cores); OpenBLAS in each kernel starts as many
    threads as there are cores for every large enough matrix product. The
    kernels then compete for the cores, and each OpenBLAS thread that waits for
    a descheduled partner spins: on this 2-core machine a Gram matrix of the
    10x demo's 367,305 x 26 design took 0.23 CPU s on two threads and 0.03 on
    one. One thread per kernel gives the same results (the products are split
    between threads by output blocks, each summed in the same order) for a
    fraction of the CPU. Returns how many libraries were set.
    """
    done = 0
    for library in _openblas_libraries():
        for name in _SET_THREADS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(1)
                done += 1
                break
    return done


def blas_threads() -> list[int]:
    """Threads of every OpenBLAS loaded in this process (see :func:`one_blas_thread`)."""
    counts = []
    for library in _openblas_libraries():
        getter = next((getattr(library, n) for n in _GET_THREADS if hasattr(library, n)), None)
        if getter is not None:
            counts.append(int(getter()))
    return counts

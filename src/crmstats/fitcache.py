"""A book build's cache of fitted models: fit once per data and parameter set, share on disk.

A book build runs each study in its own kernel, and several studies fit the
same model to the same data (BG/NBD and Gamma-Gamma on a source's RFM summary
in the CLV, channel, lead-scoring, lifecycle and value-migration studies).
While the build runs, its runner names a folder in the environment variable
:data:`ENV`; :func:`fit_shared` then keeps each fitted model there in its
model-file form (:meth:`crmstats.estimator.Estimator.save`: JSON, no pickle)
under a key of

* the data the model is fitted to: a hash of every value, the index, the
  column names and types, and the column axis's name (which carries an RFM
  summary's time units), so a change of data is a new key — the source's
  fingerprint, observation end, granularity and customer subset all act
  through the data they produce;
* the model's class and hyperparameters (``_hyper``);
* the crmstats version and the model file's format version.

The first kernel that needs a model fits it and writes it atomically (a
temporary file renamed into place); a kernel that needs it at the same time
waits on the key's lock file (``flock``) and reads it, so each key is fitted
once per build. Every fit and every use is appended to ``fits.log`` in the
folder (one line: ``fit`` or ``hit``, the class, the key), which tests and
benchmarks read. A cached file is untrusted input like any model file
(:func:`crmstats.estimator.load_model` checks it); one that does not load is
refitted and replaced. The warnings a fit gave (did not converge, at the edge
of its parameter space) are given again when the model is reused.

Outside a build (no :data:`ENV`), :func:`fit_shared` is ``model.fit(data)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ENV", "cache_key", "fit_shared", "read_log"]

#: Environment variable naming the build's cache folder (set by the book runner for kernels).
ENV = "CRMSTATS_FIT_CACHE"


def _folder() -> Path | None:
    value = os.environ.get(ENV)
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


def cache_key(model: Any, data: pd.DataFrame) -> str:
    """Return the cache key of fitting ``model`` (unfitted) to ``data``.

    Parameters
    ----------
    model : Estimator
        The unfitted estimator (its class and ``_hyper`` values enter the key).
    data : pandas.DataFrame
        What it is fitted to.

    Returns
    -------
    str
        A hex digest.
    """
    from crmstats._version import __version__
    from crmstats.modelfile import MODEL_FORMAT_VERSION, _plain

    h = hashlib.sha256()
    head = {"crmstats": __version__, "format": MODEL_FORMAT_VERSION,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "hyper": {n: _plain(getattr(model, n)) for n in getattr(model, "_hyper", ())},
            "columns": [str(c) for c in data.columns],
            "dtypes": [str(t) for t in data.dtypes],
            "axis": str(data.columns.name), "units": repr(getattr(data, "_units", None)),
            "index": [str(data.index.name), str(data.index.dtype)],
            "rows": len(data)}
    h.update(json.dumps(head, sort_keys=True, default=str).encode())
    h.update(pd.util.hash_pandas_object(data, index=True).to_numpy().tobytes())
    return h.hexdigest()


def _log(folder: Path, event: str, model: Any, key: str) -> None:
    line = f"{event} {type(model).__name__} {key}\n"
    fd = os.open(folder / "fits.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())  # one write of a short line: appends do not interleave
    finally:
        os.close(fd)


def read_log(folder: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Return ``fits.log`` of a cache folder as (event, class, key) triples."""
    path = Path(folder) / "fits.log"
    if not path.exists():
        return []
    return [tuple(line.split(" ", 2)) for line in path.read_text().splitlines() if line]


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _replay_warnings(model: Any) -> None:
    """Give the warnings the model's fit gave (its fit facts record why)."""
    from crmstats.exceptions import ConvergenceWarning

    name = type(model).__name__
    if getattr(model, "converged_", True) is False:
        warnings.warn(f"{name} did not converge: {getattr(model, 'optimizer_message_', '')}",
                      ConvergenceWarning, stacklevel=3)
    if getattr(model, "boundary_", None):
        warnings.warn(f"{name} {model.boundary_}; its standard errors mean nothing there",
                      ConvergenceWarning, stacklevel=3)


def _load(path: Path, cls: type) -> Any | None:
    from crmstats.estimator import load_model
    from crmstats.exceptions import CRMStatsError

    if not path.exists():
        return None
    try:
        model = load_model(path, cls)
    except CRMStatsError:
        return None  # unreadable or tampered with: refit and replace it
    return model if type(model) is cls else None


def _store(path: Path, model: Any) -> None:
    text = json.dumps(model.to_dict(), indent=1, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fit_shared(model: Any, data: pd.DataFrame) -> Any:
    """Fit ``model`` to ``data``, or take the same fit from the build's cache.

    Parameters
    ----------
    model : Estimator
        An unfitted estimator with ``fit(data)`` and a model-file form; it is
        fitted in place (as ``model.fit(data)`` would) or, from the cache,
        replaced by the loaded model.
    data : pandas.DataFrame
        What it is fitted to.

    Returns
    -------
    Estimator
        The fitted model: ``model`` itself after a fit, or a model loaded
        from the cache (the same parameters and fit facts: its predictions are
        identical, the model file keeps every float exactly).
    """
    from crmstats.exceptions import CRMStatsError

    folder = _folder()
    if folder is None or not hasattr(model, "to_dict"):
        return model.fit(data)
    key = cache_key(model, data)
    path = folder / f"{key}.json"
    with _locked(folder / f"{key}.lock"):
        cached = _load(path, type(model))
        if cached is not None:
            _log(folder, "hit", model, key)
            _replay_warnings(cached)
            return cached
        fitted = model.fit(data)
        try:
            _store(path, fitted)
        except (OSError, ValueError, CRMStatsError):
            return fitted  # a full disk or a value JSON cannot hold: the fit still stands
        _log(folder, "fit", model, key)
        return fitted

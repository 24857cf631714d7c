"""What the gate remembers: validated tables, checked frames, and memos of one call.

* :func:`mark` / :func:`validated_as` — a table :func:`~crmstats.validation.validate_table`
  returned knows it is validated: passed back as the same canonical table it is
  not checked again, in this process. A pandas input is validated from a shallow
  copy the table keeps alive: pandas' copy-on-write then gives any later
  in-place edit of the caller's frame its own memory, so the validated table
  never changes under it.
* :func:`~crmstats._frames.frame_once` — a check of a DataFrame (an RFM summary's
  columns, its units; a frame's validation) runs once per unchanged frame.
* :func:`reuse_validated` with :func:`remember` / :func:`remembered` — memos
  that live for one crmstats call.
* :data:`COUNTS` — how many validations ran, by table (tests count them).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from crmstats._frames import COUNTS as COUNTS
from crmstats._frames import fingerprint as fingerprint
from crmstats._frames import frame_once as frame_once

#: Inside :func:`reuse_validated`: memos of the current call; ``None`` outside.
_TRUSTED: ContextVar[dict | None] = ContextVar("crmstats_trusted_tables", default=None)

class _Validated:
    """What the gate knows of a table it returned: its name, what keeps its data, its facts."""

    __slots__ = ("facts", "keep", "table")

    def __init__(self, table: str, keep: Any, facts: dict):
        self.table, self.keep, self.facts = table, keep, facts


#: Validated Ibis expressions: id(table) -> (weak reference, :class:`_Validated`). Keyed by
#: the very object, not its operation node: two databases' tables of one name and schema
#: have equal nodes.
_VALIDATED: dict[int, tuple] = {}


def mark(t: ir.Table, table: str, *, keep: Any = None, facts: dict | None = None) -> None:
    """Record that ``t`` is table ``table`` validated (``keep``: what must outlive it)."""
    ident = id(t)
    ref = weakref.ref(t, lambda _r, i=ident: _VALIDATED.pop(i, None))
    _VALIDATED[ident] = (ref, _Validated(table, keep, dict(facts or {})))


def validated_as(t: Any) -> _Validated | None:
    """Return what the gate recorded of ``t`` when it validated it, or None."""
    if not isinstance(t, ir.Table):
        return None
    entry = _VALIDATED.get(id(t))
    return entry[1] if entry is not None and entry[0]() is t else None


def data_version(data: Any) -> tuple | None:
    """Return what tells one state of an input's data from another (None: cannot tell).

    A frame's arrays and axes (:func:`~crmstats._frames.fingerprint`), a file's
    size and modification time, an Ibis table's identity (a database table is
    checked once per process); a mapped source table by its data's.
    """
    import os

    raw = getattr(data, "data", data) if type(data).__name__ == "SourceTable" else data
    if isinstance(raw, pd.DataFrame):
        return fingerprint(raw)
    if isinstance(raw, str | os.PathLike):
        try:
            st = os.stat(raw)
        except OSError:
            return None
        return ("file", os.path.realpath(raw), st.st_size, st.st_mtime_ns)
    if isinstance(raw, ir.Table):
        return ("ibis",)
    return None


#: Validations of inputs that are not DataFrames: key -> (weak reference or None, version,
#: {key: validated table}); see input_once.
_INPUTS: dict = {}


def input_once(data: Any, key: Any, compute: Callable[[], Any]) -> Any:
    """Return ``compute()`` for a file, mapped source table or Ibis table, once per version.

    A path is recognised by its resolved path, size and modification time; a
    source table or an Ibis table by identity (and its data's version). Exceptions
    are not remembered.
    """
    import os

    version = data_version(data)
    if version is None:
        return compute()
    if isinstance(data, str | os.PathLike):
        ident, ref = ("file", version[1]), None
    else:
        try:
            ident, ref = id(data), weakref.ref(data)
        except TypeError:
            return compute()
    entry = _INPUTS.get(ident)
    if entry is None or entry[1] != version or (entry[0] is not None and entry[0]() is not data):
        if len(_INPUTS) > 256:
            _INPUTS.clear()
        entry = (ref, version, {})
        _INPUTS[ident] = entry
    memo = entry[2]
    if key not in memo:
        memo[key] = compute()
    return memo[key]


@contextmanager
def reuse_validated():
    """Within this block, :func:`remember` keeps memos (e.g. one call's derived tables).

    For functions that hand the tables they validated to other crmstats
    functions; usable as a decorator, ``@reuse_validated()``. Validated
    tables themselves are recognised anywhere (:func:`validated_as`). Nested
    blocks share the outermost one's memory.
    """
    if _TRUSTED.get() is not None:
        yield
        return
    token = _TRUSTED.set({})
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def remembered(key) -> Any:
    """Inside :func:`reuse_validated`: what :func:`remember` stored under ``key``, else None."""
    trusted = _TRUSTED.get()
    return None if trusted is None else trusted.get(("memo", key))


def remember(key, value) -> None:
    """Inside :func:`reuse_validated`, keep ``value`` under ``key`` until the block ends."""
    trusted = _TRUSTED.get()
    if trusted is not None:
        trusted[("memo", key)] = value

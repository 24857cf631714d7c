"""What the gate remembers: validated tables, checked frames, and memos of one call.

* :func:`mark` / :func:`validated_as` — a table :func:`~crmstats.validation.validate_table`
  returned knows it is validated: passed back as the same canonical table it is
  not checked again, in this process. A pandas input is validated from a shallow
  copy the table keeps alive: pandas' copy-on-write then gives any later
  in-place edit of the caller's frame its own memory, so the validated table
  never changes under it.
* :func:`frame_once` — a check of a DataFrame (an RFM summary's columns, its
  units) runs once per unchanged frame: the frame's arrays are fingerprinted
  and a shallow copy held, so an edit (which copy-on-write gives new arrays)
  makes the next call check again.
* :func:`reuse_validated` with :func:`remember` / :func:`remembered` — memos
  that live for one crmstats call.
* :data:`COUNTS` — how many validations ran, by table (tests count them).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import ibis.expr.types as ir
import pandas as pd

#: Inside :func:`reuse_validated`: memos of the current call; ``None`` outside.
_TRUSTED: ContextVar[dict | None] = ContextVar("crmstats_trusted_tables", default=None)

#: Validations run in this process, by what was validated ("transactions", "summary", ...).
COUNTS: Counter = Counter()


class _Validated:
    """What the gate knows of a table it returned: its name, what keeps its data, its facts."""

    __slots__ = ("facts", "keep", "table")

    def __init__(self, table: str, keep: Any, facts: dict):
        self.table, self.keep, self.facts = table, keep, facts


#: Validated Ibis expressions (their operation node) -> :class:`_Validated`.
_VALIDATED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def mark(t: ir.Table, table: str, *, keep: Any = None, facts: dict | None = None) -> None:
    """Record that ``t`` is table ``table`` validated (``keep``: what must outlive it)."""
    _VALIDATED[t.op()] = _Validated(table, keep, dict(facts or {}))


def validated_as(t: Any) -> _Validated | None:
    """Return what the gate recorded of ``t`` when it validated it, or None."""
    if not isinstance(t, ir.Table):
        return None
    return _VALIDATED.get(t.op())


def fingerprint(frame: pd.DataFrame) -> tuple | None:
    """Identity of a frame's data: its arrays, shape and axes (None: cannot tell).

    Under copy-on-write (pandas 3) an in-place edit of a frame whose arrays are
    also held elsewhere gives the frame new arrays, so the fingerprint changes;
    :func:`frame_once` holds such a shallow copy.
    """
    try:
        arrays = tuple(id(b.values) for b in frame._mgr.blocks)
    except AttributeError:  # another pandas internals layout: never remembered
        return None
    return (arrays, frame.shape, id(frame.index), id(frame.columns),
            getattr(frame, "_units", None))


#: id(frame) -> (weak reference, fingerprint, shallow copy, {key: result}); see frame_once.
_FRAMES: dict[int, tuple] = {}


def frame_once(frame: pd.DataFrame, key: Any, compute: Callable[[], Any]) -> Any:
    """Return ``compute()`` for ``frame``, computed once while the frame is unchanged.

    An exception is never remembered (the check runs, and raises, again).
    """
    fp = fingerprint(frame)
    if fp is None:
        return compute()
    entry = _FRAMES.get(id(frame))
    if entry is None or entry[0]() is not frame or entry[1] != fp:
        if len(_FRAMES) > 256:
            _FRAMES.clear()
        ident = id(frame)
        ref = weakref.ref(frame, lambda _r, i=ident: _FRAMES.pop(i, None))
        # the shallow copy makes copy-on-write give an edited frame new arrays
        entry = (ref, fp, frame.copy(deep=False), {})
        _FRAMES[ident] = entry
    memo = entry[3]
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

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
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import ibis.expr.types as ir

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

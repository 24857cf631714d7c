"""What the gate remembers inside :func:`reuse_validated` (tables already validated, memos)."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import ibis.expr.types as ir

#: Inside :func:`reuse_validated`: the Ibis expressions :func:`validate_table` returned
#: (expression -> table name); ``None`` outside.
_TRUSTED: ContextVar[dict | None] = ContextVar("crmstats_trusted_tables", default=None)


@contextmanager
def reuse_validated():
    """Within this block, a table that :func:`validate_table` returned is not checked again.

    For functions that validate their inputs once and hand the validated Ibis
    tables to other crmstats functions (e.g. one call per snapshot); usable as
    a decorator, ``@reuse_validated()``. Outside
    such a block nothing is remembered: a table passed back by a user is
    checked again, so an edit of the underlying frame, or new rows in a
    database table, never slips through unchecked. Nested blocks share the
    outermost one's memory.
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


def _remember(t: ir.Table, table: str) -> None:
    trusted = _TRUSTED.get()
    if trusted is not None:
        trusted[t.op()] = table

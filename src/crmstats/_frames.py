"""Checks of a DataFrame run once while the frame is unchanged (no Ibis: light to import).

:func:`frame_once` remembers a check's result per frame; the frame's arrays are
fingerprinted and a shallow copy held, so an edit (which pandas' copy-on-write
gives new arrays) makes the next call check again. :data:`COUNTS` counts the
validations that ran, by what was validated (tests count them).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd

#: Validations run in this process, by what was validated ("transactions", "summary", ...).
COUNTS: Counter = Counter()


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

"""One name per idea (README "Glossary"), and old names kept for one release.

Interval columns: a table of estimates has ``estimate, std_err, lower_95,
upper_95[, p_value]`` (:data:`crmstats.estimator.SUMMARY_COLUMNS`); a per-row
interval of a named quantity is ``<quantity>_lower_<pct>`` /
``<quantity>_upper_<pct>``, named for its level (:func:`interval_columns`,
found back by :func:`find_interval`).

A name that changed stays usable for one release, with a
:class:`DeprecationWarning` that names the new one:

* an argument: :func:`renamed_arguments` (a decorator; ``inspect.signature``
  still shows the new signature only, so the API convention test sees it);
* an attribute or dataclass field: :func:`renamed_attribute` (a property);
* a result column: :func:`with_old_column_names` (a :class:`RenamedColumns`
  frame whose ``frame[old]`` reads the new column; see its docstring for what
  it does not cover).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

__all__ = ["RenamedColumns", "find_interval", "interval_columns", "renamed_arguments",
           "renamed_attribute", "with_old_column_names"]


def _warn(what: str, stacklevel: int) -> None:
    warnings.warn(f"{what}; the old name will be removed in the next release",
                  DeprecationWarning, stacklevel=stacklevel + 1)


def renamed_arguments(**renames: str | tuple[str, Callable[[Any], Any]]):
    """Accept old keyword names for one release, with a ``DeprecationWarning``.

    Parameters
    ----------
    **renames : str or (str, callable)
        ``old="new"``, or ``old=("new", convert)`` where the value changes
        too (e.g. ``alpha=("level", lambda a: 1 - a)``).

    Returns
    -------
    callable
        A decorator for a function, method or ``__init__``. Passing both the
        old and the new name is a ``TypeError``.
    """
    table = {old: (new, None) if isinstance(new, str) else new for old, new in renames.items()}

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old in table.keys() & kwargs.keys():
                new, convert = table[old]
                if new in kwargs:
                    raise TypeError(f"{func.__qualname__}: pass {new}= only ({old}= is its "
                                    "old name)")
                value = kwargs.pop(old)
                kwargs[new] = value if convert is None else convert(value)
                hint = f"{new}=" if convert is None else f"{new}= (note: a different value)"
                _warn(f"{func.__qualname__}: {old}= is renamed {hint}", 2)
            return func(*args, **kwargs)

        wrapper.__renamed_arguments__ = {old: new for old, (new, _) in table.items()}
        return wrapper

    return decorate


def renamed_attribute(new: str, old: str) -> property:
    """Return a read-only property ``old`` that reads ``new`` with a ``DeprecationWarning``."""

    def getter(self):
        _warn(f"{type(self).__name__}.{old} is renamed {new}", 1)
        return getattr(self, new)

    getter.__renamed_to__ = new  # the API convention test skips deprecated aliases
    return property(getter, doc=f"Deprecated: the old name of ``{new}``.")


def interval_columns(quantity: str, level: float = 0.95) -> tuple[str, str]:
    """Column names of a per-row interval: ``<quantity>_lower_<pct>``, ``<quantity>_upper_<pct>``.

    ``pct`` is the level in percent (``0.95`` → ``95``, ``0.9`` → ``90``,
    ``0.975`` → ``97_5``).

    Examples
    --------
    >>> interval_columns("clv", 0.9)
    ('clv_lower_90', 'clv_upper_90')
    """
    pct = f"{round(float(level) * 100, 6):g}".replace(".", "_")
    return f"{quantity}_lower_{pct}", f"{quantity}_upper_{pct}"



def find_interval(frame: pd.DataFrame, quantity: str) -> tuple[str, str, float]:
    """Return the interval columns of ``quantity`` in ``frame`` and their level.

    Looks for the ``<quantity>_lower_<pct>`` / ``<quantity>_upper_<pct>`` pair
    of :func:`interval_columns`.

    Returns
    -------
    (str, str, float)
        Lower column, upper column, level (e.g. 0.95).

    Raises
    ------
    KeyError
        If ``frame`` has no such pair (or more than one).
    """
    prefix = f"{quantity}_lower_"
    found = []
    for col in map(str, frame.columns):
        pct = col[len(prefix):] if col.startswith(prefix) else ""
        if pct.replace("_", "").isdigit() and f"{quantity}_upper_{pct}" in frame.columns:
            found.append((col, f"{quantity}_upper_{pct}", float(pct.replace("_", ".")) / 100))
    if len(found) != 1:
        raise KeyError(f"expected one {quantity}_lower_<pct>/{quantity}_upper_<pct> pair of "
                       f"columns, found {len(found)} in {list(map(str, frame.columns))}")
    return found[0]

class RenamedColumns(pd.DataFrame):
    """A result frame whose renamed columns stay readable by their old names for one release.

    ``frame[old]`` (one old name, absent from the frame) returns the new
    column with a ``DeprecationWarning``. Only that direct read is covered:
    ``frame.loc[:, old]``, ``frame[[old, ...]]`` and frames derived from this
    one (slices, joins, copies are plain DataFrames) use the new names.
    """

    _metadata = ["_old_names"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def __getitem__(self, key):
        old = getattr(self, "_old_names", None) or {}
        if isinstance(key, str) and key in old and key not in self.columns:
            _warn(f"column {key!r} is renamed {old[key]!r}", 1)
            key = old[key]
        return super().__getitem__(key)


def with_old_column_names(frame: pd.DataFrame, renames: Mapping[str, str]) -> pd.DataFrame:
    """Return ``frame`` as a :class:`RenamedColumns` reading ``old`` as ``new`` (``{old: new}``)."""
    out = RenamedColumns(frame)
    out._old_names = {old: new for old, new in renames.items() if new in frame.columns}
    return out

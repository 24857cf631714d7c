"""Exceptions and warnings raised by crmstats."""

from __future__ import annotations

__all__ = ["CRMStatsError", "ConvergenceWarning", "DataError", "DataWarning", "StudyError"]


class CRMStatsError(Exception):
    """Base class of every error crmstats raises on purpose."""


class DataError(CRMStatsError, ValueError):
    """An input table does not satisfy its canonical schema.

    The message names the table, the column and a few offending rows, so the
    caller can find the problem in the source data without a debugger.

    Attributes
    ----------
    table : str or None
        Canonical table name (``"transactions"``, ``"customers"``, ...).
    column : str or None
        The offending column, as the caller named it.
    rows : list
        Up to five offending row labels (index values or ids).
    """

    def __init__(self, message: str, *, table=None, column=None, rows=None):
        super().__init__(message)
        self.table = table
        self.column = column
        self.rows = list(rows) if rows is not None else []


class StudyError(CRMStatsError, RuntimeError):
    """A study notebook failed; the message names the notebook and the cell."""


class DataWarning(UserWarning):
    """Data were accepted but something in them deserves a look."""


class ConvergenceWarning(UserWarning):
    """An optimiser stopped without reporting convergence."""

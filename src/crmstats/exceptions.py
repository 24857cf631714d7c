"""Exceptions and warnings raised by crmstats."""

from __future__ import annotations

__all__ = [
    "CRMStatsError",
    "ConvergenceError",
    "ConvergenceWarning",
    "DataError",
    "DataWarning",
    "NotFittedError",
    "StudyError",
]


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


class NotFittedError(CRMStatsError, AttributeError):
    """A fitted attribute or a prediction was asked of an estimator that is not fitted.

    Every estimator in every domain package raises it (``fit`` first); it is an
    ``AttributeError`` so that ``hasattr(model, "params_")``-style checks keep working.
    """


class ConvergenceError(CRMStatsError, RuntimeError):
    """A model's fit did not converge, and a result computed from it was asked for.

    Raised by the functions that turn a fitted model into values (e.g.
    :func:`crmstats.clv.customer_lifetime_value`) unless the caller opts in to
    the optimiser's last iterate (``allow_unconverged=True``).

    Attributes
    ----------
    model : str or None
        Name of the estimator class that did not converge.
    reason : str or None
        The optimiser's own message.
    """

    def __init__(self, message: str, *, model: str | None = None, reason: str | None = None):
        super().__init__(message)
        self.model = model
        self.reason = reason


class DataWarning(UserWarning):
    """Data were accepted but something in them deserves a look."""


class ConvergenceWarning(UserWarning):
    """An optimiser stopped without reporting convergence."""

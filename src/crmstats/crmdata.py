"""`CRMData`: one company's canonical tables in one bundle."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import pandas as pd

from crmstats.schema import TABLES

__all__ = ["CRMData"]


@dataclass
class CRMData:
    """A company's CRM tables, any of which may be absent.

    Each table is a pandas DataFrame, a path to a CSV/Parquet file, or an Ibis
    table on any backend; see :mod:`crmstats.schema` for the columns.  Functions
    that need several tables (lead KPIs with spend, lifecycle stages) take one
    ``CRMData``.

    Attributes
    ----------
    transactions, customers, touchpoints, conversions, stage_events, spend,
    subscriptions, tickets, contacts, experiments
        The canonical tables (None when absent).
    truth : dict or None
        Ground truth of a simulated CRM (see :func:`crmstats.datasets.simulate_crm`);
        None for real data.
    source : str
        Where the data came from, for the book's record of each run.
    """

    transactions: Any = None
    customers: Any = None
    touchpoints: Any = None
    conversions: Any = None
    stage_events: Any = None
    spend: Any = None
    subscriptions: Any = None
    tickets: Any = None
    contacts: Any = None
    experiments: Any = None
    truth: dict | None = field(default=None, repr=False)
    source: str = "in-memory"

    @classmethod
    def table_names(cls) -> list[str]:
        """Names of the canonical tables a bundle can hold, in order."""
        return [f.name for f in fields(cls) if f.name in TABLES]

    def tables(self) -> dict[str, Any]:
        """Return the tables that are present, by name."""
        return {n: getattr(self, n) for n in self.table_names() if getattr(self, n) is not None}

    def require(self, *names: str) -> None:
        """Raise :class:`~crmstats.DataError` unless every table in ``names`` is present."""
        from crmstats.exceptions import DataError

        missing = [n for n in names if getattr(self, n, None) is None]
        if missing:
            raise DataError(
                f"CRMData from {self.source!r} has no {', '.join(missing)} table(s); "
                f"present: {', '.join(self.tables()) or 'none'}",
                table=missing[0],
            )

    def __repr__(self) -> str:
        parts = []
        for name, t in self.tables().items():
            n = f"{len(t):,} rows" if isinstance(t, pd.DataFrame) else type(t).__name__
            parts.append(f"{name}={n}")
        return f"CRMData(source={self.source!r}, " + ", ".join(parts) + ")"

"""A table plus how its source file says to read it (:class:`SourceTable`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis.expr.types as ir

from crmstats.backend import read_table


@dataclass(frozen=True)
class SourceTable:
    """A table as a company's export holds it, and how it maps onto a canonical table.

    Built by :func:`crmstats.load_crm` from a source file (``crmstats.yml``);
    every crmstats function accepts it wherever a table is expected and applies
    the mapping in the validation gate, so ``crm.transactions`` of a mapped
    source works like a canonical table.

    Parameters
    ----------
    data : pandas.DataFrame, path or ibis.Table
        The table as exported.
    columns : dict
        ``{canonical_name: exported_name}``.
    values : dict
        ``{canonical_column: {exported_value: canonical_value}}`` (stage,
        channel or any text column); values not listed are kept.
    dayfirst : bool, optional
        Whether dates written ``02/03/2024`` are day-first (True), month-first
        (False) or undeclared (None: the data must show the order, see
        :func:`validate`).
    timestamp_format : str, optional
        A ``strptime`` format (e.g. ``"%d/%m/%Y %H:%M"``) for every text
        timestamp column of the table.
    decimal, thousands : str, optional
        Number separators of text number columns (``decimal=","``,
        ``thousands="."`` read ``"1.234,50"`` as 1234.5).
    trim : bool
        Remove surrounding spaces from ids and text columns.
    drop_duplicates : bool
        Drop rows that exactly repeat another row (a double export).
    drop_blank_ids : bool
        Drop rows whose required id is blank or empty (an empty CSV field)
        instead of raising.
    personal : tuple of str
        Canonical or extra columns holding personal data (never published).
    label : str
        Where the table comes from, for messages (e.g. ``"orders.csv"``).
    """

    data: Any
    columns: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    dayfirst: bool | None = None
    timestamp_format: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    trim: bool = False
    drop_duplicates: bool = False
    drop_blank_ids: bool = False
    personal: tuple = ()
    label: str = ""

    def __repr__(self) -> str:
        return f"SourceTable({self.label or type(self.data).__name__})"

    def to_ibis(self, table: str = "table") -> ir.Table:
        """Return the exported table with canonical column names, not yet validated.

        For code that only needs the columns (:func:`crmstats.backend.read_table`
        calls it); everything else goes through :func:`as_table`.
        """
        t = read_table(self.data, table=table)
        renames = {k: v for k, v in self.columns.items()
                   if k != v and v in t.columns and k not in t.columns}
        return t.rename(renames) if renames else t

"""`CRMData`: one company's canonical tables in one bundle, read through one gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from crmstats.exceptions import DataError
from crmstats.schema import PII_COLUMNS, TABLES
from crmstats.validation import (
    SourceTable,
    as_table,
    deep_checks,
    id_dtype,
)
from crmstats.validation.memory import data_version as _version
from crmstats.validation.memory import mark, validated_as

__all__ = ["CRMData", "default_name"]


def default_name(source: str) -> str:
    """Display name of a data source string: "demo CRM", "CDNOW", or the folder/file name."""
    text = str(source).strip()
    head = text.partition(":")[0].lower()
    if head == "demo":
        return "demo CRM"
    if head == "cdnow":
        return "CDNOW"
    if "://" in text:
        from urllib.parse import urlsplit

        parts = urlsplit(text)
        base = Path(parts.path).stem or parts.hostname or parts.scheme
        return f"{base} ({parts.scheme})"
    if text in ("", "in-memory"):
        return "CRM data"
    path = Path(text)
    return (path.parent.name if path.suffix in (".yml", ".yaml") else path.name) or text


@dataclass
class CRMData:
    """A company's CRM tables, any of which may be absent.

    Each table is a pandas DataFrame, a path to a CSV/Parquet file, an Ibis
    table on any backend, or a :class:`~crmstats.validation.SourceTable` (an
    exported table with the mapping of a source file); see
    :mod:`crmstats.schema` for the columns. Functions that need several tables
    read them through :meth:`table`, which returns the validated canonical Ibis
    table whatever the table's form.

    Attributes
    ----------
    transactions, customers, touchpoints, conversions, stage_events, spend,
    subscriptions, tickets, contacts, experiments, deals
        The canonical tables (None when absent).
    truth : dict or None
        Ground truth of a simulated CRM (see :func:`crmstats.datasets.simulate_crm`);
        None for real data.
    source : str
        Where the data came from, for the book's record of each run.
    name : str
        Display name (study titles, the summary, the data-quality page): the
        source file's ``name``, "demo CRM", "CDNOW", or the folder's name.
    personal : dict
        Per table, the columns holding personal data (never published); the
        schema's :data:`~crmstats.schema.PII_COLUMNS` plus those a source file
        marks.
    exportable : dict
        Per table, the personal columns a source file allows ``crmstats scores
        export`` to write (its ``exportable`` key); none by default.
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
    deals: Any = None
    truth: dict | None = field(default=None, repr=False)
    source: str = "in-memory"
    name: str | None = None
    personal: dict = field(default_factory=dict, repr=False)
    exportable: dict = field(default_factory=dict, repr=False)
    _checked: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _validated: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.name is None:
            self.name = default_name(self.source)

    @classmethod
    def table_names(cls) -> list[str]:
        """Names of the canonical tables a bundle can hold, in order."""
        return [f.name for f in fields(cls) if f.name in TABLES]

    def tables(self) -> dict[str, Any]:
        """Return the tables that are present, by name."""
        return {n: getattr(self, n) for n in self.table_names() if getattr(self, n) is not None}

    def simulated_truth(self, *keys: str) -> Any:
        """Return the simulator's ground truth at ``keys`` (``None`` for data without one).

        ``crm.simulated_truth("channel_lift", "relative_lift")`` is
        ``crm.truth["channel_lift"]["relative_lift"]`` on a simulated CRM
        (:func:`crmstats.datasets.simulate_crm`) and ``None`` on real data or
        when the simulator did not record that key, so a study can pass it to a
        plot's ``truth=`` argument on any source.
        """
        value: Any = self.truth
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
        return value

    def require(self, *names: str) -> None:
        """Raise :class:`~crmstats.DataError` unless every table in ``names`` is present."""
        missing = [n for n in names if getattr(self, n, None) is None]
        if missing:
            raise DataError(
                f"CRMData from {self.source!r} has no {', '.join(missing)} table(s); "
                f"present: {', '.join(self.tables()) or 'none'}",
                table=missing[0],
            )

    def table(self, name: str) -> ir.Table:
        """Return table ``name`` validated, as a canonical Ibis table.

        The one accessor every function taking a ``CRMData`` uses: a DataFrame,
        a file, a database table and a mapped source table (column and value
        mapping, date and number formats of the source file applied) all come
        back alike. Validation is in-database (pandas inputs are read without a
        copy). Each table is validated once per process: later calls return the
        same table, until the attribute is set to other data, a frame is edited
        (pandas' copy-on-write gives an edited frame new arrays, which is
        noticed) or a file changes; a database table is read as it was checked.
        Validating also runs the slower data-quality checks (exact duplicate
        rows, names differing only in case or spaces) and warns once. Id columns
        are compared across the bundle: when one table holds
        text ids and another integer ids, integer ids are read as text so the
        tables join.

        Raises
        ------
        DataError
            If the table is absent or invalid (naming table, column and rows).
        """
        self.require(name)
        data = getattr(self, name)
        version = _version(data)
        known = self._validated.get(name)
        if known is not None and known[0] is data and version is not None \
                and known[1] == version:
            return known[2]
        if known is not None:  # other data than was checked: look at the bundle again
            self._checked.pop("_text_ids", None)
            self._checked.pop(name, None)
        t = as_table(data, name)
        if name not in self._checked:
            self._checked[name] = deep_checks(t, name)
        if self._text_ids():
            casts = {c.name: t[c.name].cast("string") for c in TABLES[name].columns
                     if c.kind == "id" and c.name in t.columns and t[c.name].type().is_integer()}
            if casts:
                checked = validated_as(t)
                t = t.mutate(**casts)  # still the validated table: text ids are ids too
                mark(t, name, keep=checked, facts=checked.facts if checked else None)
        self._validated[name] = (data, version, t)
        return t

    def personal_columns(self, name: str) -> list[str]:
        """Columns of table ``name`` that hold personal data (never to be published)."""
        marked = list(self.personal.get(name, ()))
        return list(dict.fromkeys([*PII_COLUMNS, *marked]))

    def _text_ids(self) -> bool:
        """Whether the bundle mixes text and integer ids (then every id is read as text)."""
        if "_text_ids" not in self._checked:
            kinds = set()
            for tname, data in self.tables().items():
                for c in TABLES[tname].columns:
                    if c.kind == "id":
                        kind = id_dtype(data, tname, c.name)
                        if kind is not None:
                            kinds.add(kind)
            self._checked["_text_ids"] = kinds == {"string", "integer"}
        return self._checked["_text_ids"]

    def has_tables(self, tables: str | Sequence[str], *, show: bool = True) -> bool:
        """Return whether every table in ``tables`` is present; if not, show a one-line note.

        For study pages whose sections need tables a source may lack (stage
        history, spend, contacts, deals): the section's cell runs when this is
        True, and otherwise the page says in one line what the section would
        need. Presence only, like :meth:`require` without the error: a table
        that is present but invalid counts as present (reading it through
        :meth:`table` raises the :class:`~crmstats.DataError`).

        Parameters
        ----------
        tables : str or sequence of str
            Canonical table name(s).
        show : bool
            Display the note (Markdown, in a notebook) when a table is missing.
        """
        names = [tables] if isinstance(tables, str) else list(tables)
        missing = [t for t in names if getattr(self, t, None) is None]
        if missing and show:
            from IPython.display import Markdown, display

            needs = " and ".join(_NEEDS.get(t, t) for t in missing)
            display(Markdown(f"*Not available for this source: this part needs {needs}.*"))
        return not missing

    def __repr__(self) -> str:
        parts = []
        for name, t in self.tables().items():
            data = t.data if isinstance(t, SourceTable) else t
            n = f"{len(data):,} rows" if isinstance(data, pd.DataFrame) else type(t).__name__
            parts.append(f"{name}={n}")
        return f"CRMData(name={self.name!r}, source={self.source!r}, " + ", ".join(parts) + ")"



#: What a missing table holds, for :meth:`CRMData.has_tables`' note on a page.
_NEEDS = {"stage_events": "the stage history of leads (stage_events)",
          "spend": "marketing spend (spend)", "contacts": "the contacts (contacts)",
          "deals": "a deals export (deals)"}

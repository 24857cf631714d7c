"""Compatibility home of the data-layer functions (kept for existing user imports).

Nothing in crmstats imports this module (``tests/test_layers.py`` checks): the
package imports each function from its real home below, and new code should too.

The data layer lives in three modules that import in one direction:
:mod:`crmstats.backend` (DuckDB connection, :func:`execute`, :func:`read_table`)
← :mod:`crmstats.validation` (the gate: :func:`as_table`, :func:`validate`)
← :mod:`crmstats.sources` (:func:`load_crm`, :func:`export_crm`, source files).
"""

from __future__ import annotations

from crmstats.backend import backend, execute, read_table
from crmstats.sources import export_crm, load_crm, source_label
from crmstats.validation import as_table, transactions_table

__all__ = ["as_table", "backend", "execute", "export_crm", "load_crm", "read_table",
           "source_label", "transactions_table"]

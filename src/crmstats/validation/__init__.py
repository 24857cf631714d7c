"""Validation of the canonical tables: one module, used by every public function.

:func:`validate` takes a table in any accepted form — a pandas DataFrame, a path
to a CSV/Parquet file, or an Ibis table on any backend — maps the caller's
column names onto the canonical ones, coerces types and checks the content.
Problems raise :class:`~crmstats.DataError` naming the table, the column (as the
caller named it) and a few offending rows.

Checks
------
* every required column is present;
* ids are never null;
* timestamps parse; timezone-aware values are converted to UTC and made naive;
  a column mixing naive and aware values is rejected (its naive values have no
  defined instant);
* money columns are finite (no null, NaN or infinity) and, except transaction
  amounts (refunds, see :mod:`crmstats.schema`), non-negative;
* count columns (``quantity``) are finite and non-negative;
* categories with a fixed set of values (experiments' ``group``) hold only those;
* the table's key (see :data:`crmstats.schema.TABLES`) is unique.

The caller's DataFrame is never modified: its columns reach DuckDB as Arrow arrays
over its memory and coerced columns are new arrays.
Content checks run as Ibis expressions on the table's backend (DuckDB for
in-memory and file inputs), so a table living in PostgreSQL is checked where it
lives and only counts and at most five offending rows come back.

Modules
-------
* :mod:`.gate` — :func:`validate`, :func:`as_table`, :func:`validate_table` (the per-table gate);
* :mod:`.columns` — the caller's column names, missing and derivable columns;
* :mod:`.source_table` — :class:`SourceTable` (a table plus how its source says to read it);
* :mod:`.coerce` — the one coercion engine (numbers, ids, categories; every input, in
  DuckDB or the table's database; ``tests/test_one_engine.py``);
* :mod:`.frames` — what only a DataFrame needs: its columns as Arrow arrays, its row
  labels, :func:`validate`'s result;
* :mod:`.timestamps` — the one parser of text timestamps (part of the engine);
* :mod:`.dates` — day/month order of text dates;
* :mod:`.content` and :mod:`.stages` — content checks, run on the table's backend;
* :mod:`.traps` — duplicate rows and id variants, once per input;
* :mod:`.deep` — once-per-bundle checks of raw tables, id alignment;
* :mod:`.memory` — :func:`reuse_validated` and what the gate remembers;
* :mod:`.messages` — error and warning text.
"""

# Names other crmstats modules import from here (kept for them; not public API).
from crmstats.validation.deep import align_ids, deep_checks
from crmstats.validation.deep import id_dtype as id_dtype
from crmstats.validation.deep import read_raw as read_raw
from crmstats.validation.gate import as_table, transactions_table, validate, validate_table
from crmstats.validation.memory import remember as remember
from crmstats.validation.memory import remembered as remembered
from crmstats.validation.memory import reuse_validated
from crmstats.validation.messages import ROW_COL as ROW_COL
from crmstats.validation.source_table import SourceTable
from crmstats.validation.stages import stage_problems
from crmstats.validation.timestamps import dmy_counts as dmy_counts

__all__ = ["SourceTable", "align_ids", "as_table", "deep_checks", "reuse_validated",
           "stage_problems", "transactions_table", "validate", "validate_table"]

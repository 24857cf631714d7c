"""Backend primitives: the embedded DuckDB connection, running expressions, reading files.

This module knows nothing about the canonical tables: it turns a DataFrame, a
CSV/Parquet path or an Ibis table into an Ibis table (:func:`read_table`) and
runs Ibis expressions (:func:`execute`). The validation gate
(:mod:`crmstats.validation`) builds on it, and the data sources
(:mod:`crmstats.sources`) build on both, so the three import in one direction.

In-memory and file inputs run on one embedded DuckDB connection per process
(:func:`backend`), configured for UTC so timestamps never shift with the
machine's timezone. Ibis tables bound to another backend (PostgreSQL, Spark, a
warehouse) run on their own backend.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.exceptions import CRMStatsError, DataError

__all__ = ["backend", "execute", "execute_arrow", "list_tables", "query_errors", "read_table"]

_BACKEND = None
_LOCK = threading.Lock()


def backend():
    """Return the process's embedded DuckDB connection (created on first use).

    Environment variables tune it for data larger than memory:
    ``CRMSTATS_MEMORY_LIMIT`` (e.g. ``"3GB"``; DuckDB spills to disk beyond it)
    and ``CRMSTATS_TEMP_DIR`` (where it spills; default DuckDB's).
    """
    global _BACKEND
    with _LOCK:
        if _BACKEND is None:
            con = ibis.duckdb.connect()
            con.raw_sql("SET TimeZone = 'UTC'")
            limit = os.environ.get("CRMSTATS_MEMORY_LIMIT")
            if limit:
                con.raw_sql(f"SET memory_limit = '{_sql_setting(limit)}'")
                # results need no particular order before the final ORDER BY; this lets
                # DuckDB stream and spill large aggregations
                con.raw_sql("SET preserve_insertion_order = false")
            temp = os.environ.get("CRMSTATS_TEMP_DIR")
            if temp:
                con.raw_sql(f"SET temp_directory = '{_sql_setting(temp)}'")
            _BACKEND = con
        return _BACKEND


def _sql_setting(value: str) -> str:
    if "'" in value or ";" in value:
        raise DataError(f"invalid DuckDB setting value {value!r}")
    return value


def _backend_of(expr: ir.Expr):
    try:
        return expr._find_backend(use_default=False)
    except ibis.common.exceptions.IbisError:
        return backend()


def execute(expr: ir.Expr) -> Any:
    """Execute an Ibis expression and return pandas (DataFrame, Series or scalar).

    Expressions over in-memory tables run on :func:`backend`; expressions bound
    to another backend run there. A database error becomes a
    :class:`~crmstats.DataError` (the gate's own calls name the table, see
    :func:`query_errors`).
    """
    with query_errors("input", "running a computation"):
        return _backend_of(expr).execute(expr)


@contextmanager
def query_errors(table: str, what: str = "") -> Iterator[None]:
    """Turn a database or Ibis error raised inside the block into a :class:`DataError`.

    The message names the canonical ``table`` (and ``what`` was being done), and
    keeps the first line of the driver's message, so a user never sees a raw
    DuckDB, PostgreSQL or Ibis traceback.
    """
    try:
        yield
    except DataError as exc:
        if table == "input" or exc.table is not None or not getattr(exc, "query", False):
            raise
        named = DataError(f"{table} table: {str(exc)[0].lower()}{str(exc)[1:]}", table=table)
        named.query = True
        raise named from None
    except CRMStatsError:
        raise
    except (TypeError, KeyError, AttributeError, NotImplementedError):
        raise  # programming errors stay visible as such
    except Exception as exc:  # drivers raise many types; the message is what matters
        if not _is_query_error(exc):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        doing = f" while {what}" if what else ""
        where = f"{table} table: the" if table != "input" else "The"
        error = DataError(f"{where} database rejected the query{doing} "
                          f"({type(exc).__name__}: {first})",
                          table=None if table == "input" else table)
        error.query = True
        raise error from None


def _is_query_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.split(".")[0] in ("duckdb", "_duckdb", "ibis", "psycopg", "psycopg2",
                                    "pyarrow", "sqlglot", "pyspark", "py4j")


def list_tables(con) -> list[str]:
    """Names of the tables and views of a connection.

    DuckDB-file connections are listed through the DuckDB relation API: Ibis
    12's ``list_tables`` calls a cursor method that duckdb 2.0 removed.
    """
    raw = getattr(con, "con", None)
    if getattr(con, "name", "") == "duckdb" and raw is not None:
        rows = raw.sql("SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = current_schema()").fetchall()
        return sorted(r[0] for r in rows)
    return list(con.list_tables())


def read_table(data: Any, *, table: str = "table", text_columns: Iterable[str] = ()
               ) -> ir.Table:
    """Return ``data`` (DataFrame, CSV/Parquet path, or Ibis table) as an Ibis table.

    No validation happens here; see :func:`crmstats.as_table`.

    Parameters
    ----------
    data : pandas.DataFrame, path or ibis.Table
        The input.
    table : str
        Canonical table name, for messages.
    text_columns : iterable of str
        CSV columns read as text whatever DuckDB's sniffer guesses (the gate
        parses their dates and numbers itself, with the source's options, so a
        day-first date is never read month-first by a guess on a sample).
    """
    if isinstance(data, ir.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return ibis.memtable(data)
    if callable(getattr(data, "to_ibis", None)):  # a mapped source table (crmstats.validation)
        return data.to_ibis(table)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        name = path.name.lower()
        if not path.exists() and not any(ch in str(data) for ch in "*?"):
            raise DataError(f"{table} table: file {str(path)!r} does not exist", table=table)
        con = backend()
        with query_errors(table, f"reading {path.name}"):
            if name.endswith((".parquet", ".pq")) or path.is_dir():
                target = str(path / "*.parquet") if path.is_dir() else str(path)
                return con.read_parquet(target)
            if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
                return _read_csv(con, path, frozenset(text_columns))
        raise DataError(
            f"{table} table: cannot read {str(path)!r}: expected a .csv or .parquet file",
            table=table,
        )
    raise DataError(
        f"{table} table: expected a pandas DataFrame, a CSV/Parquet path or an Ibis table, "
        f"got {type(data).__name__}",
        table=table,
    )


#: CSV files read into the embedded DuckDB, by (path, size, mtime, text columns).
_CSV_CACHE: dict[tuple, ir.Table] = {}
#: Numbers of the temporary tables: never reused, so a new file cannot take the name of a
#: table an earlier (possibly stale) entry still refers to.
_CSV_IDS = itertools.count()


def _read_csv(con, path: Path, text: frozenset) -> ir.Table:
    """Read a CSV once into a temporary DuckDB table; later calls reuse it until it changes.

    A CSV view would be parsed again by every query of a validation and of the
    computation; the file's size and modification time say when to read again.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, text)
    with _LOCK:
        cached = _CSV_CACHE.get(key)
    if cached is not None:
        return cached
    sniffed = con.read_csv(str(path))
    forced = text & set(sniffed.columns)
    if forced and any(not sniffed.schema()[c].is_string() for c in forced):
        sniffed = con.read_csv(str(path), types={c: "VARCHAR" for c in forced})
    with _LOCK:
        number = next(_CSV_IDS)
    table = con.create_table(f"crmstats_csv_{number}_{os.getpid()}", sniffed, temp=True)
    with _LOCK:
        stale = [k for k in _CSV_CACHE if k[0] == key[0] and k[3] == text]
        for k in stale:
            del _CSV_CACHE[k]
        _CSV_CACHE[key] = table
    return table


def execute_arrow(expr: ir.Expr):
    """Execute an Ibis table expression and return a ``pyarrow.Table``.

    For results read as arrays (no pandas frame needed): Ibis's pandas conversion
    turns every column holding a null into Python objects first, one per row,
    which costs seconds on a few hundred thousand rows of timestamps. Errors as
    in :func:`execute`.
    """
    with query_errors("input", "running a computation"):
        return _backend_of(expr).to_pyarrow(expr)

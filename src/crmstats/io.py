"""Reading tables and data sources; the embedded DuckDB backend.

Every public crmstats function accepts a table as a pandas DataFrame, a path to
a CSV or Parquet file, or an Ibis table on any backend.  :func:`as_table`
validates it (see :mod:`crmstats.validation`) and returns an Ibis table with the
canonical column names; transaction-scale work is then written as Ibis
expressions and only small aggregated frames come back, through
:func:`execute`, as pandas.

In-memory and file inputs run on one embedded DuckDB connection per process
(:func:`backend`), configured for UTC so timestamps never shift with the
machine's timezone.  Ibis tables bound to another backend (PostgreSQL, Spark, a
warehouse) run on their own backend.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.crmdata import CRMData
from crmstats.exceptions import DataError

__all__ = ["as_table", "backend", "execute", "export_crm", "load_crm", "read_table",
           "transactions_table"]

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


def execute(expr: ir.Expr) -> Any:
    """Execute an Ibis expression and return pandas (DataFrame, Series or scalar).

    Expressions over in-memory tables run on :func:`backend`; expressions bound
    to another backend run there.
    """
    try:
        con = expr._find_backend(use_default=False)
    except ibis.common.exceptions.IbisError:
        con = backend()
    return con.execute(expr)


def read_table(data: Any, *, table: str = "table") -> ir.Table:
    """Return ``data`` (DataFrame, CSV/Parquet path, or Ibis table) as an Ibis table.

    No validation happens here; see :func:`as_table`.
    """
    if isinstance(data, ir.Table):
        return data
    if isinstance(data, pd.DataFrame):
        return ibis.memtable(data)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        name = path.name.lower()
        if not path.exists() and not any(ch in str(data) for ch in "*?"):
            raise DataError(f"{table} table: file {str(path)!r} does not exist", table=table)
        con = backend()
        if name.endswith((".parquet", ".pq")) or path.is_dir():
            target = str(path / "*.parquet") if path.is_dir() else str(path)
            return con.read_parquet(target)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".txt")):
            return con.read_csv(str(path))
        raise DataError(
            f"{table} table: cannot read {str(path)!r}: expected a .csv or .parquet file",
            table=table,
        )
    raise DataError(
        f"{table} table: expected a pandas DataFrame, a CSV/Parquet path or an Ibis table, "
        f"got {type(data).__name__}",
        table=table,
    )


def as_table(data: Any, table: str, *, columns: Mapping[str, str] | None = None) -> ir.Table:
    """Validate ``data`` as canonical table ``table`` and return an Ibis table.

    Parameters
    ----------
    data : pandas.DataFrame, path or ibis.Table
        The input table.
    table : str
        Canonical table name (see :mod:`crmstats.schema`).
    columns : mapping, optional
        ``{canonical_name: caller_name}``; ``None`` values are ignored, so
        functions can pass their ``*_col`` arguments straight through.

    Returns
    -------
    ibis.Table
        Canonical names and types; pandas inputs become in-memory DuckDB tables
        that read the frame's memory (no copy): edit the frame and the table
        follows, and passing the table to a crmstats function checks it again.
    """
    from crmstats.validation import validate_table

    mapping = {k: v for k, v in (columns or {}).items() if v is not None}
    return validate_table(data, table, columns=mapping)



def transactions_table(
    transactions: Any,
    *,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> ir.Table:
    """Validate a transactions table with the caller's column names (see :func:`as_table`)."""
    return as_table(transactions, "transactions", columns={
        "customer_id": customer_id_col, "timestamp": timestamp_col, "amount": amount_col})

# ----------------------------------------------------------------------------- data sources


def _parse_options(text: str) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise DataError(f"data source option {part!r} is not of the form name=value")
        key, value = (x.strip() for x in part.split("=", 1))
        try:
            opts[key] = int(value)
        except ValueError:
            try:
                opts[key] = float(value)
            except ValueError:
                opts[key] = value
    return opts


def _load_database(url: str) -> CRMData:
    """Open a database URL and bind the canonical tables it holds (see :func:`load_crm`)."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        raise DataError("data source URL carries a password; give credentials through "
                        "environment variables (e.g. PGPASSWORD) instead")
    names = CRMData.table_names()
    mapping, passthrough = {}, []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (mapping.__setitem__(key, value) if key in names else passthrough.append((key, value)))
    query = "&".join(f"{k}={v}" for k, v in passthrough)
    clean = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    try:
        con = ibis.connect(clean)
    except Exception as exc:  # drivers raise many types; the message is what matters
        raise DataError(f"data source {urlunsplit(parts._replace(query=''))!r}: cannot "
                        f"connect ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    available = set(con.list_tables())
    found = {}
    for name in names:
        target = mapping.get(name, name)
        if target in available:
            found[name] = con.table(target)
        elif name in mapping:
            raise DataError(f"data source: table {target!r} (for {name}) does not exist; "
                            f"tables: {', '.join(sorted(available)) or '(none)'}", table=name)
    if not found:
        raise DataError(f"data source {clean!r} holds none of the canonical tables "
                        f"({', '.join(names)}); map yours with ?transactions=<table>, ...")
    return CRMData(**found, source=clean)


def _demo_options(text: str, simulate) -> dict[str, Any]:
    """Check ``demo:name=value,...`` options against the simulator's keyword arguments."""
    import inspect

    opts = _parse_options(text)
    params = inspect.signature(simulate).parameters
    for name, value in opts.items():
        if name not in params:
            allowed = ", ".join(p for p in params)
            raise DataError(f"data source 'demo:{text}': unknown option {name!r}; "
                            f"options are {allowed}")
        default = params[name].default
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not (
                isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise DataError(f"data source 'demo:{text}': option {name!r} must be a number, "
                            f"got {value!r}")
        if isinstance(default, int) and isinstance(value, float):
            raise DataError(f"data source 'demo:{text}': option {name!r} must be an integer, "
                            f"got {value!r}")
    return opts


def load_crm(source: Any = "demo") -> CRMData:
    """Resolve a study's data source to a :class:`~crmstats.CRMData`.

    Parameters
    ----------
    source : str, path or CRMData
        * ``"demo"`` — the simulated demo CRM (:func:`crmstats.datasets.simulate_crm`
          with its defaults); ``"demo:seed=3,n_contacts=2000"`` passes options;
        * ``"cdnow"`` / ``"cdnow:sample"`` — the real CDNOW purchase log
          (transactions only);
        * a directory holding ``<table>.parquet`` or ``<table>.csv`` files, one
          per canonical table (as written by :func:`export_crm`);
        * a database URL understood by ``ibis.connect`` — e.g.
          ``"postgresql://crm@db.example.com:5432/crm"`` or
          ``"duckdb:///srv/crm.duckdb"`` — whose tables named like the canonical
          ones are used where they live (every aggregation runs on that server);
          query parameters map canonical tables to other table names:
          ``"postgresql://crm@db/crm?transactions=orders_view"``. Credentials
          never go in the URL (:func:`crmstats.book.studies.check_no_secrets`
          refuses them): PostgreSQL reads ``PGPASSWORD`` or ``~/.pgpass``;
        * a ``CRMData``, returned unchanged.

    Returns
    -------
    CRMData
    """
    if isinstance(source, CRMData):
        return source
    text = str(source).strip()
    if "://" in text:
        return _load_database(text)
    head, _, rest = text.partition(":")
    if head == "demo":
        from crmstats.datasets import simulate_crm

        return simulate_crm(**_demo_options(rest, simulate_crm))
    if head == "cdnow":
        from crmstats.datasets import load_cdnow

        kind = rest or "master"
        return CRMData(transactions=load_cdnow(kind=kind), source=f"cdnow:{kind}")
    path = Path(text).expanduser()
    if path.is_dir():
        found = {}
        for name in CRMData.table_names():
            for suffix in (".parquet", ".csv"):
                candidate = path / f"{name}{suffix}"
                if candidate.exists():
                    found[name] = str(candidate)
                    break
        if not found:
            raise DataError(
                f"data source {text!r}: the directory holds no <table>.parquet or <table>.csv "
                f"file for any of {', '.join(CRMData.table_names())}"
            )
        return CRMData(**found, source=str(path))
    raise DataError(
        f"unknown data source {text!r}: use 'demo', 'demo:seed=N,...', 'cdnow', "
        "'cdnow:sample' or a directory of <table>.parquet/.csv files"
    )


def export_crm(crm: CRMData, directory: str | os.PathLike) -> list[Path]:
    """Write every table of ``crm`` to ``directory/<table>.parquet``; return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, t in crm.tables().items():
        target = out / f"{name}.parquet"
        tmp = out / f".{name}.parquet.tmp"
        if isinstance(t, pd.DataFrame):
            t.to_parquet(tmp, index=False)
        else:
            execute(read_table(t, table=name)).to_parquet(tmp, index=False)
        tmp.replace(target)
        written.append(target)
    return written

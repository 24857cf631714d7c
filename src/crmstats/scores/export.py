"""Scores out: write the customer 360 where the CRM can act on it, atomically.

:func:`export_scores` writes a scores frame (e.g. :func:`crmstats.customer_360`)
with its run id and ``as_of`` to

* a Parquet or CSV file (written to a temporary file in the same folder,
  then renamed over the target: readers see the old file or the new one);
* a table in a DuckDB file (``duckdb:///path/crm.duckdb`` or a ``.duckdb``
  path) or a PostgreSQL database (``postgresql://user@host:5432/db``): the
  rows go into a new table, which replaces the old one inside one
  transaction (drop the old, rename the new, commit). A reader sees the old
  table or the new one, never a partial one; a failed write leaves the old
  table as it was.

Personal columns (the schema's :data:`~crmstats.schema.PII_COLUMNS` and those
a source marks personal) are refused unless named in ``exportable``.
Credentials never go in the URL: PostgreSQL reads ``PGPASSWORD`` or
``~/.pgpass``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from crmstats.exceptions import CRMStatsError, DataError

__all__ = ["ExportResult", "export_customer_scores", "export_scores", "new_run_id"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")


@dataclass(frozen=True)
class ExportResult:
    """Where :func:`export_scores` wrote, and what.

    Attributes
    ----------
    target : str
        The file path, or the URL without its query.
    table : str or None
        The database table written (None for files).
    rows : int
        Rows written.
    run_id : str
        The run id stored in every row.
    kind : str
        ``"parquet"``, ``"csv"``, ``"duckdb"`` or ``"postgresql"``.
    """

    target: str
    table: str | None
    rows: int
    run_id: str
    kind: str


def new_run_id() -> str:
    """Return a run id: the UTC time of the run and a short random suffix (sortable, unique)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _kind(to: str) -> str:
    low = to.lower()
    scheme = urlsplit(to).scheme.lower() if "://" in to else ""
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme == "duckdb" or low.endswith((".duckdb", ".ddb")):
        return "duckdb"
    if scheme:
        raise CRMStatsError(f"scores export: unsupported destination scheme {scheme!r}; use a "
                            ".parquet/.csv path, a .duckdb file or a postgresql:// URL")
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith(".csv"):
        return "csv"
    raise CRMStatsError(f"scores export: cannot tell the format of {to!r}; use a .parquet, "
                        ".csv or .duckdb path, or a postgresql:// URL")


def _prepare(frame: pd.DataFrame, run_id: str, personal: Iterable[str],
             exportable: Iterable[str]) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"scores export: expected a DataFrame, got {type(frame).__name__}",
                        table="scores")
    blocked = _blocked(frame.columns, personal, exportable)
    if blocked:
        raise DataError(f"scores export: column(s) {', '.join(map(str, blocked))} hold personal "
                        "data; mark them exportable in the source file to write them",
                        table="scores", column=str(blocked[0]))
    out = frame.reset_index() if frame.index.name is not None else frame.copy()
    out.insert(0, "run_id", run_id)
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            out[col] = s.astype("string")
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = pd.to_datetime(s).astype("datetime64[us]")
    out.columns = [str(c) for c in out.columns]
    return out


def _write_file(out: pd.DataFrame, path: Path, kind: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if kind == "parquet":
            out.to_parquet(tmp, index=False)
        else:
            out.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        raise CRMStatsError(f"scores export: cannot write {path.name} ({exc.strerror or exc})"
                            ) from None
    finally:
        tmp.unlink(missing_ok=True)


def _quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


def _staging_name(table: str) -> tuple[str, str]:
    schema, _, base = table.rpartition(".")
    staging = f"{base[:40]}__new_{uuid.uuid4().hex[:8]}"
    return (f"{schema}.{staging}" if schema else staging), base


def _run(con, sql: str) -> None:
    """Execute one statement of a table swap (one place, so tests can fail any step)."""
    con.execute(sql)


def _write_duckdb(out: pd.DataFrame, path: str, table: str) -> None:
    import duckdb

    staging, base = _staging_name(table)
    try:
        con = duckdb.connect(path)
    except duckdb.Error as exc:
        raise CRMStatsError(f"scores export: cannot open the DuckDB file {path!r} "
                            f"({str(exc).splitlines()[0]})") from None
    try:
        con.register("_crmstats_scores", out)
        con.execute("BEGIN TRANSACTION")
        try:
            _run(con, f"CREATE TABLE {_quoted(staging)} AS SELECT * FROM _crmstats_scores")
            _run(con, f"DROP TABLE IF EXISTS {_quoted(table)}")
            _run(con, f'ALTER TABLE {_quoted(staging)} RENAME TO "{base}"')
            con.execute("COMMIT")
        except duckdb.Error as exc:
            con.execute("ROLLBACK")
            raise CRMStatsError(f"scores export: writing table {table!r} to {path!r} failed "
                                f"({str(exc).splitlines()[0]}); the old table is unchanged"
                                ) from None
    finally:
        con.unregister("_crmstats_scores")
        con.close()


def _pg_type(s: pd.Series) -> str:
    if isinstance(s.dtype, pd.BooleanDtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(s.dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(s.dtype):
        return "double precision"
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "timestamp"
    if pd.api.types.is_bool_dtype(s.dtype):
        return "boolean"
    return "text"


def _write_postgres(out: pd.DataFrame, url: str, table: str) -> None:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of the database extra
        raise CRMStatsError("scores export to PostgreSQL needs psycopg (pip install "
                            "'psycopg[binary]')") from None
    staging, base = _staging_name(table)
    cols = ", ".join(f'"{c}" {_pg_type(out[c])}' for c in out.columns)
    rows = out.astype(object).where(out.notna(), None).itertuples(index=False, name=None)
    try:
        con = psycopg.connect(url)
    except psycopg.Error as exc:
        raise CRMStatsError(f"scores export: cannot connect to {_safe(url)} "
                            f"({str(exc).splitlines()[0]})") from None
    try:
        with con.transaction():  # all or nothing: readers see the old table until commit
            with con.cursor() as cur:
                _run(cur, f"CREATE TABLE {_quoted(staging)} ({cols})")
                names = ", ".join(f'"{c}"' for c in out.columns)
                with cur.copy(f"COPY {_quoted(staging)} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                _run(cur, f"DROP TABLE IF EXISTS {_quoted(table)}")
                _run(cur, f'ALTER TABLE {_quoted(staging)} RENAME TO "{base}"')
    except psycopg.Error as exc:
        raise CRMStatsError(f"scores export: writing table {table!r} to {_safe(url)} failed "
                            f"({str(exc).splitlines()[0]}); the old table is unchanged"
                            ) from None
    finally:
        con.close()


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' if parts.port else ''}" \
           f"{parts.port or ''}{parts.path}"


def export_scores(
    frame: pd.DataFrame,
    to: str | os.PathLike,
    *,
    table: str = "crmstats_scores",
    run_id: str | None = None,
    personal: Iterable[str] = (),
    exportable: Iterable[str] = (),
) -> ExportResult:
    """Write a scores frame, with its run id, to a file or a database table, atomically.

    Parameters
    ----------
    frame : pandas.DataFrame
        The scores, e.g. :func:`crmstats.customer_360` (its index becomes the
        first column; its ``as_of`` column is kept).
    to : str or path
        ``*.parquet`` / ``*.csv`` file, ``*.duckdb`` file or
        ``duckdb:///path``, or ``postgresql://user@host:port/db``.
    table : str
        Table name for a database (``name`` or ``schema.name``).
    run_id : str, optional
        Stored in the ``run_id`` column of every row; default
        :func:`new_run_id`.
    personal : iterable of str
        Column names holding personal data (besides the schema's
        :data:`~crmstats.schema.PII_COLUMNS`), e.g. the source's marks.
    exportable : iterable of str
        Personal columns the source allows to be written.

    Returns
    -------
    ExportResult

    Raises
    ------
    DataError
        A personal column is not exportable.
    CRMStatsError
        The destination cannot be written (the old file or table stays).
    """
    from crmstats.schema import PII_COLUMNS

    to = str(to)
    kind = _kind(to)
    run_id = run_id or new_run_id()
    out = _prepare(frame, run_id, [*PII_COLUMNS, *personal], exportable)
    if kind in ("parquet", "csv"):
        _write_file(out, Path(to).expanduser(), kind)
        return ExportResult(target=to, table=None, rows=len(out), run_id=run_id, kind=kind)
    if not _IDENT.match(table or ""):
        raise CRMStatsError(f"scores export: table name {table!r} must be a plain identifier "
                            "(letters, digits, underscores; optionally schema.name)")
    if kind == "duckdb":
        if "://" in to:  # duckdb:///abs/path.duckdb or duckdb://relative.duckdb
            parts = urlsplit(to)
            path = parts.netloc + parts.path
        else:
            path = to
        path = str(Path(path).expanduser())
        _write_duckdb(out, path, table)
        return ExportResult(target=path, table=table, rows=len(out), run_id=run_id,
                            kind=kind)
    if urlsplit(to).password:
        raise CRMStatsError("scores export: the URL carries a password; give credentials "
                            "through PGPASSWORD or ~/.pgpass instead")
    _write_postgres(out, to.replace("postgres://", "postgresql://", 1), table)
    return ExportResult(target=_safe(to), table=table, rows=len(out), run_id=run_id, kind=kind)


def _blocked(columns: Iterable, personal: Iterable[str], exportable: Iterable[str]) -> list:
    """Return the columns that hold personal data and are not marked exportable (any case)."""
    personal = {str(p).lower() for p in personal}
    allowed = {str(e).lower() for e in exportable}
    return [c for c in columns if str(c).lower() in personal - allowed]


def export_customer_scores(
    source,
    to: str | os.PathLike,
    *,
    table: str = "crmstats_scores",
    as_of=None,
    run_id: str | None = None,
    n_bootstrap: int = 50,
    contact_columns: Iterable[str] = (),
) -> ExportResult:
    """Compute :func:`crmstats.customer_360` on a source and write it with :func:`export_scores`.

    The command behind ``crmstats scores export`` and ``book build
    --export-scores``. Personal columns among ``contact_columns`` are written
    only when the source marks them exportable.

    Parameters
    ----------
    source : str or CRMData
        Any data source :func:`crmstats.load_crm` reads.
    to, table, run_id
        As for :func:`export_scores`.
    as_of : timestamp-like, optional
        Date of the scores (default the data's last date).
    n_bootstrap : int
        Bootstrap refits of the CLV interval.
    contact_columns : iterable of str
        Contacts columns to carry (see :func:`crmstats.customer_360`).

    Returns
    -------
    ExportResult
    """
    from crmstats.io import load_crm
    from crmstats.scores.customer360 import customer_360

    crm = load_crm(source)
    personal = crm.personal_columns("contacts")  # the schema's PII columns and the source's marks
    exportable = list(crm.exportable.get("contacts", ()))
    contact_columns = list(contact_columns)
    blocked = _blocked(contact_columns, personal, exportable)
    if blocked:  # refuse before computing anything
        raise DataError(f"scores export: column(s) {', '.join(blocked)} hold personal data; "
                        "mark them exportable in the source file to write them",
                        table="contacts", column=blocked[0])
    scores = customer_360(crm, as_of, n_bootstrap=n_bootstrap, contact_columns=contact_columns)
    return export_scores(scores, to, table=table, run_id=run_id, personal=personal,
                         exportable=exportable)

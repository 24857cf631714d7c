"""Scores out: write the customer 360 where the CRM can act on it, atomically and harmlessly.

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

What it never does
------------------
* **Overwrite what the source reads**: a table file of the source (folder or
  ``crmstats.yml``), nor a table the source reads in its database (a scores
  table written into the source's own DuckDB file or PostgreSQL database is
  fine), whatever ``replace`` says.
* **Replace a file it was not told to**: an existing file target is replaced
  only with ``replace=True`` (``--replace``); the replacement keeps the old
  file's mode, and a new file is created with mode 0600.
* **Drop a table it did not write**: an existing database table is replaced
  when it is a crmstats scores table — it carries the table comment
  :data:`MARKER` (set on every table this module writes), or was written
  before the marker existed (first column ``run_id`` and an ``as_of``
  column) — or with ``replace=True``; never when a view or a foreign key
  depends on it, and never a view. PostgreSQL records view dependencies
  (``pg_depend`` through ``pg_rewrite``); DuckDB does not
  (``duckdb_dependencies()`` lists no view), so the export drops the old
  table inside its transaction and asks every view that mentions the name
  and bound before whether it still binds: one that no longer does depends
  on the table, and the transaction is rolled back.
* **Write a formula into a spreadsheet**: in a CSV file, text cells (and
  headers) a spreadsheet would evaluate — starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return — get a leading ``'`` (the OWASP rule
  against CSV injection [1]_) and every text cell is quoted; numbers stay
  numbers (``-3.5`` in a numeric column is untouched). ``raw=True``
  (``--raw``) writes the cells as they are.
* **Write an impossible value**: a negative CLV or CLV bound, a lower bound
  above its estimate (or an estimate above its upper bound), a probability
  outside [0, 1] or an infinite number is an error naming the column and the
  ids, and nothing is written.
* **Write personal ids without a word**: ids that look like e-mail addresses
  or phone numbers (:func:`crmstats.privacy.scan_text`) raise a
  :class:`~crmstats.exceptions.DataWarning`; ``pseudonymize=True``
  (``--pseudonymize``) writes keyed pseudonyms
  (:func:`crmstats.privacy.pseudonymize`) in an ``<id>_pseudonym`` column
  instead.
* **Fail with a traceback**: every I/O failure (read-only or missing folder,
  full disk, a folder as target, a locked DuckDB file, a locked PostgreSQL
  table) is one :class:`~crmstats.exceptions.CRMStatsError` line, with the
  old file or table intact. A DuckDB file in use by another process (a book
  build reading it) is retried until ``lock_timeout`` seconds have passed.

Over 500 lines (about 1,000) for now, on purpose but not for ever: every
rule above is checked against every target (file, DuckDB, PostgreSQL) by the
hostile-export tests, which patch this module's seams (``_run``,
``_connect_duckdb``, ``_wait``, its ``os`` and ``tempfile``). The split that
suits it — the file writer, the DuckDB and PostgreSQL table swaps, and the
row checks (``_check_values``, ``_neutralise``) in modules of their own — moves
those seams, so it waits for a change that reruns those tests on PostgreSQL.

Personal columns (the schema's :data:`~crmstats.schema.PII_COLUMNS` and those
a source marks personal) are refused unless named in ``exportable``.
Credentials never go in the URL: PostgreSQL reads ``PGPASSWORD`` or
``~/.pgpass``.

References
----------
.. [1] OWASP Foundation. "CSV Injection".
   https://owasp.org/www-community/attacks/CSV_Injection
"""

from __future__ import annotations

import csv
import errno
import os
import re
import stat
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from crmstats.exceptions import CRMStatsError, DataError, DataWarning

__all__ = ["MARKER", "ExportResult", "export_customer_scores", "export_scores", "new_run_id"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")

#: Table comment of every database table :func:`export_scores` writes; a table
#: carrying it is a crmstats scores table, replaced by the next export.
MARKER = "crmstats scores: written by crmstats scores export, replaced by the next one"

#: First characters of a cell a spreadsheet evaluates as a formula (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

#: Columns that cannot be negative, and probabilities, when a scores frame has them.
_NON_NEGATIVE = ("clv", "clv_lower", "clv_upper", "expected_purchases", "expected_spend",
                 "frequency", "recency", "T", "mrr", "nrr_12m", "open_tickets",
                 "median_resolution_hours", "winback_score")
_PROBABILITIES = ("p_alive", "lead_score", "churn_risk")


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


# ----------------------------------------------------------------------------- the frame


def _row_names(frame: pd.DataFrame, mask: np.ndarray) -> tuple[list, str]:
    """Name the first five offending rows: ids (the index) or, for an unnamed index, positions."""
    if frame.index.name is not None or isinstance(frame.index, pd.MultiIndex):
        labels = list(frame.index[mask][:5])
        return labels, "ids " + ", ".join(map(str, labels))
    pos = list(np.flatnonzero(mask)[:5])
    return pos, "rows " + ", ".join(map(str, pos)) + " (0-based positions)"


def _impossible(frame: pd.DataFrame, column: str, mask, what: str,
                extreme: float | None = None) -> DataError:
    mask = np.asarray(mask, dtype=bool)
    rows, named = _row_names(frame, mask)
    more = ", ..." if mask.sum() > 5 else ""
    tail = f"; extreme value {extreme:,.6g}" if extreme is not None else ""
    return DataError(f"scores export: column {column!r} {what} for {int(mask.sum()):,} of "
                     f"{len(frame):,} rows ({named}{more}{tail}); nothing written",
                     table="scores", column=column, rows=rows)


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in frame.columns:
        return None
    s = frame[column]
    if isinstance(s, pd.DataFrame) or pd.api.types.is_bool_dtype(s.dtype) or \
            not pd.api.types.is_numeric_dtype(s.dtype):
        return None
    return s.astype("float64").to_numpy(na_value=np.nan)


def _check_values(frame: pd.DataFrame) -> None:
    """Refuse a scores frame holding a value no score can take (see the module notes)."""
    for column in frame.columns:
        values = _numeric(frame, column)
        if values is not None and np.isinf(values).any():
            raise _impossible(frame, str(column), np.isinf(values), "is infinite")
    levelled = [c for c in map(str, frame.columns) if c.startswith(("clv_lower_", "clv_upper_"))]
    for column in dict.fromkeys([*_NON_NEGATIVE, *levelled]):
        values = _numeric(frame, column)
        if values is not None and (values < 0).any():
            raise _impossible(frame, column, values < 0, "is negative",
                              float(np.nanmin(values)))
    for column in _PROBABILITIES:
        values = _numeric(frame, column)
        if values is not None and ((values < 0) | (values > 1)).any():
            bad = (values < 0) | (values > 1)
            raise _impossible(frame, column, bad, "is a probability outside [0, 1]",
                              float(values[bad][0]))
    triples = [("clv_lower", "clv", "clv_upper"), ("lower_95", "estimate", "upper_95")]
    # per-row intervals named for their level (README "Glossary"): clv_lower_90, clv, clv_upper_90
    triples += [(c, c.rpartition("_lower_")[0], c.replace("_lower_", "_upper_"))
                for c in map(str, frame.columns) if c.rpartition("_lower_")[0]]
    triples += [(f"{c}_lower", c, f"{c}_upper") for c in map(str, frame.columns)
                if c != "clv" and (f"{c}_lower" in frame.columns or f"{c}_upper" in frame.columns)]
    for low_name, mid_name, high_name in triples:
        low, mid, high = (_numeric(frame, c) for c in (low_name, mid_name, high_name))
        for a_name, a, b_name, b in ((low_name, low, mid_name, mid),
                                     (mid_name, mid, high_name, high),
                                     (low_name, low, high_name, high)):
            if a is None or b is None:
                continue
            with np.errstate(invalid="ignore"):
                bad = a > b + 1e-9 * np.maximum(1.0, np.abs(b))
            if bad.any():
                raise _impossible(frame, a_name, bad, f"is above {b_name!r}")


def _prepare(frame: pd.DataFrame, run_id: str, personal: Iterable[str],
             exportable: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """Return the rows to write (run id first, index as columns) and the id columns."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"scores export: expected a DataFrame, got {type(frame).__name__}",
                        table="scores")
    blocked = _blocked(frame.columns, personal, exportable)
    if blocked:
        raise DataError(f"scores export: column(s) {', '.join(map(str, blocked))} hold personal "
                        "data; mark them exportable in the source file to write them",
                        table="scores", column=str(blocked[0]))
    _check_values(frame)
    named_index = any(n is not None for n in frame.index.names)
    ids = [str(n) for n in frame.index.names if n is not None] if named_index else \
        [str(c) for c in frame.columns if str(c) in ("id", "customer_id", "contact_id")]
    out = frame.reset_index() if named_index else frame.copy()
    out.insert(0, "run_id", run_id)
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object:
            out[col] = s.astype("string")
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[col] = pd.to_datetime(s).astype("datetime64[us]")
    out.columns = [str(c) for c in out.columns]
    return out, ids


def _personal_ids(out: pd.DataFrame, ids: list[str], pseudonymize: bool) -> pd.DataFrame:
    """Warn about ids that are e-mail addresses or phone numbers, or pseudonymise every id."""
    from crmstats import privacy

    if pseudonymize:
        out = out.copy()
        for col in ids:
            at = out.columns.get_loc(col)
            values = privacy.pseudonymize(out[col]).astype("string")
            out = out.drop(columns=col)
            out.insert(at, f"{col}_pseudonym", values.to_numpy())
        return out
    for col in ids:
        values = out[col].dropna().astype(str)
        if values.empty:
            continue
        text = "\n".join(v.replace("\n", " ") for v in values)
        kinds = ("email address", "phone number")
        hits = [f for f in privacy.scan_text(text, paths=[], decoded=True) if f.pattern in kinds]
        lines = {f.line for f in hits}
        if lines:
            found = sorted({f.pattern for f in hits})
            warnings.warn(
                f"scores export: {len(lines):,} of {len(values):,} values of column {col!r} are "
                f"{' or '.join(p + 'es' if p.endswith('ss') else p + 's' for p in found)} "
                "(personal data) and are written as they are; pseudonymize=True "
                "(--pseudonymize) writes keyed pseudonyms instead", DataWarning, stacklevel=3)
    return out


def _neutralise(out: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells and headers a spreadsheet would evaluate with ``'`` (OWASP)."""

    def risky(s: pd.Series) -> pd.Series:
        text = s.astype("string")
        return text.str.startswith(_FORMULA_START).fillna(False) & \
            ~text.str.fullmatch(_NUMBER).fillna(False)

    out = out.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_numeric_dtype(s.dtype):
            mask = risky(s)
            if mask.any():
                out[col] = s.astype("string").mask(mask, "'" + s.astype("string"))
    headers = pd.Series(out.columns, dtype="string")
    mask = risky(headers)
    out.columns = ["'" + c if m else c for c, m in zip(out.columns, mask, strict=True)]
    return out


# ----------------------------------------------------------------------------- the source


def _identity(con) -> tuple | None:
    """Where an Ibis backend's data lives: ``("duckdb", file)`` or ``("postgresql", host...)``."""
    name = getattr(con, "name", "")
    try:
        if name == "duckdb":
            rows = con.con.execute("PRAGMA database_list").fetchall()
            files = [r[2] for r in rows if r[2]]
            return ("duckdb", str(Path(files[0]).resolve())) if files else None
        if name == "postgres":
            info = con.con.info
            return ("postgresql", info.host, int(info.port), info.dbname)
    except Exception:  # a backend that cannot say where it lives protects nothing
        return None
    return None


@dataclass(frozen=True)
class _Reads:
    """What a source reads: files ``(table, path)`` and table names by database identity."""

    files: list
    tables: dict


def _backends(crm):
    """Yield ``(table name, Ibis table or path)`` of a source's tables, unwrapped."""
    from crmstats.validation import SourceTable

    for name, data in crm.tables().items():
        yield name, (data.data if isinstance(data, SourceTable) else data)


def _source_reads(source) -> _Reads:
    """Return the files and database tables a source reads (``source`` may be a _Reads)."""
    if isinstance(source, _Reads):
        return source
    if source is None:
        return _Reads([], {})
    from crmstats.backend import _backend_of
    from crmstats.sources import load_crm

    crm = load_crm(source)
    files: list[tuple[str, Path]] = []
    tables: dict[tuple, set[str]] = {}
    if str(crm.source).lower().endswith((".yml", ".yaml")):
        files.append(("source file", Path(crm.source)))
    for name, data in _backends(crm):
        if isinstance(data, (str, os.PathLike)):
            files.append((name, Path(data).expanduser()))
            continue
        try:
            where = _identity(_backend_of(data))
            table_name = data.get_name()
        except Exception:  # not an Ibis table (a DataFrame): nothing on disk to protect
            continue
        if where is not None:
            tables.setdefault(where, set()).add(str(table_name).lower())
    return _Reads(files, tables)


def _release(crm, path: str) -> None:
    """Close the source's own (read-only) connections to the DuckDB file about to be written.

    DuckDB refuses a read-write connection to a file this process holds with
    another configuration; the scores are computed by then.
    """
    from crmstats.backend import _backend_of

    target = ("duckdb", str(Path(path).resolve()))
    seen = set()
    for _, data in _backends(crm):
        try:
            con = _backend_of(data)
        except Exception:  # a DataFrame or a path: no connection
            continue
        if id(con) not in seen and _identity(con) == target:
            seen.add(id(con))
            try:
                con.disconnect()
            except Exception:  # already closed: nothing to release
                pass


def _refuse_source_file(path: Path, files: list[tuple[str, Path]]) -> None:
    for name, read in files:
        try:
            same = path.exists() and read.exists() and os.path.samefile(path, read)
        except OSError:
            same = False
        if same:
            raise CRMStatsError(f"scores export: {str(path)!r} is a file the source reads "
                                f"({name}); it is never overwritten — write the scores "
                                "elsewhere")


def _same_table(a: str, b: str) -> bool:
    """Whether two table names may be one table (a name without a schema may be in any)."""
    (sa, _, na), (sb, _, nb) = a.lower().rpartition("."), b.lower().rpartition(".")
    return na == nb and (sa == sb or not sa or not sb)


def _refuse_source_table(where: tuple | None, table: str, tables: dict) -> None:
    if where is not None and any(_same_table(table, t) for t in tables.get(where, ())):
        raise CRMStatsError(f"scores export: table {table!r} is a table the source reads; it is "
                            "never overwritten — choose another --table")


# ----------------------------------------------------------------------------- files


def _file_target(path: Path, replace: bool) -> os.stat_result | None:
    """Check a file target before anything is computed; return the old file's stat, if any."""
    name = str(path)
    folder = path.parent
    if not folder.exists():
        raise CRMStatsError(f"scores export: folder {str(folder)!r} does not exist; create it "
                            "first (nothing written)")
    if not folder.is_dir():
        raise CRMStatsError(f"scores export: {str(folder)!r} is not a folder (nothing written)")
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():  # a planted link would create a file wherever it points
            raise CRMStatsError(f"scores export: {name!r} is a link to a missing file; "
                                "nothing written") from None
        return None
    except OSError as exc:
        raise CRMStatsError(f"scores export: cannot check {name!r} ({exc.strerror}); nothing "
                            "written") from None
    if stat.S_ISDIR(info.st_mode):
        raise CRMStatsError(f"scores export: {name!r} is a folder, not a file; nothing written")
    if not stat.S_ISREG(info.st_mode):
        raise CRMStatsError(f"scores export: {name!r} is not a regular file; nothing written")
    if not replace:
        raise CRMStatsError(f"scores export: {name!r} exists; give --replace (replace=True) to "
                            "overwrite it (its mode is kept)")
    return info


def _write_file(out: pd.DataFrame, path: Path, kind: str, *, replace: bool) -> None:
    """Write to a 0600 temporary file in the target's folder, then rename it over the target.

    Without ``replace`` an existing target is refused, and the rename is a
    hard link that fails if the target appeared meanwhile. A replaced file
    keeps its mode. Every failure is one line; the temporary file is removed
    and a failing removal raises nothing more.
    """
    name = str(path)
    info = _file_target(path, replace)
    real = path.resolve() if path.is_symlink() else path  # write through a link, keep the link
    kept = "the old file is unchanged" if info is not None else "nothing written"
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        text = {} if kind == "parquet" else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, "wb" if kind == "parquet" else "w", **text) as handle:
            if kind == "parquet":
                out.to_parquet(handle, index=False)
            else:
                # every text cell quoted: a separator, quote or line break inside stays inside
                out.to_csv(handle, index=False, quoting=csv.QUOTE_NONNUMERIC)
            handle.flush()
            os.fsync(handle.fileno())
        if info is not None:
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                try:  # root replacing another user's file: the file stays theirs
                    os.chown(tmp, info.st_uid, info.st_gid)
                except PermissionError:
                    pass  # not root: the mode below still keeps it as private as it was
            os.chmod(tmp, stat.S_IMODE(info.st_mode))
            os.replace(tmp, real)
        else:
            try:
                os.link(tmp, real)  # no clobbering: fails if the target appeared meanwhile
            except FileExistsError:
                raise CRMStatsError(f"scores export: {name!r} appeared while writing; give "
                                    "--replace (replace=True) to overwrite it") from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV,
                                     errno.EMLINK):
                    raise
                os.replace(tmp, real)  # a file system without hard links
    except CRMStatsError:
        raise
    except OSError as exc:
        raise CRMStatsError(f"scores export: cannot write {name!r} "
                            f"({exc.strerror or _first_line(exc)}); {kept}") from None
    except Exception as exc:  # pyarrow's own I/O errors: still one line, the old file kept
        raise CRMStatsError(f"scores export: cannot write {name!r} ({_first_line(exc)}); "
                            f"{kept}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass  # renamed (the usual case), or the folder refuses: nothing more to say


# ----------------------------------------------------------------------------- databases


def _quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


def _staging_name(table: str) -> tuple[str, str]:
    schema, _, base = table.rpartition(".")
    staging = f"{base[:40]}__new_{uuid.uuid4().hex[:8]}"
    return (f"{schema}.{staging}" if schema else staging), base


def _run(con, sql: str, params=None) -> None:
    """Execute one statement of a table swap (one place, so tests can fail any step)."""
    if params is None:
        con.execute(sql)
    else:
        con.execute(sql, params)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ours(comment, columns: list[str]) -> bool:
    """Tell a crmstats scores table: the marker comment, or the columns of one from before it."""
    if comment and str(comment).startswith(MARKER.split(":")[0]):
        return True
    low = [c.lower() for c in columns]
    return bool(low) and low[0] == "run_id" and "as_of" in low


def _decide(table: str, where: str, ours: bool, replace: bool, views: list[str],
            foreign: list[str]) -> None:
    if views:
        raise CRMStatsError(f"scores export: table {table!r} in {where} is not replaced: the "
                            f"view(s) {', '.join(map(repr, views))} depend on it")
    if foreign:
        raise CRMStatsError(f"scores export: table {table!r} in {where} is not replaced: "
                            f"table(s) {', '.join(map(repr, foreign))} refer to it by a "
                            "foreign key")
    if not ours and not replace:
        raise CRMStatsError(f"scores export: table {table!r} in {where} exists and is not a "
                            "crmstats scores table; give --replace (replace=True) to replace "
                            "it")


def _wait(seconds: float) -> None:
    """Sleep between attempts on a locked file (one place, so tests can step in)."""
    time.sleep(seconds)


def _connect_duckdb(path: str, lock_timeout: float):
    """Open a DuckDB file for writing, waiting up to ``lock_timeout`` s for another process."""
    import duckdb

    deadline = time.monotonic() + max(0.0, float(lock_timeout))
    delay = 0.1
    created = not Path(path).exists()
    while True:
        try:
            con = duckdb.connect(path)
            break
        except duckdb.Error as exc:
            text = str(exc)
            if "different configuration" in text:
                raise CRMStatsError(
                    f"scores export: the DuckDB file {path!r} is open read-only in this process "
                    "(a source read from it); close that connection (its Ibis backend's "
                    "disconnect()) before exporting into the same file; nothing written"
                ) from None
            if "conflicting lock" not in text.lower() and "set lock" not in text.lower():
                raise CRMStatsError(f"scores export: cannot open the DuckDB file {path!r} "
                                    f"({_first_line(exc)}); nothing written") from None
            if time.monotonic() >= deadline:
                pid = re.search(r"\(PID (\d+)\)", text)
                who = f"process {pid.group(1)}" if pid else "another process"
                raise CRMStatsError(
                    f"scores export: the DuckDB file {path!r} is in use by {who} (e.g. a book "
                    f"build reading it); waited {lock_timeout:g} s — run the export when it is "
                    "done or give a longer --lock-timeout; nothing written") from None
            _wait(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
    if created:
        try:
            os.chmod(path, 0o600)  # a new database holds per-customer scores: the owner's only
        except OSError:
            pass
    return con


def _duckdb_existing(con, table: str):
    """``(kind, comment, columns)`` of an existing table or view named ``table``, else None."""
    schema, _, base = table.rpartition(".")
    schema = schema or con.execute("SELECT current_schema()").fetchone()[0]
    args = [schema.lower(), base.lower()]
    row = con.execute("SELECT comment FROM duckdb_tables() WHERE database_name = "
                      "current_database() AND lower(schema_name) = ? AND lower(table_name) = ?",
                      args).fetchone()
    if row is None:
        view = con.execute("SELECT 1 FROM duckdb_views() WHERE NOT internal AND "
                           "database_name = current_database() AND lower(schema_name) = ? AND "
                           "lower(view_name) = ?", args).fetchone()
        return ("view", None, []) if view else None
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND "
        "lower(schema_name) = ? AND lower(table_name) = ? ORDER BY column_index", args).fetchall()]
    return "table", row[0], cols


def _duckdb_candidates(con, table: str) -> list[tuple[str, str]]:
    """Return the views that mention the table and bind today: ``(shown, quoted name)``."""
    import duckdb

    base = table.rpartition(".")[2].lower()
    out = []
    for schema, name, sql in con.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal AND "
            "database_name = current_database()").fetchall():
        if base not in str(sql).lower():
            continue
        quoted = f'"{schema}"."{name}"'
        try:
            con.execute(f"SELECT * FROM {quoted} LIMIT 0")
        except duckdb.Error:
            continue  # broken already: not this table's doing
        out.append((name if schema == "main" else f"{schema}.{name}", quoted))
    return out


def _duckdb_broken(con, candidates: list[tuple[str, str]]) -> list[str]:
    """Which candidate views no longer bind (run after the old table was dropped)."""
    import duckdb

    broken = []
    for shown, quoted in candidates:
        try:
            con.execute(f"SELECT * FROM {quoted} LIMIT 0")
        except duckdb.Error:
            broken.append(shown)
    return broken


def _duckdb_foreign(con, table: str) -> list[str]:
    base = table.rpartition(".")[2].lower()
    return sorted({r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'FOREIGN KEY' AND "
        "lower(referenced_table) = ? AND lower(table_name) <> ?", [base, base]).fetchall()})


def _rollback(con) -> None:
    try:
        con.execute("ROLLBACK")
    except Exception:  # the transaction is already gone (a failed commit): nothing to undo
        pass


def _write_duckdb(out: pd.DataFrame, path: str, table: str, *, replace: bool,
                  lock_timeout: float) -> None:
    import duckdb

    staging, base = _staging_name(table)
    where = f"DuckDB file {Path(path).name}"
    con = _connect_duckdb(path, lock_timeout)
    try:
        con.register("_crmstats_scores", out)
        con.execute("BEGIN TRANSACTION")
        try:
            existing = _duckdb_existing(con, table)
            if existing is not None:
                kind, comment, cols = existing
                if kind == "view":
                    raise CRMStatsError(f"scores export: {table!r} in {where} is a view, not a "
                                        "table; it is never replaced — choose another --table")
                _decide(table, where, True, replace, [], _duckdb_foreign(con, table))
                candidates = _duckdb_candidates(con, table)
                # dropped inside the transaction: views that no longer bind depend on it
                _run(con, f"DROP TABLE {_quoted(table)}")
                _decide(table, where, _ours(comment, cols), replace,
                        _duckdb_broken(con, candidates), [])
            _run(con, f"CREATE TABLE {_quoted(staging)} AS SELECT * FROM _crmstats_scores")
            _run(con, f"COMMENT ON TABLE {_quoted(staging)} IS '{MARKER}'")
            _run(con, f'ALTER TABLE {_quoted(staging)} RENAME TO "{base}"')
            _run(con, "COMMIT")
        except CRMStatsError:
            _rollback(con)
            raise
        except duckdb.Error as exc:
            _rollback(con)
            raise CRMStatsError(f"scores export: writing table {table!r} to {path!r} failed "
                                f"({_first_line(exc)}); the old table is unchanged") from None
    finally:
        for close in (lambda: con.unregister("_crmstats_scores"), con.close):
            try:
                close()
            except Exception:  # a connection a failure invalidated: closing says nothing new
                pass


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


_PG_EXISTING = """
SELECT c.oid, c.relkind, obj_description(c.oid, 'pg_class'),
       ARRAY(SELECT attname::text FROM pg_attribute
             WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum)
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""
_PG_VIEWS = """
SELECT DISTINCT v.oid::regclass::text FROM pg_depend d
JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
JOIN pg_class v ON v.oid = r.ev_class
WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %s AND v.oid <> %s ORDER BY 1
"""
_PG_FOREIGN = """
SELECT DISTINCT conrelid::regclass::text FROM pg_constraint
WHERE contype = 'f' AND confrelid = %s AND conrelid <> %s ORDER BY 1
"""


def _write_postgres(out: pd.DataFrame, url: str, table: str, *, replace: bool,
                    lock_timeout: float) -> None:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of the database extra
        raise CRMStatsError("scores export to PostgreSQL needs psycopg (pip install "
                            "'psycopg[binary]')") from None
    staging, base = _staging_name(table)
    where = _safe(url)
    cols = ", ".join(f'"{c}" {_pg_type(out[c])}' for c in out.columns)
    rows = out.astype(object).where(out.notna(), None).itertuples(index=False, name=None)
    try:
        con = psycopg.connect(url)
    except psycopg.Error as exc:
        raise CRMStatsError(f"scores export: cannot connect to {where} "
                            f"({_first_line(exc)})") from None
    try:
        with con.transaction():  # all or nothing: readers see the old table until commit
            with con.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{max(1, int(lock_timeout * 1000))}ms'")
                cur.execute(_PG_EXISTING, [_quoted(table)])
                found = cur.fetchone()
                if found is not None:
                    oid, relkind, comment, columns = found
                    if relkind not in ("r", "p"):
                        raise CRMStatsError(f"scores export: {table!r} in {where} is not a "
                                            "table (a view or another object); it is never "
                                            "replaced — choose another --table")
                    views = [r[0] for r in cur.execute(_PG_VIEWS, [oid, oid]).fetchall()]
                    foreign = [r[0] for r in cur.execute(_PG_FOREIGN, [oid, oid]).fetchall()]
                    _decide(table, where, _ours(comment, list(columns)), replace, views,
                            foreign)
                _run(cur, f"CREATE TABLE {_quoted(staging)} ({cols})")
                names = ", ".join(f'"{c}"' for c in out.columns)
                with cur.copy(f"COPY {_quoted(staging)} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                _run(cur, f"COMMENT ON TABLE {_quoted(staging)} IS '{MARKER}'")
                _run(cur, f"DROP TABLE IF EXISTS {_quoted(table)}")
                _run(cur, f'ALTER TABLE {_quoted(staging)} RENAME TO "{base}"')
    except psycopg.errors.LockNotAvailable:
        raise CRMStatsError(f"scores export: table {table!r} in {where} is in use by another "
                            f"session; waited {lock_timeout:g} s — try again later or give a "
                            "longer --lock-timeout; the old table is unchanged") from None
    except psycopg.Error as exc:
        raise CRMStatsError(f"scores export: writing table {table!r} to {where} failed "
                            f"({_first_line(exc)}); the old table is unchanged") from None
    finally:
        try:
            con.close()
        except Exception:  # pragma: no cover - closing a broken connection says nothing new
            pass


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' if parts.port else ''}" \
           f"{parts.port or ''}{parts.path}"


def _duckdb_path(to: str) -> str:
    """Return the file of ``duckdb:///abs/path.duckdb``, ``duckdb://rel.duckdb`` or a path."""
    if "://" in to:
        parts = urlsplit(to)
        to = parts.netloc + parts.path
    return str(Path(to).expanduser())


def _pg_identity(url: str) -> tuple:
    parts = urlsplit(url)
    return ("postgresql", parts.hostname or "localhost", int(parts.port or 5432),
            parts.path.lstrip("/") or None)


# ----------------------------------------------------------------------------- entry points


def export_scores(
    frame: pd.DataFrame,
    to: str | os.PathLike,
    *,
    table: str = "crmstats_scores",
    run_id: str | None = None,
    personal: Iterable[str] = (),
    exportable: Iterable[str] = (),
    replace: bool = False,
    raw: bool = False,
    pseudonymize: bool = False,
    source=None,
    lock_timeout: float = 60.0,
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
    replace : bool
        Replace an existing file, or an existing database table that is not
        a crmstats scores table (never one a view or foreign key depends on,
        never a file or table the source reads).
    raw : bool
        CSV only: write text cells as they are, formulas included (default:
        neutralise them, see the module notes).
    pseudonymize : bool
        Write keyed pseudonyms of the ids (column ``<id>_pseudonym``, see
        :func:`crmstats.privacy.pseudonymize`) instead of the ids.
    source : CRMData or str, optional
        The data source the scores come from; its files and tables are
        never overwritten.
    lock_timeout : float
        Seconds to wait for a DuckDB file another process holds (or a
        PostgreSQL table another session locks) before giving up.

    Returns
    -------
    ExportResult

    Raises
    ------
    DataError
        A personal column is not exportable, or a value is impossible.
    CRMStatsError
        The destination cannot or may not be written (the old file or table
        stays).

    Warns
    -----
    DataWarning
        Ids that look like e-mail addresses or phone numbers are written as
        they are (without ``pseudonymize``).
    """
    from crmstats.schema import PII_COLUMNS

    to = str(to)
    kind = _kind(to)
    run_id = run_id or new_run_id()
    out, ids = _prepare(frame, run_id, [*PII_COLUMNS, *personal], exportable)
    if kind in ("duckdb", "postgresql") and not _IDENT.match(table or ""):
        raise CRMStatsError(f"scores export: table name {table!r} must be a plain identifier "
                            "(letters, digits, underscores; optionally schema.name)")
    if kind == "postgresql" and urlsplit(to).password:
        raise CRMStatsError("scores export: the URL carries a password; give credentials "
                            "through PGPASSWORD or ~/.pgpass instead")
    reads = _source_reads(source)
    files, tables = reads.files, reads.tables
    out = _personal_ids(out, ids, pseudonymize)
    if kind in ("parquet", "csv"):
        path = Path(to).expanduser()
        _refuse_source_file(path, files)
        if kind == "csv" and not raw:
            out = _neutralise(out)
        _write_file(out, path, kind, replace=replace)
        return ExportResult(target=to, table=None, rows=len(out), run_id=run_id, kind=kind)
    if kind == "duckdb":
        path = _duckdb_path(to)
        if Path(path).is_dir():
            raise CRMStatsError(f"scores export: {path!r} is a folder, not a DuckDB file; "
                                "nothing written")
        if not Path(path).parent.is_dir():
            raise CRMStatsError(f"scores export: folder {str(Path(path).parent)!r} does not "
                                "exist; create it first (nothing written)")
        _refuse_source_table(("duckdb", str(Path(path).resolve())), table, tables)
        _write_duckdb(out, path, table, replace=replace, lock_timeout=lock_timeout)
        return ExportResult(target=path, table=table, rows=len(out), run_id=run_id,
                            kind=kind)
    url = to.replace("postgres://", "postgresql://", 1)
    _refuse_source_table(_pg_identity(url), table, tables)
    _write_postgres(out, url, table, replace=replace, lock_timeout=lock_timeout)
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
    replace: bool = False,
    raw: bool = False,
    pseudonymize: bool = False,
    lock_timeout: float = 60.0,
    models: Iterable[str | os.PathLike] = (),
) -> ExportResult:
    """Compute :func:`crmstats.customer_360` on a source and write it with :func:`export_scores`.

    The command behind ``crmstats scores export`` and ``book build
    --export-scores``. Personal columns among ``contact_columns`` are written
    only when the source marks them exportable; the source's own files and
    tables are never overwritten.

    Parameters
    ----------
    source : str or CRMData
        Any data source :func:`crmstats.load_crm` reads.
    to, table, run_id, replace, raw, pseudonymize, lock_timeout
        As for :func:`export_scores`.
    as_of : timestamp-like, optional
        Date of the scores (default the data's last date).
    n_bootstrap : int
        Bootstrap refits of the CLV interval.
    contact_columns : iterable of str
        Contacts columns to carry (see :func:`crmstats.customer_360`).
    models : iterable of path
        Model files (:meth:`crmstats.estimator.Estimator.save`) to value the
        customers with instead of fitting: a transaction model and/or a spend
        model (:func:`crmstats.scores.saved.load_value_models`); read and
        checked before anything is computed. Needs ``n_bootstrap=0``.

    Returns
    -------
    ExportResult
    """
    from crmstats.scores.customer360 import customer_360
    from crmstats.scores.saved import load_value_models
    from crmstats.sources import load_crm

    tm, sm = load_value_models(models)
    if (tm is not None or sm is not None) and n_bootstrap:
        raise ValueError("scores export: the CLV interval refits the models on resamples of "
                         "the data; with saved models use no bootstrap (--bootstrap 0)")
    crm = load_crm(source)
    personal = crm.personal_columns("contacts")  # the schema's PII columns and the source's marks
    exportable = list(crm.exportable.get("contacts", ()))
    contact_columns = list(contact_columns)
    blocked = _blocked(contact_columns, personal, exportable)
    if blocked:  # refuse before computing anything
        raise DataError(f"scores export: column(s) {', '.join(blocked)} hold personal data; "
                        "mark them exportable in the source file to write them",
                        table="contacts", column=blocked[0])
    kind = _kind(str(to))
    reads = _source_reads(crm)
    if kind in ("parquet", "csv"):  # refuse before computing anything, as above
        _refuse_source_file(Path(str(to)).expanduser(), reads.files)
        _file_target(Path(str(to)).expanduser(), replace)
    scores = customer_360(crm, as_of, n_bootstrap=n_bootstrap, contact_columns=contact_columns,
                          transaction_model=tm, spend_model=sm)
    if kind == "duckdb" and crm is not source:  # our own read-only connection to the target
        _release(crm, _duckdb_path(str(to)))
    return export_scores(scores, to, table=table, run_id=run_id, personal=personal,
                         exportable=exportable, replace=replace, raw=raw,
                         pseudonymize=pseudonymize, source=reads, lock_timeout=lock_timeout)

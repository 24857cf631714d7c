"""Data sources: the demo, CDNOW, folders, databases and source files (``crmstats.yml``).

:func:`load_crm` resolves a study's ``data_source`` to a :class:`~crmstats.CRMData`;
every table then goes through the validation gate (:mod:`crmstats.validation`)
when a function reads it. A **source file** describes a company's own export —
where its tables are and how their columns, values, dates and numbers map onto
the canonical tables::

    name: ACME CRM export            # shown in study titles and on the data-quality page
    currency: EUR                    # of its money columns (the book's studies show it)
    location: .                      # folder relative to this file, or a database URL
    tables:
      transactions:
        file: orders.csv             # or  table: sales.orders  on a database
        columns: {customer_id: Customer ID, timestamp: Order Date, amount: Revenue}
        dayfirst: true               # or  timestamp_format: "%d/%m/%Y %H:%M"
        decimal: ","
        thousands: "."
        drop_duplicates: true        # rows repeating another row exactly are a double export
      stage_events:
        file: pipeline.csv
        columns: {lead_id: Lead, stage: Stage, entered_at: Entered, channel: Source}
        values:
          stage: {MQL: lead, SQL: qualified, Closed Won: won, Closed Lost: lost}
          channel: {Paid Search: paid_search, Google Ads: paid_search}
      contacts:
        file: contacts.csv
        personal: [Full Name, Phone]  # personal data: never published
        exportable: [email]          # personal columns `crmstats scores export` may write

Keys set at the top level (``dayfirst``, ``timestamp_format``, ``decimal``,
``thousands``, ``trim``, ``drop_duplicates``, ``drop_blank_ids``) apply to every
table unless the table sets its own. ``trim`` (default true) removes surrounding
spaces from ids and text columns.

A source file is untrusted text (:func:`read_source_file`): it is read within the
bounds of :mod:`crmstats.yamlfile`, every key is type-checked, and any text that
looks like a credential is refused without being repeated. Table files resolve,
links followed, inside the ``location`` folder unless the file sets
``allow_outside: true`` (per table or at the top level); a system or credential
folder or a top-level or home folder (:mod:`crmstats.source_folders`) is never a
source's folder.

Reading and checking a source file lives in :mod:`crmstats.source_file`
(:func:`read_source_file`, re-exported here); guessing a starting one
(``crmstats source init``) in :mod:`crmstats.source_init`
(:func:`init_source_file`, re-exported here).

Just over 500 lines: resolving a source (expansion, folder containment, the
demo and CDNOW, database URLs, source folders) is one decision per spelling of
``data_source``; reading and checking ``crmstats.yml`` is in
:mod:`crmstats.source_file`, writing a first draft in :mod:`crmstats.source_init`.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import ibis
import pandas as pd

from crmstats.backend import execute, list_tables, read_table
from crmstats.crmdata import CRMData, default_name
from crmstats.exceptions import DataError
from crmstats.privacy import find_credential
from crmstats.source_file import SOURCE_FILE, _check_url, read_source_file
from crmstats.source_folders import _check_folder, _system_folder
from crmstats.source_init import init_source_file
from crmstats.validation import SourceTable

__all__ = ["SOURCE_FILE", "expand_source", "export_crm", "init_source_file", "load_crm",
           "read_source_file", "source_currency", "source_label"]

# ----------------------------------------------------------------------------- labels


def source_label(data_source: Any, root: str | os.PathLike | None = None) -> str:
    """Return the display name of a data source, without loading any data.

    ``"demo CRM"`` for the demo, ``"CDNOW"`` for cdnow, a source file's
    ``name`` (also for a folder holding ``crmstats.yml``), a ``CRMData``'s
    ``name``, otherwise the folder's (or database's) name. A relative path is
    read from ``root`` when given (the book's kernels run in the repository).
    """
    if isinstance(data_source, CRMData):
        return data_source.name or default_name(data_source.source)
    text = str(data_source).strip()
    try:
        text = expand_source(text) if root is None else str(resolve_source(text, root))
    except DataError:  # an unset variable: the name of what was written
        return default_name(text)
    if "://" not in text:
        path = Path(text)
        spec_path = path / SOURCE_FILE if path.is_dir() else path
        if spec_path.suffix in (".yml", ".yaml") and spec_path.is_file():
            try:  # checked as load_crm checks it: a hostile name never becomes a title
                return str(_declared(spec_path)[0])
            except DataError:  # load_crm says why; the label is the folder's name
                return default_name(text)
    return default_name(text)


def source_currency(data_source: Any, root: str | os.PathLike = ".") -> str | None:
    """Return the currency a data source declares, without loading any data.

    ``"USD"`` for CDNOW (a US purchase log), a source file's ``currency``
    (also for a folder holding ``crmstats.yml``), otherwise None. A relative
    path is read from ``root``; a source file that cannot be read gives None
    (loading it reports the problem).
    """
    if isinstance(data_source, CRMData) or not isinstance(data_source, str | os.PathLike):
        return None
    text = str(data_source).strip()
    if text.partition(":")[0] == "cdnow":
        return "USD"
    try:
        path = Path(resolve_source(text, root))
    except DataError:
        return None
    if _named_source(str(path)):
        return None
    spec_path = path / SOURCE_FILE if path.is_dir() else path
    if spec_path.suffix not in (".yml", ".yaml") or not spec_path.is_file():
        return None
    try:
        return _declared(spec_path)[1]
    except DataError:
        return None


def _declared(path: Path) -> tuple[str, str | None]:
    """Return a source file's ``name`` and ``currency``.

    A build asks for them per study, per page and per KPI row;
    :func:`read_source_file` reads the file again only when its path, size or
    modification time changes.
    """
    spec = read_source_file(path)
    return spec["name"], spec.get("currency")


def _inside(base: Path, name: str, where: str, allow_outside: bool) -> Path:
    """Resolve ``name`` (symlinks followed) and check it stays inside ``base``."""
    resolved = (base / name).resolve()
    if not resolved.is_relative_to(base):
        if not allow_outside:
            raise DataError(f"{where}: file {name!r} is outside the source's folder (by its "
                            "path or a link); a source reads only files in its location "
                            "folder, unless its source file sets allow_outside: true")
        reason = _system_folder(resolved.parent)
        if reason:
            raise DataError(f"{where}: file {name!r} cannot be read: {reason}")
    if resolved.exists() and not resolved.is_file():
        raise DataError(f"{where}: {name!r} is not a regular file")
    return resolved


def _load_source_file(path: Path) -> CRMData:
    spec = read_source_file(path)
    location = spec["location"]
    where = f"source file {path.name}"
    con = None
    if "://" in location:
        con = _connect(location)
        available = set(list_tables(con))
    else:
        if re.match(r"\s*[A-Za-z_]+\s*=", location):
            raise DataError(f"{where}: location looks like a keyword connection string "
                            "(host=... dbname=...); write a database URL "
                            "(postgresql://user@host/db) or a folder")
        base = (path.parent / location).resolve()
        if not base.is_dir():
            raise DataError(f"{where}: location {location!r} is not a folder "
                            f"({str(base)!r})")
        _check_folder(base, where, location)
    found, personal, exportable = {}, {}, {}
    for name, entry in spec["tables"].items():
        if "file" in entry:
            if con is not None:
                raise DataError(f"source file {path.name}, table {name}: 'file' needs a folder "
                                "location; on a database use 'table'")
            data = _inside(base, entry["file"], f"{where}, table {name}",
                           bool(entry.get("allow_outside")))
            if not data.exists():
                held = ", ".join(sorted(p.name for p in base.iterdir()
                                        if not p.name.startswith("."))) or "nothing"
                raise DataError(f"source file {path.name}, table {name}: file "
                                f"{entry['file']!r} is not in {str(base)!r} (it holds {held})",
                                table=name)
            data, label = str(data), str(entry["file"])
        else:
            if con is None:
                raise DataError(f"source file {path.name}, table {name}: 'table' needs a "
                                "database URL as location")
            db, _, tname = str(entry["table"]).rpartition(".")
            if not db and tname not in available:
                raise DataError(f"source file {path.name}, table {name}: table {tname!r} is "
                                f"not in the database (tables: {', '.join(sorted(available))})",
                                table=name)
            data = con.table(tname, database=db) if db else con.table(tname)
            label = str(entry["table"])
        found[name] = SourceTable(
            data, columns=entry["columns"], values=entry["values"],
            dayfirst=entry.get("dayfirst"), timestamp_format=entry.get("timestamp_format"),
            decimal=entry.get("decimal"), thousands=entry.get("thousands"),
            trim=bool(entry.get("trim", True)), drop_duplicates=bool(entry.get("drop_duplicates")),
            drop_blank_ids=bool(entry.get("drop_blank_ids")),
            personal=tuple(entry.get("personal") or ()), label=label)
        marked = [_canonical(c, entry["columns"]) for c in entry.get("personal") or ()]
        if marked:
            personal[name] = tuple(marked)
        allowed = [_canonical(c, entry["columns"]) for c in entry.get("exportable") or ()]
        if allowed:
            exportable[name] = tuple(allowed)
    return CRMData(**found, source=str(path), name=str(spec["name"]), personal=personal,
                   exportable=exportable)


def _canonical(column: str, columns: dict) -> str:
    reverse = {v: k for k, v in columns.items()}
    return reverse.get(column, column)


# ----------------------------------------------------------------------------- databases


def _parse_options(text: str) -> dict[str, Any]:
    if find_credential(text) is not None:
        raise DataError("data source options look like they hold a credential (not repeated "
                        "here); credentials come from environment variables, never from a "
                        "data source")
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


def _duckdb_file(url: str) -> bool:
    """Whether ``url`` names a DuckDB database file (not ``duckdb://`` in memory)."""
    parts = urlsplit(url)
    where = (parts.netloc + parts.path).strip()
    return parts.scheme == "duckdb" and where not in ("", "/", ":memory:", "/:memory:") \
        and not where.startswith(("md:", "motherduck:"))


def _connect(url: str):
    """Connect to a data source's database; a DuckDB file is opened read-only.

    The caller has refused a URL carrying a credential (:func:`_check_url`, once:
    :func:`read_source_file` for a source file's location, :func:`_load_database`).

    A source is only read, and DuckDB lets one process write a file or many
    read it: the book's parallel kernels each open the source, so a
    read-write connection would lock the others out ("Conflicting lock is
    held"). A ``read_only`` option in the URL is replaced. A writer into the
    same file in this process (the scores export) closes these connections
    first (DuckDB refuses a second configuration of an open file).
    """
    parts = urlsplit(url)
    kwargs: dict[str, Any] = {}
    if _duckdb_file(url):
        base, _, query = url.partition("?")
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                if k.lower() != "read_only"]
        url = base + ("?" + "&".join(f"{k}={v}" for k, v in kept) if kept else "")
        kwargs["read_only"] = True
    try:
        con = ibis.connect(url, **kwargs)
    except Exception as exc:  # drivers raise many types; the message is what matters
        raise DataError(f"data source {urlunsplit(parts._replace(query=''))!r}: cannot "
                        f"connect ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return con


def _load_database(url: str) -> CRMData:
    """Open a database URL and bind the canonical tables it holds (see :func:`load_crm`)."""
    _check_url(url, "data source")
    parts = urlsplit(url)
    names = CRMData.table_names()
    mapping, passthrough = {}, []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (mapping.__setitem__(key, value) if key in names else passthrough.append((key, value)))
    query = "&".join(f"{k}={v}" for k, v in passthrough)
    # not urlunsplit: it turns duckdb:////abs/path into duckdb://abs/path
    clean = url.split("?", 1)[0] + (f"?{query}" if query else "")
    con = _connect(clean)
    available = set(list_tables(con))
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
                        f"({', '.join(names)}); it holds {', '.join(sorted(available)) or 'none'}"
                        "; map yours with ?transactions=<table>, ... or a crmstats.yml")
    return CRMData(**found, source=clean)


def _demo_options(text: str, simulate) -> dict[str, Any]:
    """Check ``demo:name=value,...`` options against the simulator's keyword arguments."""
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


# ----------------------------------------------------------------------------- load / export


def _named_source(text: str) -> bool:
    """Whether ``text`` is a database URL or a built-in source (demo, cdnow), not a path."""
    return "://" in text or text.partition(":")[0] in ("demo", "cdnow")


def expand_source(text: str) -> str:
    """Return a path data source with ``~`` and environment variables expanded.

    ``~/exports/shop``, ``$HOME/exports/shop`` and ``${EXPORTS}/shop`` mean
    what they mean in a shell (a scheduled run's ``run.yml`` can name its
    export so); database URLs and the built-in sources are returned as they
    are.

    Raises
    ------
    DataError
        Naming an environment variable that is not set (its value is never
        guessed as empty), or one whose name denotes a credential
        (``$PGPASSWORD``: its value would be echoed where the source is named).
    """
    import re

    from crmstats.privacy import CREDENTIAL_WORDS, find_credential, name_words

    text = str(text).strip()
    if _named_source(text):
        return text
    names = [m.group(1) or m.group(2) for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", text)]
    for name in names:
        if name_words(name) & CREDENTIAL_WORDS:
            raise DataError(f"data source: environment variable {name} names a credential; a "
                            "data source holds a path or URL, never a credential's value")
    unset = [name for name in names if name not in os.environ]
    if unset:
        raise DataError(f"data source {text!r}: environment variable {unset[0]} is not set")
    expanded = os.path.expanduser(os.path.expandvars(text))
    if expanded != text and (kind := find_credential(expanded)):
        raise DataError(f"data source: after its environment variables are expanded it holds "
                        f"what looks like a credential ({kind}); it is not shown here")
    return expanded


def resolve_source(source: Any, root: str | os.PathLike) -> Any:
    """Return the data source as a process whose working folder is ``root`` reads it.

    The book's kernels run in the repository root, so a relative path in a
    study's parameters is relative to it; the build process, which may run
    elsewhere, resolves it here to mean the same data. ``~`` and environment
    variables are expanded (:func:`expand_source`); anything else is returned
    unchanged.
    """
    if not isinstance(source, str | os.PathLike):
        return source
    text = expand_source(str(source))
    if _named_source(text) or Path(text).is_absolute():
        return text
    return str(Path(root) / text)


def _load_folder(path: Path, text: str) -> CRMData:
    if (path / SOURCE_FILE).is_file():
        return _load_source_file(path / SOURCE_FILE)
    base = path.resolve()
    _check_folder(base, f"data source {text!r}", text)
    found = {}
    for name in CRMData.table_names():
        for suffix in (".parquet", ".csv"):
            candidate = path / f"{name}{suffix}"
            if candidate.exists() or candidate.is_symlink():
                # a link to a file outside the folder is refused (a crmstats.yml may opt in)
                found[name] = str(_inside(base, candidate.name, f"data source {text!r}",
                                          False))
                break
    if not found:
        held = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        shown = ", ".join(held[:20]) + (f", ... ({len(held)} in all)" if len(held) > 20 else "")
        raise DataError(
            f"data source {text!r}: the folder holds no <table>.parquet or <table>.csv file "
            f"for any of {', '.join(CRMData.table_names())}; it holds "
            f"{shown or 'nothing'}. Map your own files with a {SOURCE_FILE} "
            f"(crmstats source init {text})"
        )
    return CRMData(**found, source=str(path))


def load_crm(source: Any = "demo") -> CRMData:
    """Resolve a study's data source to a :class:`~crmstats.CRMData`.

    Parameters
    ----------
    source : str, path or CRMData
        * ``"demo"`` — the simulated demo CRM (:func:`crmstats.datasets.simulate_crm`
          with its defaults); ``"demo:seed=3,n_contacts=2000"`` passes options;
        * ``"cdnow"`` / ``"cdnow:sample"`` — the real CDNOW purchase log
          (transactions only);
        * a source file (``crmstats.yml``, see :mod:`crmstats.sources`) that
          maps a company's own export, or a folder holding one;
        * a path may be absolute, relative, start with ``~`` or hold
          environment variables (``$HOME/exports/shop``, ``${EXPORTS}/shop``);
        * a folder holding ``<table>.parquet`` or ``<table>.csv`` files, one
          per canonical table (as written by :func:`export_crm`);
        * a database URL understood by ``ibis.connect`` — e.g.
          ``"postgresql://crm@db.example.com:5432/crm"`` or
          ``"duckdb:///srv/crm.duckdb"`` (opened read-only, so parallel studies
          share it) — whose tables named like the canonical
          ones are used where they live (every aggregation runs on that server);
          query parameters map canonical tables to other table names:
          ``"postgresql://crm@db/crm?transactions=orders_view"``. Credentials
          never go in the URL: PostgreSQL reads ``PGPASSWORD`` or ``~/.pgpass``;
        * a ``CRMData``, returned unchanged.

    Returns
    -------
    CRMData
    """
    if isinstance(source, CRMData):
        return source
    text = expand_source(str(source))
    if "://" in text:
        return _load_database(text)  # refuses credentials in a URL with its own message
    from crmstats.privacy import find_credential

    if kind := find_credential(text):  # e.g. a libpq keyword string given as the source
        raise DataError(f"data source: holds what looks like a credential ({kind}), not shown "
                        "here; credentials come from the environment (PGPASSWORD, ~/.pgpass), "
                        "never from the data source")
    if text in _PRELOADED:  # made before this book kernel was forked (preload_sources)
        return _PRELOADED[text]
    head, _, rest = text.partition(":")
    if head == "demo":
        # imported on use (not a cycle): the simulator is only needed for the demo
        from crmstats.datasets import simulate_crm

        return simulate_crm(**_demo_options(rest, simulate_crm))
    if head == "cdnow":
        from crmstats.datasets import load_cdnow  # on use, like the simulator

        kind = rest or "master"
        return CRMData(transactions=load_cdnow(kind=kind), source=f"cdnow:{kind}")
    path = Path(text)
    if path.is_dir():
        return _load_folder(path, text)
    if path.is_file() and path.suffix in (".yml", ".yaml"):
        return _load_source_file(path)
    if path.suffix in (".yml", ".yaml") or "/" in text or os.sep in text or text.startswith("."):
        raise DataError(f"data source {text!r}: no such folder or file"
                        + (f" (from {os.getcwd()!r})" if not path.is_absolute() else ""))
    raise DataError(
        f"unknown data source {text!r}: use 'demo', 'demo:seed=N,...', 'cdnow', "
        "'cdnow:sample', a folder of <table>.parquet/.csv files, a crmstats.yml source file "
        "or a database URL"
    )


def export_crm(crm: CRMData, directory: str | os.PathLike) -> list[Path]:
    """Write every table of ``crm`` to ``directory/<table>.parquet``; return the paths.

    Tables of a mapped source are written in canonical form (mapping applied).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, t in crm.tables().items():
        target = out / f"{name}.parquet"
        tmp = out / f".{name}.parquet.tmp"
        if isinstance(t, pd.DataFrame):
            t.to_parquet(tmp, index=False)
        elif isinstance(t, SourceTable):
            execute(crm.table(name)).to_parquet(tmp, index=False)
        else:
            execute(read_table(t, table=name)).to_parquet(tmp, index=False)
        tmp.replace(target)
        written.append(target)
    return written


#: Built-in sources made ahead by :func:`preload_sources`, by their text.
_PRELOADED: dict[str, CRMData] = {}


def preload_sources(sources) -> list[str]:
    """Make the built-in sources among ``sources`` (demo, cdnow) once, for load_crm to return.

    Called only by a book build's kernel server (:mod:`crmstats.book.warm`)
    before it forks the study kernels: every kernel then finds the simulated
    demo (seeded, so the same data) made once instead of simulating it again.
    Elsewhere nothing is preloaded and :func:`load_crm` makes each source anew.

    Returns
    -------
    list of str
        The sources made.
    """
    done = []
    for source in sources:
        text = expand_source(str(source))
        if text.partition(":")[0] in ("demo", "cdnow") and text not in _PRELOADED:
            _PRELOADED[text] = load_crm(text)
            done.append(text)
    return done

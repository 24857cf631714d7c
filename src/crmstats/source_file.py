"""Reading and checking a source file (``crmstats.yml``): :func:`read_source_file`.

A source file is untrusted text: it is read within the bounds of
:mod:`crmstats.yamlfile`, every key is type-checked, and any text that looks
like a credential is refused without being repeated. The file's format is
described in :mod:`crmstats.sources`, which loads the data it points to. A
file is read and checked once per version (path, size, modification time) in a
process: a book build asks for a source's name, currency and tables many times.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crmstats.crmdata import CRMData, default_name
from crmstats.exceptions import DataError
from crmstats.privacy import find_credential
from crmstats.schema import TABLES
from crmstats.yamlfile import read_yaml

#: The name of a folder's source file.
SOURCE_FILE = "crmstats.yml"

_TABLE_KEYS = {"file", "table", "columns", "values", "dayfirst", "timestamp_format", "decimal",
               "thousands", "trim", "drop_duplicates", "drop_blank_ids", "personal",
               "exportable", "allow_outside"}
_SHARED_KEYS = {"dayfirst", "timestamp_format", "decimal", "thousands", "trim",
                "drop_duplicates", "drop_blank_ids"}
_TOP_KEYS = {"name", "location", "tables", "description", "currency",
             "allow_outside"} | _SHARED_KEYS


def _read_yaml(path: Path) -> dict:
    spec = read_yaml(path, what="source file", error=DataError)
    if not isinstance(spec, dict):
        raise DataError(f"source file {path}: expected a mapping with name, location "
                        "and tables")
    return spec


def _check_keys(where: str, given, allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed, key=str)
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(map(_key_label, unknown))}; "
                        f"allowed: {', '.join(sorted(allowed))}")


def _key_label(key: Any) -> str:
    """Show a key of the file in a message: quoted if a short plain name, else ``[...]``."""
    if type(key) is str and len(key) <= 40 and key.isprintable() and find_credential(key) is None:
        return repr(key)
    return "[...]"


def _texts(value: Any, at: tuple = ()):
    """Yield ``(keys, value)`` of every scalar in ``value``; a key as ``(..., key, None)``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*at, key, None), key
            yield from _texts(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _texts(item, (*at, i))
    else:
        yield at, value


def _label(keys: tuple) -> str:
    """Where a text sits in a source file, for a message: keys that are plain names, else [...]."""
    out = ""
    for key in keys:
        if key is None:
            out += " (a key)"
        elif type(key) is int:
            out += f"[{key}]"
        else:
            out += "." + (key if _key_label(key) == repr(key) else "[...]")
    return out.lstrip(".") or "a value"


def _refuse_secrets(where: str, spec: Any) -> None:
    """Refuse any string of the file (keys too) that looks like a credential; never echo it."""
    texts = [(keys, text) for keys, text in _texts(spec) if isinstance(text, str)]
    if find_credential("\n".join(text for _, text in texts)) is None:  # one pass over the file
        return
    for keys, text in texts:
        kind = find_credential(text)
        if kind is not None:
            raise DataError(f"{where}: {_label(keys)} looks like a credential ({kind}); "
                            "give credentials through environment variables (e.g. PGPASSWORD) "
                            "or ~/.pgpass, never in a file or URL (the value is not repeated "
                            "here)")


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:  # a malformed netloc: judged by the patterns below
        password = None
    if password or any(k.lower() in _PASSWORD_KEYS for k, _ in parse_qsl(parts.query)) \
            or find_credential(url) is not None:
        raise DataError(f"{where}: the database URL carries a password or another "
                        "credential; give credentials through environment variables (e.g. "
                        "PGPASSWORD) or ~/.pgpass, never in a file or URL")


#: Query keys of a database URL that carry a password (libpq, JDBC, ODBC spellings).
_PASSWORD_KEYS = {"password", "pwd", "pass", "passwd", "passphrase", "sslpassword"}

#: Longest text of each kind a source file may hold (characters).
_MAX_NAME = 200          # name; a table name; canonical and exported column names
_MAX_TEXT = 4_000        # description, location, file
_MAX_ITEMS = 10_000      # entries of one values map, of personal/exportable lists


def _text(where: str, key: str, value: Any, limit: int, *, line: bool = True) -> str:
    """Check a text setting: a string of at most ``limit`` characters (one line)."""
    if type(value) is not str:
        raise DataError(f"{where}: {key!s} must be text, got {_kind(value)} (quote it)")
    if len(value) > limit:
        raise DataError(f"{where}: {key!s} is {len(value):,} characters long; at most "
                        f"{limit:,}")
    if line and ("\n" in value or "\r" in value or not value.isprintable()):
        raise DataError(f"{where}: {key!s} must be one line of printable text")
    return value


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", bool: "true/false", type(None): "nothing",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _flag(where: str, key: str, value: Any) -> bool:
    if type(value) is not bool:
        raise DataError(f"{where}: {key} must be true or false, got {_kind(value)}")
    return value


def _header_name(where: str, key: str, value: Any) -> str:
    """Check an exported column name: text, or a number a CSV header may hold (``2024``)."""
    if type(value) is int:
        value = str(value)
    return _text(where, key, value, _MAX_NAME)


def _check_shared(where: str, entry: dict) -> None:
    """Type-check the keys a table and the top level share (and ``allow_outside``)."""
    for key in ("trim", "drop_duplicates", "drop_blank_ids", "allow_outside"):
        if key in entry:
            _flag(where, key, entry[key])
    if entry.get("dayfirst") is not None:
        _flag(where, "dayfirst", entry["dayfirst"])
    if entry.get("timestamp_format") is not None:
        _text(where, "timestamp_format", entry["timestamp_format"], 100)
    for key in ("decimal", "thousands"):
        if entry.get(key) is not None:
            sep = _text(where, key, entry[key], 3, line=False)
            if any(ch.isalnum() for ch in sep) or (key == "decimal" and not sep):
                raise DataError(f"{where}: {key} must be a separator such as ',' '.' or ' ', "
                                "not a letter or digit")


def _check_counts(where: str, spec: dict) -> None:
    """Refuse a values map or list over :data:`_MAX_ITEMS` entries before anything reads it."""
    tables = spec.get("tables")
    for name, entry in (tables.items() if isinstance(tables, dict) else ()):
        if not isinstance(entry, dict):
            continue
        sized = [(f"values of {_key_label(col)}", m)
                 for col, m in (entry.get("values") or {}).items()] \
            if isinstance(entry.get("values"), dict) else []
        sized += [(key, entry.get(key)) for key in ("columns", "personal", "exportable")]
        for what, items in sized:
            if isinstance(items, (dict, list)) and len(items) > _MAX_ITEMS:
                raise DataError(f"{where}, table {_key_label(name)}: {what} has "
                                f"{len(items):,} entries; at most {_MAX_ITEMS:,}")


def _check_table(where: str, entry: dict) -> dict:
    """Type-check one table's entry; return it with ``columns`` and ``values`` as text maps."""
    _check_shared(where, entry)
    for key in ("file", "table"):
        if key in entry:
            _text(where, key, entry[key], _MAX_TEXT if key == "file" else _MAX_NAME)
    raw = entry.get("columns") or {}
    if not isinstance(raw, dict):
        raise DataError(f"{where}: columns must map canonical names to exported column names, "
                        f"got {_kind(raw)}")
    columns = {_text(where, "a canonical column name in columns", k, _MAX_NAME):
               _header_name(where, f"columns.{k}", v) for k, v in raw.items()}
    raw = entry.get("values") or {}
    if not isinstance(raw, dict):
        raise DataError(f"{where}: values must map columns to {{exported value: canonical "
                        f"value}}, got {_kind(raw)}")
    values = {}
    for col, mapping in raw.items():
        _text(where, "a column name in values", col, _MAX_NAME)
        shown = _key_label(col)  # the file's own key: shown only if a plain name
        if not isinstance(mapping, dict):
            raise DataError(f"{where}: values of {shown} must map exported values to canonical "
                            "ones")
        for k, v in mapping.items():
            if type(k) not in (str, int, float, bool, type(None)) or type(v) is not str:
                raise DataError(f"{where}: values of {shown} must map exported values to "
                                f"canonical names (text), got {_kind(k)}: {_kind(v)}")
            if isinstance(k, str):
                _text(where, f"an exported value in values of {shown}", k, _MAX_NAME)
            _text(where, f"a canonical value in values of {shown}", v, _MAX_NAME)
        values[col] = mapping
    for key in ("personal", "exportable"):
        names = entry.get(key)
        if names is None:
            continue
        if not isinstance(names, list):
            raise DataError(f"{where}: {key} must be a list of column names, got {_kind(names)}")
        for name in names:
            _header_name(where, f"a column name in {key}", name)
    return {**entry, "columns": columns, "values": values}


def read_source_file(path: str | os.PathLike) -> dict:
    """Read and check a source file; return its content with defaults filled in.

    The file is read with :func:`crmstats.yamlfile.read_yaml` (at most 1 MB,
    aliases bounded); every key is type-checked and every text in it (keys
    included) is refused if it looks like a credential. A file is read once
    per version (path, size, modification time) in a process; every call
    returns its own copy.

    Raises
    ------
    DataError
        Unknown keys, tables or canonical columns, a key of the wrong type or
        too long, a credential anywhere, or a table without ``file``/``table``.
        The message names the file and the key, never a credential.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"source file {str(path)!r} does not exist")
    info = path.stat()
    spec = _read_checked(str(path.resolve()), path.name, info.st_mtime_ns, info.st_size)
    return {**copy.deepcopy(spec), "path": path}


#: Source files read in this process (a test counts them).
READS = {"count": 0}


@functools.lru_cache(maxsize=32)
def _read_checked(resolved: str, name: str, mtime_ns: int, size: int) -> dict:
    """Read and check the source file at ``resolved`` (see :func:`read_source_file`)."""
    READS["count"] += 1
    path = Path(resolved)
    spec = _read_yaml(path)
    where = f"source file {name}"
    _check_counts(where, spec)  # bounds the work below
    _refuse_secrets(where, spec)  # before any message can show a text of the file
    _check_keys(where, spec, _TOP_KEYS)
    for key in ("name", "location"):
        if spec.get(key) is not None:
            _text(where, key, spec[key], _MAX_NAME if key == "name" else _MAX_TEXT)
    if spec.get("description") is not None:
        _text(where, "description", spec["description"], _MAX_TEXT, line=False)
    _check_shared(where, spec)
    tables = spec.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise DataError(f"{where}: 'tables' must map canonical table names "
                        f"({', '.join(TABLES)}) to their file or table")
    shared = {k: spec[k] for k in _SHARED_KEYS | {"allow_outside"} if k in spec}
    out = {}
    for name, entry in tables.items():
        if name not in CRMData.table_names():
            raise DataError(f"{where}: unknown table {_key_label(name)}; canonical tables are "
                            f"{', '.join(CRMData.table_names())}")
        if not isinstance(entry, (str, dict)) and entry is not None:
            raise DataError(f"{where}, table {name}: expected a file name or a mapping, got "
                            f"{_kind(entry)}")
        entry = {"file": entry} if isinstance(entry, str) else dict(entry or {})
        _check_keys(f"{where}, table {name}", entry, _TABLE_KEYS)
        if ("file" in entry) == ("table" in entry):
            raise DataError(f"{where}, table {name}: give exactly one of 'file' (in the "
                            "location folder) or 'table' (in the location database)")
        out[name] = {"trim": True, **shared, **_check_table(f"{where}, table {name}", entry)}
    location = str(spec.get("location", ".") or ".")
    if "://" in location:
        _check_url(location, where)
    for name, entry in out.items():
        columns = entry["columns"]
        clash = sorted({v for v in columns.values() if list(columns.values()).count(v) > 1})
        if clash:
            raise DataError(f"{where}, table {name}: exported column(s) "
                            f"{', '.join(map(repr, clash))} mapped twice (write "
                            "canonical_name: exported name, once per column)")
    currency = spec.get("currency")
    if currency is not None and (type(currency) is not str
                                 or not re.fullmatch(r"[^\W\d_]{3}|[^\w\s]{1,3}", currency)):
        raise DataError(f"{where}: 'currency' must be a currency code (EUR, GBP) or symbol "
                        "(€, £)")
    return {"name": spec.get("name") or default_name(str(path)), "location": location,
            "tables": out, "currency": currency}

"""Pseudonyms for customers and the scan that keeps personal data out of the book.

Two halves:

* :func:`pseudonymize` turns customer ids into stable keyed-hash pseudonyms
  (``"C-7f3a9c21"``) for lists that are published; :func:`reidentify` and
  :func:`pseudonym_table` map them back for an analyst who holds the key.
* :func:`scan_text` finds what must never be published: e-mail addresses,
  phone numbers, credentials (:data:`CREDENTIAL_PATTERNS`, also used to refuse
  study parameters; lines of credential files such as ``/etc/shadow``,
  ``.pgpass`` and ``.netrc`` among them), given personal values (names,
  e-mails of the source's personal columns) and absolute paths of the build
  machine. :func:`scan_html` finds what would run in a reader's browser and
  did not come from the book's theme: scripts, frames, embedded objects,
  event-handler attributes and ``javascript:`` URLs. A finding names the
  pattern and the position, never the value. The scan lives in
  :mod:`crmstats.text_scan` and :mod:`crmstats.html_scan`; its names are
  importable from here as well.

The pseudonym key
-----------------
The pseudonym of an id is ``HMAC-SHA256(key, id)`` shown as ``"C-"`` plus its
first 8 hex digits. The key never lives in the book or the repository:

1. the environment variable ``CRMSTATS_PSEUDONYM_KEY``, else
2. the key file ``$CRMSTATS_CONFIG_DIR/pseudonym.key`` (default
   ``$XDG_CONFIG_HOME/crmstats/pseudonym.key``, i.e.
   ``~/.config/crmstats/pseudonym.key``), created once with 32 random bytes
   and mode 0600 the first time a pseudonym is needed — and announced with a
   :class:`PseudonymKeyWarning` naming the path, since a key made silently in
   an ephemeral home (cron, a container) would change every pseudonym without
   a word. A key file readable by other users is refused.

A key shorter than :data:`MIN_KEY_BYTES` (16 bytes) is refused from every
origin — the variable, the file or a ``key=`` argument — with a message that
does not show it: a short key can be guessed, and with it every pseudonym of
an enumerable id reversed.

Whoever holds the key can map a published pseudonym back to the customer
(:func:`reidentify`); without it, pseudonyms cannot be linked to ids (beyond
guessing ids and holding the key). Changing the key changes every pseudonym.

References
----------
.. [1] Krawczyk, H., Bellare, M. and Canetti, R. (1997). "HMAC: Keyed-Hashing
   for Message Authentication". RFC 2104.
.. [2] European Data Protection Board (2025). "Guidelines 01/2025 on
   Pseudonymisation" (keyed hashes with a separately kept key as a
   pseudonymisation technique).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from crmstats.exceptions import CRMStatsError, DataError

# the publication scan is two modules of its own (text, HTML); its names stay importable here
from crmstats.html_scan import (  # noqa: F401
    SEARCH_INDEX_PREFIX,
    SEARCH_INDEX_SUFFIX,
    THEME_HANDLERS,
    THEME_INLINE_SCRIPTS,
    THEME_SCRIPTS,
    read_search_index,
    scan_html,
    scan_search_index,
)
from crmstats.text_scan import (  # noqa: F401
    CREDENTIAL_PATTERNS,
    CREDENTIAL_WORDS,
    Finding,
    decode,
    find_credential,
    machine_paths,
    name_words,
    notebook_text,
    redact,
    scan_text,
)

__all__ = [
    "CREDENTIAL_PATTERNS",
    "KEY_ENV",
    "MIN_KEY_BYTES",
    "Finding",
    "PseudonymKeyWarning",
    "check_key",
    "decode",
    "find_credential",
    "key_path",
    "machine_paths",
    "notebook_text",
    "pseudonym_table",
    "pseudonymize",
    "pseudonymous",
    "redact",
    "reidentify",
    "scan_html",
    "scan_search_index",
    "scan_text",
]

#: Environment variable holding the pseudonym key.
KEY_ENV = "CRMSTATS_PSEUDONYM_KEY"
#: Pseudonym prefix and default number of hex digits.
PREFIX = "C-"
DEFAULT_LENGTH = 8


# --------------------------------------------------------------------------- key


def key_path() -> Path:
    """Return where the pseudonym key file lives (it may not exist yet)."""
    base = os.environ.get("CRMSTATS_CONFIG_DIR")
    if base:
        return Path(base) / "pseudonym.key"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "crmstats" / "pseudonym.key"


#: Shortest pseudonym key accepted, in bytes: with fewer, the key itself can be guessed, and
#: then every pseudonym of an enumerable id (a customer number) can be reversed.
MIN_KEY_BYTES = 16


class PseudonymKeyWarning(UserWarning):
    """A new pseudonym key was created: keep it, or every pseudonym changes."""


def _short_key(origin: str, hint: str) -> CRMStatsError:
    return CRMStatsError(f"pseudonym key {origin}: shorter than {MIN_KEY_BYTES} bytes "
                         f"(the key is not shown); {hint}")


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
    except OSError as exc:
        raise CRMStatsError(f"pseudonym key {path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CRMStatsError(f"pseudonym key {path}: not a regular file")
    if info.st_mode & 0o077:
        raise CRMStatsError(
            f"pseudonym key {path}: readable by other users (mode {info.st_mode & 0o777:o}); "
            f"run chmod 600 {path}"
        )
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise CRMStatsError(f"pseudonym key {path}: cannot read it ({exc.strerror})") from None
    if len(key) < MIN_KEY_BYTES:
        raise _short_key(str(path), "delete it to have a new one made (every pseudonym "
                                    "changes)")
    return key


def _create_key_file(path: Path) -> None:
    """Create the key file atomically with mode 0600 (a concurrent creator wins).

    The process that creates it says so (:class:`PseudonymKeyWarning`, naming
    the path): a key made silently in an ephemeral home (cron, a container)
    would re-key every pseudonym without a word.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pseudonym.key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
            try:
                os.link(tmp, path)  # fails if another process made the key first
                created = True
            except FileExistsError:
                created = False
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise CRMStatsError(
            f"pseudonym key {path}: cannot create it ({exc.strerror}); set {KEY_ENV} "
            "or CRMSTATS_CONFIG_DIR"
        ) from None
    if created:
        warnings.warn(
            f"crmstats created a new pseudonym key at {path}: keep it (back it up, or set "
            f"{KEY_ENV}); losing or replacing it changes every pseudonym, and pseudonyms "
            "already published can no longer be mapped back",
            PseudonymKeyWarning, stacklevel=4)


def _key(key: str | bytes | None) -> bytes:
    if key is not None:
        key = key.encode() if isinstance(key, str) else bytes(key)
        if len(key) < MIN_KEY_BYTES:
            raise _short_key("given", "use a long random key, e.g. "
                             "python -c 'import secrets; print(secrets.token_hex(32))'")
        return key
    env = os.environ.get(KEY_ENV)
    if env:
        if len(env.encode()) < MIN_KEY_BYTES:
            raise _short_key(f"in {KEY_ENV}", "set a long random key, e.g. "
                             "python -c 'import secrets; print(secrets.token_hex(32))', or "
                             "unset it to use the key file")
        return env.encode()
    path = key_path()
    if not path.exists():
        _create_key_file(path)
    return _read_key_file(path)


def check_key() -> None:
    """Make sure the pseudonym key is usable before studies run in other processes.

    Reads the key as :func:`pseudonymize` would: a short or unreadable key is
    refused here, once, and a missing key file is created here — announced on
    the caller's stderr (:class:`PseudonymKeyWarning`) rather than inside a
    study's notebook. ``crmstats book build`` calls it before running studies.

    Raises
    ------
    CRMStatsError
        As :func:`pseudonymize` would for the key.
    """
    _key(None)


# --------------------------------------------------------------------------- pseudonyms


def _digest(key: bytes, value: Any) -> str:
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def _as_series(ids: Any) -> pd.Series:
    if isinstance(ids, pd.Series):
        return ids
    if isinstance(ids, pd.Index):
        return ids.to_series(index=range(len(ids)))
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        return pd.Series([ids])
    return pd.Series(list(ids))


def pseudonymize(ids: Any, *, key: str | bytes | None = None,
                 length: int = DEFAULT_LENGTH) -> pd.Series:
    """Replace customer ids by stable keyed-hash pseudonyms.

    Parameters
    ----------
    ids : Series, Index, list or scalar
        Customer ids (any type; they are hashed as ``str(id)``, so ``7`` and
        ``"7"`` share a pseudonym). Missing ids stay missing.
    key : str or bytes, optional
        The key; default ``$CRMSTATS_PSEUDONYM_KEY`` or the key file (see the
        module documentation).
    length : int
        Hex digits shown (4-64). If two different ids in ``ids`` would share a
        pseudonym, every pseudonym of this call is lengthened (by two digits
        at a time) until they are distinct; a longer pseudonym always starts
        with the shorter one, so :func:`reidentify` finds both.

    Returns
    -------
    pandas.Series of str
        ``"C-"`` plus hex digits, with the index of ``ids`` (a Series) or a
        range index.

    Examples
    --------
    >>> pseudonymize(["alice@example.com", 42], key="a-long-secret-key").tolist()
    ['C-f70e119b', 'C-affe535a']
    """
    if not 4 <= int(length) <= 64:
        raise CRMStatsError(f"pseudonym length must be 4 to 64 hex digits, got {length}")
    series = _as_series(ids)
    secret = _key(key)
    present = series.notna()
    distinct = pd.unique(series[present].astype(str))
    digests = {value: _digest(secret, value) for value in distinct}
    length = int(length)
    while length < 64 and len({d[:length] for d in digests.values()}) < len(digests):
        length += 2
    out = series.astype(object).copy()
    out[present] = [PREFIX + digests[str(v)][:length] for v in series[present]]
    out[~present] = None
    return out.rename(series.name)


def pseudonym_table(ids: Any, *, key: str | bytes | None = None,
                    length: int = DEFAULT_LENGTH) -> pd.DataFrame:
    """Return the lookup table ``id -> pseudonym`` of the distinct ``ids``.

    For the analyst who holds the key; never publish it.
    """
    series = _as_series(ids)
    distinct = pd.Series(pd.unique(series.dropna()))
    return pd.DataFrame({"id": distinct,
                         "pseudonym": pseudonymize(distinct, key=key, length=length).to_numpy()})


def reidentify(pseudonyms: Any, ids: Any, *, key: str | bytes | None = None) -> pd.Series:
    """Map published pseudonyms back to customer ids.

    Parameters
    ----------
    pseudonyms : Series, list or scalar
        Pseudonyms as published (``"C-7f3a9c21"``, any length).
    ids : Series, list
        The candidate customer ids (e.g. ``crm.customers["customer_id"]``).
    key : str or bytes, optional
        The key the pseudonyms were made with (default as in :func:`pseudonymize`).

    Returns
    -------
    pandas.Series
        The id of each pseudonym (index as ``pseudonyms``); missing where no
        candidate matches.

    Raises
    ------
    DataError
        If a pseudonym matches more than one candidate id (a short pseudonym
        on a large id set), naming how many pseudonyms are ambiguous.
    """
    wanted = _as_series(pseudonyms)
    secret = _key(key)
    candidates = pd.unique(_as_series(ids).dropna())
    digests = {_digest(secret, str(c)): c for c in candidates}
    prefix_len = len(PREFIX)
    shortest = min((len(str(p)) - prefix_len for p in wanted.dropna()), default=DEFAULT_LENGTH)
    index: dict[str, list[Any]] = {}
    for digest, cid in digests.items():
        index.setdefault(digest[:max(shortest, 1)], []).append((digest, cid))
    result: list[Any] = []
    ambiguous = 0
    for p in wanted:
        if not isinstance(p, str) or not p.startswith(PREFIX):
            result.append(None)
            continue
        hexpart = p[prefix_len:].lower()
        hits = [cid for digest, cid in index.get(hexpart[:max(shortest, 1)], [])
                if digest.startswith(hexpart)]
        if len(hits) > 1:
            ambiguous += 1
        result.append(hits[0] if len(hits) == 1 else None)
    if ambiguous:
        raise DataError(f"reidentify: {ambiguous} pseudonym(s) match more than one id; "
                        "publish longer pseudonyms (pseudonymize(..., length=12))")
    return pd.Series(result, index=wanted.index, dtype=object)


#: Names of id columns (and index names) that identify a customer, account, lead, contact or
#: journey.
ID_COLUMNS = ("customer_id", "account_id", "lead_id", "contact_id", "journey_id", "customer",
              "account", "lead", "contact")


def pseudonymous(table: pd.DataFrame | pd.Series, *, key: str | bytes | None = None,
                 id_columns: Iterable[str] = ID_COLUMNS) -> pd.DataFrame | pd.Series:
    """Return a customer-level table fit for publishing: pseudonyms instead of ids.

    The index and the columns named in ``id_columns`` (customer, account,
    lead and contact ids) are replaced by :func:`pseudonymize`; personal
    columns (:data:`crmstats.schema.PII_COLUMNS`: name, e-mail, phone, ...)
    are dropped. The caller's table is not changed; the functions that made
    it keep returning raw ids, so an analyst in JupyterLab still sees them.

    Parameters
    ----------
    table : DataFrame or Series
        A list of customers (e.g. a top-value or win-back list).
    key : str or bytes, optional
        Pseudonym key (default as in :func:`pseudonymize`).
    id_columns : iterable of str
        Names of id columns and index names to replace.

    Returns
    -------
    DataFrame or Series
        A copy with pseudonyms (``"C-7f3a9c21"``).
    """
    from crmstats.schema import PII_COLUMNS

    ids = {c.lower() for c in id_columns}
    out = table.copy()
    if isinstance(out, pd.DataFrame):
        out = out.drop(columns=[c for c in out.columns if str(c).lower() in PII_COLUMNS])
        for column in out.columns:
            if str(column).lower() in ids:
                out[column] = pseudonymize(out[column], key=key).to_numpy()
    names = [n for n in out.index.names if n is not None]
    if isinstance(out.index, pd.MultiIndex):
        levels = [pd.Index(pseudonymize(out.index.get_level_values(i), key=key).to_numpy(),
                           name=n) if n is not None and str(n).lower() in ids
                  else out.index.get_level_values(i) for i, n in enumerate(out.index.names)]
        out.index = pd.MultiIndex.from_arrays(levels)
    elif names and str(names[0]).lower() in ids:
        out.index = pd.Index(pseudonymize(out.index, key=key).to_numpy(), name=out.index.name)
    return out

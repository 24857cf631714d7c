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
  pattern and the position, never the value.

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

import bisect
import functools
import hashlib
import hmac
import html
import json
import os
import posixpath
import re
import secrets
import stat
import sys
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from crmstats.exceptions import CRMStatsError, DataError

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


# --------------------------------------------------------------------------- scanning


class Finding(NamedTuple):
    """One thing found by :func:`scan_text`: what it looks like and where, never the value.

    Attributes
    ----------
    pattern : str
        Name of the pattern (``"email address"``, ``"AWS access key"``, ...).
    offset : int
        Character offset in the decoded text.
    line : int
        1-based line number in the decoded text.
    """

    pattern: str
    offset: int
    line: int

    def __str__(self) -> str:
        return f"{self.pattern} (line {self.line})"


_B = r"(?<![A-Za-z0-9_+/=-])"   # start: not inside a token or a base64 run
_E = r"(?![A-Za-z0-9_+/-])"     # end: the token ends here

# Names of settings whose value is a credential (used in query strings and KEY=value).
_CRED_KEYS = (
    r"(?:ssl)?password|passwd|pwd|pass|passphrase"
    r"|(?:access|refresh|id|auth|session|bearer|bot|api|private|client)?[_-]?token"
    r"|api[_-]?key|apikey|x-api-key|access[_-]?key|secret[_-]?key|private[_-]?key"
    r"|(?:client|app|api|consumer|shared)?[_-]?secret"
    r"|accountkey|sharedaccesskey|sharedaccesssignature|sig|signature|x-amz-signature"
    r"|x-amz-security-token|credentials?"
)

# Values that stand for a credential without being one: "...", "***", "<password>", "$PGPASSWORD".
_PLACEHOLDER = (r"(?:\.{3}|\*{3,}|<[^<>\s]{1,40}>|\$\{?[A-Za-z_]|x{3,}(?![A-Za-z0-9])|"
                r"(?:redacted|changeme|your[_-]?\w*)(?![A-Za-z0-9]))")

# A user name of /etc/passwd or /etc/shadow at the start of its line (not inside a word or path).
_USER = r"(?<![\w:/.$-])[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?"

# Names whose unquoted YAML value (``password: hunter22``) is a credential: the password
# family and compound key names, not a bare "token" or "key" ("token: bucket" is a word).
_YAML_CRED_KEYS = (r"(?:ssl)?password|passwd|pwd|passphrase|api[_-]?key|apikey"
                   r"|(?:access|secret|private)[_-]?key|(?:client|app|api|consumer)[_-]?secret"
                   r"|(?:access|refresh|auth|api|bot)[_-]?token")

#: ``(name, compiled pattern)`` of credential forms; :func:`find_credential` and
#: :func:`scan_text` use them, and study parameters are refused when one matches.
CREDENTIAL_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("URL with a password",
     re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@:?#\"'<>]*:[^\s/@?#\"'<>]+@", re.I)),
    ("credential in a query string",
     re.compile(rf"[?&;](?:{_CRED_KEYS})=(?=[^\s&;#\"'<>])", re.I)),
    ("credential setting",  # PGPASSWORD=..., password=..., AccountKey=..., "token": "..."
     re.compile(rf"(?<![A-Za-z0-9])[\"']?(?:[A-Za-z0-9]+[_-])*(?:PG|MYSQL_?)?(?:{_CRED_KEYS})"
                rf"(?![A-Za-z0-9])[\"']?\s*(?:=|:\s*[\"'])\s*[\"']?(?=[^\s;&\"',}}<>])"
                rf"(?!{_PLACEHOLDER})", re.I)),
    ("credential setting",  # YAML or .env style, unquoted: "password: hunter22"
     re.compile(rf"(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])*(?:PG|MYSQL_?)?(?:{_YAML_CRED_KEYS})"
                rf":[ \t]+(?!{_PLACEHOLDER})(?=[^\s,;]*[0-9!#$%^&*+/=]|[^\s,;]{{12}})"
                r"[^\s,;]{4,}", re.I)),
    ("authorization header",
     re.compile(r"\b(?:Bearer|Token)\s+(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{16,}=*"
                r"|\bBasic\s+(?=[A-Za-z0-9+/]*\d)[A-Za-z0-9+/]{12,}={0,2}(?![A-Za-z0-9+/])"
                r"|\bAuthorization:\s*\S+")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("Stripe key", re.compile(_B + r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}|"
                              + _B + r"whsec_[0-9A-Za-z]{16,}")),
    ("API secret key (sk-)", re.compile(_B + r"sk-(?:[a-z]+-)?[A-Za-z0-9_-]{20,}")),
    ("Google API key", re.compile(_B + r"AIza[0-9A-Za-z_-]{35}" + _E)),
    ("Google OAuth token", re.compile(_B + r"ya29\.[0-9A-Za-z_-]{20,}")),
    ("AWS access key",
     re.compile(_B + r"(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[0-9A-Z]{16}" + _E)),
    ("GitHub token",
     re.compile(_B + r"(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("GitLab token", re.compile(_B + r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(_B + r"xox[abposre]-[A-Za-z0-9-]{10,}"
                               r"|hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+")),
    ("JSON Web Token",
     re.compile(_B + r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("SendGrid key", re.compile(_B + r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),
    ("Mailchimp key", re.compile(_B + r"[0-9a-f]{32}-us[0-9]{1,2}" + _E)),
    ("HubSpot token", re.compile(_B + r"pat-(?:na|eu)[0-9]-[0-9a-f]{8}-[0-9a-f-]{27,}")),
    ("Hugging Face token", re.compile(_B + r"hf_[A-Za-z0-9]{30,}")),
    ("npm or PyPI token", re.compile(_B + r"(?:npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,})")),
    ("Shopify token", re.compile(_B + r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}")),
    ("Twilio key", re.compile(_B + r"SK[0-9a-f]{32}" + _E)),
    ("Square token", re.compile(_B + r"(?:sq0atp|sq0csp|EAAA)[-_][A-Za-z0-9_-]{20,}")),
    # lines of credential files, as a file read by mistake would show them
    ("shadow file line",  # root:*:19000:0:99999:7:::  (user:hash:8 numeric or empty fields)
     re.compile(_USER + r":[^:\s]*:\d{0,6}:\d{0,6}:\d{0,6}:\d{0,6}:\d{0,6}:\d{0,6}:[^:\s]*"
                r"(?![\w:])")),
    ("passwd file line",  # root:x:0:0:root:/root:/bin/bash  (uid, gid, home and shell)
     re.compile(_USER + r":[^:\s]*:\d{1,10}:\d{1,10}:[^:\n]{0,200}:/[^:\s]*:(?:/[^:\s]*)?"
                r"(?![\w:])")),
    (".pgpass line",  # host:5432:db:user:password  (port a number or *, names with a letter)
     re.compile(r"(?<![\w:.\\/-])(?:\*|[\w.-]*[A-Za-z][\w.-]*|\d{1,3}(?:\.\d{1,3}){3})"
                r":(?:\d{1,5}|\*):(?=[^:\s]*[A-Za-z*])[^:\s]+:(?=[^:\s]*[A-Za-z*])[^:\s]+"
                r":[^:\s]+(?![\w:])")),
    (".netrc entry",  # machine host login user password secret
     re.compile(r"\b(?:machine\s+\S+|default)\s+(?:login\s+\S+\s+)?(?:account\s+\S+\s+)?"
                rf"password\s+(?!{_PLACEHOLDER})\S+|\blogin\s+\S+\s+password\s+"
                rf"(?!{_PLACEHOLDER})\S+", re.I)),
]


#: Names that denote credentials (matched on words split at _ - . and case changes).
CREDENTIAL_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "token", "secret",
                              "key", "apikey", "credential", "credentials", "auth", "bearer"})


def name_words(name: str) -> set[str]:
    """Return the lower-case words of a setting's name (``PGPASSWORD`` holds ``password``).

    Split at ``_ - .``, spaces and case changes; a word ending in
    ``password``, ``passwd``, ``token`` or ``secret`` also counts as that word
    (``PGPASSWORD``, ``authtoken``). ``name_words(n) & CREDENTIAL_WORDS`` says
    whether a name denotes a credential.
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    words = {w.lower() for w in re.split(r"[\s_.\-]+", spaced) if w}
    return words | {end for w in words for end in ("password", "passwd", "token", "secret")
                    if w.endswith(end)}


def find_credential(text: str) -> str | None:
    """Return the name of the first credential pattern ``text`` matches, or None.

    Percent-encoded text (``options=-c%20password%3Ds3cret``) is also matched
    decoded.
    """
    texts = [text]
    if "%" in text:
        texts.append(urllib.parse.unquote(text))
    for name, pattern in CREDENTIAL_PATTERNS:
        if any(pattern.search(t) for t in texts):
            return name
    return None


_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@"
                    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*"
                    r"\.(?!png\b|jpe?g\b|svg\b|gif\b|webp\b)[A-Za-z]{2,24}\b")
_PHONE = re.compile(
    r"(?<![\w+/=.-])(?:"
    r"\+[1-9]\d{0,2}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,4}"  # +49 30 1234567
    r"|\(\d{3}\)\s?\d{3}[\s.-]\d{4}"                                           # (555) 010-0123
    r"|\d{3}[.-]\d{3}[.-]\d{4}"                                                # 555-010-0123
    r"|00[1-9]\d{0,2}[\s.-]\d{1,4}(?:[\s.-]\d{2,4}){1,4}"                      # 0049 30 1234567
    r"|0\d{2,4}[\s/-]\d{3,4}[\s-]?\d{3,5}"                                     # 030 1234 5678
    r")(?![\w/+-]|\.\d)")
_DATA_URI = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+", re.I)
_UNICODE_ESC = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_TOKEN = re.compile(r"[^\W_]+")


def _phone_digits_ok(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 7 <= len(digits) <= 15


def decode(text: str) -> str:
    r"""Undo the encodings a value can hide behind in a page.

    HTML entities (``&#64;``, ``&commat;``, ``&#x40;``), percent-encoding
    (``%40``), JSON/JS escapes (``\u0040``); base64 data URIs are blanked
    (images are not text).
    """
    text = _DATA_URI.sub(" ", text)
    for _ in range(2):  # "&amp;#64;" decodes in two steps
        text = html.unescape(text)
    text = _UNICODE_ESC.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), text)
    if "%" in text:
        text = urllib.parse.unquote(text)
    return text


def machine_paths(extra: Iterable[str | os.PathLike] = ()) -> list[str]:
    """Absolute paths of this machine that must not appear in a published page.

    The home folder, the temporary folder and the Python environment
    (``sys.prefix``, the base interpreter), plus ``extra`` (e.g. the
    repository root), longest first. Root-level folders (``/``, ``/usr``) are
    left out: they name no user or project.
    """
    candidates = [Path.home(), Path(tempfile.gettempdir()), Path("/tmp"), Path(sys.prefix),
                  Path(sys.base_prefix), *map(Path, extra)]
    out: set[str] = set()
    for path in candidates:
        for variant in {str(path), str(Path(path).resolve())}:
            if len(Path(variant).parts) >= 2 and variant not in ("/usr", "/usr/local", "/opt",
                                                                 "/home", "/srv"):
                out.add(variant.rstrip("/"))
    return sorted(out, key=len, reverse=True)


@functools.lru_cache(maxsize=8)
def _personal_patterns(values: tuple) -> dict[int, set[tuple[str, ...]]]:
    """Personal values as word tuples, by tuple length.

    Single-word values are kept only when they hold a digit (a phone number,
    an id): a lone first name ("Mark", "June") is also an ordinary word.
    Cached: a build scans every page against the same values (120k on the demo,
    0.2 s to tokenize), so they are tokenized once.
    """
    by_len: dict[int, set[tuple[str, ...]]] = {}
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            continue
        words = tuple(w.lower() for w in _TOKEN.findall(str(value)))
        if not words or (len(words) == 1 and not any(c.isdigit() for c in words[0])):
            continue
        by_len.setdefault(len(words), set()).add(words)
    return by_len


@functools.lru_cache(maxsize=64)
def _path_pattern(path: str) -> re.Pattern:
    """Compile (once per path) the pattern of a machine path and what follows it."""
    return re.compile(r"(?<![\w.~-])" + re.escape(path)
                      + r"(?=[/\\\"'\s<>:;,)\]}]|$)(?:[/\\][^\s\"'<>:;,)\]}]*)?")


def _spans(text: str, extra_values: Iterable[Any], paths: Iterable[str] | None):
    """``(start, end, pattern name)`` of everything :func:`scan_text` reports."""
    hits: list[tuple[int, int, str]] = []
    hits += [(m.start(), m.end(), "email address") for m in _EMAIL.finditer(text)
             if text[max(0, m.start() - 3):m.start()] != "://"]  # a URL's user name
    hits += [(m.start(), m.end(), "phone number") for m in _PHONE.finditer(text)
             if _phone_digits_ok(m.group())]
    for name, pattern in CREDENTIAL_PATTERNS:
        hits += [(m.start(), m.end(), name) for m in pattern.finditer(text)]
    for path in machine_paths() if paths is None else paths:
        path = str(path).rstrip("/")
        if not path:
            continue
        hits += [(m.start(), m.end(), "machine path") for m in _path_pattern(path).finditer(text)]
    wanted = _personal_patterns(tuple(extra_values))
    if wanted:
        tokens = [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        words = [t for t, _, _ in tokens]
        for n, values in wanted.items():
            for i in range(len(words) - n + 1):
                if tuple(words[i:i + n]) in values:
                    hits.append((tokens[i][1], tokens[i + n - 1][2], "personal value"))
    return sorted(hits)


def scan_text(text: str, *, extra_values: Iterable[Any] = (),
              paths: Iterable[str] | None = None, decoded: bool = False) -> list[Finding]:
    """Find personal data, credentials and machine paths in ``text``.

    Parameters
    ----------
    text : str
        A page (HTML, Markdown, notebook JSON or plain text); it is decoded
        first (:func:`decode`) unless ``decoded``.
    extra_values : iterable
        Personal values to look for (names, e-mails, phones of the source's
        personal columns). Matched as whole words, case-insensitively,
        ignoring punctuation between words; a single-word value only when it
        holds a digit.
    paths : iterable of str, optional
        Absolute paths that must not appear; default :func:`machine_paths`.
    decoded : bool
        ``text`` is already decoded.

    Returns
    -------
    list of Finding
        Pattern name and position of each hit, in text order; never the value.
    """
    if not decoded:
        text = decode(text)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return [Finding(name, start, bisect.bisect_right(line_starts, start))
            for start, _, name in _spans(text, extra_values, paths)]


def redact(text: str, *, extra_values: Iterable[Any] = (), paths: Iterable[str] | None = None,
           mark: str = "[…]") -> str:
    """Return ``text`` with everything :func:`scan_text` would report replaced by ``mark``.

    ``text`` is decoded first (:func:`decode`), so the result is plain text.
    """
    text = decode(text)
    out, pos = [], 0
    for start, end, _ in _spans(text, extra_values, paths):
        if start < pos:  # overlapping hits: extend the current one
            if end > pos:
                pos = end
            continue
        out += [text[pos:start], mark]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def notebook_text(raw: str) -> str:
    """Return the published text of a notebook file: sources and text outputs, no images.

    Falls back to the raw text when ``raw`` is not notebook JSON.
    """
    try:
        nb = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(nb, dict) or "cells" not in nb:
        return raw
    parts: list[str] = [json.dumps(nb.get("metadata", {}))]

    def text_of(value: Any) -> str:
        return "".join(value) if isinstance(value, list) else str(value)

    for cell in nb.get("cells", []):
        parts.append(text_of(cell.get("source", "")))
        for out in cell.get("outputs", []) or []:
            if "text" in out:
                parts.append(text_of(out["text"]))
            for field in ("ename", "evalue"):
                if field in out:
                    parts.append(str(out[field]))
            parts.extend(text_of(t) for t in out.get("traceback", []) or [])
            for mime, data in (out.get("data") or {}).items():
                if mime.startswith("image/") and mime != "image/svg+xml":
                    continue  # base64 pixels are not text
                parts.append(text_of(data) if not isinstance(data, dict) else json.dumps(data))
    return "\n".join(parts)


# --------------------------------------------------------------------------- executable HTML

#: Scripts the book's theme (sphinx-book-theme, pydata-sphinx-theme) and the Sphinx extensions
#: Jupyter Book loads put on every page, as paths from the book's root (cache keys such as
#: ``?v=...`` or ``?digest=...`` dropped), and MathJax, which Sphinx loads from its CDN on a
#: page with math. A page's ``<script src>`` must resolve to one of them.
THEME_SCRIPTS = frozenset({
    "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js",
    "_static/clipboard.min.js", "_static/copybutton.js", "_static/design-tabs.js",
    "_static/doctools.js", "_static/documentation_options.js", "_static/language_data.js",
    "_static/scripts/bootstrap.js", "_static/scripts/fontawesome.js",
    "_static/scripts/pydata-sphinx-theme.js", "_static/scripts/sphinx-book-theme.js",
    "_static/searchtools.js", "_static/sphinx-thebe.js", "_static/sphinx_highlight.js",
    "_static/togglebutton.js", "searchindex.js",
})

#: The theme's inline scripts, whitespace collapsed; ``{page}`` stands for the page's own name
#: (``studies/clv-demo``) and ``{folder}`` for its folder (``./studies``).
THEME_INLINE_SCRIPTS = (
    'document.documentElement.dataset.mode = localStorage.getItem("mode") || "light"; '
    'document.documentElement.dataset.theme = localStorage.getItem("theme") || "light";',
    "let toggleHintShow = 'Click to show';",
    "let toggleHintHide = 'Click to hide';",
    "let toggleOpenOnPrint = 'true';",
    "var togglebuttonSelector = '.toggle, .admonition.dropdown';",
    'const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; const thebe_selector = '
    '".thebe,.cell"; const thebe_selector_input = "pre"; const thebe_selector_output = '
    '".output, .cell_output"',
    "DOCUMENTATION_OPTIONS.pagename = '{page}';",
    "DOCUMENTATION_OPTIONS.search_as_you_type = false;",
    "kernelName = 'python3'",
    'window.MathJax = {"options": {"processHtmlClass": '
    '"tex2jax_process|mathjax_process|math|output_area"}}',
    '// Activate the search field on page load let searchInput = document.querySelector('
    '"form.bd-search input"); if (searchInput) { searchInput.focus(); searchInput.select(); '
    'console.log("[PST]: Set focus on search field."); }',
    '{ requestKernel: true, binderOptions: { repo: "binder-examples/jupyter-stacks-datascience", '
    'ref: "master", }, codeMirrorConfig: { theme: "abcdef", mode: "python" }, kernelOptions: { '
    'name: "python3", path: "{folder}" }, predefinedOutput: true }',
)

#: Event-handler attributes of the theme's own buttons: ``(tag, attribute, value)``.
THEME_HANDLERS = frozenset({("button", "onclick", "window.print()"),
                            ("button", "onclick", "toggleFullScreen()")})

#: Tags that run or embed active content wherever they appear in a page.
_EXECUTABLE_TAGS = {"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base",
                    "portal", "fencedframe"}
#: Attributes holding a URL a browser may follow or load.
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster",
                   "background", "lowsrc", "dynsrc", "cite", "longdesc", "ping", "srcset",
                   "content", "to", "from", "values", "by"}
_SCRIPT_URL = re.compile(r"^(?:(?:javascript|vbscript|livescript):|data:(?:text/html|"
                         r"application/(?:xhtml|x?html|javascript)|image/svg|text/javascript))",
                         re.I)
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


def _script_url(value: str) -> bool:
    """Whether a URL attribute value runs script (``javascript:``, ``data:text/html``, ...)."""
    return bool(_SCRIPT_URL.match(_URL_NOISE.sub("", value)))


def _inline_allowed(body: str, page: str) -> bool:
    text = " ".join(body.split())
    name = page.removesuffix(".html").removesuffix(".htm")
    folder = "./" + posixpath.dirname(name) if posixpath.dirname(name) else "./."
    return any(text == allowed.replace("{page}", name).replace("{folder}", folder)
               for allowed in THEME_INLINE_SCRIPTS)


class _ExecutableFinder(HTMLParser):
    """Collect ``(line, column, kind)`` of what would run in a browser and is not the theme's."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)  # attribute values decoded as a browser does
        self.page = page
        self.hits: list[tuple[int, int, str]] = []
        self._script: tuple[int, int] | None = None
        self._body: list[str] = []

    def _hit(self, kind: str) -> None:
        line, column = self.getpos()
        self.hits.append((line, column, kind))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in attrs:
            if name.startswith("on") and (tag, name, value) not in THEME_HANDLERS:
                self._hit(f"event handler attribute {name}=")
            elif name in _URL_ATTRIBUTES or name.endswith(":href"):
                if name == "content" and tag != "meta":
                    continue
                if name == "content":  # <meta http-equiv=refresh content="0; url=...">
                    value = re.sub(r"^[^;]*;\s*url\s*=\s*['\"]?", "", value or "", flags=re.I)
                if value and _script_url(value):
                    scheme = _URL_NOISE.sub("", value).split(":", 1)[0].lower()
                    self._hit(f"{scheme}: URL in {name}=")
        if tag == "script":
            src = values.get("src")
            if src:
                if not self._theme_src(src):
                    self._hit("script not from the theme (<script src>)")
            else:
                self._script = self.getpos()
                self._body = []
        elif tag in _EXECUTABLE_TAGS:
            self._hit(f"executable tag <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._body.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            if not _inline_allowed("".join(self._body), self.page):
                self.hits.append((*self._script, "script not from the theme (inline <script>)"))
            self._script = None

    def close(self) -> None:
        super().close()
        if self._script is not None:  # an unclosed script still runs
            self.hits.append((*self._script, "script not from the theme (inline <script>)"))
            self._script = None

    def _theme_src(self, src: str) -> bool:
        parts = urllib.parse.urlsplit(_URL_NOISE.sub("", src))
        if parts.scheme or parts.netloc:  # only the exact address Sphinx writes (MathJax)
            return src in THEME_SCRIPTS
        path = posixpath.normpath(posixpath.join(posixpath.dirname(self.page), parts.path))
        return path in THEME_SCRIPTS


def scan_html(text: str, *, page: str = "") -> list[Finding]:
    """Find what would run in a reader's browser and did not come from the book's theme.

    ``<script>`` elements other than the theme's (:data:`THEME_SCRIPTS` by
    source, :data:`THEME_INLINE_SCRIPTS` by exact text), frames and embedded
    objects (``<iframe>``, ``<object>``, ``<embed>``, ``<base>`` ...), event
    handler attributes (``onerror=``, ``onload=`` ...; only the theme's own
    buttons keep theirs) and URLs that run script (``javascript:``,
    ``data:text/html``) in any link or source, entity-encoded or split by
    whitespace as browsers accept them. Text that shows such markup escaped
    (``&lt;script&gt;``) is not a finding.

    Parameters
    ----------
    text : str
        The page's HTML (not decoded: decoding would turn shown text into markup).
    page : str
        The page's path from the book's root (``studies/clv-demo.html``), to
        resolve relative script sources and recognise the theme's per-page script.

    Returns
    -------
    list of Finding
        Kind and position of each, in page order; never the value.
    """
    finder = _ExecutableFinder(page)
    finder.feed(text)
    finder.close()
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return [Finding(kind, line_starts[min(line, len(line_starts)) - 1] + column, line)
            for line, column, kind in sorted(finder.hits)]


#: How Sphinx wraps the JSON of ``searchindex.js``.
SEARCH_INDEX_PREFIX, SEARCH_INDEX_SUFFIX = "Search.setIndex(", ")"


def read_search_index(text: str) -> dict | None:
    """Return the JSON object of a Sphinx ``searchindex.js``, or None if it is not one."""
    text = text.strip()
    if not (text.startswith(SEARCH_INDEX_PREFIX) and text.endswith(SEARCH_INDEX_SUFFIX)):
        return None
    try:
        index = json.loads(text[len(SEARCH_INDEX_PREFIX):-len(SEARCH_INDEX_SUFFIX)])
    except ValueError:
        return None
    return index if isinstance(index, dict) else None


def scan_search_index(text: str) -> list[Finding]:
    """Find titles in a Sphinx ``searchindex.js`` that its search page would run.

    The search page writes the titles that match a query into the page as
    HTML, so every title of the index (page titles, section titles, index
    entries) is checked with :func:`scan_html`. Findings are named
    ``"<kind> in a search title"`` at line 1 (the index is one line). An
    index that cannot be read is a finding too (``"unreadable search index"``):
    what the scan cannot read it cannot pass.
    """
    index = read_search_index(text)
    if index is None:
        return [Finding("unreadable search index", 0, 1)]
    titles = [t for t in index.get("titles") or [] if isinstance(t, str)]
    for key in ("alltitles", "indexentries"):
        titles += [t for t in (index.get(key) or {}) if isinstance(t, str)]
    return [Finding(f"{f.pattern} in a search title", 0, 1)
            for title in titles for f in scan_html(title)]

"""The publication scan's text half: what must never be published, found in text.

:func:`scan_text` finds e-mail addresses, phone numbers, credentials
(:data:`CREDENTIAL_PATTERNS`, also used to refuse study parameters; lines of
credential files such as ``/etc/shadow``, ``.pgpass`` and ``.netrc`` among
them), given personal values (names, e-mails of the source's personal
columns) and absolute paths of the build machine; :func:`redact` blanks them
out. A finding names the pattern and the position, never the value.
Re-exported by :mod:`crmstats.privacy` (the module users import); the HTML
half is :mod:`crmstats.html_scan`.
"""

from __future__ import annotations

import bisect
import functools
import html
import json
import os
import re
import sys
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from crmstats.personal_values import WORD, Index, PersonalValues


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

# Names of settings whose value is a credential in KEY=value form (and in query strings).
_SETTING_KEYS = (
    r"(?:ssl)?password|passwd|pwd|pass|passphrase"
    r"|(?:access|refresh|id|auth|session|bearer|bot|api|private|client)?[_-]?token"
    r"|api[_-]?key|apikey|x-api-key|access[_-]?key|secret[_-]?key|private[_-]?key"
    r"|(?:client|app|api|consumer|shared)?[_-]?secret"
    r"|accountkey|sharedaccesskey|sharedaccesssignature|x-amz-signature"
    r"|x-amz-security-token|credentials?"
)

# In a query string (``&sig=...``) a bare ``sig``/``signature`` is a credential whatever its
# value; in KEY=value form it is also a function's argument (``sig=3``, a count of digits), so
# there it counts only when its value looks like a signature (its own pattern below).
_CRED_KEYS = _SETTING_KEYS + r"|sig|signature"

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
     re.compile(rf"(?<![A-Za-z0-9])[\"']?(?:[A-Za-z0-9]+[_-])*(?:PG|MYSQL_?)?(?:{_SETTING_KEYS})"
                rf"(?![A-Za-z0-9])[\"']?\s*(?:=|:\s*[\"'])\s*[\"']?(?=[^\s;&\"',}}<>])"
                rf"(?!{_PLACEHOLDER})", re.I)),
    ("credential setting",  # signature=..., sig="..." (a signature's length, not sig=3)
     re.compile(r"(?<![A-Za-z0-9])[\"']?(?:[A-Za-z0-9]+[_-])*(?:sig|signature)[\"']?"
                r"\s*(?:=|:\s*[\"'])\s*[\"']?[A-Za-z0-9%+/_=-]{16,}", re.I)),
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


def _personal_index(values: Iterable[Any]) -> Index:
    """Return the index of personal values (:attr:`PersonalValues.index`) to match in a text.

    A :class:`~crmstats.personal_values.PersonalValues` (a build's, made and
    indexed once) gives its own; plain values are indexed here, the last few
    sets cached (a caller scans several texts against the same values).
    """
    if isinstance(values, PersonalValues):
        return values.index
    return _plain_index(tuple(values))


@functools.lru_cache(maxsize=8)
def _plain_index(values: tuple) -> Index:
    return PersonalValues(values).index if values else {}


#: Literal strings of which a pattern's every match begins with one, per pattern (None: unknown).
_STARTS: dict[re.Pattern, tuple[str, ...] | None] = {}


def _literal_starts(pattern: re.Pattern) -> tuple[str, ...] | None:
    """Strings one of which every match of ``pattern`` begins with, read from the pattern.

    A text that holds none of them cannot match, so :func:`_spans` skips the
    pattern's search there (a substring test is many times faster than a
    regex that tries every position). Read from the parsed pattern itself —
    leading zero-width assertions skipped, then literals and alternations of
    literals, at most 64 strings — so it follows any change to the patterns;
    None (always search) for case-insensitive patterns and patterns that do
    not begin with a literal.
    """
    if pattern not in _STARTS:
        starts = None
        if not pattern.flags & re.IGNORECASE:
            try:
                from re import _constants as c
                from re import _parser

                starts = _starts_of(list(_parser.parse(pattern.pattern, pattern.flags)), c)
            except Exception:  # another Python's parser: always search  # noqa: BLE001
                starts = None
        _STARTS[pattern] = tuple(starts) if starts and all(starts) else None
    return _STARTS[pattern]


def _starts_of(items: list, c) -> list[str] | None:
    """Return the literal beginnings of a parsed sequence (:func:`_literal_starts`), or None."""
    i = 0
    while i < len(items) and items[i][0] in (c.ASSERT, c.ASSERT_NOT, c.AT):
        i += 1  # zero width: the match still begins with what follows
    starts = [""]
    while i < len(items):
        op, arg = items[i]
        if op is c.LITERAL:
            options, whole = [chr(arg)], True
        elif op is c.BRANCH:
            found = [_starts_of(list(alt), c) for alt in arg[1]]
            if any(not f for f in found):
                break
            options = [s for f in found for s in f]
            whole = all(_is_literal(list(alt), c) for alt in arg[1])
        elif op is c.SUBPATTERN and not arg[1] & c.SRE_FLAG_IGNORECASE:
            options, whole = _starts_of(list(arg[3]), c), _is_literal(list(arg[3]), c)
            if not options:
                break
        else:
            break
        starts = [a + b for a in starts for b in options]
        if len(starts) > 64:
            return None
        if not whole:  # what follows is not right after these strings
            break
        i += 1
    return starts if any(starts) else None


def _is_literal(items: list, c) -> bool:
    """Whether a parsed sequence matches only fixed strings (literals and their alternations)."""
    for op, arg in items:
        if op is c.LITERAL:
            continue
        if op is c.BRANCH and all(_is_literal(list(alt), c) for alt in arg[1]):
            continue
        if (op is c.SUBPATTERN and not arg[1] & c.SRE_FLAG_IGNORECASE
                and _is_literal(list(arg[3]), c)):
            continue
        return False
    return True


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
        starts = _literal_starts(pattern)
        if starts is not None and not any(start in text for start in starts):
            continue  # no match can begin anywhere: skip the slower search
        hits += [(m.start(), m.end(), name) for m in pattern.finditer(text)]
    for path in machine_paths() if paths is None else paths:
        path = str(path).rstrip("/")
        if not path:
            continue
        hits += [(m.start(), m.end(), "machine path") for m in _path_pattern(path).finditer(text)]
    wanted = _personal_index(extra_values)
    if wanted:
        tokens = [(m.group().lower(), m.start(), m.end()) for m in WORD.finditer(text)]
        words = [t for t, _, _ in tokens]
        for n, (values, firsts) in wanted.items():
            for i in range(len(words) - n + 1):  # words hold no space: joined, they are unique
                if words[i] in firsts and " ".join(words[i:i + n]) in values:
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
    extra_values : PersonalValues or iterable
        Personal values to look for (names, e-mails, phones of the source's
        personal columns; a build's :class:`~crmstats.personal_values.PersonalValues`,
        indexed once, or plain values). Matched as whole words, case-insensitively,
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

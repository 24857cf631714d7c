"""What may be published: the scan of a built book and what it looks for.

:func:`scan_book` and its refusal message (:func:`scan_refusal`), redacted errors
(:func:`public_error`, failure pages), the run record as the summary page shows it
(:func:`_public_record`) and the personal values a scan looks for.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from crmstats.book.needs import _load_sources
from crmstats.book.report import md_text
from crmstats.book.studies import Study
from crmstats.exceptions import CRMStatsError
from crmstats.personal_values import PersonalValues


def _failure_page(study: Study, error: str, run: str) -> str:
    return (f"# {md_text(study.title)}\n\n:::{{error}}\nThis study **failed** in run {run}; its "
            f"previous results are not shown because they would not match this run's data.\n\n"
            f"```text\n{error}\n```\n:::\n")


def public_error(error: str, personal: Iterable[str] = (), paths: list[str] | None = None) -> str:
    """Return the failure text that may be shown on a published page.

    The first line of the error (notebook, cell, error type and message, up
    to the first ``"; "`` — what follows is detail, such as the columns a
    file was found to hold), with values taken out: anything the publication
    scan would flag (e-mails, phone numbers, credentials, personal values,
    machine paths), lists (``[...]``, usually offending rows or ids) and
    quoted text that is not a plain column name. Column names and counts
    stay. The full error stays in the run archive and on the command line.
    """
    from crmstats.privacy import redact

    text = (error or "failed").strip().splitlines()[0] if (error or "").strip() else "failed"
    head, sep, _ = text.partition("; ")  # details after "; " (e.g. what a file holds) stay out
    text = head + (" (details in the run archive)" if sep else "")
    text = redact(text, extra_values=personal, paths=paths, mark="…")
    text = re.sub(r"\[[^\[\]]*\]", "[…]", text)
    text = re.sub(r"(['\"])[^'\"]*\1",
                  lambda m: m.group() if re.fullmatch(r"['\"][A-Za-z_][A-Za-z0-9_.]{0,40}['\"]",
                                                      m.group()) else "'…'", text)
    return text[:300] + ("…" if len(text) > 300 else "")


#: Files of the built book that are scanned (text that came from the studies or pages).
_SCANNED = {".html", ".htm", ".ipynb", ".md", ".txt", ".json", ".js", ".svg", ".csv", ".py"}


def scan_book(html_dir: str | Path, *, personal: Iterable[str] = (),
              paths: list[str] | None = None) -> list[tuple[str, str, int]]:
    r"""Scan a built book for what must not be published.

    Every HTML page and every published source (``_sources/``, the search
    index) — not the theme's own assets under ``_static/`` — is decoded
    (HTML entities, ``%40``, ``\u0040`` escapes) and searched for e-mail addresses,
    phone numbers, credentials, ``personal`` values and machine ``paths``
    (:func:`crmstats.privacy.scan_text`); every HTML page and SVG image also
    for scripts, frames, event handlers and ``javascript:`` URLs that did not
    come from the theme (:func:`crmstats.privacy.scan_html`), and the search
    index for titles that its search page would run
    (:func:`crmstats.privacy.scan_search_index`).

    Returns
    -------
    list of (page, pattern, line)
        Page relative to ``html_dir``; never the value found.
    """
    from crmstats.privacy import notebook_text, scan_html, scan_search_index, scan_text

    html_dir = Path(html_dir)
    found: list[tuple[str, str, int]] = []
    for page in sorted(html_dir.rglob("*")):
        rel = page.relative_to(html_dir)
        if rel.parts[0] == "_static" or page.suffix.lower() not in _SCANNED or not page.is_file():
            continue
        raw = page.read_text(errors="replace")
        text = notebook_text(raw) if page.suffix == ".ipynb" else raw
        for f in scan_text(text, extra_values=personal, paths=paths):
            found.append((rel.as_posix(), f.pattern, f.line))
        if page.suffix.lower() in (".html", ".htm", ".svg"):  # what a browser would run
            found += [(rel.as_posix(), f.pattern, f.line)
                      for f in scan_html(raw, page=rel.as_posix())]
        elif rel.as_posix() == "searchindex.js":  # the search page shows its titles as HTML
            found += [(rel.as_posix(), f.pattern, f.line) for f in scan_search_index(raw)]
    return found


#: What to do about each kind of finding of the publication scan.
_SCAN_FIXES = {
    "machine path": "a page shows a path of this machine: a study printed a file or folder "
                    "(a parameter, a warning, an error); name the data source by its name "
                    "(`name:` in crmstats.yml) and print file names, not paths "
                    "(crmstats.book.report.reader_text)",
    "email address": "a page shows personal data: publish pseudonymous ids "
                     "(crmstats.privacy.pseudonymous) or counts, and mark the column "
                     "`personal:` in crmstats.yml",
    "credential": "a page shows a credential: give credentials through environment variables "
                  "(e.g. PGPASSWORD), never in data, parameters or prints, and rotate this "
                  "one if it is real",
}


_SCAN_FIXES["phone number"] = _SCAN_FIXES["personal value"] = _SCAN_FIXES["email address"]


def _is_value_finding(pattern: str) -> bool:
    """Whether a finding is a value the redaction replaces (not executable content)."""
    from crmstats.privacy import CREDENTIAL_PATTERNS

    return pattern in _SCAN_FIXES or pattern in {name for name, _ in CREDENTIAL_PATTERNS}


def _scan_fix(pattern: str) -> str:
    if pattern == "unreadable search index":
        return ("the search index is not in the format of the pinned Sphinx, so its titles "
                "could not be checked: rebuild with the versions of constraints.txt")
    if pattern in _SCAN_FIXES:
        return _SCAN_FIXES[pattern]
    from crmstats.privacy import CREDENTIAL_PATTERNS

    if pattern in {name for name, _ in CREDENTIAL_PATTERNS}:
        return _SCAN_FIXES["credential"]
    return ("a page holds content a browser would run that did not come from the theme: a "
            "name from the data or the configuration reached the page unescaped; write it with "
            "crmstats.book.report.md_text (Markdown) or html.escape")


def _scan_excerpt(html_dir: Path, page: str, line: int, personal: Iterable[str],
                  paths: list[str] | None) -> str:
    """Return the finding's line of ``page``, redacted, around the first redaction."""
    from crmstats.privacy import decode, notebook_text, redact

    try:
        raw = (html_dir / page).read_text(errors="replace")
    except OSError:
        return ""
    text = decode(notebook_text(raw) if page.endswith(".ipynb") else raw)
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    shown = re.sub(r"<[^>]*>", " ", redact(lines[line - 1], extra_values=personal, paths=paths,
                                            mark="[…]"))
    shown = " ".join(shown.split())
    at = shown.find("[…]")
    start = max(0, at - 30) if at >= 0 else 0
    excerpt = shown[start:start + 60]
    return ("…" if start else "") + excerpt + ("…" if start + 60 < len(shown) else "")


def scan_refusal(html_dir: str | Path, findings: list[tuple[str, str, int]], *,
                 personal: Iterable[str] = (), paths: list[str] | None = None) -> str:
    """Say why the publication scan refused a book: page, kind, redacted excerpt, fix.

    One line per page and kind of finding (at most 20 pages), with the
    line numbers, an excerpt of the first finding's line with every value
    the scan flags replaced by ``[…]``, and what to do about that kind of
    finding; never the value itself.
    """
    html_dir = Path(html_dir)
    by_page: dict[str, dict[str, list[int]]] = {}
    for page, pattern, line in findings:
        by_page.setdefault(page, {}).setdefault(pattern, []).append(line)
    listed: list[str] = []
    fixes: dict[str, list[str]] = {}
    for page, kinds in list(by_page.items())[:20]:
        for pattern, lines in kinds.items():
            numbers = sorted(set(lines))
            # an excerpt shows where a value was redacted; executable content has none
            excerpt = (_scan_excerpt(html_dir, page, numbers[0], personal, paths)
                       if _is_value_finding(pattern) else "")
            listed.append(f"{page}: {pattern} (line{'s' if len(numbers) > 1 else ''} "
                          f"{', '.join(map(str, numbers[:5]))})"
                          + (f": \"{excerpt}\"" if excerpt else ""))
            kinds_of_fix = fixes.setdefault(_scan_fix(pattern), [])
            if pattern not in kinds_of_fix:
                kinds_of_fix.append(pattern)
    more = f"\n  ... and {len(by_page) - 20} more pages" if len(by_page) > 20 else ""
    how = "\n".join(f"fix ({', '.join(patterns)}): {fix}" for fix, patterns in fixes.items())
    return (f"publication scan: {len(findings)} finding(s) of personal data, credentials, "
            "machine paths or executable content; the book was not published (the last good "
            "book stays):\n  "
            + "\n  ".join(listed) + more + "\n" + how)


def _personal_values(studies: list[Study], crms: dict[Any, Any] | None = None) -> PersonalValues:
    """Values of the personal columns of every data source the studies read.

    The columns are those :meth:`crmstats.CRMData.personal_columns` marks
    (the schema's name, e-mail, phone, ... plus a source file's own marks),
    and the text ids of customers, contacts, leads and accounts (``C000123``:
    published lists show pseudonyms, so a raw id on a page is a leak; numeric
    ids are left out, they cannot be told from other numbers), once each and
    indexed once for the scan. A source or a table that cannot be loaded gives
    none (the studies reading it failed already); any other error stops the
    build rather than scanning without it.
    """
    import crmstats
    from crmstats.privacy import ID_COLUMNS

    parts: list[PersonalValues] = []
    if crms is None:
        crms = _load_sources(studies, Path.cwd())
    for crm in crms.values():
        if isinstance(crm, CRMStatsError):
            continue
        for name, raw in crm.tables().items():
            try:
                if isinstance(raw, pd.DataFrame):
                    # in memory with the canonical names: its values as they are (the gate
                    # would only check them, at the cost of a validation here)
                    table = raw
                else:
                    with warnings.catch_warnings():  # the studies have shown them already
                        warnings.simplefilter("ignore")
                        table = crm.table(name)  # any source kind: file, database, mapped
                present = set(table.columns)
                columns = [c for c in crm.personal_columns(name) if c in present]
                ids = [c for c in ID_COLUMNS if c in present]
                if not columns and not ids:
                    continue
                wanted = list(dict.fromkeys([*columns, *ids]))
                # a frame in memory as it is; a table of a database (the gate may hand back
                # the source's own table once validated) read from its engine
                frame = (table[wanted] if isinstance(table, pd.DataFrame)
                         else crmstats.execute(table.select(*wanted)))
            except CRMStatsError:
                continue
            parts += [PersonalValues.of_column(frame[column]) for column in columns]
            parts += [PersonalValues.of_text_ids(frame[column]) for column in ids]
    return PersonalValues.union(parts)


def _public_record(record: dict[str, Any], personal: tuple, paths: list[str]) -> dict[str, Any]:
    """Return the run record as the summary shows it: errors and parameters without values."""
    from crmstats.privacy import redact

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return redact(value, extra_values=personal, paths=paths)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    def clean_parameters(params: dict) -> dict:
        # data_source stays as given: the summary compares runs by it and shows only the
        # source's name (kpis._parameter), never the value
        return {k: v if k == "data_source" else clean(v) for k, v in params.items()}

    public = json.loads(json.dumps(record, default=str))
    public["parameters"] = clean_parameters(public.get("parameters") or {})
    for study in public.get("studies", {}).values():
        study["parameters"] = clean_parameters(study.get("parameters") or {})
        if study.get("error"):
            study["error"] = public_error(study["error"], personal, paths)
    return public

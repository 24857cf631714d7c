"""Benchmark: the publication scan's personal values on a large source (issue 23).

Usage: ``python benchmarks/personal_values.py [--contacts N] [--book HTML_DIR]`` (default
400,000 contacts: ten times the demo). Loads ``demo:n_contacts=N`` as a book build does and
times, in this process: :func:`crmstats.book.scan._personal_values` (the values of the
personal columns and text ids, :class:`crmstats.personal_values.PersonalValues`), its index,
one :func:`crmstats.privacy.redact` call and, with ``--book``, :func:`scan_book` of a built
book. Anchor: the same values collected and tokenized by the Python rules one value at a time
(as the scan did before), and a redact call against them as a plain tuple (indexed once,
then each call hashes the tuple to find its cached index).
"""

from __future__ import annotations

import argparse
import os
import re
import time
import warnings

WORD = re.compile(r"[^\W_]+")
TEXT_ID = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{5,}")
TEXT = "study clv failed: value 'Anna Berg' in /tmp/x; C000123 and anna@example.com"


def python_values(crms) -> tuple:
    """The anchor: every personal value as ``str``, one at a time, sorted (the old scan)."""
    from crmstats.privacy import ID_COLUMNS

    values: set[str] = set()
    for crm in crms.values():
        for name, table in crm.tables().items():
            for column in [c for c in crm.personal_columns(name) if c in table.columns]:
                values.update(str(v) for v in table[column].dropna().unique())
            for column in [c for c in ID_COLUMNS if c in table.columns]:
                values.update(v for v in table[column].dropna().astype(str).unique()
                              if TEXT_ID.fullmatch(v))
    return tuple(sorted(values))


def python_index(values) -> dict:
    by_len: dict[int, set[tuple[str, ...]]] = {}
    for value in values:
        words = tuple(w.lower() for w in WORD.findall(value))
        if len(words) > 1 or (words and any(c.isdigit() for c in words[0])):
            by_len.setdefault(len(words), set()).add(words)
    return by_len


def timed(f):
    start = time.perf_counter()
    out = f()
    return out, time.perf_counter() - start


def main() -> None:
    from crmstats import load_crm
    from crmstats.book.scan import _personal_values, scan_book
    from crmstats.book.studies import Study
    from crmstats.privacy import redact

    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=400_000)
    parser.add_argument("--book", help="a built book's HTML folder to scan")
    args = parser.parse_args()
    source = f"demo:n_contacts={args.contacts}"
    print(f"load before: {os.getloadavg()[0]:.2f}; {source}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crms = {source: load_crm(source)}
    studies = [Study("s", "S", None, {"data_source": source})]
    old, t_old = timed(lambda: python_values(crms))
    _, t_old_index = timed(lambda: python_index(old))
    redact(TEXT, extra_values=old)  # indexed once; later calls hash the tuple
    _, t_old_redact = timed(lambda: redact(TEXT, extra_values=old))
    new, t_new = timed(lambda: _personal_values(studies, crms))
    _, t_index = timed(lambda: new.index)
    _, t_redact = timed(lambda: redact(TEXT, extra_values=new))
    assert set(new) == set(old), "the values differ from the Python rules'"
    print(f"{len(new):,} values")
    rows = [("values", t_new, t_old), ("index", t_index, t_old_index),
            ("one redact call", t_redact, t_old_redact)]
    if args.book:
        _, t_scan = timed(lambda: scan_book(args.book, personal=new))
        _, t_old_scan = timed(lambda: scan_book(args.book, personal=old))
        rows.append(("scan_book", t_scan, t_old_scan))
    print(f"{'step':<16} {'PersonalValues':>15} {'Python rules':>13} {'ratio':>6}")
    for step, t, anchor in rows:
        print(f"{step:<16} {t:>13.4f} s {anchor:>11.4f} s {t / anchor:>6.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

"""The two silent traps, once per input: exact duplicate rows, ids differing in case or spaces."""

from __future__ import annotations

import warnings

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataWarning
from crmstats.schema import (
    TableSpec,
)
from crmstats.validation.content import _offending
from crmstats.validation.messages import (
    _MAX_ROWS,
    ROW_COL,
    _caller,
    _count,
    _examples,
    _row_labels,
    _user_level,
)
from crmstats.validation.source_table import SourceTable

#: Tables whose every validation also looks for the two silent traps (:func:`_check_traps`).
_TRAP_TABLES = ("transactions",)


#: Inputs already looked at in this process: key -> (weak reference, fingerprint, facts);
#: see _seen.
_TRAPS_SEEN: dict = {}


def _seen(data) -> dict | None:
    """Return what the traps found for this very input, unchanged, earlier in this process.

    ``None`` when it was not looked at yet (it is then recorded, with empty
    facts that :func:`_check_traps` fills in).

    A DataFrame is the same object with the same shape, columns and arrays (an
    in-place edit of values is not noticed: it only decides whether a warning
    repeats); an Ibis table the same expression object; a file the same path,
    size and modification time. Anything else is looked at every time.
    """
    import os
    import weakref

    if isinstance(data, pd.DataFrame):
        try:
            arrays = tuple(id(b.values) for b in data._mgr.blocks)
        except AttributeError:  # another pandas internals layout: look every time
            return None
        key, fingerprint = id(data), (data.shape, tuple(map(str, data.columns)), arrays)
        ref = weakref.ref(data)
    elif isinstance(data, ir.Table):
        key, fingerprint, ref = id(data), None, weakref.ref(data)
    elif isinstance(data, SourceTable):
        return _seen(data.data)
    elif isinstance(data, str | os.PathLike):
        try:
            st = os.stat(data)
        except OSError:
            return None
        key, fingerprint, ref = ("path", os.fspath(data)), (st.st_size, st.st_mtime_ns), None
    else:
        return None
    entry = _TRAPS_SEEN.get(key)
    if entry is not None and entry[1] == fingerprint and (ref is None or entry[0]() is data):
        return entry[2]
    if len(_TRAPS_SEEN) > 256:
        _TRAPS_SEEN.clear()
    _TRAPS_SEEN[key] = (ref, fingerprint, {})
    return None


def _check_traps(t: ir.Table, spec: TableSpec, mapping, source, data) -> dict[str, int]:
    """Warn of the two traps a direct call would otherwise pass without a word.

    * rows that exactly repeat another row (a double export doubles revenue),
      looked for when there is no ``order_id`` (the key check catches repeated
      orders);
    * text customer ids that differ from another only in upper/lower case or
      surrounding spaces (``"C042 "`` and ``"c042"`` count as two customers).

    Duplicates take one distinct count over the rows (~0.1 s on two million
    rows); ids first one cheap pass (a space at either end, letters of both
    cases), and the distinct count over the ids only when that finds any. An
    input is looked at once per process: the same, unchanged frame (same arrays),
    Ibis expression or file is not looked at again, and repeated calls cost
    nothing. A :class:`~crmstats.DataWarning` names the table, the column and
    example rows (the caller's index labels for a frame; ids for a file or
    database table). Whole sources are checked by :func:`deep_checks`, which
    reuses the counts returned here (``duplicate_rows``,
    ``case_variants_customer_id``; a check not made is absent).
    """
    seen = _seen(data)
    if seen is not None:
        return dict(seen)
    facts: dict[str, int] = {}
    schema = t.schema()
    cols = [c for c in t.columns if c != ROW_COL]
    if "order_id" not in schema:
        facts["duplicate_rows"] = _warn_duplicate_rows(t, spec, mapping, source, cols)
    if "customer_id" in schema and schema["customer_id"].is_string():
        facts["case_variants_customer_id"] = _warn_id_variants(t, spec, mapping, source,
                                                               "customer_id")
    seen = _seen(data)  # recorded by the first call, unless the input cannot be recognised
    if seen is not None:
        seen.update(facts)
    return facts


def _warn_duplicate_rows(t, spec, mapping, source, cols) -> int:
    """Warn of rows exactly repeating another; return how many repeat one."""
    def row_hash(tb):
        return ibis.struct({c: tb[c] for c in cols}).hash()

    counts = execute(t.aggregate(n=t.count(), d=row_hash(t).nunique())).iloc[0]
    repeats = _count(counts["n"]) - _count(counts["d"])
    if repeats <= 0:
        return 0
    h = row_hash(t)
    first = execute(t.group_by(h=h).aggregate(k=t.count()).filter(lambda g: g.k > 1)
                    .order_by("h").limit(1))["h"].iloc[0]
    rows = _row_labels(_offending(t, lambda tb: row_hash(tb) == int(first), source), spec,
                       source, mapping)
    warnings.warn(
        f"{spec.name} table: {repeats:,} row(s) exactly repeat another row (every column "
        f"equal; no order_id tells orders apart), e.g. {_examples(rows)} are one row twice; "
        "a double export doubles revenue: drop them (drop_duplicates: true in crmstats.yml) "
        "if they are one", DataWarning, stacklevel=_user_level())
    return repeats


def _warn_id_variants(t, spec, mapping, source, name) -> int:
    """Warn of ids differing from another only in case or spaces; return how many."""
    c = t[name]
    # cheap first (one pass, no distinct): ids can only be variants of each other when some
    # carry a leading or trailing space, or some have lower- and some upper-case letters
    signs = execute(t.aggregate(
        padded=t.count(where=(c < "!") | c.endswith(" ")),
        not_lower=t.count(where=c != c.lower()), not_upper=t.count(where=c != c.upper()),
    )).iloc[0]
    if not _count(signs["padded"]) and not (_count(signs["not_lower"])
                                            and _count(signs["not_upper"])):
        return 0
    ids = t.select(v=c).distinct().filter(lambda x: x.v.notnull())
    padded = (ids.v < "!") | ids.v.endswith(" ")  # a leading or trailing space (cheap)
    counts = execute(ids.aggregate(ids=ids.count(), lower=ids.v.lower().nunique(),
                                   padded=ids.count(where=padded))).iloc[0]
    merged = _count(counts["ids"]) - _count(counts["lower"])
    # trimming (slow in DuckDB) only where it can matter
    folded = ids.mutate(f=ids.v.strip().lower() if _count(counts["padded"]) else ids.v.lower())
    if _count(counts["padded"]):
        merged = _count(counts["ids"]) - _count(execute(folded.f.nunique()))
    if merged <= 0:
        return 0
    groups = folded.group_by("f").aggregate(k=folded.count()).filter(lambda g: g.k > 1)
    key = execute(groups.order_by("f").limit(1))["f"].iloc[0]
    variants = list(execute(folded.filter(folded.f == key).order_by("v")
                            .limit(_MAX_ROWS))["v"])
    # one query for an example row of each variant (its first row, for a DataFrame)
    table = source.table() if source is not None else t
    order = [table[ROW_COL]] if ROW_COL in table.columns else []
    first = table.filter(table[name].isin(variants)).mutate(
        __n__=ibis.row_number().over(group_by=table[name], order_by=order))
    sample = execute(first.filter(first.__n__ == 0).drop("__n__"))
    sample = sample.set_index(sample[name].to_numpy()).loc[
        [v for v in variants if v in set(sample[name])]].reset_index(drop=True)
    rows = _row_labels(sample, spec, source, mapping)
    shown = _examples(rows)
    col = _caller(name, mapping)
    warnings.warn(
        f"{spec.name} table, column {col!r}: {merged:,} value(s) differ from another only in "
        f"upper/lower case or surrounding spaces and count as different ids, e.g. {shown} "
        "(one id written differently); trim and map them (trim: true, values: in "
        "crmstats.yml) or clean the export", DataWarning, stacklevel=_user_level())
    return merged

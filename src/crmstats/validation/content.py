"""Content checks of one coerced table, run as Ibis expressions on its backend."""

from __future__ import annotations

import warnings
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataError, DataWarning
from crmstats.schema import (
    ColumnSpec,
    TableSpec,
)
from crmstats.validation.messages import (
    _MAX_ROWS,
    _caller,
    _count,
    _error,
    _fmt_rows,
    _Ids,
    _row_labels,
    _user_level,
)
from crmstats.validation.stages import _check_deal_stages, _check_name_variants, _check_stages


def _raise_if_rows(t: ir.Table, cond, spec, col_spec, mapping, problem, source=None,
                   detail: str = "") -> None:
    """Raise naming the count and up to five rows of ``t`` where ``cond(table)`` holds."""
    n = _count(execute(t.count(where=cond(t))))
    if n:
        sample = _offending(t, cond, source)
        raise _error(spec, col_spec, mapping, problem,
                     _row_labels(sample, spec, source, mapping), n, detail)


def raise_bad_values(t: ir.Table, cond, spec, col_spec, mapping, what: str, rows=None,
                     detail: str = "") -> None:
    """Raise when ``cond(table)`` holds on rows of ``t``, quoting their (raw) values.

    ``what`` is the plural problem (``"value(s) are not numbers"``); ``rows`` a
    row source naming rows by the caller's index labels (pandas inputs; None:
    by their ids). Frames: ``3 value(s) are not numbers, e.g. rows 102 ('x')``;
    files and databases: ``... in 3 row(s), e.g. ids ['o3'] (column 'order_id');
    the values, e.g. 'x'``.
    """
    n = _count(execute(t.count(where=cond(t))))
    if not n:
        return
    sample = _offending(t, cond, rows)
    name = _caller(col_spec.name, mapping)
    values = [repr(v) for v in sample[col_spec.name]]
    labels = _row_labels(sample, spec, rows, mapping)
    tail = f"; {detail}" if detail else ""
    if isinstance(labels, _Ids):
        text = (f"{what} in {n} row(s), e.g. {_fmt_rows(labels)}{tail}; the values, e.g. "
                f"{', '.join(values[:3])}")
    else:
        shown = ", ".join(f"{label!r} ({v})" if isinstance(label, str) else f"{label} ({v})"
                          for label, v in zip(labels, values, strict=True))
        text = f"{n} {what}, e.g. rows {shown}{tail}"
    raise DataError(f"{spec.name} table, column {name!r}: {text}", table=spec.name,
                    column=name, rows=list(labels)[:_MAX_ROWS])


def _offending(t: ir.Table, cond, source) -> pd.DataFrame:
    """Up to five rows where ``cond(table)`` holds, with row positions for a pandas input."""
    table = source.table() if source is not None else t
    return execute(table.filter(cond(table)).limit(_MAX_ROWS))


def _check_content(t: ir.Table, spec: TableSpec, mapping, source) -> dict[str, Any]:
    """Null ids, non-finite/negative numbers, duplicated keys — one query, then details.

    ``source`` (a :class:`_RowSource`, for pandas inputs) names offending rows
    by the caller's index labels; it is only used once a check has failed.
    Returns what was found without being an error: ``future_<column>``
    (timestamps after tomorrow) and, for stage events, ``stages``
    (:func:`~crmstats.validation.stage_problems`).
    """
    facts: dict[str, Any] = {}
    checks: dict[str, tuple[ColumnSpec, str, Any]] = {}
    schema = t.schema()
    for c in spec.columns:
        if c.name not in schema:
            continue
        if c.kind == "id" or (c.kind in ("timestamp", "category") and c.required):
            checks[f"null_{c.name}"] = (c, "null value(s)",
                                        lambda tb, n=c.name: tb[n].isnull())
            if c.kind == "id" and schema[c.name].is_string():
                # a blank id would become one more customer (or lead, account, ...); counted
                # first by a cheap superset (empty, or starting with a space or control
                # character), then exactly only when that finds any
                checks[f"blank_{c.name}"] = (c, "blank id(s) (empty or only spaces)",
                                             lambda tb, n=c.name: tb[n] < "!")
        elif c.kind in ("money", "count", "float") and schema[c.name].is_floating():
            checks[f"nonfinite_{c.name}"] = (
                (c, "non-finite value(s)",
                 lambda tb, n=c.name: tb[n].notnull() & (tb[n].isnan() | tb[n].isinf()))
                if c.nullable else
                (c, "missing or non-finite value(s)",
                 lambda tb, n=c.name: tb[n].isnull() | tb[n].isnan() | tb[n].isinf()))
            if c.nonnegative:
                checks[f"negative_{c.name}"] = (c, "negative value(s)",
                                                lambda tb, n=c.name: tb[n] < 0)
        if c.kind == "category" and c.values:
            checks[f"values_{c.name}"] = (
                c, f"value(s) other than {', '.join(map(repr, c.values))}",
                lambda tb, n=c.name, v=c.values: tb[n].notnull() & ~tb[n].cast("string").isin(v),
            )
    # timestamps after tomorrow are almost always entry errors: counted in the same query
    horizon = (pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=1)).to_pydatetime()
    future = {
        f"__future_{c.name}": (c, t[c.name] > horizon)
        for c in spec.columns
        if c.kind == "timestamp" and c.name in schema and schema[c.name].is_timestamp()
    }
    counts = execute(
        t.aggregate(
            __n__=t.count(),
            **{k: t.count(where=v[2](t)) for k, v in checks.items()},
            **{k: t.count(where=v[1]) for k, v in future.items()},
        )
    ).iloc[0]
    for key, (c, _) in future.items():
        n = counts[key]
        facts[f"future_{c.name}"] = int(n) if pd.notna(n) else 0
        if pd.notna(n) and int(n) > 0:
            warnings.warn(
                f"{spec.name} table, column {_caller(c.name, mapping)!r}: {int(n)} timestamp(s) "
                "lie in the future; check the data's clock or time zone",
                DataWarning,
                stacklevel=_user_level(),
            )
    if int(counts["__n__"]) == 0:
        raise DataError(f"{spec.name} table is empty (no rows)", table=spec.name)
    for key, (c, problem, cond) in checks.items():
        n = counts[key]
        if key.startswith("blank_") and pd.notna(n) and int(n) > 0:
            cond = lambda tb, name=c.name: tb[name].strip() == ""  # noqa: E731 - exact check
            n = execute(t.count(where=cond(t)))
        if pd.notna(n) and int(n) > 0:
            sample = _offending(t, cond, source)
            raise _error(spec, c, mapping, problem, _row_labels(sample, spec, source, mapping),
                         int(n))
    known = None
    if spec.name == "stage_events":
        facts["stages"] = _check_stages(t, mapping)
        known = {"stage": facts["stages"]["names"]}
    names = _check_name_variants(t, spec, mapping, known)
    if spec.name == "deals":
        _check_deal_stages(t, mapping, names.get("stage"))
    for earlier, later in spec.order:
        if earlier in schema and later in schema:
            _raise_if_rows(t, lambda tb, e=earlier, la=later: tb[la] < tb[e], spec,
                           spec.column(later), mapping,
                           f"value(s) before {_caller(earlier, mapping)!r}", source)
    key = [k for k in spec.key if k in schema]
    if spec.key and key and spec.key[0] in schema:
        dup = t.group_by(key).aggregate(_n=t.count()).filter(lambda g: g._n > 1)
        dups = execute(dup.limit(_MAX_ROWS))
        if len(dups):
            total = int(execute(dup.count()))
            first = dups.iloc[0]
            rows = _offending(t, lambda tb: ibis.and_(*[tb[k] == first[k] for k in key]), source)
            examples = [tuple(r) if len(key) > 1 else r[0]
                        for r in dups[key].astype(object).itertuples(index=False)]
            shared = _row_labels(rows, spec, source, mapping)
            who = (f"{len(shared)} rows" if isinstance(shared, _Ids) else _fmt_rows(shared))
            raise DataError(
                f"{spec.name} table: key ({', '.join(_caller(k, mapping) for k in key)}) is "
                f"duplicated for {total} value(s), e.g. "
                f"{', '.join(repr(r) if isinstance(r, str) else str(r) for r in examples)}; "
                f"{who} share the first one",
                table=spec.name,
                column=_caller(key[0], mapping),
                rows=_row_labels(rows, spec, source, mapping),
            )
    return facts

"""The caller's column names: mapping onto canonical names, missing and derivable columns."""

from __future__ import annotations

from crmstats.exceptions import DataError
from crmstats.schema import (
    TableSpec,
)
from crmstats.validation.messages import _caller


def _text_columns(spec: TableSpec, mapping, source) -> list[str]:
    """CSV columns to read as text: timestamps always, numbers when separators are set."""
    kinds = {"timestamp"}
    if source is not None and (source.decimal or source.thousands):
        kinds |= {"money", "count", "float"}
    return [_caller(c.name, mapping) for c in spec.columns if c.kind in kinds]


def _column_mapping(columns, overrides) -> dict[str, str]:
    mapping = dict(columns or {})
    for key, value in overrides.items():
        if not key.endswith("_col"):
            raise TypeError(f"unexpected keyword argument {key!r}")
        if value is not None:
            mapping[key[: -len("_col")]] = value
    return mapping


def _derivable(spec: TableSpec, name: str, mapping, present) -> bool:
    """Whether required column ``name`` is absent but computable from two present columns."""
    factors = spec.derived.get(name)
    return (factors is not None and name not in mapping
            and all(_caller(f, mapping) in present for f in factors))


def _missing_error(spec: TableSpec, mapping, present) -> DataError | None:
    missing = [c for c in spec.required if _caller(c, mapping) not in present
               and not _derivable(spec, c, mapping, present)]
    if not missing:
        return None
    shown = [
        f"{_caller(c, mapping)!r}" + (f" (canonical {c!r})" if _caller(c, mapping) != c else "")
        for c in missing
    ]
    hint = ""
    if len(missing) == 1 and missing[0] not in mapping:
        hint = f"; map another column with {missing[0]}_col=..."
        if missing[0] in spec.derived:
            hint += (f" (or map {' and '.join(spec.derived[missing[0]])}: {missing[0]} is "
                     "then their product)")
    return DataError(
        f"{spec.name} table: missing required column {', '.join(shown)}; "
        f"{_present_columns(present)}{hint}",
        table=spec.name,
        column=_caller(missing[0], mapping),
    )


def _present_columns(present) -> str:
    """Name the columns a table has, only if they look like a header row's column names.

    A file that is no CSV (a password or key file read by mistake) has its first
    line as one "column": that line is not repeated in a message.
    """
    from crmstats.privacy import find_credential

    names = [str(c) for c in present]
    one_line = len(names) == 1 and (":" in names[0] or len(names[0].split()) > 4)
    header = (all(len(n) <= 80 and n.isprintable() for n in names) and not one_line
              and find_credential(" ".join(names)) is None)
    if not header:
        return ("its first line does not look like column names (not shown here): is it a "
                "CSV file with a header row?")
    return f"columns present: {', '.join(names)}"

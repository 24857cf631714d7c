"""Day/month order of text dates (``03/04/2024``): counting, deciding, explaining."""

from __future__ import annotations

import warnings

import pandas as pd

from crmstats.exceptions import DataError, DataWarning
from crmstats.validation.messages import _caller, _count, _user_level


def _frame_date_order(values: pd.Series, spec, col_spec, mapping) -> bool:
    """Day-first (True) or not, for text dates of a DataFrame column (see :func:`_date_order`)."""
    text = values[values.map(lambda v: isinstance(v, str))] if values.dtype == object else values
    if not len(text) or not (pd.api.types.is_string_dtype(text.dtype) or text.dtype == object):
        return False
    counts = dmy_counts(text)
    if not counts["n"]:
        return False

    def examples(kind: str) -> list[str]:
        parts = text.astype(str).str.extract(_DMY)
        a = pd.to_numeric(parts[0], errors="coerce")
        b = pd.to_numeric(parts[1], errors="coerce")
        hit = {"first": (a > 12) & (b <= 12), "second": (b > 12) & (a <= 12),
               "any": parts[0].notna()}[kind]
        return list(text[hit.to_numpy()].astype(str).head(3))

    return _date_order(counts, spec, col_spec, mapping, None, examples)


def dmy_counts(text: pd.Series) -> dict[str, int]:
    """Count dates written like ``02/03/2024``, and which order they allow.

    ``n`` counts them all, ``first`` those whose first part exceeds 12 (only a
    day-first reading parses them), ``second`` those whose second part does
    (values with both parts above 12 are in neither: no order parses them).
    """
    parts = text.astype(str).str.extract(_DMY)
    a = pd.to_numeric(parts[0], errors="coerce")
    b = pd.to_numeric(parts[1], errors="coerce")
    # a value with both parts above 12 (31/31/2023) fits neither order: it is unparsable,
    # not evidence of a mixed order
    return {"n": int(parts[0].notna().sum()), "first": int(((a > 12) & (b <= 12)).sum()),
            "second": int(((b > 12) & (a <= 12)).sum())}


#: A date written with the day and month as one or two digits first: 02/03/2024, 2.3.24
_DMY = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"


def _date_order(counts, spec, c, mapping, dayfirst, examples=None) -> bool:
    """Decide day-first (True) or month-first (False) from the data and the source's option.

    Never a silent guess: conflicting evidence or no evidence at all (every
    day and month at most 12) without a declared order is an error; an order
    the data show but nobody declared is used with a :class:`DataWarning`.
    Errors quote up to three of the values concerned (``examples(kind)`` with
    kind ``"first"``, ``"second"`` or ``"any"``).
    """
    name = _caller(c.name, mapping)
    n, first_big, second_big = (_count(counts[k]) for k in ("n", "first", "second"))
    where = f"{spec.name} table, column {name!r}"

    def shown(kind: str) -> str:
        values = examples(kind) if examples is not None else []
        return f" (e.g. {', '.join(map(repr, values))})" if values else ""

    if first_big and second_big:
        raise DataError(
            f"{where}: mixes day-first and month-first dates: {first_big} value(s) can only be "
            f"day-first{shown('first')}, {second_big} only month-first{shown('second')}; "
            "export the column in one order",
            table=spec.name, column=name)
    if dayfirst is True and second_big:
        raise DataError(f"{where}: dayfirst is set but {second_big} date(s) have a month above "
                        f"12{shown('second')}: they are month-first", table=spec.name,
                        column=name)
    if dayfirst is False and first_big:
        raise DataError(f"{where}: dayfirst is false but {first_big} date(s) have a day above "
                        f"12 in the month position{shown('first')}: they are day-first",
                        table=spec.name, column=name)
    if dayfirst is not None:
        return bool(dayfirst)
    if first_big or second_big:
        order = "day-first" if first_big else "month-first"
        warnings.warn(
            f"{where}: {n} date(s) written like 02/03/2024 are read {order} because "
            f"{first_big or second_big} of them can only be {order}; declare it "
            f"(dayfirst: {str(bool(first_big)).lower()} in crmstats.yml) to silence this",
            DataWarning, stacklevel=_user_level())
        return bool(first_big)
    raise DataError(
        f"{where}: {n} date(s) written like 02/03/2024{shown('any')} could be day-first or "
        "month-first (no day or month above 12); declare the order with dayfirst: true/false "
        "or timestamp_format in crmstats.yml, or convert the column with pandas.to_datetime",
        table=spec.name, column=name)


def _how(dayfirst: bool, declared: bool) -> str:
    order = "day-first" if dayfirst else "month-first"
    return f"dates read {order}" + (" as declared" if declared else " as the data show")

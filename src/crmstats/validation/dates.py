"""Day/month order of text dates (``03/04/2024``): deciding and explaining.

The evidence is counted by :func:`crmstats.validation.timestamps.date_parts`.
"""

from __future__ import annotations

import warnings

from crmstats.exceptions import DataError, DataWarning
from crmstats.validation.messages import _caller, _count, _user_level

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

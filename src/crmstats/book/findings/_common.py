"""Shared wording helpers of the findings (labels, dates, counts, spans, untrusted fits)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from crmstats.book.report import (
    fmt_count,
    fmt_money,
    fmt_pvalue,
)
from crmstats.page_tables import term_words


def _label(name: Any) -> str:
    return str(name).replace("_", " ")


def _term(term: Any) -> str:
    """Name a model term for readers: ``industry[software]`` as ``industry = software``."""
    return term_words(term)


def _p(value: Any) -> str:
    """Say a p-value in a sentence: ``p < 0.001`` or ``p = 0.031``."""
    shown = fmt_pvalue(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _date(value: Any) -> str:
    stamp = pd.Timestamp(value)
    return stamp.strftime("%B %Y")


def _top(series: pd.Series, n: int = 1) -> list:
    clean = pd.to_numeric(series, errors="coerce").dropna()
    return list(clean.sort_values(ascending=False, kind="stable").index[:n])


def _keep(sentences: list[str | None]) -> list[str]:
    out = [s for s in sentences if s]
    return out[:5]


def _counted(n: int, noun: str) -> str:
    """Return '1 table' or '2,000 tables'."""
    return f"{fmt_count(n)} {noun}{'' if n == 1 else 's'}"


def _untrusted(fits: Mapping[str, Any] | None) -> dict[str, str]:
    """Return ``{name: problem}`` for each fit of ``fits`` not to be trusted.

    The problem is :func:`crmstats.clv.fit_problem`'s clause.
    """
    from crmstats.clv import fit_problem

    return {
        name: problem for name, model in (fits or {}).items() if (problem := fit_problem(model))
    }


def _fit_problems(fits: Mapping[str, Any] | None, where: str) -> list[str]:
    """Name each fit of ``fits`` not to be trusted, in a sentence for readers."""
    return [
        f"The {name} fit {where} {problem}; the customer values on this page rest on it, "
        "so they are shown but not used as headline figures."
        for name, problem in _untrusted(fits).items()
    ]


_UNITS = {"W": "week", "M": "month", "Q": "quarter", "Y": "year", "D": "day"}


def _span(values: pd.Series, unit: str) -> str:
    """Name the periods behind a figure: 'the last 9 months, March 2011 to November 2011'."""
    n = len(values)
    if n == 0:
        return f"no {unit}"
    what = f"the last {unit}" if n == 1 else f"the last {n} {unit}s"
    if isinstance(values.index, pd.DatetimeIndex):
        first, last = values.index[0], values.index[-1]
        what += f", {_date(first)}" if n == 1 else f", {_date(first)} to {_date(last)}"
    return what


def _left_out(frame: pd.DataFrame) -> str:
    """Return ' December 2011 is left out ...': the partial period a KPI frame dropped, if any."""
    window = getattr(frame, "window", None)
    note = window.note() if window is not None else ""
    return f" {note}" if note else ""


def _level(column: Any) -> str:
    """Return the level of an indicator column ``name[level]`` in words (else the column)."""
    name, sep, level = str(column).partition("[")
    return _label(level[:-1] if sep and level.endswith("]") else column)


def _worth(row: pd.Series, column: str = "clv", fmt=fmt_money, parens: bool = True) -> str:
    """Return a figure with its 95 % interval: ``"120 (95 % interval 96 to 150)"``.

    ``row`` holds ``column`` and, when known, ``<column>_lower_95`` and
    ``<column>_upper_95``; without a finite interval only the figure is given.
    ``parens=False`` gives ``"120, 95 % interval 96 to 150"`` (inside brackets).
    """
    text = fmt(row.get(column))
    lo, hi = row.get(f"{column}_lower_95"), row.get(f"{column}_upper_95")
    if _finite(lo) and _finite(hi):
        interval = f"95 % interval {fmt(lo)} to {fmt(hi)}"
        text += f" ({interval})" if parens else f", {interval}"
    return text


def _new_customer_worth(values: pd.DataFrame, horizon_months: int) -> str | None:
    """Say from which channel a new customer is worth most and least (channel_value's table)."""
    if len(values) < 2 or not values["clv"].notna().any():
        return None
    best, worst = values["clv"].idxmax(), values["clv"].idxmin()
    return (f"A new customer's repeat purchases over the next {horizon_months} months are "
            f"worth most from {_label(best)}: {_worth(values.loc[best])}; least from "
            f"{_label(worst)}: {_worth(values.loc[worst])}.")

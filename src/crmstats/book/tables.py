"""Tables for readers: :func:`format_table` and :func:`format_record`.

The raw values stay in the frame (``styled.data``); only their display changes
(thousands separators, 3-4 significant digits, a currency, shares as
percentages, every label escaped with :mod:`crmstats.book.markup`).
Re-exported by :mod:`crmstats.book.report`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crmstats.book.markup import html_text, md_text
from crmstats.exceptions import CRMStatsError
from crmstats.formatting import (
    MISSING,
    decimals_for,
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_pvalue,
    fmt_ratio,
    get_currency,
    is_missing,
)

_table_ids = itertools.count(1)


def _as_list(cols: str | Iterable[str] | None) -> list:
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


def _whole(values: pd.Series) -> bool:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite)]
    return len(finite) > 0 and bool((finite == np.round(finite)).all())


def _typical(values: pd.Series) -> float:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite) & (finite != 0)].abs()
    return float(finite.median()) if len(finite) else 0.0


def _column_decimals(values: pd.Series, sig: int, max_decimals: int) -> int:
    finite = pd.to_numeric(values, errors="coerce").astype(float)
    finite = finite[np.isfinite(finite) & (finite != 0)].abs()
    if finite.empty:
        return 0
    return decimals_for(float(finite.median()), sig, max_decimals)


def _label(name: Any) -> str:
    if isinstance(name, tuple):
        return " / ".join(_label(n) for n in name)
    return str(name).replace("_", " ")


def _date_text(value: Any) -> str:
    if is_missing(value):
        return MISSING
    if isinstance(value, pd.Period):
        return str(value)
    stamp = pd.Timestamp(value)
    if stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M")


def _index_formatter(index: pd.Index, humanize: bool):
    """Dates as dates; names (column labels only) without underscores; ids unchanged."""
    if isinstance(index, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(index):
        return _date_text

    def show(value):
        if isinstance(value, (pd.Timestamp, pd.Period)):
            return _date_text(value)
        return _label(value) if humanize and isinstance(value, (str, tuple)) else value
    return show


def _escaped(formatter: Any):
    """Wrap a cell formatter (None: the value as it is) so its text is HTML-escaped."""
    def show(value: Any) -> str:
        if formatter is not None:
            return html_text(formatter(value))
        if isinstance(value, (float, np.floating)):
            return html_text(fmt_number(value))
        return html_text(value)
    return show


def _axis_names(axis: pd.Index, labels: bool) -> list:
    """Return the names of an index as shown: humanized when ``labels``, HTML-escaped."""
    return [None if n is None else html_text(_label(n) if labels else n) for n in axis.names]


def format_table(
    frame: pd.DataFrame | pd.Series,
    *,
    money: str | Sequence[str] | None = None,
    pct: str | Sequence[str] | None = None,
    count: str | Sequence[str] | None = None,
    ratio: str | Sequence[str] | None = None,
    number: str | Sequence[str] | None = None,
    currency: str | None = None,
    sig: int = 4,
    labels: bool = True,
    caption: str | None = None,
    index: bool = True,
    empty: str | None = None,
) -> Any:
    """Format a table for readers; its values are not changed.

    Every column is formatted by what it holds: the columns named in
    ``money`` with the currency, ``pct`` (fractions) as percentages, ``count``
    as whole numbers, ``ratio`` with an "x"; other numeric columns (or those in
    ``number``) with ``sig`` significant digits at the column's typical size,
    so one column shares its decimals. Integer columns read as counts, dates
    as dates. Column names lose their underscores.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
        The table (not modified).
    money, pct, count, ratio, number : str, list of str or True, optional
        Columns by role; ``True`` gives the role to every numeric column.
        Columns named ``p_value`` are shown as p-values (``< 0.001``).
    currency : str, optional
        Currency of the money columns; default the study's (:func:`set_currency`).
    sig : int
        Significant digits of plain numbers and money (3-4 read best).
    labels : bool
        Replace underscores in column and index names with spaces.
    caption : str, optional
        A caption shown above the table.
    index : bool
        Show the index.
    empty : str, optional
        A sentence shown instead of a table without rows (a header with no
        rows reads like a broken page).

    Returns
    -------
    pandas.io.formats.style.Styler or IPython.display.Markdown
        Renders as an HTML table (``styled.data`` is the unchanged frame); the
        ``empty`` sentence when given and the table has no rows.

    Raises
    ------
    CRMStatsError
        When a named column is not in the table.

    Examples
    --------
    >>> import pandas as pd
    >>> t = format_table(pd.DataFrame({"spend": [190870.508], "share": [0.0312]}),
    ...                  money="spend", pct="share", currency="$")
    >>> "$190,871" in t.to_html() and "3.1 %" in t.to_html()
    True
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame(frame.name if frame.name is not None else "value")
    if not isinstance(frame, pd.DataFrame):
        raise CRMStatsError(f"format_table: expected a DataFrame, got {type(frame).__name__}")
    if empty is not None and frame.empty:
        from IPython.display import Markdown

        return Markdown(md_text(empty))
    numeric_cols = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])
                    and not pd.api.types.is_bool_dtype(frame[c])]
    roles: dict[Any, str] = {c: "pvalue" for c in frame.columns
                             if str(c).lower() in ("p_value", "pvalue", "p-value")}
    for role, cols in (("money", money), ("pct", pct), ("count", count), ("ratio", ratio),
                       ("number", number)):
        for col in (numeric_cols if cols is True else _as_list(cols)):
            if col not in frame.columns:
                raise CRMStatsError(f"format_table: column {col!r} is not in the table "
                                    f"(columns: {[str(c) for c in frame.columns]})")
            roles[col] = role
    currency = get_currency() if currency is None else currency
    formatters: dict[Any, Any] = {}
    for col in frame.columns:
        values = frame[col]
        role = roles.get(col)
        if role is None:
            if pd.api.types.is_bool_dtype(values):
                continue
            if pd.api.types.is_integer_dtype(values):
                role = "count"
            elif pd.api.types.is_numeric_dtype(values):
                role = "number"
            elif pd.api.types.is_datetime64_any_dtype(values):
                formatters[col] = _date_text
                continue
            else:
                continue
        if role == "number" and _whole(values):
            role = "count"  # e.g. 90.0 purchases: a float column of whole numbers
        if role == "money":
            d = 0 if _typical(values) >= 1000 else 2
            formatters[col] = lambda v, d=d: fmt_money(v, currency, decimals=d)
        elif role == "pct":
            formatters[col] = fmt_pct
        elif role == "count":
            formatters[col] = fmt_count
        elif role == "ratio":
            formatters[col] = fmt_ratio
        elif role == "pvalue":
            formatters[col] = fmt_pvalue
        else:
            d = _column_decimals(values, sig, 6)
            formatters[col] = lambda v, d=d: fmt_number(v, decimals=d)
    # every cell, header and caption is text: formatted, then HTML-escaped; the names of the
    # axes are shown from a shallow copy (the caller's frame keeps its own names)
    shown = frame.rename_axis(index=_axis_names(frame.index, labels),
                              columns=_axis_names(frame.columns, labels))
    styler = shown.style
    styler.set_uuid(f"crm{next(_table_ids)}")
    styler.format({c: _escaped(formatters.get(c)) for c in frame.columns}, na_rep=MISSING)
    styler.format_index(_escaped(_index_formatter(frame.columns, labels)), axis=1)
    styler.format_index(_escaped(_index_formatter(frame.index, False)), axis=0)
    if not index:
        styler.hide(axis="index")
    if caption:
        styler.set_caption(html_text(caption))
    numeric = [c for c in frame.columns if c in formatters]
    styler.set_table_attributes('class="dataframe crm-table"')
    if numeric:  # numbers right-aligned, one rule per column
        styler.set_table_styles({c: [{"selector": "td", "props": "text-align: right;"}]
                                 for c in numeric}, overwrite=False)
    return styler


def format_record(values: Any, *, money: Sequence[str] = (), pct: Sequence[str] = (),
                  count: Sequence[str] = (), ratio: Sequence[str] = (),
                  currency: str | None = None, name: str = "value") -> Any:
    """Format a key-value record (a Series or mapping of mixed figures) as a two-column table.

    Parameters
    ----------
    values : Series or mapping
        Figures by name, e.g. ``funnel.pipeline(...).summary``.
    money, pct, count, ratio : list of str
        Names by role; other numbers get 4 significant digits, dates show as dates.
    currency : str, optional
        Currency of the money figures (default the study's).
    name : str
        Header of the value column.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    roles = {**{k: "money" for k in money}, **{k: "pct" for k in pct},
             **{k: "count" for k in count}, **{k: "ratio" for k in ratio}}
    currency = get_currency() if currency is None else currency
    shown = []
    for key, value in series.items():
        role = roles.get(key)
        if isinstance(value, (pd.Timestamp, np.datetime64)):
            shown.append(_date_text(value))
        elif role == "money":
            shown.append(fmt_money(value, currency))
        elif role == "pct":
            shown.append(fmt_pct(value))
        elif role == "count" or isinstance(value, (int, np.integer)):
            shown.append(fmt_count(value))
        elif role == "ratio":
            shown.append(fmt_ratio(value))
        elif isinstance(value, (float, np.floating)):
            shown.append(fmt_number(value))
        else:
            shown.append(MISSING if is_missing(value) else str(value))
    frame = pd.DataFrame({name: shown}, index=[_label(k) for k in series.index])
    return format_table(frame, labels=False)

"""Numbers for readers: counts, amounts of money, shares and ratios as text.

The lowest layer of the presentation: the domain subpackages' ``plotting``
modules (money axes) and the book (:mod:`crmstats.book.report`, findings, KPI
records) both format through this module, so a domain never imports the book
runner. :mod:`crmstats.book.report` re-exports every public name here.

* :func:`fmt_number`, :func:`fmt_count`, :func:`fmt_money`, :func:`fmt_pct`,
  :func:`fmt_pvalue`, :func:`fmt_ratio` format one value (thousands
  separators, 3-4 significant digits, a currency, shares as percentages);
* :func:`set_currency` / :func:`get_currency` hold the currency of the study
  being written (one per process: a study is one kernel).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import CRMStatsError

__all__ = [
    "MISSING",
    "decimals_for",
    "fmt_count",
    "fmt_interval",
    "fmt_money",
    "fmt_number",
    "fmt_pct",
    "fmt_pvalue",
    "fmt_ratio",
    "get_currency",
    "is_missing",
    "per_spend",
    "set_currency",
]

#: Shown for a missing value.
MISSING = "—"

_state: dict[str, Any] = {"currency": ""}


def set_currency(currency: str | None) -> None:
    """Set the currency of money figures: a symbol (``"$"``, ``"€"``) or a code (``"EUR"``).

    A symbol is written before the amount (``$1,234``), a code of letters
    after it (``1,234 EUR``). An empty string writes amounts without one.
    """
    if currency is None:
        currency = ""
    if not isinstance(currency, str) or len(currency.strip()) > 5 or "\n" in currency:
        raise CRMStatsError(f"currency must be a short symbol or code such as '$' or 'EUR', "
                            f"got {currency!r}")
    _state["currency"] = currency.strip()


def get_currency() -> str:
    """Return the currency set by :func:`set_currency` (``""`` when none)."""
    return _state["currency"]


def is_missing(value: Any) -> bool:
    """Whether ``value`` is missing (``None``, ``pd.NA``, ``NaT`` or NaN)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(np.isnan(value))
    except (TypeError, ValueError):
        return False


def decimals_for(magnitude: float, sig: int, max_decimals: int = 6) -> int:
    """Decimals that give ``sig`` significant digits at ``magnitude`` (never fewer than 0)."""
    if magnitude == 0 or not math.isfinite(magnitude):
        return 0
    return int(min(max_decimals, max(0, sig - 1 - math.floor(math.log10(abs(magnitude))))))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    # "-0" and "-0.00" read as zero
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def fmt_number(value: Any, sig: int = 4, *, decimals: int | None = None) -> str:
    """Format a number with thousands separators and ``sig`` significant digits.

    Numbers of ``sig`` digits or more before the decimal point are shown as
    whole numbers (``190,871``), smaller ones with enough decimals for ``sig``
    significant digits (``95.42``, ``0.2431``).

    Parameters
    ----------
    value : number
        The value; ``None``/NaN give ``"—"``.
    sig : int
        Significant digits (3-4 read best).
    decimals : int, optional
        Fixed decimals instead (used by :func:`format_table` for aligned columns).

    Examples
    --------
    >>> fmt_number(-95415.118618), fmt_number(0.243123), fmt_number(3.0)
    ('-95,415', '0.2431', '3.000')
    """
    if is_missing(value):
        return MISSING
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if decimals is None:
        decimals = decimals_for(value, sig, 10)
    return _fixed(value, decimals)


def fmt_count(value: Any) -> str:
    """Format a count: a whole number with thousands separators (``23,570``)."""
    if is_missing(value):
        return MISSING
    return _fixed(float(value), 0)


def _with_currency(amount: str, currency: str) -> str:
    if not currency:
        return amount
    sign, digits = ("-", amount[1:]) if amount.startswith("-") else ("", amount)
    if currency.isalpha() and len(currency) > 1:  # a code: 1,234 EUR
        return f"{sign}{digits} {currency}"
    return f"{sign}{currency}{digits}"  # a symbol: $1,234


def fmt_money(value: Any, currency: str | None = None, sig: int = 4, *,
              decimals: int | None = None) -> str:
    """Format an amount of money with its currency.

    Parameters
    ----------
    value : number
        The amount.
    currency : str, optional
        Symbol or code; default the one set by :func:`set_currency`.
    sig : int
        Unused for money (kept for a uniform signature): amounts under 1,000
        show cents, larger ones are whole.
    decimals : int, optional
        Fixed decimals instead.

    Examples
    --------
    >>> fmt_money(190870.508155, "$"), fmt_money(45.2345, "EUR"), fmt_money(-3.5, "€")
    ('$190,871', '45.23 EUR', '-€3.50')
    """
    if is_missing(value):
        return MISSING
    currency = get_currency() if currency is None else currency
    value = float(value)
    if decimals is None:  # cents below 1,000, whole amounts from there
        decimals = 0 if abs(value) >= 1000 else 2
    return _with_currency(fmt_number(value, decimals=decimals), currency)


def fmt_pct(value: Any, decimals: int | None = None, *, signed: bool = False) -> str:
    """Format a share (a fraction: 0.62) as a percentage (``62.0 %``).

    One decimal by default; a non-zero share under 1 % keeps two significant
    digits (``0.12 %``) so it does not read as zero.

    Examples
    --------
    >>> fmt_pct(0.62), fmt_pct(0.00123), fmt_pct(-0.05, signed=True)
    ('62.0 %', '0.12 %', '-5.0 %')
    """
    if is_missing(value):
        return MISSING
    percent = 100 * float(value)
    if math.isinf(percent):
        return fmt_number(percent)
    if decimals is None:
        decimals = 1 if percent == 0 or abs(percent) >= 1 else decimals_for(percent, 2, 4)
    text = _fixed(percent, decimals)
    if signed and not text.startswith("-") and text.strip("0.,"):
        text = "+" + text
    return f"{text} %"


def fmt_pvalue(value: Any) -> str:
    """Format a p-value: three decimals, or ``< 0.001``."""
    if is_missing(value):
        return MISSING
    value = float(value)
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ratio(value: Any) -> str:
    """Format a ratio such as LTV:CAC (``3.25x``)."""
    if is_missing(value):
        return MISSING
    return f"{fmt_number(float(value), 3)}x"




def per_spend(values: Any, currency: str | None = None) -> tuple[int, str]:
    """Choose the amount of spend a return is quoted per, so the figures read easily.

    A return per unit of spend is often a small fraction (0.0066 conversions
    per dollar); quoted per 1,000 of spend it reads 6.6. The amount is the
    smallest of 1, 10, 100, ..., 1,000,000 at which the typical value (the
    median of the non-zero absolute values) is at least 1.

    Parameters
    ----------
    values : array-like
        Returns per unit of spend (NaN and zeros are ignored).
    currency : str, optional
        Symbol or code of the spend; default the one set by :func:`set_currency`.

    Returns
    -------
    amount : int
        Multiply the returns by it.
    words : str
        How to say it, e.g. ``"per $1,000 of spend"``.

    Examples
    --------
    >>> per_spend([0.0066, 0.02, 0.0009], "$")
    (1000, 'per $1,000 of spend')
    >>> per_spend([3.2, 0.8], "EUR")
    (1, 'per 1 EUR of spend')
    """
    finite = np.abs(pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce")
                    .astype(float).to_numpy())
    finite = finite[np.isfinite(finite) & (finite > 0)]
    typical = float(np.median(finite)) if finite.size else 1.0
    amount = 1
    while typical * amount < 1 and amount < 1_000_000:
        amount *= 10
    return amount, f"per {fmt_money(amount, currency, decimals=0)} of spend"


def fmt_interval(lower: Any, upper: Any, kind: str = "number", currency: str | None = None,
                 sig: int = 3) -> str:
    """Format an interval as one piece of text: ``"-1.7 % to 4.3 %"``, ``"$73.18 or more"``.

    Parameters
    ----------
    lower, upper : number
        The bounds; an infinite upper bound reads "or more" (e.g. a cost per
        sale whose sales may be zero), a missing bound gives ``"—"``.
    kind : {"number", "pct", "money"}
        How each bound is formatted (:func:`fmt_number` with ``sig`` digits,
        :func:`fmt_pct`, :func:`fmt_money`).
    currency : str, optional
        For money; default the one set by :func:`set_currency`.

    Examples
    --------
    >>> fmt_interval(-0.017, 0.043, "pct"), fmt_interval(73.18, float("inf"), "money", "$")
    ('-1.7 % to 4.3 %', '$73.18 or more')
    >>> fmt_interval(0.81, 53.1)
    '0.810 to 53.1'
    """
    if kind not in ("number", "pct", "money"):
        raise CRMStatsError(f"fmt_interval: kind must be number, pct or money, got {kind!r}")
    if is_missing(lower) or is_missing(upper):
        return MISSING

    def bound(value: Any) -> str:
        if kind == "pct":
            return fmt_pct(value)
        if kind == "money":
            return fmt_money(value, currency)
        return fmt_number(value, sig)

    if math.isinf(float(upper)) and float(upper) > 0:
        return f"{bound(lower)} or more"
    return f"{bound(lower)} to {bound(upper)}"

"""What the domains' page tables share: a result's columns under short names, intervals as text.

A result frame is right for an analyst and too wide for a reader: each domain's
``page_tables`` module (``attribution``, ``churn``, ``funnel``) picks what a book
page needs with :func:`pick` (columns renamed, a 95 % interval said as one piece
of text by :func:`crmstats.formatting.fmt_interval`) and shows a model's odds or
hazard ratios with :func:`ratio_table`. The results themselves are never changed.
"""

from __future__ import annotations

import re

import pandas as pd

from crmstats.formatting import fmt_interval
from crmstats.vocabulary import interval_columns

__all__ = ["INTERVAL", "pick", "ratio_table", "require_columns", "term_words"]

#: Header of an interval said as text.
INTERVAL = "95 % interval"

_LEVEL = re.compile(r"^(?P<name>.+)\[(?:T\.)?(?P<level>.*)\]$")


def require_columns(frame: pd.DataFrame, columns, what: str) -> None:
    """Raise ``ValueError`` unless ``frame`` has every column in ``columns``.

    Page tables and plot functions (:mod:`crmstats.plotting` re-exports this)
    take the result frames of crmstats functions; this names the function whose
    output was expected when something else is passed.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected the DataFrame returned by {what}, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"expected the DataFrame returned by {what}; missing column(s) {', '.join(missing)}"
        )


def pick(frame: pd.DataFrame, names: dict[str, str], what: str,
         interval: tuple[str, str, str] | None = None) -> pd.DataFrame:
    """Return ``frame``'s columns ``names`` (old: new), with an interval as one text column.

    Parameters
    ----------
    frame : pandas.DataFrame
        A crmstats result (not modified).
    names : dict
        Its columns to show, in order, and their headers on the page.
    what : str
        The function whose result ``frame`` should be, for the error.
    interval : (str, str, str), optional
        Lower and upper column and the kind of their bounds ("number", "pct",
        "money"): shown as :data:`INTERVAL`, after the first column (the
        figure the interval belongs to).

    Raises
    ------
    ValueError
        Naming ``what`` when ``frame`` lacks a column.
    """
    needed = list(names) + ([] if interval is None else list(interval[:2]))
    require_columns(frame, needed, what)
    out = frame[list(names)].rename(columns=names)
    if interval is not None:
        lower, upper, kind = interval
        out.insert(1, INTERVAL, [fmt_interval(lo, hi, kind) for lo, hi in
                                     zip(frame[lower], frame[upper], strict=True)])
    return out


def term_words(name) -> str:
    """Say a model term in words: ``industry[software]`` -> ``industry = software``.

    The book's findings name terms the same way (a level is compared with the
    base level); ``job_title[T.VP]`` (patsy's treatment coding) reads ``job title = VP``.
    """
    text = str(name)
    match = _LEVEL.match(text)
    if match:
        return f"{match['name'].replace('_', ' ')} = {match['level']}"
    return text.replace("_", " ")


def ratio_table(frame: pd.DataFrame, ratio: str, what: str) -> pd.DataFrame:
    """Return a model's odds or hazard ratios for a page: each with its interval in words.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table with ``<ratio>``, ``<ratio>_lower_95``, ``<ratio>_upper_95``
        and ``p_value`` per term (e.g. ``LeadScoringModel.coefficients_`` with
        ``ratio="odds_ratio"``, ``CoxModel.table`` with ``"hazard_ratio"``).
    ratio : str
        The ratio's column.
    what : str
        Where ``frame`` comes from, for the error.

    Returns
    -------
    pandas.DataFrame
        One row per term but an intercept, named in words (:func:`term_words`;
        a level is compared with the base level); the ratio (its name in
        words), :data:`INTERVAL` (text) and ``p-value``.
    """
    lower, upper = interval_columns(ratio)
    rows = frame[[str(t).lower() not in ("intercept", "const") for t in frame.index]]
    out = pick(rows, {ratio: ratio.replace("_", " "), "p_value": "p-value"}, what,
               interval=(lower, upper, "number"))
    out.index = pd.Index([term_words(t) for t in rows.index], name="term")
    return out

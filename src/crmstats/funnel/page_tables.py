"""The funnel study's tables for a book page: a few columns, short headers.

:func:`~crmstats.funnel.lead_kpis` per channel holds twelve columns: right for an
analyst, a sideways-scrolling wall for a reader. The page shows them as two
tables, what each channel brings (:func:`lead_volume_table`) and what it costs
and how good its leads are (:func:`lead_quality_table`); the KPIs themselves
are unchanged.
"""

from __future__ import annotations

import pandas as pd

from crmstats.plotting import require_columns

__all__ = ["lead_quality_table", "lead_volume_table"]


def _pick(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    require_columns(frame, list(names), "lead_kpis")
    return frame[list(names)].rename(columns=names)


def lead_volume_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """Return what each channel brings, for a page: spend and the contacts at each stage.

    Parameters
    ----------
    kpis : pandas.DataFrame
        :func:`~crmstats.funnel.lead_kpis`'s result.

    Returns
    -------
    pandas.DataFrame
        The same index; ``spend``, ``leads``, ``qualified``,
        ``opportunities`` and ``won``.
    """
    return _pick(kpis, {"spend": "spend", "leads": "leads", "qualified": "qualified",
                        "opportunities": "opportunities", "won": "won"})


def lead_quality_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """Return what each channel's leads cost and how often they buy, for a page.

    Parameters
    ----------
    kpis : pandas.DataFrame
        :func:`~crmstats.funnel.lead_kpis`'s result.

    Returns
    -------
    pandas.DataFrame
        The same index; ``per lead`` and ``per opportunity`` (costs), ``CAC``
        (spend per customer won), ``to opportunity`` and ``to customer`` (the
        share of leads that became one). The cost per qualified lead and the
        days to a win stay in ``kpis``.
    """
    return _pick(kpis, {"cost_per_lead": "per lead",
                        "cost_per_opportunity": "per opportunity", "cac": "CAC",
                        "lead_to_opportunity": "to opportunity", "lead_to_won": "to customer"})

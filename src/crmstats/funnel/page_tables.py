"""The funnel and lead-scoring studies' tables for a book page: a few columns, short headers.

:func:`~crmstats.funnel.lead_kpis` per channel holds twelve columns: right for an
analyst, a sideways-scrolling wall for a reader. The page shows them as two
tables, what each channel brings (:func:`lead_volume_table`) and what it costs
and how good its leads are (:func:`lead_quality_table`). A lead score's odds
ratios read as one figure with its interval in words (:func:`odds_table`), and
its bands by how often their leads reach the outcome (:func:`band_table`). The
results themselves are unchanged.
"""

from __future__ import annotations

import pandas as pd

from crmstats.page_tables import pick, ratio_table, require_columns

__all__ = ["band_table", "lead_period_table", "lead_quality_table", "lead_volume_table",
           "odds_table", "open_leads", "stage_rate_table"]



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
    return pick(kpis, {"spend": "spend", "leads": "leads", "qualified": "qualified",
                       "opportunities": "opportunities", "won": "won"}, "lead_kpis")


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
    return pick(kpis, {"cost_per_lead": "per lead", "cost_per_opportunity": "per opportunity",
                       "cac": "CAC", "lead_to_opportunity": "to opportunity",
                       "lead_to_won": "to customer"}, "lead_kpis")


def odds_table(coefficients: pd.DataFrame) -> pd.DataFrame:
    """Return a lead score's odds ratios for a page: each with its interval in words.

    Parameters
    ----------
    coefficients : pandas.DataFrame
        :attr:`LeadScoringModel.coefficients_ <crmstats.funnel.LeadScoringModel>`.

    Returns
    -------
    pandas.DataFrame
        One row per term but the intercept, named in words (``industry:
        software``; a level is compared with the base level); ``odds ratio``,
        ``95 % interval`` (text) and ``p-value``
        (:func:`crmstats.page_tables.ratio_table`). The coefficients and their
        standard errors stay in ``coefficients``.
    """
    return ratio_table(coefficients, "odds_ratio", "LeadScoringModel.coefficients_")


def band_table(bands: pd.DataFrame, outcome: pd.Series) -> pd.DataFrame:
    """Return how many scored leads fall in each band and how often they reached the outcome.

    Parameters
    ----------
    bands : pandas.DataFrame
        ``LeadScoringModel.score_bands(leads)`` (a ``band`` column).
    outcome : pandas.Series
        The leads' outcome (0/1, NaN where still open), indexed like ``bands``.

    Returns
    -------
    pandas.DataFrame
        Index ``band`` (A-D); ``leads`` (scored) and ``outcome rate`` (the
        share of them with the outcome, over those whose outcome is known).
    """
    require_columns(bands, ["band"], "LeadScoringModel.score_bands")
    known = pd.to_numeric(outcome.reindex(bands.index), errors="coerce")
    grouped = known.groupby(bands["band"], observed=True)
    return pd.DataFrame({"leads": grouped.size(), "outcome rate": grouped.mean()})


#: The volumes :func:`lead_period_table` sums over channels.
_VOLUMES = ["spend", "leads", "qualified", "opportunities", "won"]


def lead_period_table(kpis: pd.DataFrame, last: int = 12) -> pd.DataFrame:
    """Return the lead volumes per period over all channels, the latest ``last`` periods.

    Parameters
    ----------
    kpis : pandas.DataFrame
        :func:`~crmstats.funnel.lead_kpis`' result with a ``period`` (index
        ``channel``, ``period``).
    last : int
        Periods shown (the latest).

    Returns
    -------
    pandas.DataFrame
        Index ``period``; ``spend``, ``leads``, ``qualified``,
        ``opportunities`` and ``won`` summed over the channels (empty where no
        channel has a figure).
    """
    require_columns(kpis, _VOLUMES, "lead_kpis")
    if "period" not in kpis.index.names:
        raise ValueError("expected the DataFrame returned by lead_kpis with a period "
                         f"(index levels channel, period); got {list(kpis.index.names)}")
    return kpis.groupby(level="period")[_VOLUMES].sum(min_count=1).tail(int(last))


def stage_rate_table(conversion: pd.DataFrame, rate: str = "conversion_to_won") -> pd.DataFrame:
    """Return a funnel breakdown's rate as one row per group and one column per stage.

    Parameters
    ----------
    conversion : pandas.DataFrame
        :func:`~crmstats.funnel.stage_conversion`' result with ``by=`` (index
        ``<group>``, ``stage``).
    rate : {"conversion_to_won", "conversion_to_next"}
        The rate shown.

    Returns
    -------
    pandas.DataFrame
        One row per group, one column per funnel stage but ``won`` (its
        rates are 1 by definition): the share of the contacts reaching the
        stage that became customers, or that moved on to the next stage.
    """
    require_columns(conversion, [rate], "stage_conversion")
    if "stage" not in conversion.index.names or conversion.index.nlevels != 2:
        raise ValueError("expected the DataFrame returned by stage_conversion with by= "
                         f"(index levels <group>, stage); got {list(conversion.index.names)}")
    return conversion[rate].unstack("stage").drop(columns="won", errors="ignore")


def open_leads(model, leads: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Return the leads still waiting for a decision, best score first, for a call list.

    Parameters
    ----------
    model : LeadScoringModel
        Fitted (its ``target_`` names the outcome column of ``leads``).
    leads : pandas.DataFrame
        :func:`~crmstats.funnel.lead_features`' result (not modified).
    top : int
        Rows returned.

    Returns
    -------
    pandas.DataFrame
        ``model.score_bands`` of the leads whose outcome is not known yet
        (``score`` and ``band``), highest scores first. Ids only: pass it
        through :func:`crmstats.privacy.pseudonymous` before publishing.
    """
    target = model.target_
    require_columns(leads, [target], "lead_features")
    scored = model.score_bands(leads[leads[target].isna()])
    return scored.sort_values("score", ascending=False, kind="stable").head(int(top))

"""Three views of a channel side by side: journeys, experiments and the media-mix model.

Journey attribution (:class:`~crmstats.attribution.MarkovAttribution`) says
which channels were *present* when customers bought; a holdout experiment
(:func:`~crmstats.attribution.lift_test`) measures what a channel *adds*, one
channel at a time; a media-mix model
(:class:`~crmstats.attribution.MediaMixModel`) reads what each channel's
*spend* returns from the weekly ups and downs of spend and sales. Each has its
blind spots — journeys over-credit channels aimed at people who would buy
anyway, experiments are noisy and few, a media-mix model cannot separate
channels whose spend moves together — so practice reads them side by side and
asks where they disagree [1]_ [2]_.

:func:`triangulate` puts them in one table per channel, on one scale (each
source's share of the channels' total) beside ROAS and CAC;
:func:`disagreements` lists the channels whose shares differ by more than a
threshold and names the source that stands apart; :func:`triangulation_finding`
says it in plain words.

References
----------
.. [1] Gordon, B. R., Zettelmeyer, F., Bhargava, N. and Chapsky, D. (2019). A
   comparison of approaches to advertising measurement: Evidence from big
   field experiments at Facebook. Marketing Science 38(2), 193-225.
.. [2] Chan, D. and Perry, M. (2017). Challenges and opportunities in media
   mix modeling. Google Inc. technical report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["disagreements", "media_data", "triangulate", "triangulate_crm",
           "triangulation_finding", "triangulation_view"]

#: The columns of :func:`triangulation_view`, for readers.
VIEW_COLUMNS = ("spend", "journey_share", "lift_share", "mmm_share", "roas", "calibrated_roas",
                "cac", "incremental_cac", "odd_source")

#: The sources whose shares are compared, with their names in plain words.
SOURCES = {"journey_share": "journey credit", "lift_share": "the holdout tests",
           "mmm_share": "the media-mix model"}


def _credit(journey: Any) -> pd.Series:
    frame = getattr(journey, "attribution_", journey)
    if isinstance(frame, pd.Series):
        return frame.astype(float)
    if not isinstance(frame, pd.DataFrame) or "conversions" not in frame.columns:
        raise DataError("triangulate: journey must be a fitted attribution model, its credit "
                        f"DataFrame (column conversions) or a Series; got {type(journey).__name__}")
    return frame["conversions"].astype(float)


def _spend(spend: Any) -> pd.Series:
    if isinstance(spend, pd.Series):
        return spend.astype(float)
    from crmstats.backend import execute
    from crmstats.validation import as_table

    t = as_table(spend, "spend")  # a DataFrame, a path or an Ibis table; checked
    frame = execute(t.group_by(channel=t.channel.cast("string")).aggregate(cost=t.cost.sum()))
    return frame.set_index("channel")["cost"].astype(float)


def _media(model: Any, prefix: str) -> pd.DataFrame:
    for attr in ("roas_", "mroas_", "contributions_", "channels_"):
        if not hasattr(model, attr):
            raise DataError(f"triangulate: {prefix or 'media'} must be a fitted MediaMixModel "
                            f"(no {attr})")
    out = {}
    for name, frame in (("roas", model.roas_), ("mroas", model.mroas_)):
        out[f"{prefix}{name}"] = frame["estimate"]
        out[f"{prefix}{name}_lower_95"] = frame["lower_95"]
        out[f"{prefix}{name}_upper_95"] = frame["upper_95"]
    table = pd.DataFrame(out)
    if not prefix:
        contrib = model.contributions_[list(model.channels_)].sum()
        table.insert(0, "mmm_contribution", contrib)
        total = contrib.clip(lower=0).sum()
        table.insert(1, "mmm_share", contrib / total if total > 0 else np.nan)
    table.index = table.index.astype(str)
    return table


def _share(values: pd.Series) -> pd.Series:
    total = values.clip(lower=0).sum()
    return values / total if total > 0 else values * np.nan


def triangulate(journey: Any = None, lifts: pd.DataFrame | None = None, media: Any = None,
                calibrated: Any = None, spend: Any = None) -> pd.DataFrame:
    """One row per channel: journey credit, experiment lift, MMM contribution and ROAS, CAC.

    Every source is optional; the table has the columns of the sources given.
    Shares are each source's part of the channels' total (a negative estimate
    counts as 0 in the total), so sources measured on different scales — all
    conversions credited, conversions added among the tested journeys, the
    outcome the media-mix model explains — can be compared.

    Parameters
    ----------
    journey : fitted model, DataFrame or Series, optional
        Journey credit, e.g. ``MarkovAttribution().fit(paths)``.
    lifts : pandas.DataFrame, optional
        :func:`~crmstats.attribution.lift_test`'s table.
    media : MediaMixModel, optional
        A fitted media-mix model without lift tests.
    calibrated : MediaMixModel, optional
        The same model fitted with the lift tests (``fit(crm, lift_tests=lifts)``).
    spend : DataFrame or Series, optional
        The spend table (``channel``, ``cost``) or spend per channel.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (every channel of any source); columns, as the
        sources allow: ``spend``; ``journey_conversions``, ``journey_share``;
        ``lift_conversions`` with ``lift_lower_95`` / ``lift_upper_95``,
        ``lift_share``; ``mmm_contribution``, ``mmm_share``, ``roas``,
        ``mroas`` with their ``*_lower_95`` / ``*_upper_95``;
        ``calibrated_roas``, ``calibrated_mroas`` with intervals; ``cac``
        (spend per journey-credited conversion) and ``incremental_cac``
        (spend per conversion the holdout test says the channel adds; NaN
        when that is not positive); ``share_spread`` (largest minus smallest
        share of the sources given) and ``odd_source`` (the source farthest
        from the others' median; empty with fewer than three shares).
    """
    parts = []
    if spend is not None:
        parts.append(_spend(spend).rename("spend").to_frame())
    if journey is not None:
        credit = _credit(journey)
        parts.append(pd.DataFrame({"journey_conversions": credit,
                                   "journey_share": _share(credit)}))
    if lifts is not None:
        need = {"incremental_conversions", "incremental_lower_95", "incremental_upper_95"}
        if not isinstance(lifts, pd.DataFrame) or not need <= set(lifts.columns):
            raise DataError("triangulate: lifts must be lift_test's table (columns "
                            f"{', '.join(sorted(need))})", table="experiments")
        inc = lifts["incremental_conversions"].astype(float)
        parts.append(pd.DataFrame({
            "lift_conversions": inc,
            "lift_lower_95": lifts["incremental_lower_95"].astype(float),
            "lift_upper_95": lifts["incremental_upper_95"].astype(float),
            "lift_share": _share(inc)}))
    if media is not None:
        parts.append(_media(media, ""))
    if calibrated is not None:
        parts.append(_media(calibrated, "calibrated_"))
    if not parts:
        raise DataError("triangulate: no source given (journey, lifts, media, calibrated, spend)")
    for p in parts:
        p.index = p.index.astype(str)
    table = pd.concat(parts, axis=1).sort_index()
    table.index.name = "channel"
    if "spend" in table:
        with np.errstate(divide="ignore", invalid="ignore"):
            if "journey_conversions" in table:
                conv = table["journey_conversions"]
                table["cac"] = (table["spend"] / conv).where(conv > 0)
            if "lift_conversions" in table:
                conv = table["lift_conversions"]
                table["incremental_cac"] = (table["spend"] / conv).where(conv > 0)
    shares = table[[c for c in SOURCES if c in table]]
    if shares.shape[1] >= 2:
        table["share_spread"] = shares.max(axis=1) - shares.min(axis=1)
    if shares.shape[1] >= 3:
        table["odd_source"] = [_odd(row) for _, row in shares.iterrows()]
    return table


def _odd(row: pd.Series) -> str:
    """Name the source farthest from the median of the other sources ('' when unknown)."""
    row = row.dropna()
    if len(row) < 3:
        return ""
    dist = {c: abs(row[c] - row.drop(c).median()) for c in row.index}
    return SOURCES[max(dist, key=dist.get)]


def disagreements(table: pd.DataFrame, *, min_points: float = 0.05) -> pd.DataFrame:
    """List the channels whose sources' shares differ by ``min_points`` or more, largest first.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`triangulate`'s table (at least two sources' shares).
    min_points : float
        Smallest difference of shares that counts (0.05 = 5 share points).

    Returns
    -------
    pandas.DataFrame
        Rows of ``table`` (the share columns, ``share_spread`` and, with three
        sources, ``odd_source``), largest spread first.
    """
    if "share_spread" not in table:
        raise DataError("disagreements: the table needs the shares of at least two sources "
                        "(journey, lifts, media)")
    cols = [c for c in (*SOURCES, "share_spread", "odd_source") if c in table]
    out = table.loc[table["share_spread"] >= float(min_points), cols]
    return out.sort_values("share_spread", ascending=False, kind="mergesort")


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %" if np.isfinite(x) else "n/a"


def triangulation_finding(table: pd.DataFrame, *, min_points: float = 0.05,
                          max_channels: int = 3) -> str:
    """Where the sources disagree, in plain words (one sentence per channel, at most a few).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`triangulate`'s table.
    min_points : float
        See :func:`disagreements`.
    max_channels : int
        Channels named at most (the largest disagreements).

    Returns
    -------
    str
    """
    found = disagreements(table, min_points=min_points)
    n_sources = sum(c in table for c in SOURCES)
    if found.empty:
        return (f"The {n_sources} sources agree: no channel's share differs by "
                f"{100 * min_points:.0f} share points or more between them.")
    sentences = []
    for channel, row in found.head(int(max_channels)).iterrows():
        name = str(channel).replace("_", " ")
        views = ", ".join(f"{SOURCES[c]} {_pct(row[c])}" for c in SOURCES
                          if c in row.index and pd.notna(row[c]))
        odd = row.get("odd_source", "")
        tail = f"; {odd} stand{'' if odd == SOURCES['lift_share'] else 's'} apart" if odd else ""
        sentences.append(f"{name}: {views}{tail}.")
    more = len(found) - len(sentences)
    extra = f" ({more} more not named)" if more > 0 else ""
    plural = "s" if len(found) > 1 else ""
    return (f"The sources disagree by {100 * min_points:.0f} share points or more on {len(found)} "
            f"channel{plural}{extra}; each source's share of the channels' total: "
            + " ".join(sentences))


def triangulate_crm(crm: Any, media: Any) -> pd.DataFrame:
    """:func:`triangulate` with every source a CRM holds, beside a fitted media-mix model.

    Journey credit is a first-order Markov model of the journeys (when the CRM
    has ``touchpoints`` and ``conversions``); the lift tests come from its
    ``experiments`` table when it has one, and then ``media`` is fitted again
    with them (``fit(crm, lift_tests=...)``, same hyperparameters) for the
    calibrated ROAS; spend is the ``spend`` table's.

    Parameters
    ----------
    crm : CRMData
    media : MediaMixModel
        Fitted on ``crm``.

    Returns
    -------
    pandas.DataFrame
        :func:`triangulate`'s table.
    """
    import warnings

    from crmstats.attribution.experiments import lift_test
    from crmstats.attribution.markov import MarkovAttribution
    from crmstats.attribution.paths import build_paths

    has = crm.tables()
    journey = lifts = calibrated = None
    if "touchpoints" in has and "conversions" in has:
        with warnings.catch_warnings():
            # conversions without a touch (journeys withheld from every channel) are noted
            # by the incrementality study; here they only leave the journey credit
            warnings.simplefilter("ignore")
            journey = MarkovAttribution().fit(build_paths(crm.touchpoints, crm.conversions))
    if "experiments" in has and "conversions" in has:
        lifts = lift_test(crm.experiments, crm.conversions)
        hyper = {name: getattr(media, name) for name in media._hyper}
        calibrated = type(media)(**hyper).fit(crm, lift_tests=lifts)
    return triangulate(journey, lifts, media=media, calibrated=calibrated,
                       spend=crm.spend if "spend" in has else None)


def media_data(source: Any = "demo", *, demo_media_share: float = 0.35,
               demo_holdout_share: float = 0.1) -> Any:
    """Load a data source for the budget study: it must hold spend and conversions.

    Parameters
    ----------
    source : str, path or CRMData
        Any data source of :func:`crmstats.load_crm`. A simulated demo source
        (``"demo"``, ``"demo:seed=3,..."``) gets ``media_share`` (weekly media
        spend that brings contacts, see :func:`crmstats.datasets.simulate_crm`)
        and ``holdout_share`` (holdout experiments) unless it sets them.
    demo_media_share, demo_holdout_share : float
        The demo's options when the source does not set them.

    Returns
    -------
    CRMData
        With ``spend`` and ``conversions``.

    Raises
    ------
    DataError
        When the source has no spend or conversions table.
    """
    from crmstats.sources import load_crm

    if isinstance(source, str) and source.strip().partition(":")[0] == "demo":
        text = source.strip()
        head, _, options = text.partition(":")
        extra = [f"{name}={value}" for name, value in (("media_share", demo_media_share),
                                                       ("holdout_share", demo_holdout_share))
                 if name not in options]
        source = f"{head}:{','.join([o for o in [options] if o] + extra)}"
    crm = load_crm(source)
    crm.require("spend", "conversions")
    return crm


def triangulation_view(table: pd.DataFrame) -> pd.DataFrame:
    """Return the columns of :func:`triangulate`'s table a reader needs, always the same ones.

    ``spend``, the three sources' shares, ROAS, calibrated ROAS, CAC,
    incremental CAC and the source that stands apart (NaN, or empty, where a
    source was not available), so a page can format them by name.
    """
    out = table.reindex(columns=list(VIEW_COLUMNS))
    out["odd_source"] = out["odd_source"].astype(object).fillna("")
    return out

"""Attribution's and incrementality's tables for a book page: a few columns, short headers.

The results themselves are wide (``lift_test``: 14 columns, ``calibrate``: 13,
``incremental_economics``: 11, ``channel_economics``: 22): right for an analyst,
a sideways-scrolling wall for a reader. Each function here picks what a page
needs from one result (:func:`crmstats.page_tables.pick`), names it in a word or
two and says each 95 % interval as one piece of text ("-1.7 % to 4.3 %",
"$73.18 or more"); the results themselves are unchanged, and a page that wants
more shows them.
"""

from __future__ import annotations

import pandas as pd

from crmstats.formatting import MISSING, fmt_interval, fmt_number, fmt_ratio, is_missing
from crmstats.page_tables import INTERVAL, pick, require_columns

__all__ = ["CREDIT_MODELS", "acquisition_table", "calibration_table", "cost_table",
           "credit_note", "credit_table", "incremental_table", "lift_table", "new_customer_table",
           "path_table", "return_table"]

#: The models :func:`credit_table` shows by default: the rule CRMs report, the
#: journey model the book's economics use, and the counterfactual model.
CREDIT_MODELS = ("last touch", "Markov (order 1)", "counterfactual")

def lift_table(lifts: pd.DataFrame) -> pd.DataFrame:
    """Return the holdout tests for a page: the lift with its interval, and both groups' rates.

    Parameters
    ----------
    lifts : pandas.DataFrame
        :func:`~crmstats.attribution.lift_test`'s result.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``lift`` (the difference of the conversion rates,
        a share), ``95 % interval`` (text), ``p-value``, ``treatment rate``
        and ``holdout rate`` (shares). The group sizes, the relative lift and
        the incremental conversions stay in ``lifts``.
    """
    return pick(lifts, {"lift": "lift", "p_value": "p-value", "treatment_rate": "treatment rate",
                        "holdout_rate": "holdout rate"}, "lift_test",
                interval=("lower_95", "upper_95", "pct"))


def incremental_table(attribution: pd.DataFrame) -> pd.DataFrame:
    """Return a counterfactual model's incremental conversions per channel for a page.

    Parameters
    ----------
    attribution : pandas.DataFrame
        :attr:`IncrementalityModel.attribution_
        <crmstats.attribution.IncrementalityModel>`.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``sales added`` (incremental conversions), ``95 %
        interval`` (text), ``value`` (money) and ``share`` (of the channels'
        total added sales).
    """
    return pick(attribution, {"conversions": "sales added", "value": "value", "share": "share"},
                "IncrementalityModel.attribution_", interval=("lower_95", "upper_95", "number"))


def calibration_table(calibrated: pd.DataFrame) -> pd.DataFrame:
    """Return the calibrated credit for a page: what it is, and the model and experiment in it.

    Parameters
    ----------
    calibrated : pandas.DataFrame
        :func:`~crmstats.attribution.calibrate`'s result.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; ``calibrated`` (incremental conversions), ``95 %
        interval`` (text), ``model`` (the model's estimate), ``experiment``
        (the holdout test's; NaN where untested) and ``weight`` (the
        experiment's part in the combination, 0-1; NaN where untested). The
        shares are in the page's figure; the standard errors and the bias
        model stay in ``calibrated``.
    """
    out = pick(calibrated, {"conversions": "calibrated", "model": "model", "lift": "experiment",
                            "weight_lift": "weight"}, "calibrate",
               interval=("lower_95", "upper_95", "number"))
    if "tested" in calibrated:
        untested = ~calibrated["tested"].astype(bool)
        out.loc[untested, ["experiment", "weight"]] = float("nan")
    return out


def cost_table(economics: pd.DataFrame) -> pd.DataFrame:
    """Return what each channel's added sales cost, for a page.

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`~crmstats.attribution.incremental_economics`'s result.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (and ``total`` when the result has it); ``CAC``
        (incremental: spend per added sale), ``95 % interval`` (text, money;
        "or more" where the added sales' interval reaches zero), ``spend``,
        ``sales added`` (calibrated incremental conversions) and ``ROAS``
        (incremental value over spend, a ratio). The other intervals and the
        value stay in ``economics``.
    """
    return pick(economics, {"incremental_cac": "CAC", "spend": "spend",
                            "incremental_conversions": "sales added", "incremental_roas": "ROAS"},
                "incremental_economics", interval=("cac_lower_95", "cac_upper_95", "money"))


def acquisition_table(economics: pd.DataFrame) -> pd.DataFrame:
    """Return a channel's funnel and what it cost, for a page (the first half of its economics).

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`~crmstats.attribution.channel_economics`'s result.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (and ``total``); ``spend``, ``leads``, ``cost per
        lead``, ``customers`` (as the chosen model credits them) and ``CAC``
        (spend per customer): spend to leads to customers, each step with its
        cost. Six columns with the channel fit a laptop's page column; the
        return on that spend is :func:`return_table`, the opportunities and
        their cost stay in ``economics`` (the funnel study shows the stages).
    """
    return pick(economics, {"spend": "spend", "leads": "leads", "cost_per_lead": "cost per lead",
                            "customers": "customers", "cac": "CAC"}, "channel_economics")


def return_table(economics: pd.DataFrame) -> pd.DataFrame:
    """Return what a channel's customers bring back, for a page (the second half of its economics).

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`~crmstats.attribution.channel_economics`'s result.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (and ``total``); ``CAC``, ``value`` (the first
        orders' value), ``ROAS`` (value over spend), ``LTV`` (per customer),
        ``LTV:CAC`` and ``payback months`` (text: "first order" when the
        first order's margin already covers the CAC).
    """
    out = pick(economics, {"cac": "CAC", "value": "value", "roas": "ROAS", "ltv": "LTV",
                           "ltv_cac": "LTV:CAC", "payback_months": "payback months"},
               "channel_economics")
    out["payback months"] = _payback_words(economics["payback_months"])
    return out


def new_customer_table(economics: pd.DataFrame) -> pd.DataFrame:
    """Return what a channel's next customer is worth against what it costs, for a page.

    Parameters
    ----------
    economics : pandas.DataFrame
        :func:`~crmstats.attribution.new_customer_economics`'s result (or
        :func:`~crmstats.attribution.channel_economics`' with a new customer's
        value).

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (and ``total``); ``new LTV:CAC`` (a new customer's
        first order plus the expected value of its repeat purchases, over
        CAC), ``95 % interval`` (text), ``so far`` (the LTV:CAC of the
        channel's customers so far), ``CAC`` and ``payback months`` (of a new
        customer; "first order" when its margin covers the CAC). The new
        customer's value itself, with its interval, is
        :func:`crmstats.clv.channel_value_table` (the page shows it just
        before); the other intervals stay in ``economics``.
    """
    lower, upper = "new_ltv_cac_lower_95", "new_ltv_cac_upper_95"
    out = pick(economics, {"new_ltv_cac": "new LTV:CAC", "ltv_cac": "so far", "cac": "CAC",
                           "new_payback_months": "payback months"},
               "new_customer_economics", interval=(lower, upper, "number"))
    # a ratio's bounds read as ratios, like the column they belong to ("2.26x to 3.02x")
    out[INTERVAL] = [MISSING if is_missing(lo) or is_missing(hi)
                     else f"{fmt_ratio(lo)} to {fmt_ratio(hi)}"
                     for lo, hi in zip(economics[lower], economics[upper], strict=True)]
    out["payback months"] = _payback_words(economics["new_payback_months"])
    return out


def _payback_words(months: pd.Series) -> list[str]:
    """Months to pay back the CAC as text: "first order" when its margin covers the CAC.

    "never" when the expected purchases do not pay it back; three significant
    digits, as the findings say them. (A payback of 0.00 months read as a
    missing figure.)
    """
    return [MISSING if is_missing(m) else "first order" if m == 0
            else "never" if m == float("inf") else fmt_number(m, 3) for m in months]


def path_table(paths: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Return the most frequent journeys for a page, each path said in words.

    Parameters
    ----------
    paths : pandas.DataFrame
        :func:`~crmstats.attribution.build_paths`' result (one row per
        distinct path, most frequent first).
    top : int
        Rows shown.

    Returns
    -------
    pandas.DataFrame
        Index ``journey`` (the channels in order, ``"paid search → email"``);
        ``sales``, ``value`` (their first orders' value) and ``no sale`` (the
        journeys that did not convert). The other columns (time-decayed
        credit, covariates) stay in ``paths``.
    """
    out = pick(paths, {"conversions": "sales", "value": "value", "nulls": "no sale"},
               "build_paths").head(int(top))
    journeys = paths["path"].head(int(top))
    out.index = pd.Index([" → ".join(str(c).replace("_", " ") for c in p) for p in journeys],
                         name="journey")
    return out


def _credit_columns(shares: pd.DataFrame, show) -> tuple[list[str], list[str]]:
    """Return the models of ``shares`` shown (in ``show``'s order) and those with shares."""
    require_columns(shares, [], "credit_shares")
    scored = [m for m in shares.columns if shares[m].notna().any()]
    shown = [m for m in dict.fromkeys(show) if m in shares.columns]
    return shown, scored


def credit_table(shares: pd.DataFrame, show=CREDIT_MODELS) -> pd.DataFrame:
    """Return a few models' credit shares for a page, and the range over every model.

    ``credit_shares`` has a column per model (ten in the attribution study):
    too wide for a page column, and the figure beside it shows them all. The
    page shows the models in ``show`` and, per channel, the lowest and highest
    share any model gives it; :func:`credit_note` names the models left out.

    Parameters
    ----------
    shares : pandas.DataFrame
        :func:`~crmstats.attribution.credit_shares`' result (not modified).
    show : sequence of str
        Models to show, in order (default :data:`CREDIT_MODELS`); a name that
        is not a column of ``shares`` is skipped, a name given twice shown once.

    Returns
    -------
    pandas.DataFrame
        Index ``channel``; the shares of each shown model (fractions; empty
        where the model's are, see ``credit_shares``) and ``range`` (text,
        "7.0 % to 14.9 %": the lowest to the highest share over every model
        with shares; "—" when none has).
    """
    shown, scored = _credit_columns(shares, show)
    out = shares[shown].copy()
    low, high = shares[scored].min(axis=1), shares[scored].max(axis=1)
    out["range"] = [fmt_interval(lo, hi, "pct") for lo, hi in zip(low, high, strict=True)]
    return out


def credit_note(shares: pd.DataFrame, show=CREDIT_MODELS) -> str:
    """Say which models :func:`credit_table` leaves out, in one sentence for its caption.

    Parameters
    ----------
    shares : pandas.DataFrame
        :func:`~crmstats.attribution.credit_shares`' result.
    show : sequence of str
        The models the table shows (as given to :func:`credit_table`).

    Returns
    -------
    str
        E.g. "Range: the lowest to the highest share over all 10 models; the
        table leaves out first touch, linear and Shapley (the figure shows
        every model)." Empty when the table shows every model.
    """
    shown, scored = _credit_columns(shares, show)
    left = [str(m) for m in shares.columns if m not in shown]
    if not left:
        return ""
    names = left[0] if len(left) == 1 else f"{', '.join(left[:-1])} and {left[-1]}"
    counted = f"all {len(scored)} models" if len(scored) > 1 else "the one model with shares"
    return (f"Range: the lowest to the highest share over {counted}; the table leaves out "
            f"{names} (the figure shows every model).")

"""Key findings of the incrementality study, written from its results."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["incrementality_findings"]


def _pct(x: float, signed: bool = False) -> str:
    from crmstats.book.report import fmt_pct

    return fmt_pct(x, signed=signed)


def _money(x: float) -> str:
    from crmstats.book.report import fmt_money

    return fmt_money(x)


def incrementality_findings(lifts: pd.DataFrame, calibrated: pd.DataFrame,
                            economics: pd.DataFrame | None = None,
                            journey_shares: pd.Series | None = None,
                            truth_error: pd.Series | None = None) -> list[str]:
    """Three to five plain sentences summarising what each channel adds.

    Parameters
    ----------
    lifts : pandas.DataFrame
        :func:`~crmstats.attribution.lift_test` output.
    calibrated : pandas.DataFrame
        :func:`~crmstats.attribution.calibrate` output.
    economics : pandas.DataFrame, optional
        :func:`~crmstats.attribution.incremental_economics` output.
    journey_shares : pandas.Series, optional
        One journey model's credit shares, to say where it disagrees most.
    truth_error : pandas.Series, optional
        Mean absolute share error per model against a known truth (simulated data).

    Returns
    -------
    list of str
    """
    out = []
    sig = lifts[(lifts["p_value"] < 0.05) & (lifts["lift"] > 0)]
    if len(lifts):
        best = lifts["relative_lift"].idxmax()
        out.append(
            f"{len(sig)} of {len(lifts)} channels tested with holdouts raise conversion "
            f"significantly (5 % level); the largest relative lift is {best} "
            f"({_pct(lifts.loc[best, 'relative_lift'], True)}, 95 % interval "
            f"{_pct(lifts.loc[best, 'relative_lower_95'], True)} to "
            f"{_pct(lifts.loc[best, 'relative_upper_95'], True)}).")
    flat = lifts[lifts["lower_95"] <= 0]
    if len(flat):
        out.append("No lift can be told from zero yet for " + ", ".join(flat.index[:4])
                   + (" and others" if len(flat) > 4 else "")
                   + ": their holdouts are too small or their effect is small.")
    share = calibrated["share"].sort_values(ascending=False)
    out.append(f"Calibrated by the experiments, {share.index[0]} adds the most conversions "
               f"({_pct(share.iloc[0])} of all incremental conversions), then {share.index[1]} "
               f"({_pct(share.iloc[1])}).")
    if journey_shares is not None:
        diff = (calibrated["share"] - journey_shares.reindex(calibrated.index).fillna(0.0))
        c = diff.abs().idxmax()
        word = "under" if diff[c] > 0 else "over"
        out.append(f"The journey model {word}-credits {c} most: {_pct(journey_shares.get(c, 0))} "
                   f"of the credit against {_pct(calibrated.loc[c, 'share'])} of what the "
                   "channels add.")
    if economics is not None and "incremental_cac" in economics:
        eco = economics.drop(index="total", errors="ignore")
        eco = eco[np.isfinite(eco["incremental_cac"]) & (eco["incremental_cac"] > 0)]
        if len(eco):
            cheap, dear = eco["incremental_cac"].idxmin(), eco["incremental_cac"].idxmax()
            out.append(f"Per incremental customer, {cheap} is the cheapest channel "
                       f"({_money(eco.loc[cheap, 'incremental_cac'])} per customer it adds) and "
                       f"{dear} the dearest ({_money(eco.loc[dear, 'incremental_cac'])}).")
    if truth_error is not None and len(out) < 5:
        best = truth_error.idxmin()
        out.append(f"Against the simulator's known truth, {best} is closest "
                   f"({100 * truth_error[best]:.1f} share points off on average per channel).")
    return out[:5]

"""Survival of customers and accounts: Kaplan-Meier, log-rank, sBG projection.

The churn-driver models (Cox, and the sBG with drivers) are estimators in
:mod:`crmstats.churn.cox` and :mod:`crmstats.churn.hazard`.

Works on small per-customer frames (one row per customer or account, e.g. from
:func:`crmstats.churn.account_lifetimes`), so plain pandas and statsmodels.

References
----------
.. [1] Kaplan, E. L. and Meier, P. (1958). Nonparametric estimation from
   incomplete observations. JASA 53(282), 457-481.
.. [2] Cox, D. R. (1972). Regression models and life-tables. JRSS B 34(2), 187-220.
.. [5] Hall, W. J. and Wellner, J. A. (1980). Confidence bands for a survival
   curve from censored data. Biometrika 67(1), 133-143.
.. [3] Grambsch, P. M. and Therneau, T. M. (1994). Proportional hazards tests and
   diagnostics based on weighted residuals. Biometrika 81(3), 515-526.
.. [4] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from crmstats.exceptions import ConvergenceWarning, DataError, DataWarning
from crmstats.vocabulary import interval_columns, renamed_arguments, with_old_column_names

__all__ = ["SurvivalCurves", "project_retention", "survival_curves"]


def _frame(data, columns: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{what}: expected a DataFrame with one row per customer, got "
                        f"{type(data).__name__}", table=what)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataError(f"{what} table: missing column(s) {', '.join(missing)}", table=what,
                        column=missing[0])
    if data.empty:
        raise DataError(f"{what} table is empty", table=what)
    return data


def _durations(data: pd.DataFrame, duration_col: str, event_col: str, what: str):
    d = pd.to_numeric(data[duration_col], errors="coerce").to_numpy(dtype=float)
    e = pd.to_numeric(data[event_col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        rows = list(data.index[bad][:5])
        raise DataError(f"{what} table, column {duration_col!r}: missing or negative "
                        f"durations, e.g. rows {rows}", table=what, column=duration_col,
                        rows=rows)
    bad = ~np.isin(e, (0.0, 1.0))
    if bad.any():
        rows = list(data.index[bad][:5])
        raise DataError(f"{what} table, column {event_col!r}: events must be 0 (censored) "
                        f"or 1 (churned), e.g. rows {rows}", table=what, column=event_col,
                        rows=rows)
    return d, e.astype(int)


@dataclass(frozen=True)
class SurvivalCurves:
    """Result of :func:`survival_curves`.

    Attributes
    ----------
    curves : pandas.DataFrame
        Columns ``group``, ``time``, ``survival``, ``survival_lower_95``,
        ``survival_upper_95``, ``survival_band_lower_95``,
        ``survival_band_upper_95``, ``at_risk``: the Kaplan-Meier step
        function with pointwise log(-log) confidence intervals and a
        simultaneous Hall-Wellner band (which covers the whole true curve
        with the stated confidence; tabulated at 95 % only, NaN at other
        levels), starting at time 0 with survival 1.
        The interval columns are named for the level (``_90`` at 0.9); their
        old names ``lower``, ``upper``, ``band_lower``, ``band_upper`` read
        them for one release.
    medians : pandas.DataFrame
        Index ``group``; ``customers``, ``events``, ``median`` lifetime and its
        confidence interval ``median_lower_95``/``median_upper_95`` (NaN where
        not reached; old names ``lower``/``upper``).
    logrank : pandas.Series or None
        ``statistic``, ``df`` and ``p_value`` of the log-rank test between
        groups (None for one group).
    level : float
        Coverage of the intervals and bands.
    """

    curves: pd.DataFrame
    medians: pd.DataFrame
    logrank: pd.Series | None
    level: float = 0.95

    def at(self, times) -> pd.DataFrame:
        """Survival (and band) of each group at the given times (step function)."""
        rows = []
        for group, curve in self.curves.groupby("group", sort=False):
            idx = np.searchsorted(curve["time"].to_numpy(), np.asarray(times, float),
                                  side="right") - 1
            part = curve.iloc[np.clip(idx, 0, None)][
                ["survival", *interval_columns("survival", self.level),
                 *interval_columns("survival_band", self.level)]].copy()
            part.insert(0, "time", np.asarray(times, float))
            part.insert(0, "group", group)
            rows.append(part)
        (s_lo, s_hi), (b_lo, b_hi) = (interval_columns(q, self.level)
                                      for q in ("survival", "survival_band"))
        return with_old_column_names(pd.concat(rows, ignore_index=True),
                                     {"lower": s_lo, "upper": s_hi, "band_lower": b_lo,
                                      "band_upper": b_hi})


@renamed_arguments(alpha=("level", lambda alpha: 1.0 - float(alpha)))
def survival_curves(
    customers: pd.DataFrame,
    *,
    by: str | None = None,
    level: float = 0.95,
    duration_col: str | None = None,
    event_col: str | None = None,
) -> SurvivalCurves:
    """Kaplan-Meier survival per group, median lifetime, and the log-rank test [1]_.

    Parameters
    ----------
    customers : pandas.DataFrame
        One row per customer or account (e.g.
        :func:`~crmstats.churn.account_lifetimes`): ``duration``, the time
        observed (the period of churn, or for a censored customer the last
        period it is known to have survived), and ``churned``, 1 if the
        customer churned at that time, 0 if still active (censored).
    by : str, optional
        Column whose groups are compared (e.g. segment, acquisition channel).
    level : float
        Coverage of the bands and median intervals (``alpha`` = 1 − level is
        its old form, deprecated).
    duration_col, event_col : str, optional
        The caller's names of the ``duration`` and ``churned`` columns.

    Returns
    -------
    SurvivalCurves
    """
    from statsmodels.duration.survfunc import SurvfuncRight, survdiff

    duration_col, event_col = duration_col or "duration", event_col or "churned"
    cols = [duration_col, event_col] + ([by] if by else [])
    data = _frame(customers, cols, "customers")
    d, e = _durations(data, duration_col, event_col, "customers")
    groups = (data[by].astype(str).to_numpy() if by
              else np.full(len(data), "all", dtype=object))
    if not 0 < float(level) < 1:
        raise ValueError(f"level is a coverage in (0, 1), got {level}")
    # statsmodels' argument; rounded, because its Hall-Wellner band accepts exactly 0.05
    # (1 - 0.95 is 0.050000000000000044: the band fell back to the pointwise interval)
    alpha = round(1.0 - float(level), 12)
    z = special.ndtri(1 - alpha / 2)  # standard normal quantile
    (s_lo, s_hi), (b_lo, b_hi) = (interval_columns(q, level) for q in ("survival", "survival_band"))
    m_lo, m_hi = interval_columns("median", level)
    curves, medians = [], []
    for g in pd.unique(groups):
        mask = groups == g
        sf = SurvfuncRight(d[mask], e[mask])
        times = np.asarray(sf.surv_times, float)
        s = np.asarray(sf.surv_prob, float)
        se = np.asarray(sf.surv_prob_se, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            # log(-log S) transform keeps the band inside (0, 1)
            theta = se / (s * np.abs(np.log(s)))
            lower = s ** np.exp(z * theta)
            upper = s ** np.exp(-z * theta)
        lower = np.where(np.isfinite(lower), lower, np.where(s >= 1, 1.0, 0.0))
        upper = np.where(np.isfinite(upper), upper, np.where(s >= 1, 1.0, s))
        # simultaneous (Hall-Wellner) band: covers the whole curve with 1 - alpha
        if alpha != 0.05:  # statsmodels tabulates the Hall-Wellner band at 95 % only
            band_lo = band_hi = np.full(len(s), np.nan)
        else:
            try:
                band_lo, band_hi = sf.simultaneous_cb(alpha=alpha, method="hw",
                                                      transform="log")
                band_lo = np.where(np.isfinite(band_lo), band_lo, lower)
                band_hi = np.where(np.isfinite(band_hi), np.minimum(band_hi, 1.0), upper)
            except (ValueError, ZeroDivisionError, np.linalg.LinAlgError):
                band_lo, band_hi = lower, upper
        curves.append(pd.DataFrame({
            "group": g, "time": np.concatenate([[0.0], times]),
            "survival": np.concatenate([[1.0], s]),
            s_lo: np.concatenate([[1.0], lower]), s_hi: np.concatenate([[1.0], upper]),
            b_lo: np.concatenate([[1.0], band_lo]),
            b_hi: np.concatenate([[1.0], band_hi]),
            "at_risk": np.concatenate([[mask.sum()], np.asarray(sf.n_risk, float)]),
        }))
        med = sf.quantile(0.5)
        try:
            lo, hi = sf.quantile_ci(0.5, alpha=alpha)
        except (ValueError, ZeroDivisionError, IndexError):  # too few events for an interval
            lo, hi = np.nan, np.nan
        medians.append({"group": g, "customers": int(mask.sum()), "events": int(e[mask].sum()),
                        "median": float(med) if med is not None else np.nan,
                        m_lo: float(lo) if lo is not None else np.nan,
                        m_hi: float(hi) if hi is not None else np.nan})
    logrank = None
    if len(medians) > 1:
        chisq, _ = survdiff(d, e, groups)
        df = len(medians) - 1
        # the upper tail directly: statsmodels' 1 - cdf rounds p-values below ~1e-16 to 0
        logrank = pd.Series({"statistic": float(chisq), "df": df,
                             "p_value": float(special.chdtrc(df, chisq))}, name="log-rank")
    curves = with_old_column_names(pd.concat(curves, ignore_index=True),
                                   {"lower": s_lo, "upper": s_hi, "band_lower": b_lo,
                                    "band_upper": b_hi})
    medians = with_old_column_names(pd.DataFrame(medians).set_index("group"),
                                    {"lower": m_lo, "upper": m_hi})
    return SurvivalCurves(curves, medians, logrank, float(level))


@renamed_arguments(cohort_freq="period")
def project_retention(
    lifetimes: pd.DataFrame,
    *,
    fit_periods: int = 6,
    period: str = "Q",
    min_size: int = 10,
    start_col: str | None = None,
    duration_col: str | None = None,
    event_col: str | None = None,
) -> pd.DataFrame:
    """Fit the shifted-beta-geometric model per cohort and project its retention [4]_.

    For each start cohort, what was known after ``fit_periods`` periods —
    churns up to then, and every other account censored there or at its own
    last observed period — calibrates a
    :class:`~crmstats.clv.ShiftedBetaGeoModel` (its censored likelihood);
    the survival curve is then projected over every later age and set beside
    the Kaplan-Meier survival actually observed. When no cohort has
    ``min_size`` accounts, the accounts are projected pooled (a DataWarning
    says so).

    Parameters
    ----------
    lifetimes : pandas.DataFrame
        One row per account, e.g. :func:`crmstats.churn.account_lifetimes`:
        ``start`` (first period; cohorts group it by ``period``),
        ``duration`` (renewals faced) and ``churned`` (churn indicator).
    fit_periods : int
        Ages used to fit; later ages are projection.
    period : str
        Cohort granularity ("M", "Q", "Y"; ``cohort_freq`` is its old name,
        deprecated).
    min_size : int
        Cohorts with fewer accounts are left out.
    start_col, duration_col, event_col : str, optional
        The caller's names of the ``start``, ``duration`` and ``churned`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per cohort and age: ``cohort``, ``age``, ``observed``
        (Kaplan-Meier, NaN beyond the follow-up), ``projected``, ``fitted``
        (True on calibration ages), and the cohort's ``alpha``, ``beta`` and
        ``expected_lifetime`` (periods, from the fit).
    """
    cohort_col = start_col or "start"
    duration_col, event_col = duration_col or "duration", event_col or "churned"
    data = _frame(lifetimes, [cohort_col, duration_col, event_col], "lifetimes")
    d, e = _durations(data, duration_col, event_col, "lifetimes")
    start = pd.to_datetime(data[cohort_col])
    cohorts = start.dt.to_period(period).dt.start_time
    rows = _project_cohorts(d, e, cohorts.to_numpy(), fit_periods, min_size)
    if not rows:
        # too few accounts per cohort: project the pooled accounts instead
        rows = _project_cohorts(d, e, np.full(len(data), "all", dtype=object), fit_periods,
                                min(min_size, 5))
        if rows:
            warnings.warn(f"project_retention: no {period} cohort has {min_size} accounts "
                          "observed long enough; the accounts are projected pooled",
                          DataWarning, stacklevel=3)
    if not rows:
        raise DataError("lifetimes: no cohort is large enough (min_size) and observed long "
                        "enough to fit the sBG model", table="lifetimes", column=cohort_col)
    return pd.DataFrame(rows)


def _project_cohorts(d, e, cohorts, fit_periods, min_size) -> list[dict]:
    """Fit sBG per cohort on what was known after ``fit_periods``; compare with Kaplan-Meier."""
    from statsmodels.duration.survfunc import SurvfuncRight

    from crmstats.clv import ShiftedBetaGeoModel

    rows = []
    k = int(fit_periods)
    for cohort, idx in pd.Series(np.arange(len(d))).groupby(cohorts):
        pos = idx.to_numpy()
        if len(pos) < min_size:
            continue
        dd, ee = d[pos], e[pos]
        # sBG durations are the survival durations (a churn at renewal t is T = t, an
        # account still active has survived `duration` renewals); calibration sees
        # ages up to k only, so a later churn is censored at k.
        churn_seen = (ee == 1) & (dd <= k)
        duration = np.where(churn_seen, dd, np.minimum(dd, k))
        frame = pd.DataFrame({"duration": duration, "churned": churn_seen.astype(int)})
        if churn_seen.sum() < 1 or (frame["duration"] > 0).sum() < 2:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                model = ShiftedBetaGeoModel().fit(frame)
            except DataError:
                continue
        ages = np.arange(0, int(dd.max()) + 1)
        projected = np.asarray(model.survival(ages), float)
        km = SurvfuncRight(dd, ee)
        steps = np.concatenate([[0.0], np.asarray(km.surv_times, float)])
        values = np.concatenate([[1.0], np.asarray(km.surv_prob, float)])
        # observed (Kaplan-Meier) survival, defined while someone is still at risk
        horizon = dd.max() if (ee == 1).all() else dd[ee == 0].max()
        observed = np.where(ages <= horizon,
                            values[np.searchsorted(steps, ages, side="right") - 1], np.nan)
        lifetime = float(model.expected_lifetime())
        for a in ages:
            rows.append({"cohort": cohort, "age": int(a), "observed": observed[a],
                         "projected": projected[a], "fitted": bool(a <= k),
                         "alpha": model.params_["alpha"], "beta": model.params_["beta"],
                         "expected_lifetime": lifetime})
    return rows


def _hazard_ratio_table(summary: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Hazard ratios of ``covariates`` from a hazard model's ``summary_`` (log-hazard scale).

    Columns ``coef``, ``hazard_ratio``, ``hazard_ratio_lower_95``,
    ``hazard_ratio_upper_95`` (the 95 % interval of the ratio; old names ``lower``,
    ``upper``, read for one release) and ``p_value``; shared by
    :class:`~crmstats.churn.CoxModel` and :class:`~crmstats.churn.ShiftedBetaGeoHazardModel`.
    """
    s = summary.loc[list(covariates)]
    lo, hi = interval_columns("hazard_ratio")
    table = pd.DataFrame({
        "coef": s["estimate"], "hazard_ratio": np.exp(s["estimate"]),
        lo: np.exp(s["lower_95"]), hi: np.exp(s["upper_95"]),
        "p_value": s["p_value"]}, index=pd.Index(list(covariates), name="covariate"))
    return with_old_column_names(table, {"lower": lo, "upper": hi})

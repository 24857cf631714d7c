"""Lead scoring and look-alike prospects: logistic regression with statsmodels.

One shared, documented qualification model for marketing and sales: the
coefficients say which lead features raise the odds of qualifying (odds
ratios with confidence intervals and p-values), a held-out split says how
well the scores rank (AUC) and whether they can be read as probabilities
(calibration), and score bands A-D turn them into a handling rule.

References
----------
.. [1] Hosmer, D. W., Lemeshow, S. and Sturdivant, R. X. (2013). Applied
   Logistic Regression, 3rd ed. Wiley.
.. [2] Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area
   under a receiver operating characteristic (ROC) curve. Radiology 143, 29-36.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError

__all__ = ["COMPANY_SIZES", "LeadScoringModel", "auc", "lead_features", "lookalike_scores"]

#: Company size bands in order (their position is the ordinal ``company_size_code``).
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")

_BANDS = ("A", "B", "C", "D")


def lead_features(crm, *, target_stage: str = "qualified") -> pd.DataFrame:
    """One row per lead with its features and outcomes, from the contacts and stage events.

    Parameters
    ----------
    crm : CRMData
        With ``contacts`` (lead features) and ``stage_events``.
    target_stage : str
        The stage whose reaching is the ``qualified`` outcome.

    Returns
    -------
    pandas.DataFrame
        Index ``lead_id``; the contacts' feature columns (personal data
        dropped), ``company_size_code`` (ordinal position in
        :data:`COMPANY_SIZES`), and 0/1 outcomes ``qualified`` and ``won``.
    """
    from crmstats.funnel.summaries import lead_stage_times
    from crmstats.io import execute
    from crmstats.schema import PII_COLUMNS

    crm.require("contacts", "stage_events")
    per = lead_stage_times(crm.stage_events)
    leads = execute(per.filter(per.reached_lead).select(
        lead_id=per.lead_id.cast("string"), qualified=per[f"reached_{target_stage}"],
        won=per.reached_won))
    contacts = crm.contacts.drop(columns=[c for c in PII_COLUMNS if c in crm.contacts.columns])
    contacts = contacts.assign(contact_id=contacts["contact_id"].astype(str))
    frame = leads.merge(contacts, left_on="lead_id", right_on="contact_id", how="left")
    if "company_size" in frame.columns:
        codes = {size: i for i, size in enumerate(COMPANY_SIZES)}
        frame["company_size_code"] = frame["company_size"].map(codes)
    frame["qualified"] = frame["qualified"].astype(int)
    frame["won"] = frame["won"].astype(int)
    return frame.drop(columns=["contact_id"]).set_index("lead_id").sort_index()


def auc(y_true, score) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic [2]_."""
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if n1 == 0 or n0 == 0:
        return np.nan
    ranks = stats.rankdata(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


class LeadScoringModel:
    """Logistic lead-scoring model (statsmodels GLM, binomial family) [1]_.

    Parameters
    ----------
    test_size : float
        Share of leads held out to measure AUC and calibration.
    seed : int
        Seed of the held-out split.
    reference : mapping, optional
        Reference (baseline) level per categorical feature; default the most
        frequent level.

    Attributes
    ----------
    coefficients_ : pandas.DataFrame
        Per term: ``coef`` (log-odds), ``odds_ratio``, ``lower``/``upper``
        (95 % interval of the odds ratio), ``p_value``.
    auc_ : float
        Held-out AUC.
    calibration_ : pandas.DataFrame
        Held-out leads in ten score bins: ``leads``, ``predicted`` (mean
        score), ``observed`` (share with the outcome).
    band_edges_ : pandas.Series
        Score thresholds of bands A (top quarter of training scores) to D.
    """

    def __init__(self, test_size: float = 0.3, seed: int = 7,
                 reference: Mapping[str, str] | None = None):
        self.test_size = test_size
        self.seed = seed
        self.reference = dict(reference or {})

    def _design(self, frame: pd.DataFrame, fitting: bool) -> pd.DataFrame:
        cols = {}
        for f in self.features_:
            s = frame[f]
            if f in self.levels_:
                levels, ref = self.levels_[f]
                values = s.astype("string")
                unknown = ~values.isin(levels) & values.notna()
                if unknown.any() and fitting:
                    raise DataError(f"leads table, column {f!r}: unexpected level(s)",
                                    table="leads", column=f)
                for level in levels:
                    if level != ref:
                        cols[f"{f}[{level}]"] = (values == level).fillna(False).astype(float)
            else:
                cols[f] = pd.to_numeric(s, errors="coerce").astype(float)
        x = pd.DataFrame(cols, index=frame.index)
        x.insert(0, "intercept", 1.0)
        return x

    def fit(self, leads: pd.DataFrame, *, features: Sequence[str], target: str = "qualified"
            ) -> LeadScoringModel:
        """Fit on the training part of ``leads``; measure on the held-out part; return self."""
        import statsmodels.api as sm

        if not isinstance(leads, pd.DataFrame):
            raise DataError(f"leads: expected a DataFrame, got {type(leads).__name__}",
                            table="leads")
        features = list(features)
        missing = [c for c in [*features, target] if c not in leads.columns]
        if missing:
            raise DataError(f"leads table: missing column(s) {', '.join(missing)}",
                            table="leads", column=missing[0])
        y = pd.to_numeric(leads[target], errors="coerce")
        bad = ~y.isin([0, 1])
        if bad.any():
            rows = list(leads.index[bad.to_numpy()][:5])
            raise DataError(f"leads table, column {target!r}: outcomes must be 0 or 1, e.g. "
                            f"rows {rows}", table="leads", column=target, rows=rows)
        if y.nunique() < 2:
            raise DataError(f"leads table, column {target!r}: every lead has the same outcome; "
                            "nothing to score", table="leads", column=target)
        self.features_, self.target_ = features, target
        self.levels_ = {}
        for f in features:
            s = leads[f]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                values = s.astype("string")
                levels = sorted(values.dropna().unique())
                ref = self.reference.get(f, values.value_counts().idxmax())
                if ref not in levels:
                    raise DataError(f"leads table, column {f!r}: reference level {ref!r} does "
                                    "not occur", table="leads", column=f)
                self.levels_[f] = (levels, ref)
        x = self._design(leads, fitting=True)
        bad = ~np.isfinite(x.to_numpy()).all(axis=1)
        if bad.any():
            col = x.columns[~np.isfinite(x.to_numpy()).all(axis=0)][0]
            rows = list(leads.index[bad][:5])
            raise DataError(f"leads table, column {col!r}: missing or non-numeric values, e.g. "
                            f"rows {rows}", table="leads", column=col, rows=rows)
        rng = np.random.default_rng(self.seed)
        test = rng.random(len(leads)) < float(self.test_size)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = sm.GLM(y[~test].astype(float), x[~test],
                            family=sm.families.Binomial()).fit()
        for w in caught:
            if "converge" in str(w.message).lower() or "separation" in str(w.message).lower():
                warnings.warn(f"LeadScoringModel: {w.message}", ConvergenceWarning, stacklevel=2)
        self.result_ = result
        z = stats.norm.ppf(0.975)
        coef, se = result.params, result.bse
        self.coefficients_ = pd.DataFrame({
            "coef": coef, "odds_ratio": np.exp(coef), "lower": np.exp(coef - z * se),
            "upper": np.exp(coef + z * se), "p_value": result.pvalues,
        })
        self.coefficients_.index.name = "term"
        train_scores = np.asarray(result.predict(x[~test]), float)
        self.band_edges_ = pd.Series(np.quantile(train_scores, [0.75, 0.5, 0.25]),
                                     index=["A", "B", "C"], name="min_score")
        self.n_train_, self.n_test_ = int((~test).sum()), int(test.sum())
        if test.sum() >= 10:
            p = np.asarray(result.predict(x[test]), float)
            self.auc_ = auc(y[test], p)
            bins = pd.qcut(p, 10, duplicates="drop")
            cal = pd.DataFrame({"p": p, "y": y[test].to_numpy()}).groupby(bins, observed=True)
            self.calibration_ = pd.DataFrame({"leads": cal.size(), "predicted": cal["p"].mean(),
                                              "observed": cal["y"].mean()})
            self.calibration_.index = pd.RangeIndex(1, len(self.calibration_) + 1, name="bin")
            self.test_scores_ = pd.DataFrame({"score": p, "outcome": y[test].to_numpy()},
                                             index=leads.index[test])
        else:
            self.auc_, self.calibration_ = np.nan, pd.DataFrame()
            self.test_scores_ = pd.DataFrame(columns=["score", "outcome"])
        return self

    def predict_proba(self, leads: pd.DataFrame) -> pd.Series:
        """Return the modelled probability of the outcome for each lead."""
        if not hasattr(self, "result_"):
            raise CRMStatsError("LeadScoringModel is not fitted yet; call fit(leads, ...)")
        missing = [c for c in self.features_ if c not in leads.columns]
        if missing:
            raise DataError(f"leads table: missing column(s) {', '.join(missing)}",
                            table="leads", column=missing[0])
        x = self._design(leads, fitting=False)
        return pd.Series(np.asarray(self.result_.predict(x), float), index=leads.index,
                         name="score")

    def score_bands(self, leads: pd.DataFrame) -> pd.DataFrame:
        """Score leads and band them A (top quarter of training scores) to D."""
        score = self.predict_proba(leads)
        edges = self.band_edges_
        band = np.select([score >= edges["A"], score >= edges["B"], score >= edges["C"]],
                         ["A", "B", "C"], "D")
        return pd.DataFrame({"score": score, "band": pd.Categorical(band, categories=_BANDS,
                                                                    ordered=True)})


def lookalike_scores(
    customers: pd.DataFrame,
    prospects: pd.DataFrame,
    *,
    value: pd.Series,
    features: Sequence[str],
    top_share: float = 0.2,
    **model_args: Any,
) -> pd.DataFrame:
    """Rank prospects by their modelled likelihood of becoming a top-tier customer.

    Existing customers are labelled by whether their ``value`` (e.g. CLV) is
    in the top ``top_share``; a :class:`LeadScoringModel` learns that label
    from ``features``; prospects are scored and ranked.

    Returns
    -------
    pandas.DataFrame
        Prospects, best first: ``score`` (probability of the top tier),
        ``band`` (A-D) and ``lift`` (score ÷ the top-tier base rate).
        The model is in ``.attrs["model"]``.
    """
    if not 0 < float(top_share) < 1:
        raise ValueError(f"top_share must be in (0, 1), got {top_share}")
    v = pd.Series(value).reindex(customers.index)
    if v.isna().all():
        raise DataError("value: no value for any customer (index must match the customers')",
                        table="customers")
    known = customers[v.notna()].copy()
    cut = v.dropna().quantile(1 - float(top_share))
    known["_top"] = (v.dropna() >= cut).astype(int)
    model = LeadScoringModel(**model_args).fit(known, features=features, target="_top")
    out = model.score_bands(prospects)
    out["lift"] = out["score"] / known["_top"].mean()
    out = out.sort_values("score", ascending=False, kind="mergesort")
    out.attrs["model"] = model
    return out

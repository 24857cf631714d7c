"""Lead scoring and look-alike prospects: logistic regression with statsmodels.

One shared, documented qualification model for marketing and sales: the
coefficients say which lead features raise the odds of qualifying (odds
ratios with confidence intervals and p-values), a held-out split says how
well the scores rank (AUC) and whether they can be read as probabilities
(calibration), and score bands A-D turn them into a handling rule. The
look-alike model built on it is :mod:`crmstats.funnel.lookalike`.

References
----------
.. [1] Hosmer, D. W., Lemeshow, S. and Sturdivant, R. X. (2013). Applied
   Logistic Regression, 3rd ed. Wiley.
.. [2] Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area
   under a receiver operating characteristic (ROC) curve. Radiology 143, 29-36.
.. [3] Le Cessie, S. and van Houwelingen, J. C. (1992). Ridge estimators in
   logistic regression. Applied Statistics 41(1), 191-201.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import ibis
import numpy as np
import pandas as pd
from scipy import special

from crmstats.backend import execute
from crmstats.estimator import (
    Estimator,
    given_column,
    given_params,
    summary_table,
)
from crmstats.exceptions import ConvergenceWarning, CRMStatsError, DataError, DataWarning
from crmstats.funnel._irls import logistic_irls
from crmstats.funnel.summaries import lead_stage_times
from crmstats.sources import load_crm
from crmstats.vocabulary import interval_columns, with_old_column_names

__all__ = ["COMPANY_SIZES", "LeadScoringModel", "auc", "lead_features"]

#: Company size bands in order (their position is the ordinal ``company_size_code``).
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")

_BANDS = ("A", "B", "C", "D")


def lead_features(crm, *, target_stage: str = "qualified",
                  exit_stage: str = "unqualified") -> pd.DataFrame:
    """One row per lead with its features, its furthest stage and its outcomes.

    Parameters
    ----------
    crm : CRMData
        With ``contacts`` (lead features) and ``stage_events``.
    target_stage : str
        The stage whose reaching is the ``qualified`` outcome.
    exit_stage : str
        The stage of a lead disqualified instead.

    Returns
    -------
    pandas.DataFrame
        Index ``lead_id``; the contacts' feature columns (personal data
        dropped), ``company_size_code`` (ordinal position in
        :data:`COMPANY_SIZES`), ``stage`` (the lead's latest stage: lead,
        unqualified, qualified, opportunity, lost or won) and the nullable 0/1
        outcomes ``qualified`` (missing while the lead is neither qualified
        nor disqualified — it is still open and is what a score is for) and
        ``won`` (missing while the lead is still in the pipeline; 0 once it is
        disqualified or its opportunity is lost).
    """
    crm = load_crm(crm)
    per = lead_stage_times(crm.table("stage_events"), extra=[exit_stage, "lost"])
    reached = per[f"reached_{target_stage}"]
    dropped = per[f"t_{exit_stage}"].notnull() & ~reached
    lost = per["t_lost"].notnull() & ~per.reached_won
    stage = ibis.cases((per.reached_won, "won"), (lost, "lost"),
                       (per.reached_opportunity, "opportunity"), (reached, target_stage),
                       (dropped, exit_stage), else_="lead")
    leads = execute(per.filter(per.reached_lead).select(
        lead_id=per.lead_id.cast("string"), stage=stage,
        qualified=ibis.cases((reached, 1), (dropped, 0), else_=ibis.null("int64")),
        won=ibis.cases((per.reached_won, 1), (dropped | lost, 0), else_=ibis.null("int64"))))
    c = crm.table("contacts")
    c = c.drop(*[col for col in crm.personal_columns("contacts") if col in c.columns])
    contacts = execute(c.mutate(contact_id=c.contact_id.cast("string")))
    frame = leads.merge(contacts, left_on="lead_id", right_on="contact_id", how="left")
    if "company_size" in frame.columns:
        codes = {size: i for i, size in enumerate(COMPANY_SIZES)}
        frame["company_size_code"] = frame["company_size"].map(codes).astype("float64")
    frame["qualified"] = frame["qualified"].astype("Int64")
    frame["won"] = frame["won"].astype("Int64")
    return frame.drop(columns=["contact_id"]).set_index("lead_id").sort_index()


def auc(y_true, score) -> float:
    """Area under the ROC curve by the Mann-Whitney rank statistic [2]_."""
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    if n1 == 0 or n0 == 0:
        return np.nan
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


class LeadScoringModel(Estimator):
    """Logistic lead-scoring model (statsmodels GLM, binomial family) [1]_.

    Parameters
    ----------
    test_size : float
        Share of leads held out to measure AUC and calibration (0 keeps all
        for fitting; held-out measures are then NaN / empty).
    seed : int
        Seed of the held-out split.
    reference : mapping, optional
        Reference (baseline) level per categorical feature; default the most
        frequent level.
    n_bins : int
        Score bins (equal counts) of the calibration table.
    penalty : float
        Ridge (L2) penalty ``penalty / 2 * sum(coef ** 2)`` on every
        coefficient but the intercept [3]_; 0 (default) is plain maximum
        likelihood. A small penalty (e.g. 1) keeps estimates finite when a
        level has only one outcome (separation) in small samples; standard
        errors and p-values then come from the penalised information matrix
        and are approximate.

    Attributes
    ----------
    params_ : pandas.Series
        Fitted log-odds per term (``intercept`` first).
    coefficients_ : pandas.DataFrame
        Per term: ``coef`` (log-odds), ``std_err``, ``odds_ratio``,
        ``lower``/``upper`` (95 % interval of the odds ratio), ``p_value``.
        Numeric features enter as given (per unit); categorical ones as
        indicators ``feature[level]`` against the reference level.
    auc_ : float
        Held-out AUC (probability that a random positive lead outscores a
        random negative one) [2]_.
    calibration_ : pandas.DataFrame
        Held-out leads in score bins: ``leads``, ``predicted`` (mean score),
        ``observed`` (share with the outcome) [1]_.
    test_scores_ : pandas.DataFrame
        Held-out leads' ``score`` and ``outcome`` (for lift charts).
    band_edges_ : pandas.Series
        Minimum score of bands A (top quarter of training scores), B and C;
        the rest is D.
    summary_ : pandas.DataFrame
        Per term, on the log-odds scale: ``estimate``, ``std_err``,
        ``lower_95``, ``upper_95``, ``p_value`` (the schema of
        :mod:`crmstats.estimator`).
    n_obs_, n_test_, n_unlabelled_ : int
        Leads fitted on, held out, and left out for a missing outcome.
    """

    _hyper = ("test_size", "seed", "reference", "n_bins", "penalty")

    def __init__(self, test_size: float = 0.3, seed: int = 7,
                 reference: Mapping[str, str] | None = None, n_bins: int = 10,
                 penalty: float = 0.0):
        self.test_size = test_size
        self.seed = seed
        self.reference = reference
        self.n_bins = n_bins
        self.penalty = penalty

    # ------------------------------------------------------------------ keeping a model

    @classmethod
    def from_params(cls, params, *, reference: Mapping[str, str] | None = None,
                    band_edges: Mapping[str, float] | None = None, std_err=None,
                    p_value=None, target: str = "qualified", n_obs=None) -> LeadScoringModel:
        """Return the model at given log-odds, to score leads without refitting.

        Parameters
        ----------
        params : mapping or pandas.Series
            Log-odds per term as in ``params_``: ``intercept``, numeric
            features by name, categorical levels as ``feature[level]``.
        reference : mapping
            The reference level of every categorical feature (the level
            without a term), e.g. ``{"industry": "software"}``.
        band_edges : mapping, optional
            Minimum score of bands ``A``, ``B`` and ``C``; without them
            :meth:`score_bands` refuses to band.
        std_err, p_value : mapping, optional
            By term; missing ones are NaN.
        target : str
            Name of the outcome the model scores.
        n_obs : int, optional
            Leads the parameters were estimated on.

        Returns
        -------
        LeadScoringModel
            ``fitted_here_`` False; ``auc_`` NaN, no calibration table.
        """
        p = given_params(cls, params)
        if "intercept" not in p.index:
            raise DataError(f"{cls.__name__}.from_params: params lack 'intercept'",
                            table="params", column="intercept")
        p = p[["intercept", *[n for n in p.index if n != "intercept"]]]
        reference = dict(reference or {})
        features, seen = [], {}
        for term in p.index[1:]:
            name, bracket, level = term.partition("[")
            if bracket and term.endswith("]"):
                seen.setdefault(name, []).append(level[:-1])
            if name not in features:
                features.append(name)
        missing = [f for f in seen if f not in reference]
        if missing:
            raise DataError(f"{cls.__name__}.from_params: give the reference level of the "
                            f"categorical feature(s) {missing} (reference={{...}})",
                            table="params", column=missing[0])
        levels = {f: (sorted({*lv, str(reference[f])}), str(reference[f]))
                  for f, lv in seen.items()}
        edges = band_edges
        if edges is not None:
            edges = given_params(cls, edges, ["A", "B", "C"])
        model = cls(reference=reference or None)
        names = list(p.index)
        se = given_column(cls, std_err, names, "std_err")
        pv = given_column(cls, p_value, names, "p_value")
        model._given(p, summary_table(names, p, se, p_value=pv, index_name="term"),
                     n_obs=n_obs)
        model._set_terms(features, str(target), levels, edges)
        model.n_test_ = model.n_unlabelled_ = None
        model.auc_ = np.nan
        model.calibration_ = pd.DataFrame(columns=["leads", "predicted", "observed"])
        model.test_scores_ = pd.DataFrame(columns=["score", "outcome"])
        return model

    def _set_terms(self, features, target, levels, band_edges) -> None:
        self.features_, self.target_, self.levels_ = list(features), target, dict(levels)
        self.band_edges_ = pd.Series(np.nan if band_edges is None else
                                     np.asarray(band_edges, dtype=float),
                                     index=["A", "B", "C"], name="min_score")
        self.coefficients_ = _odds_ratios(self.summary_)

    def _fit_facts(self) -> dict:
        return {**self._common_facts(), "features": self.features_, "target": self.target_,
                "levels": {f: {"levels": list(lv), "reference": ref}
                           for f, (lv, ref) in self.levels_.items()},
                "band_edges": list(self.band_edges_), "auc": self.auc_,
                "n_test": self.n_test_, "n_unlabelled": self.n_unlabelled_,
                "calibration": {c: list(self.calibration_[c].astype(float))
                                for c in ("leads", "predicted", "observed")}}

    def _restore(self, params, summary, facts, variance) -> None:
        features = facts.strings("features")
        section = facts.section("levels")
        levels = {}
        for f in section.keys():
            one = section.section(f)
            levels[f] = (one.strings("levels"), one.string("reference"))
            if f not in features or levels[f][1] not in levels[f][0]:
                section.fail(f, "a categorical feature's levels must include its reference")
        terms = ["intercept"]
        for f in features:
            terms += ([f"{f}[{lv}]" for lv in levels[f][0] if lv != levels[f][1]]
                      if f in levels else [f])
        if sorted(terms) != sorted(params.index):
            facts.fail("features", "the features and levels do not give the parameters' terms")
        edges = facts.numbers("band_edges")
        if len(edges) != 3:
            facts.fail("band_edges", "three values expected (bands A, B, C)")
        self._restore_common(params, summary, facts)
        self._set_terms(features, facts.string("target"), levels, edges)
        self.auc_ = facts.number("auc")
        self.n_test_ = int(facts.integer("n_test")) if facts.has("n_test") else None
        self.n_unlabelled_ = (int(facts.integer("n_unlabelled")) if facts.has("n_unlabelled")
                              else None)
        cal = facts.section("calibration")
        columns = {c: cal.numbers(c) for c in ("leads", "predicted", "observed")}
        if len({len(v) for v in columns.values()}) != 1:
            cal.fail("leads", "the calibration columns differ in length")
        self.calibration_ = pd.DataFrame(columns)
        self.calibration_.index = pd.RangeIndex(1, len(self.calibration_) + 1, name="bin")
        self.test_scores_ = pd.DataFrame(columns=["score", "outcome"])  # lead ids: not kept

    def _design(self, frame: pd.DataFrame, table: str) -> pd.DataFrame:
        cols = {}
        for f in self.features_:
            s = frame[f]
            if f in self.levels_:
                levels, ref = self.levels_[f]
                values = s.astype("string")
                unknown = ~values.isin(levels) & values.notna()
                if unknown.any():
                    warnings.warn(f"{table} table, column {f!r}: level(s) "
                                  f"{sorted(values[unknown].unique())[:5]} not seen in fitting "
                                  f"are scored as the reference level {ref!r}", DataWarning,
                                  stacklevel=3)
                for level in levels:
                    if level != ref:
                        cols[f"{f}[{level}]"] = (values == level).fillna(False).astype(float)
            else:
                cols[f] = pd.to_numeric(s, errors="coerce").astype(float)
        x = pd.DataFrame(cols, index=frame.index)
        x.insert(0, "intercept", 1.0)
        finite = np.isfinite(x.to_numpy())
        if not finite.all():
            col = x.columns[~finite.all(axis=0)][0]
            rows = list(frame.index[~finite.all(axis=1)][:5])
            raise DataError(f"{table} table, column {col!r}: missing or non-numeric values, "
                            f"e.g. rows {rows}", table=table, column=col, rows=rows)
        return x

    @staticmethod
    def _check_columns(frame, columns, table):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{table}: expected a DataFrame, got {type(frame).__name__}",
                            table=table)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(f"{table} table: missing column(s) {', '.join(missing)}; columns: "
                            f"{', '.join(map(str, frame.columns))}", table=table,
                            column=missing[0])

    def fit(self, leads: pd.DataFrame, *, features: Sequence[str], target: str = "qualified"
            ) -> LeadScoringModel:
        """Fit on the training part of ``leads``, measure on the held-out part, return self.

        Parameters
        ----------
        leads : pandas.DataFrame
            One row per lead (e.g. :func:`lead_features`).
        features : sequence of str
            Columns to score on; numeric columns enter per unit, others
            (text, categories, booleans) as indicators against a reference level.
        target : str
            The 0/1 outcome column. Leads with a missing outcome (still open)
            are left out; any other value is an error.

        Returns
        -------
        LeadScoringModel
            The fitted model.
        """
        import statsmodels.api as sm

        features = list(features)
        if not features:
            raise ValueError("features: give at least one feature column")
        self._check_columns(leads, [*features, target], "leads")
        if not 0 <= float(self.test_size) < 1:
            raise ValueError(f"test_size must be in [0, 1), got {self.test_size}")
        raw = leads[target]
        y = pd.to_numeric(raw, errors="coerce")
        bad = ~(y.isin([0, 1]) | raw.isna())
        if bad.any():
            rows = list(leads.index[bad.to_numpy()][:5])
            raise DataError(f"leads table, column {target!r}: outcomes must be 0 or 1 (or "
                            f"missing for open leads), e.g. rows {rows}", table="leads",
                            column=target, rows=rows)
        labelled = raw.notna().to_numpy()
        data, y = leads[labelled], y[labelled].astype(float)
        if y.nunique() < 2:
            raise DataError(f"leads table, column {target!r}: every lead has the same outcome; "
                            "nothing to score", table="leads", column=target)
        reference = dict(self.reference or {})
        self.features_, self.target_ = features, target
        self.levels_ = {}
        for f in features:
            s = data[f]
            if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                values = s.astype("string")
                levels = sorted(values.dropna().unique())
                ref = reference.get(f, values.value_counts().idxmax())
                if ref not in levels:
                    raise DataError(f"leads table, column {f!r}: reference level {ref!r} does "
                                    f"not occur; levels: {levels}", table="leads", column=f)
                self.levels_[f] = (levels, ref)
        x = self._design(data, "leads")
        rng = np.random.default_rng(self.seed)
        test = rng.random(len(data)) < float(self.test_size)
        penalty = float(self.penalty)
        if not penalty >= 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if penalty > 0:
                    glm = sm.GLM(y[~test], x[~test], family=sm.families.Binomial())
                    alpha = np.full(x.shape[1], penalty / max(int((~test).sum()), 1))
                    alpha[0] = 0.0  # the intercept is not penalised
                    params = pd.Series(glm.fit_regularized(alpha=alpha, L1_wt=0.0).params,
                                       index=x.columns)
                    xt = x[~test].to_numpy()
                    p_t = 1.0 / (1.0 + np.exp(-xt @ params.to_numpy()))
                    info = (xt * (p_t * (1 - p_t))[:, None]).T @ xt + np.diag(alpha) * len(xt)
                    se = pd.Series(np.sqrt(np.diag(np.linalg.inv(info))), index=x.columns)
                    pvalues = pd.Series(2 * special.ndtr(-np.abs(params / se)), index=x.columns)
                else:  # statsmodels' IRLS without its model objects (funnel._irls)
                    est, err, pv, _ = logistic_irls(x[~test].to_numpy(float),
                                                    y[~test].to_numpy(float))
                    params, se, pvalues = (pd.Series(v, index=x.columns) for v in (est, err, pv))
            except np.linalg.LinAlgError as exc:
                raise DataError(f"leads table: the features are collinear ({exc}); drop a "
                                "redundant feature", table="leads") from None
        for w in caught:
            text = str(w.message).lower()
            if "converge" in text or "separation" in text or "overflow" in text:
                warnings.warn(f"LeadScoringModel: {w.message}", ConvergenceWarning, stacklevel=2)
        indicator = params.index.str.contains("[", regex=False)
        separated = params.index[indicator & (params.abs() > 10)]
        if len(separated):
            warnings.warn(f"LeadScoringModel: terms {list(separated)} have (almost) only one "
                          "outcome (separation); their estimates are unreliable — pool rare "
                          "levels or pass penalty=1", ConvergenceWarning, stacklevel=2)
        self.params_ = params
        self.summary_ = summary_table(params.index, params, se, p_value=pvalues,
                                      index_name="term")
        self.coefficients_ = _odds_ratios(self.summary_)
        self._given_params = False
        train_scores = self._predict(x[~test])
        self.band_edges_ = pd.Series(np.quantile(train_scores, [0.75, 0.5, 0.25]),
                                     index=["A", "B", "C"], name="min_score")
        self.n_obs_, self.n_test_ = int((~test).sum()), int(test.sum())
        self.n_unlabelled_ = int((~labelled).sum())
        y_test = y[test].to_numpy()
        if test.sum() >= 10 and 0 < y_test.sum() < len(y_test):
            p = self._predict(x[test])
            self.auc_ = auc(y_test, p)
            bins = pd.qcut(p, int(self.n_bins), duplicates="drop")
            cal = pd.DataFrame({"p": p, "y": y_test}).groupby(bins, observed=True)
            self.calibration_ = pd.DataFrame({"leads": cal.size(), "predicted": cal["p"].mean(),
                                              "observed": cal["y"].mean()})
            self.calibration_.index = pd.RangeIndex(1, len(self.calibration_) + 1, name="bin")
            self.test_scores_ = pd.DataFrame({"score": p, "outcome": y_test},
                                             index=data.index[test])
        else:
            self.auc_ = np.nan
            self.calibration_ = pd.DataFrame(columns=["leads", "predicted", "observed"])
            self.test_scores_ = pd.DataFrame(columns=["score", "outcome"])
        return self

    def _predict(self, x: pd.DataFrame) -> np.ndarray:
        z = x.to_numpy(float) @ self.params_.reindex(x.columns).to_numpy(float)
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-z))

    def predict_proba(self, leads: pd.DataFrame) -> pd.Series:
        """Return the modelled probability of the outcome for each lead (``score``)."""
        self._check_fitted()
        self._check_columns(leads, self.features_, "leads")
        x = self._design(leads, "leads")
        return pd.Series(self._predict(x), index=leads.index, name="score")

    def score_bands(self, leads: pd.DataFrame) -> pd.DataFrame:
        """Score leads and band them: A (top quarter of training scores), B, C, D.

        Returns
        -------
        pandas.DataFrame
            Index like ``leads``; ``score`` and ``band`` (ordered categorical A-D).
        """
        score = self.predict_proba(leads)
        edges = self.band_edges_
        if edges.isna().any():
            raise CRMStatsError("LeadScoringModel: no band edges (a model built by from_params "
                                "without band_edges=...); cannot band the scores")
        band = np.select([score >= edges["A"], score >= edges["B"], score >= edges["C"]],
                         ["A", "B", "C"], "D")
        return pd.DataFrame({"score": score, "band": pd.Categorical(band, categories=_BANDS,
                                                                    ordered=True)})


def _odds_ratios(s: pd.DataFrame) -> pd.DataFrame:
    """Return the odds-ratio view of a ``summary_`` on the log-odds scale."""
    lo, hi = interval_columns("odds_ratio")
    with np.errstate(over="ignore"):
        table = pd.DataFrame({
            "coef": s["estimate"], "std_err": s["std_err"],
            "odds_ratio": np.exp(s["estimate"]), lo: np.exp(s["lower_95"]),
            hi: np.exp(s["upper_95"]), "p_value": s["p_value"],
        })
    return with_old_column_names(table, {"lower": lo, "upper": hi})

"""Value by acquisition channel from the CLV models with covariates.

A new customer's expected value depends on who it is: the covariate models
(BG/NBD or Pareto/NBD and Gamma-Gamma fitted with ``covariates=``; Fader &
Hardie 2007 [1]_) give each covariate pattern — acquisition channel, segment
— its own purchase rate, dropout and spend. :func:`channel_value` turns them
into the expected discounted CLV of a *new* customer of each channel: the mean,
over the channel's customers' covariate rows, of the value of a customer with
that row who has just made the first purchase (so the channel's mix of other
attributes, such as its share of key accounts, is kept). Its 95 % interval
comes from parameter draws from the fits' asymptotic normal distributions
(positive parameters on the log scale) [2]_. Unlike
:func:`~crmstats.clv.value_by_group` (the average CLV of the channel's
*existing* customers, given their histories), this is what the next customer
a channel brings is worth — the figure channel economics compares with the
channel's acquisition cost.

:func:`~crmstats.clv.fit_channel_value` (:mod:`crmstats.clv.channel_fit`) runs
the chain for a study: covariate frame, the two fits, the likelihood-ratio
tests, the multipliers of each attribute on the purchase rate, dropout and
spend, and the value per channel.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models.
   http://brucehardie.com/notes/019/
.. [2] Krinsky, I. and Robb, A. L. (1986). On approximating the statistical
   properties of elasticities. Review of Economics and Statistics 68(4),
   715-719 (intervals of a function of estimates by parameter draws).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.clv.covariate_keywords import customers_frame, has_covariates
from crmstats.clv.value import MONTH_IN_UNITS, discounted_purchases, require_converged
from crmstats.exceptions import DataError

__all__ = ["channel_value", "customer_effects"]

#: Processes of the coefficients, by the prefix of their names, and what ``exp(γ)`` multiplies.
PROCESSES = {"purchase": "purchase rate", "dropout": "dropout", "shared": "purchase rate and "
             "dropout", "spend": "spend per purchase"}


def _month(model, time_unit) -> float:
    unit = time_unit or getattr(model, "time_unit_", None)
    if unit is None:
        raise DataError("channel_value: the transaction model has no time unit (fitted on a "
                        "summary without units, or built by from_params without time_unit=); "
                        "pass time_unit=", table="summary", column="T")
    return MONTH_IN_UNITS[str(unit).upper()]


def _cumulative_purchases(tm, patterns: pd.DataFrame, times: np.ndarray) -> np.ndarray:
    """Return a new customer's expected repeat purchases by each time: (patterns, times)."""
    n = len(patterns)
    cov = patterns if has_covariates(tm) else None
    population = getattr(tm, "_population", None)
    new_customer = getattr(tm, "_new_customer", None)
    if population is not None and new_customer is not None:
        # every pattern's parameters at once, every horizon at once (the models' vectorised
        # expectation; their public expected_purchases takes one horizon per call)
        groups, _ = population(cov)
        params = np.array([p for _, p in groups], dtype=float)
        if cov is None:
            params = np.repeat(params[:1], n, axis=0)
        cols = tuple(params[:, [j]] for j in range(params.shape[1]))
        return np.asarray(new_customer(cols, times[None, :]), dtype=float).reshape(n, -1)
    out = np.empty((n, len(times)))
    for j, t in enumerate(times):
        got = tm.expected_purchases(t, covariates=cov) if cov is not None \
            else tm.expected_purchases(t)
        out[:, j] = np.broadcast_to(np.asarray(got, dtype=float), (n,))
    return out


def _new_customer_clv(tm, sm, patterns: pd.DataFrame, horizon_months: int,
                      discount_rate: float, month: float) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Return the expected purchases, spend and CLV of a new customer per pattern row."""
    n = len(patterns)
    months = np.arange(1, int(horizon_months) + 1)
    cumulative = _cumulative_purchases(tm, patterns, months * month)
    discounted = discounted_purchases(cumulative, discount_rate)
    spend = sm.population_mean(patterns) if has_covariates(sm) else sm.population_mean()
    spend = np.broadcast_to(np.asarray(spend, dtype=float), (n,))
    return cumulative[:, -1], spend, discounted * spend


def _draw_phi(model, n_draws: int, rng: np.random.Generator) -> np.ndarray | None:
    """Draws of φ (log base parameters, then coefficients) from the fit's asymptotic normal."""
    est = model.params_
    names = list(est.index)
    cov = getattr(model, "variance_matrix_", None)
    if cov is None:
        return None
    cov = cov.reindex(index=names, columns=names).to_numpy(dtype=float)
    if not np.all(np.isfinite(cov)):
        return None
    k = len(model._param_names)
    theta = est.to_numpy(dtype=float)
    scale = np.r_[theta[:k], np.ones(len(names) - k)]
    phi = np.r_[np.log(theta[:k]), theta[k:]]
    cov_phi = cov / np.outer(scale, scale)  # delta method on the log of positive parameters
    vals, vecs = np.linalg.eigh((cov_phi + cov_phi.T) / 2)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    return phi + rng.standard_normal((n_draws, len(names))) @ root.T


def _phi(model) -> np.ndarray:
    """Return the fit's φ: log base parameters, then coefficients."""
    k = len(model._param_names)
    theta = model.params_.to_numpy(dtype=float)
    return np.r_[np.log(theta[:k]), theta[k:]]


def _at_phi(model, phi: np.ndarray):
    """Return the model at φ (its ``from_params``, units kept)."""
    k = len(model._param_names)
    params = pd.Series(np.r_[np.exp(phi[:k]), phi[k:]], index=model.params_.index)
    return type(model).from_params(params, time_unit=getattr(model, "time_unit_", None))


def _log_scales(tm, sm, patterns: pd.DataFrame) -> np.ndarray:
    """Each pattern's log parameters (transaction model) and log spend scale ``v_i``, flat.

    Read from the models' own predictions (not their internals): the
    transaction model's parameters per pattern, and Gamma-Gamma's ``v_i`` from
    its mean spend ``p v_i / (q - 1)``.
    """
    n = len(patterns)
    population = tm._population(patterns if has_covariates(tm) else None)[0]
    params = np.array([p for _, p in population], dtype=float)
    if not has_covariates(tm):
        params = np.repeat(params[:1], n, axis=0)
    p, q = float(sm.params_["p"]), float(sm.params_["q"])
    mean = sm.population_mean(patterns) if has_covariates(sm) else sm.population_mean()
    v = np.broadcast_to(np.asarray(mean, dtype=float), (n,)) * (q - 1) / p
    return np.r_[np.log(params).ravel(), np.log(v)]


def _drawn_clv(tm, sm, patterns: pd.DataFrame, t_draws: np.ndarray, s_draws: np.ndarray,
               horizon_months: int, discount_rate: float, month: float) -> np.ndarray:
    """Return a new customer's CLV per pattern at every parameter draw: (draws, patterns).

    With covariates, a pattern's parameters are its model's scale parameters
    times ``exp(γ'x)`` (Fader & Hardie 2007), so their logs are affine in φ
    (log base parameters, coefficients): the map is read off the models' own
    predictions at the fit and at a unit step of each element of φ, then
    applied to every draw at once, and the new customer's expected purchases
    are computed for all draws and patterns in one call. Equal (to rounding)
    to rebuilding both models at each draw.
    """
    n, k = len(patterns), len(tm._param_names)
    if getattr(tm, "_population", None) is None or getattr(tm, "_new_customer", None) is None:
        return np.array([_new_customer_clv(_at_phi(tm, a), _at_phi(sm, b), patterns,
                                           horizon_months, discount_rate, month)[2]
                         for a, b in zip(t_draws, s_draws, strict=True)])
    phi_t, phi_s = _phi(tm), _phi(sm)
    base = _log_scales(tm, sm, patterns)
    cols = []
    for j in range(len(phi_t)):
        step = phi_t.copy()
        step[j] += 1.0
        cols.append(_log_scales(_at_phi(tm, step), sm, patterns) - base)
    for j in range(len(phi_s)):
        step = phi_s.copy()
        step[j] += 1.0
        cols.append(_log_scales(tm, _at_phi(sm, step), patterns) - base)
    jac = np.column_stack(cols)
    d = len(t_draws)
    logs = base + np.hstack([t_draws - phi_t, s_draws - phi_s]) @ jac.T
    params = np.exp(logs[:, :n * k]).reshape(d * n, k)
    v = np.exp(logs[:, n * k:])  # (draws, patterns)
    times = np.arange(1, int(horizon_months) + 1) * month
    cumulative = np.asarray(tm._new_customer(tuple(params[:, [j]] for j in range(k)),
                                             times[None, :]), dtype=float)
    purchases = discounted_purchases(cumulative.reshape(d * n, -1), discount_rate)
    p, q = np.exp(s_draws[:, 0]), np.exp(s_draws[:, 1])  # Gamma-Gamma's p, q (then v)
    spend = (p / (q - 1))[:, None] * v
    return purchases.reshape(d, n) * spend


def channel_value(
    transaction_model,
    spend_model,
    customers: pd.DataFrame,
    covariates: pd.DataFrame,
    *,
    by: str = "acquisition_channel",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    n_draws: int = 200,
    seed: int = 0,
    time_unit: str | None = None,
    allow_unconverged: bool = False,
    customer_id_col: str | None = None,
) -> pd.DataFrame:
    """Return the expected CLV of a new customer per channel (or any group), with an interval.

    Parameters
    ----------
    transaction_model : fitted BetaGeoModel, ParetoNBDModel...
        Fitted with ``covariates=`` (or without: then the purchase process
        does not differ by group).
    spend_model : fitted GammaGammaModel
        Fitted with or without ``covariates=``.
    customers : pandas.DataFrame
        One row per customer with ``customer_id`` and the ``by`` column.
    covariates : pandas.DataFrame
        The covariate frame the models were fitted with (indexed by customer
        id; :func:`~crmstats.clv.covariate_frame`): each customer's row.
    by : str
        The grouping column of ``customers``.
    horizon_months : int
        CLV horizon (months after the first purchase).
    discount_rate : float
        Monthly discount rate.
    n_draws : int
        Parameter draws for the interval (0: no interval).
    seed : int
        Seed of the draws.
    time_unit : {"D", "W", "M"}, optional
        Unit of the transaction model (default: the unit it was fitted in).
    allow_unconverged : bool
        Value with fits that did not converge instead of raising
        :class:`~crmstats.ConvergenceError`.
    customer_id_col : str, optional
        The caller's name of ``customer_id``.

    Returns
    -------
    pandas.DataFrame
        Index: the groups (named ``by``); ``customers`` (with a covariate
        row), ``expected_purchases`` (repeat purchases of a new customer over
        the horizon), ``expected_spend`` (mean spend per purchase), ``clv``
        (discounted, the repeat purchases' value: the first order is not in
        it), ``clv_lower_95`` and ``clv_upper_95`` (NaN without draws or
        without a variance matrix).
    """
    require_converged(transaction_model, spend_model, allow_unconverged=allow_unconverged,
                      what="channel_value")
    if int(horizon_months) < 1:
        raise ValueError(f"horizon_months must be at least 1, got {horizon_months}")
    customers = customers_frame(customers)
    id_col = customer_id_col or "customer_id"
    for col in (id_col, by):
        if col not in customers.columns:
            raise DataError(f"customers table: no column {col!r}", table="customers",
                            column=col)
    if not isinstance(covariates, pd.DataFrame):
        raise DataError("covariates: expected the DataFrame of covariate_frame",
                        table="covariates")
    groups = customers.set_index(id_col)[by]
    groups = groups[~groups.index.duplicated()]
    ids = covariates.index.intersection(groups.index)
    blank = groups.reindex(ids).isna()
    if blank.any():
        rows = [str(v) for v in ids[blank.to_numpy()][:5]]
        raise DataError(f"customers table, column {by!r}: {int(blank.sum())} customer(s) "
                        f"without a value, e.g. {rows}", table="customers", column=by,
                        rows=rows)
    if len(ids) == 0:
        raise DataError("channel_value: no customer of the covariates frame is in the "
                        "customers table", table="customers", column=id_col)
    rows = covariates.loc[ids]
    patterns, codes = np.unique(rows.to_numpy(dtype=float), axis=0, return_inverse=True)
    codes = np.asarray(codes).ravel()
    frame = pd.DataFrame(patterns, columns=rows.columns,
                         index=[f"pattern {i}" for i in range(len(patterns))])
    label = groups.reindex(ids).astype(str).to_numpy()
    names = sorted(set(label))
    weights = np.zeros((len(names), len(patterns)))
    np.add.at(weights, (np.searchsorted(names, label), codes), 1.0)
    counts = weights.sum(axis=1)
    share = weights / counts[:, None]
    month = _month(transaction_model, time_unit)
    purchases, spend, clv = _new_customer_clv(transaction_model, spend_model, frame,
                                              horizon_months, discount_rate, month)
    out = pd.DataFrame({"customers": counts.astype("int64"),
                        "expected_purchases": share @ purchases,
                        "expected_spend": (share @ (purchases * spend)) / (share @ purchases),
                        "clv": share @ clv}, index=pd.Index(names, name=by))
    out["clv_lower_95"] = np.nan
    out["clv_upper_95"] = np.nan
    if int(n_draws) > 0:
        rng = np.random.default_rng(seed)
        t_draws = _draw_phi(transaction_model, int(n_draws), rng)
        s_draws = _draw_phi(spend_model, int(n_draws), rng)
        if t_draws is not None and s_draws is not None:
            sims = _drawn_clv(transaction_model, spend_model, frame, t_draws, s_draws,
                              horizon_months, discount_rate, month) @ share.T
            out["clv_lower_95"] = np.nanquantile(sims, 0.025, axis=0)
            out["clv_upper_95"] = np.nanquantile(sims, 0.975, axis=0)
    return out


def customer_effects(transaction_model, spend_model=None) -> pd.DataFrame:
    """Return the covariates' multipliers on purchase rate, dropout and spend, in one table.

    Parameters
    ----------
    transaction_model : fitted BetaGeoModel, ParetoNBDModel...
        Fitted with covariates (e.g. :func:`fit_channel_value`'s).
    spend_model : fitted GammaGammaModel, optional
        Fitted with covariates.

    Returns
    -------
    pandas.DataFrame
        One row per coefficient: ``process`` (what ``exp(coefficient)``
        multiplies: "purchase rate", "dropout", "spend per purchase"),
        ``covariate`` (the column, e.g. ``acquisition_channel[email]``),
        ``multiplier`` (``exp(estimate)``) with ``multiplier_lower_95`` and
        ``multiplier_upper_95``, and ``p_value`` (Wald test of no effect).
    """
    rows = []
    for model in (transaction_model, spend_model):
        if model is None:
            continue  # (customer_effects(None): the empty table)
        summary = model.summary_
        for name in summary.index:
            process, sep, column = str(name).partition(":")
            if not sep or process not in PROCESSES:
                continue
            row = summary.loc[name]
            rows.append({"process": PROCESSES[process], "covariate": column,
                         "multiplier": float(np.exp(row["estimate"])),
                         "multiplier_lower_95": float(np.exp(row["lower_95"])),
                         "multiplier_upper_95": float(np.exp(row["upper_95"])),
                         "p_value": float(row.get("p_value", np.nan))})
    return pd.DataFrame(rows, columns=["process", "covariate", "multiplier",
                                       "multiplier_lower_95", "multiplier_upper_95",
                                       "p_value"])

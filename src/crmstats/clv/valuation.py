"""Transactions to customer value in one call: summary, transaction and spend models, CLV.

The chain ``rfm_summary`` → BG/NBD → Gamma-Gamma → ``customer_lifetime_value``
is what every study that needs customer value runs; :func:`fit_value` runs it
once, with one set of units, and returns every piece in a frozen
:class:`ValueFit`.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: Using
   iso-value curves for customer base analysis. Journal of Marketing Research
   42(4), 415-430.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crmstats.clv.covariate_keywords import refit_keywords
from crmstats.clv.models import BaseModel, BetaGeoModel, GammaGammaModel
from crmstats.clv.summaries import rfm_summary
from crmstats.clv.units import summary_units
from crmstats.clv.value import customer_lifetime_value, require_converged
from crmstats.exceptions import DataError
from crmstats.fitcache import fit_shared
from crmstats.vocabulary import renamed_arguments, renamed_attribute

__all__ = ["ValueFit", "fit_value"]


@dataclass(frozen=True)
class ValueFit:
    """Result of :func:`fit_value`.

    Attributes
    ----------
    summary : pandas.DataFrame
        The per-customer summary (:func:`~crmstats.clv.rfm_summary`, units recorded).
    transaction_model : BaseModel
        The fitted transaction model (BG/NBD by default).
    spend_model : GammaGammaModel
        The fitted spend model.
    values : pandas.DataFrame
        :func:`~crmstats.clv.customer_lifetime_value`: ``expected_purchases``,
        ``expected_spend``, ``clv`` per customer.
    period, time_unit : str
        Units of the summary and the models (``freq`` is the old name of
        ``period``, deprecated).
    observation_end : pandas.Timestamp or None
        The end of observation asked for (None: the last transaction).
    horizon_months : int
        CLV horizon.
    discount_rate : float
        Monthly discount rate of CLV.
    covariates : pandas.DataFrame or None
        The covariates given to :func:`fit_value` (None: none given).
    """

    summary: pd.DataFrame
    transaction_model: BaseModel
    spend_model: GammaGammaModel
    values: pd.DataFrame
    period: str
    time_unit: str
    observation_end: pd.Timestamp | None
    horizon_months: int
    discount_rate: float
    covariates: pd.DataFrame | None = None

    freq = renamed_attribute("period", "freq")

    @property
    def clv(self) -> pd.Series:
        """Discounted CLV per customer (the ``clv`` column of :attr:`values`)."""
        return self.values["clv"]

    @property
    def models(self) -> dict[str, BaseModel]:
        """The two fitted models by the names readers know (``"BG/NBD"``, ``"Gamma-Gamma"``)."""
        return {_LABELS.get(type(m).__name__, type(m).__name__): m
                for m in (self.transaction_model, self.spend_model)}


#: Names readers know, by model class.
_LABELS = {"BetaGeoModel": "BG/NBD", "ModifiedBetaGeoModel": "MBG/NBD",
           "ParetoNBDModel": "Pareto/NBD", "BetaGeoBetaBinomModel": "BG/BB",
           "GammaGammaModel": "Gamma-Gamma"}


def _unfitted(model, default: type, role: str):
    if model is None:
        return default()
    if isinstance(model, type):
        return model()
    if not hasattr(model, "fit"):
        raise TypeError(f"{role} must be an estimator such as {default.__name__}(), "
                        f"got {type(model).__name__}")
    return copy.deepcopy(model)  # the caller's estimator is never fitted in place


def _kept(model) -> bool:
    """Whether ``model`` is an estimator already fitted, built by from_params or loaded."""
    return not isinstance(model, type) and bool(getattr(model, "is_fitted", False))


def _models_units(models, period: str, time_unit: str) -> tuple[str, str]:
    """Return the units of the summary kept models score: theirs when they record them."""
    found = {(m.period_ or period, m.time_unit_) for m in models
             if getattr(m, "time_unit_", None) is not None}
    if len(found) > 1:
        raise DataError("fit_value: the given models were fitted in different time units "
                        f"({', '.join(f'period={p}, time_unit={u}' for p, u in sorted(found))})",
                        table="model", column="time_unit")
    return found.pop() if found else (period, time_unit)


@renamed_arguments(freq="period")
def fit_value(
    transactions: Any,
    *,
    observation_end=None,
    period: str = "D",
    time_unit: str = "W",
    transaction_model: BaseModel | type | None = None,
    spend_model: GammaGammaModel | type | None = None,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    customers: Iterable | None = None,
    allow_unconverged: bool = False,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
    refit: bool = True,
    covariates: pd.DataFrame | None = None,
) -> ValueFit:
    """Summarise transactions, fit a transaction and a spend model, and value every customer.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    observation_end : timestamp-like, optional
        End of observation; later transactions are ignored. Default: the last
        transaction.
    period : {"D", "W", "M"}
        Granularity at which purchases merge into one occasion (``freq`` is
        its old name, deprecated).
    time_unit : {"D", "W", "M"}
        Unit of recency and T (weeks, as in the published BTYD analyses).
    transaction_model : estimator or class, optional
        An unfitted transaction model (``BetaGeoModel()``, ``ParetoNBDModel()``,
        ``ModifiedBetaGeoModel(penalty=0.01)``...); default BG/NBD. A copy is
        fitted; the caller's object is left as it is.
    spend_model : estimator or class, optional
        An unfitted spend model; default ``GammaGammaModel()``.
    horizon_months : int
        CLV horizon in months.
    discount_rate : float
        Monthly discount rate of CLV.
    customers : iterable, optional
        Ids of the customers to fit and value (compared as strings); default
        every customer with a purchase by ``observation_end``.
    allow_unconverged : bool
        Value customers with a model whose fit did not converge instead of
        raising :class:`~crmstats.ConvergenceError`.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.
    refit : bool
        False: a given model that is already fitted (or built by
        ``from_params``, or loaded with :func:`crmstats.load_model`) values
        the customers as it is — e.g. last month's model scoring this week's
        customers — and the summary is made in the units it records
        (``period_``, ``time_unit_``; they override ``period`` and ``time_unit``).
        A model not given, or not fitted, is fitted as usual.
    covariates : pandas.DataFrame, optional
        Each customer's covariates (:func:`~crmstats.clv.covariate_frame` of
        the customers table, e.g. acquisition channel and segment). Models
        not given or not fitted are fitted with them (BG/NBD, MBG/NBD,
        Pareto/NBD: purchase and dropout; Gamma-Gamma: spend); a fitted or
        loaded model with covariates given as a template is refitted with
        the same columns on the same processes, taking its rows from here
        (or, not given, from the rows kept from its fit — a loaded model
        keeps none: then this is needed); a template without covariates
        stays without. With ``refit=False`` a kept model with covariates
        values the customers with these rows.

    Returns
    -------
    ValueFit
        Summary, fitted models and CLV, with their units.

    Raises
    ------
    DataError
        Bad transactions, or no customer left after ``customers``.
    ConvergenceError
        If a model's fit did not converge (unless ``allow_unconverged``).

    Examples
    --------
    >>> import crmstats
    >>> from crmstats import clv
    >>> crm = crmstats.load_crm("demo:seed=3,n_contacts=2000")
    >>> fit = clv.fit_value(crm.transactions, horizon_months=12)
    >>> list(fit.values.columns)
    ['expected_purchases', 'expected_spend', 'clv']
    >>> fit.transaction_model.summary_.index.tolist()
    ['r', 'alpha', 'a', 'b']
    """
    keep_tm = not refit and _kept(transaction_model)
    keep_sm = not refit and _kept(spend_model)
    tm = transaction_model if keep_tm else _unfitted(transaction_model, BetaGeoModel,
                                                     "transaction_model")
    sm = spend_model if keep_sm else _unfitted(spend_model, GammaGammaModel, "spend_model")
    kept = [m for m, k in ((tm, keep_tm), (sm, keep_sm)) if k]
    period, time_unit = _models_units(kept, period, time_unit)
    summary = rfm_summary(transactions, observation_end=observation_end, period=period,
                          time_unit=time_unit, customer_id_col=customer_id_col,
                          timestamp_col=timestamp_col, amount_col=amount_col)
    if customers is not None:
        wanted = {str(c) for c in customers}
        summary = summary[summary.index.astype(str).isin(wanted)]
        if summary.empty:
            raise DataError("fit_value: none of the given customers has a purchase by the end "
                            "of observation", table="transactions",
                            column=customer_id_col or "customer_id")
    units = summary_units(summary)
    # in a book build, the fit of the same models to the same summary is shared between studies
    if not keep_tm:
        tm = _refit(tm, summary, covariates)
    if not keep_sm:
        sm = _refit(sm, summary, covariates)
    require_converged(tm, sm, allow_unconverged=allow_unconverged, what="fit_value")
    values = customer_lifetime_value(tm, sm, summary, horizon_months=horizon_months,
                                     discount_rate=discount_rate,
                                     allow_unconverged=allow_unconverged, covariates=covariates)
    end = None if observation_end is None else pd.Timestamp(observation_end)
    return ValueFit(summary=summary, transaction_model=tm, spend_model=sm, values=values,
                    period=units.period, time_unit=units.time_unit, observation_end=end,
                    horizon_months=int(horizon_months), discount_rate=float(discount_rate),
                    covariates=covariates)


def _refit(model, summary: pd.DataFrame, covariates):
    """Fit a copy of a template as it was fitted: with its covariates (never silently without)."""
    keywords = refit_keywords(model, covariates, what="fit_value")
    if keywords:  # a covariate fit keeps its customers' rows: not from the build's cache
        return model.fit(summary, **keywords)
    return fit_shared(model, summary)

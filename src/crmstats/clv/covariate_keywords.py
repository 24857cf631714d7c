"""One rule for valuing and refitting CLV models with covariates (Fader & Hardie 2007 [1]_).

A model fitted with covariates predicts each customer from the customer's row
of covariates: the rows kept from its fit, or a ``covariates=`` frame (a
loaded model keeps none; :func:`covariates_for` builds the frame it needs
from the customers table, with the model's own columns and reference levels). The value functions
(:func:`~crmstats.clv.customer_lifetime_value`, :func:`~crmstats.clv.winback_list`,
:func:`~crmstats.clv.bootstrap_clv`, :func:`~crmstats.clv.fit_value`) pass
``covariates=`` on to the models that take them (:func:`prediction_keywords`)
and refit a model as it was fitted — with its covariates, on the same
processes (:func:`refit_keywords`) — never silently without them.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). Incorporating time-invariant
   covariates into the Pareto/NBD and BG/NBD models.
   http://www.brucehardie.com/notes/019/
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.clv.models.covariate_fit import process_keywords
from crmstats.exceptions import DataError

__all__ = ["covariates_for", "has_covariates", "prediction_keywords", "refit_keywords"]

#: Prefixes of covariate coefficients' names, by model: purchase/dropout/shared on the
#: transaction models, spend on Gamma-Gamma.
_PREFIXES = ("purchase", "dropout", "shared", "spend")


def _coefficients(model) -> list[tuple[str, str]]:
    """Return the model's covariate coefficients as ``(process, column)`` pairs."""
    params = getattr(model, "params_", None)
    if params is None:
        return []
    out = []
    for name in params.index:
        process, sep, column = str(name).partition(":")
        if sep and process in _PREFIXES:
            out.append((process, column))
    return out


def has_covariates(model) -> bool:
    """Whether a fitted model has covariate coefficients (``purchase:x``, ``spend:x``...)."""
    return bool(_coefficients(model))


def customers_frame(customers) -> pd.DataFrame:
    """Return the customers table as a pandas DataFrame (it is small: one row per customer).

    A DataFrame is used as given; a path, an Ibis table or a source file's
    table (``crm.customers`` of a folder or a ``crmstats.yml`` source) is
    validated as the canonical customers table and read.
    """
    if isinstance(customers, pd.DataFrame):
        return customers
    if customers is None:
        raise DataError("customers: expected the customers table (column customer_id), got "
                        "None", table="customers", column="customer_id")
    from crmstats.backend import execute
    from crmstats.validation import as_table

    return execute(as_table(customers, "customers"))


def _frame(covariates, what: str) -> pd.DataFrame:
    if not isinstance(covariates, pd.DataFrame):
        raise DataError(f"{what}: covariates= expects a DataFrame indexed by customer id (see "
                        f"crmstats.clv.covariate_frame), got {type(covariates).__name__}",
                        table="covariates")
    return covariates


def prediction_keywords(models, covariates, what: str) -> list[dict]:
    """Return, per model, the keywords of its predictions: ``covariates=`` for those that take it.

    Parameters
    ----------
    models : sequence of fitted models
    covariates : pandas.DataFrame or None
        Each customer's covariates (:func:`~crmstats.clv.covariate_frame`);
        None: a model with covariates uses the rows kept from its fit.
    what : str
        The caller's name, for the message.

    Raises
    ------
    DataError
        ``covariates`` given but no model was fitted with covariates (they
        would be ignored), or not a DataFrame.
    """
    if covariates is None:
        return [{} for _ in models]
    covariates = _frame(covariates, what)
    takes = [has_covariates(m) for m in models]
    if not any(takes):
        raise DataError(f"{what}: covariates= was given, but no model was fitted with "
                        "covariates, so they would change nothing; fit the models with "
                        "covariates= (e.g. crmstats.clv.fit_value(..., covariates=X)) or leave "
                        "covariates= out", table="covariates")
    return [{"covariates": covariates} if t else {} for t in takes]


def refit_keywords(model, covariates=None, *, what: str = "refit") -> dict:
    """Return the keywords with which ``fit`` repeats ``model``'s design on other data.

    The one rule of every refit (a template in :func:`~crmstats.clv.fit_value`,
    the resamples of :func:`~crmstats.clv.bootstrap_clv`):

    * an estimator not yet fitted is fitted with ``covariates`` when they are
      given (every column, on every process: the default design), without
      them otherwise;
    * a fitted (or loaded, or ``from_params``) model without covariate
      coefficients refits without covariates;
    * a model with covariate coefficients refits with the same columns on the
      same processes (``purchase=``, ``dropout=``, ``shared=``; Gamma-Gamma's
      ``spend:`` columns), taking the rows of ``covariates`` or, when not
      given, those kept from its fit. A frame without one of those columns
      is an error, and so is one with another level of a categorical column
      the model uses (``acquisition_channel[tiktok]`` beside the model's
      channels): its customers would silently count as the reference level.

    Parameters
    ----------
    model : estimator
        The template: fitted or not.
    covariates : pandas.DataFrame, optional
        Each customer's covariates (:func:`~crmstats.clv.covariate_frame`).
    what : str
        The caller's name, for messages.

    Returns
    -------
    dict
        ``model.fit(summary, **refit_keywords(model, X))``.

    Raises
    ------
    DataError
        Covariates needed but neither given nor kept; a column missing or a
        level unknown to the model.
    """
    fitted = getattr(model, "params_", None) is not None
    if not fitted:
        return {} if covariates is None else {"covariates": _frame(covariates, what)}
    coefs = _coefficients(model)
    if not coefs:
        return {}
    name = type(model).__name__
    if covariates is None:
        covariates = getattr(model, "covariates_", None)
        if covariates is None:
            raise DataError(f"{what}: the {name} has covariates, but the customers' rows are "
                            "not kept (parameters given, or a model file); pass covariates= "
                            "(crmstats.clv.covariate_frame of the customers table)",
                            table="covariates")
    covariates = _frame(covariates, what)
    columns = list(dict.fromkeys(c for _, c in coefs))
    absent = [c for c in columns if c not in covariates.columns]
    if absent:
        raise DataError(f"{what}: covariates has no column {absent[0]!r}; the {name} has "
                        f"coefficients for {columns}", table="covariates", column=absent[0])
    stems = {c.split("[", 1)[0] for c in columns if "[" in c}
    unknown = [c for c in covariates.columns
               if c not in columns and "[" in str(c) and str(c).split("[", 1)[0] in stems]
    if unknown:
        raise DataError(f"{what}: covariates has level(s) {unknown} that the {name} was not "
                        "fitted with; its customers would count as the reference level. Fit "
                        "an unfitted model with these covariates instead", table="covariates",
                        column=str(unknown[0]))
    out = {"covariates": covariates[columns]}
    if any(p == "spend" for p, _ in coefs):
        return out
    return {**out, **process_keywords(coefs)}


def covariates_for(models, customers, *, missing: str = "error") -> pd.DataFrame:
    """Build the covariates a fitted (or loaded) model needs from the customers table.

    The columns and levels are the models' own (read from their coefficient
    names, e.g. ``purchase:acquisition_channel[email]``): each categorical
    attribute becomes the model's indicators, whatever the levels present in
    this table (a table of this week's customers, all from one channel, is
    fine; at most one other level may occur: the reference, which the model
    does not name); numeric attributes are taken as they are (a model fitted on
    standardised values needs them standardised the same way: pass your own
    frame then).

    Parameters
    ----------
    models : fitted model or sequence of them
        E.g. ``(loaded_bg, loaded_gg)``: the union of their columns.
    customers : pandas.DataFrame, path or table
        The customers table (``customer_id`` and the attributes).
    missing : {"error", "reference"}
        A customer without a value of a categorical attribute: an error, or
        counted at the reference level.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``; the models' covariate columns.

    Raises
    ------
    DataError
        An attribute missing from the table; a level the models were not
        fitted with and that is not their reference (its customers would
        silently count as the reference); a missing value (``missing="error"``).
    """
    from crmstats.clv.covariate_frame import _ids

    if missing not in ("error", "reference"):
        raise ValueError(f"missing must be 'error' or 'reference', got {missing!r}")
    models = [models] if hasattr(models, "params_") else list(models)
    columns = list(dict.fromkeys(c for m in models for _, c in _coefficients(m)))
    if not columns:
        raise DataError("covariates_for: no model has covariate coefficients",
                        table="covariates")
    table = customers_frame(customers)
    ids = _ids(table, None)
    out = pd.DataFrame(index=ids)
    stems: dict[str, list[str]] = {}
    for col in columns:
        stem, sep, level = col.partition("[")
        if sep and level.endswith("]"):
            stems.setdefault(stem, []).append(level[:-1])
        else:
            stems.setdefault(col, [])
    for stem, levels in stems.items():
        if stem not in table.columns:
            raise DataError(f"customers table: no column {stem!r}; the model has "
                            f"coefficients for it", table="customers", column=stem)
        values = table[stem]
        if not levels:  # numeric
            out[stem] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            continue
        blank = pd.isna(values).to_numpy()
        text = np.where(blank, "", values.astype(str).to_numpy(dtype=object))
        if blank.any() and missing == "error":
            raise DataError(f"customers table, column {stem!r}: {int(blank.sum())} missing "
                            "value(s); fill them or pass missing='reference'",
                            table="customers", column=stem)
        unknown = sorted(set(text[~blank]) - set(levels))
        if len(unknown) > 1:
            raise DataError(f"customers table, column {stem!r}: levels {unknown} are not the "
                            f"model's ({sorted(levels)} against one reference level): "
                            "customers of a level the model was not fitted with would count "
                            "as the reference; refit the model with them",
                            table="customers", column=stem)
        for level in levels:
            out[f"{stem}[{level}]"] = (text == level).astype(float)
    return out[columns]

"""Covariates of the CLV models from the customers table: one row per customer, numbers only.

:func:`covariate_frame` turns chosen columns of the customers table
(acquisition channel, segment, region, a first-order amount...) into the
numeric frame that ``BetaGeoModel().fit(summary, covariates=X)`` and
``ParetoNBDModel().fit(summary, covariates=X)`` take: indexed by customer id,
a categorical column as 0/1 indicators ``column[level]`` against a reference
level, a numeric column as it is (or standardised). Build it once from the
whole customers table: the model looks customers up by id, so the same frame
serves the customers it was fitted on and new ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["covariate_frame"]


def _ids(customers: pd.DataFrame, id_col: str | None) -> pd.Index:
    col = id_col or "customer_id"
    if col in customers.columns:
        ids = pd.Index(customers[col], name="customer_id")
    elif id_col is None and customers.index.name == "customer_id":
        ids = customers.index
    else:
        raise DataError(f"customers table: no column {col!r} (nor an index of that name) "
                        "to identify customers", table="customers", column=col)
    blank = ids.isna()
    if blank.any():
        rows = list(customers.index[blank][:5])
        raise DataError(f"customers table, column {col!r}: {int(blank.sum())} missing customer "
                        f"id(s), e.g. rows {rows}", table="customers", column=col, rows=rows)
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = sorted({str(v) for v in ids[dup]})[:5]
        raise DataError(f"customers table, column {col!r}: customer ids occur more than once, "
                        f"e.g. {rows}; covariates need one row per customer",
                        table="customers", column=col, rows=rows)
    return ids


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def covariate_frame(
    customers: pd.DataFrame,
    columns: Sequence[str],
    *,
    reference: Mapping[str, str] | None = None,
    standardize: bool = False,
    missing: str = "error",
    customer_id_col: str | None = None,
) -> pd.DataFrame:
    """Return the covariates of the CLV models from columns of the customers table.

    Parameters
    ----------
    customers : pandas.DataFrame
        One row per customer with a ``customer_id`` column (or an index named
        ``customer_id``), e.g. ``crm.customers``. Not modified.
    columns : sequence of str
        Columns to use. Text, category and boolean columns are categorical:
        one 0/1 indicator ``column[level]`` per level other than the
        reference. Numeric columns are used as they are.
    reference : mapping, optional
        Reference level per categorical column (``{"acquisition_channel":
        "organic"}``): a coefficient then compares a level with this one.
        Default: the most common level (ties: the first in sorted order).
    standardize : bool
        Centre each numeric column on its mean and divide by its standard
        deviation (population, ``ddof=0``), so a coefficient is per standard
        deviation. Indicators are never standardised.
    missing : {"error", "reference"}
        A missing categorical value is a :class:`~crmstats.DataError` naming
        the column and rows ("error") or the reference level ("reference").
        A missing or non-numeric value in a numeric column is always an error.
    customer_id_col : str, optional
        The caller's name of the ``customer_id`` column.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id``; float columns, numeric ones first as named,
        then the indicators, in the order of ``columns``.

    Raises
    ------
    DataError
        A missing column, duplicate or missing ids, a missing value (see
        ``missing``), a reference level that does not occur, or a column that
        is the same for every customer (it cannot be told apart from the
        model's baseline).

    Examples
    --------
    >>> import crmstats
    >>> from crmstats import clv
    >>> crm = crmstats.load_crm("demo:seed=3,n_contacts=2000")
    >>> X = clv.covariate_frame(crm.customers, ["segment"], reference={"segment": "retail"})
    >>> X.index.name
    'customer_id'
    """
    if missing not in ("error", "reference"):
        raise ValueError(f"missing must be 'error' or 'reference', got {missing!r}")
    if not isinstance(customers, pd.DataFrame):
        raise DataError(f"customers: expected a DataFrame, got {type(customers).__name__}",
                        table="customers")
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    if not columns:
        raise ValueError("columns: name at least one column of the customers table")
    absent = [c for c in columns if c not in customers.columns]
    if absent:
        raise DataError(f"customers table: missing column(s) {', '.join(map(str, absent))}; "
                        f"columns: {', '.join(map(str, customers.columns))}",
                        table="customers", column=absent[0])
    reference = dict(reference or {})
    unknown = [c for c in reference if c not in columns]
    if unknown:
        raise ValueError(f"reference names column(s) {unknown} that are not in columns")
    ids = _ids(customers, customer_id_col)
    out: dict[str, np.ndarray] = {}
    for col in columns:
        s = customers[col].reset_index(drop=True)
        if col in reference or _is_categorical(s):
            out.update(_indicators(s, col, reference.get(col), missing, ids))
        else:
            out[col] = _numeric(s, col, standardize, ids)
    frame = pd.DataFrame(out, index=ids)
    frame.columns.name = None
    return frame


def _indicators(s: pd.Series, col: str, ref, missing: str, ids: pd.Index) -> dict:
    values = s.astype("string")
    blank = values.isna().to_numpy()
    levels = sorted(values[~blank].unique())
    if ref is None:
        counts = values[~blank].value_counts()
        if counts.empty:
            raise DataError(f"customers table, column {col!r}: no value at all",
                            table="customers", column=col)
        ref = min(counts.index[counts == counts.max()])
    ref = str(ref)
    if ref not in levels:
        raise DataError(f"customers table, column {col!r}: reference level {ref!r} does not "
                        f"occur; levels: {levels[:20]}", table="customers", column=col)
    if blank.any() and missing == "error":
        rows = [str(v) for v in ids[blank][:5]]
        raise DataError(f"customers table, column {col!r}: {int(blank.sum())} missing value(s), "
                        f"e.g. customers {rows}; fill them or pass missing='reference' to "
                        f"count them as the reference level {ref!r}",
                        table="customers", column=col, rows=rows)
    if len(levels) < 2:
        raise DataError(f"customers table, column {col!r}: every customer has the same level "
                        f"{ref!r}; a constant covariate cannot be estimated",
                        table="customers", column=col)
    filled = values.fillna(ref).to_numpy()
    return {f"{col}[{level}]": (filled == level).astype(float)
            for level in levels if level != ref}


def _numeric(s: pd.Series, col: str, standardize: bool, ids: pd.Index) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(x)
    if bad.any():
        rows = [str(v) for v in ids[bad][:5]]
        raise DataError(f"customers table, column {col!r}: {int(bad.sum())} missing, non-numeric "
                        f"or infinite value(s), e.g. customers {rows}; a numeric covariate has "
                        "no reference level to stand in for them", table="customers",
                        column=col, rows=rows)
    sd = float(np.std(x))
    if not sd > 0:
        raise DataError(f"customers table, column {col!r}: every customer has the value "
                        f"{x[0]:g}; a constant covariate cannot be estimated",
                        table="customers", column=col)
    return (x - x.mean()) / sd if standardize else x

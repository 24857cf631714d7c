"""Validation and compression of the per-customer summary, for :class:`~.base.BaseModel`.

A mixin, so that the models keep calling ``self._validate``, ``self._compress``
and ``self._distinct`` (split from ``base.py`` to keep each module readable).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.clv.units import checked_summary
from crmstats.exceptions import DataError

__all__ = ["SummaryRows"]


def _bad_rows(summary: pd.DataFrame, mask: np.ndarray) -> list:
    return list(summary.index[mask][:5])


class SummaryRows:
    """Validation of the summary and sufficient-statistic compression (see ``base``).

    The class using it declares ``_columns``, the summary columns it reads.
    """

    # ------------------------------------------------------------------ validation

    @classmethod
    def _validate(cls, summary: pd.DataFrame, what: str = "summary") -> pd.DataFrame:
        """Check the summary frame and return its model columns as floats (a new frame).

        Once per unchanged frame and set of columns (:func:`~crmstats.clv.units.checked_summary`).
        """
        if isinstance(summary, pd.DataFrame):
            return checked_summary(summary, (cls._columns, cls._check_consistency.__func__, what),
                                   lambda: cls._check_summary(summary, what))
        return cls._check_summary(summary, what)

    @classmethod
    def _check_summary(cls, summary: pd.DataFrame, what: str) -> pd.DataFrame:
        if not isinstance(summary, pd.DataFrame):
            raise DataError(
                f"{what}: expected a DataFrame with columns {', '.join(cls._columns)} "
                f"(see crmstats.clv.rfm_summary), got {type(summary).__name__}",
                table=what,
            )
        missing = [c for c in cls._columns if c not in summary.columns]
        if missing:
            raise DataError(
                f"{what} table: missing column(s) {', '.join(missing)}; "
                f"{cls.__name__} needs {', '.join(cls._columns)}",
                table=what,
                column=missing[0],
            )
        if summary.empty:
            raise DataError(f"{what} table is empty", table=what)
        out = pd.DataFrame(index=summary.index)
        for col in cls._columns:
            values = pd.to_numeric(summary[col], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values)
            if bad.any():
                raise DataError(
                    f"{what} table, column {col!r}: {int(bad.sum())} missing, non-numeric or "
                    f"non-finite value(s), e.g. rows {_bad_rows(summary, bad)}",
                    table=what, column=col, rows=_bad_rows(summary, bad),
                )
            if (values < 0).any():
                neg = values < 0
                raise DataError(
                    f"{what} table, column {col!r}: {int(neg.sum())} negative value(s), e.g. "
                    f"rows {_bad_rows(summary, neg)}",
                    table=what, column=col, rows=_bad_rows(summary, neg),
                )
            out[col] = values
        cls._check_consistency(out, summary, what)
        return out

    @classmethod
    def _check_consistency(cls, data: pd.DataFrame, summary: pd.DataFrame, what: str) -> None:
        if "frequency" in data and "recency" in data:
            frac = data["frequency"].to_numpy() % 1 != 0
            if frac.any():
                raise DataError(
                    f"{what} table, column 'frequency': non-integer repeat counts, e.g. rows "
                    f"{_bad_rows(summary, frac)}",
                    table=what, column="frequency", rows=_bad_rows(summary, frac),
                )
        if "recency" in data and "T" in data:
            late = data["recency"].to_numpy() > data["T"].to_numpy() * (1 + 1e-9) + 1e-9
            if late.any():
                raise DataError(
                    f"{what} table, column 'recency': recency exceeds T (the last purchase "
                    f"after the end of observation), e.g. rows {_bad_rows(summary, late)}",
                    table=what, column="recency", rows=_bad_rows(summary, late),
                )

    # ------------------------------------------------------------------ compression

    @classmethod
    def _compress(cls, data: pd.DataFrame, weights: np.ndarray | None) -> dict[str, np.ndarray]:
        """Collapse identical rows into unique rows with summed weights.

        Each column is factorised by hashing and the codes combine into one
        mixed-radix integer per row, whose distinct values are found by
        sorting: several times faster than grouping the float columns
        (``DataFrame.groupby``) or ``numpy.unique(axis=0)`` on a million
        rows; the combined integers are sorted, so the unique rows
        come back in a fixed order. Besides one array per column and ``weights``, the
        result carries ``_codes``: per column, its distinct values and each
        unique row's position among them (models use these to evaluate a
        term once per distinct value).
        """
        cols = list(cls._columns)
        w = None if weights is None else np.asarray(weights, dtype=float)
        codes, uniques = [], []
        for col in cols:
            code, uniq = pd.factorize(data[col].to_numpy(dtype=float), sort=False)
            codes.append(code)
            uniques.append(np.asarray(uniq, dtype=float))
        sizes = [max(len(u), 1) for u in uniques]
        if float(np.prod([float(n) for n in sizes])) >= 2.0**62:
            return cls._compress_groupby(data, cols, w)
        key = codes[0].astype(np.int64)
        for code, size in zip(codes[1:], sizes[1:], strict=True):
            key = key * size + code
        # distinct keys by sorting (much faster than hashing a million keys)
        ordered = np.sort(key)
        first = np.empty(len(ordered), dtype=bool)
        first[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        keys = ordered[first]
        if w is None:
            starts = np.flatnonzero(first)
            counts = np.diff(np.append(starts, len(ordered))).astype(float)
        else:
            counts = np.bincount(np.searchsorted(keys, key), weights=w, minlength=len(keys))
        per_col = []
        rest = np.asarray(keys, dtype=np.int64)
        for size in reversed(sizes[1:]):
            rest, code = np.divmod(rest, size)
            per_col.append(code)
        per_col.append(rest)
        per_col.reverse()
        out = {col: uniques[i][per_col[i]] for i, col in enumerate(cols)}
        out["weights"] = counts
        out["_codes"] = {col: (uniques[i], per_col[i]) for i, col in enumerate(cols)}
        return out

    @staticmethod
    def _compress_groupby(data: pd.DataFrame, cols: list[str], w) -> dict[str, np.ndarray]:
        """:meth:`_compress` for columns with too many distinct values to combine codes."""
        frame = data[cols].reset_index(drop=True)
        frame["__w__"] = 1.0 if w is None else w
        grouped = frame.groupby(cols, sort=True)["__w__"].sum()
        out = {col: grouped.index.get_level_values(col).to_numpy(dtype=float) for col in cols}
        out["weights"] = grouped.to_numpy(dtype=float)
        return out

    @staticmethod
    def _distinct(data: dict[str, np.ndarray], col: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values of a compressed column and each row's position among them."""
        codes = data.get("_codes")
        if codes is not None and col in codes:
            return codes[col]
        return np.unique(data[col], return_inverse=True)

    @staticmethod
    def _to_log_scale(theta: np.ndarray, grad: np.ndarray, hess: np.ndarray | None = None):
        """Negative log-likelihood derivatives in log-parameters from the log-likelihood's.

        ``grad`` and ``hess`` are the log-likelihood's gradient and Hessian in
        the natural parameters ``theta``; with ``φ = log θ``:
        ``g_φ = θ ⊙ g`` and ``H_φ = diag(θ) H diag(θ) + diag(θ ⊙ g)``. Signs
        are flipped for the negative log-likelihood the optimiser minimises.
        """
        g_log = theta * grad
        if hess is None:
            return -g_log
        return -g_log, -(hess * np.outer(theta, theta) + np.diag(g_log))

    @staticmethod
    def _memoized(data: dict, log_params, hessian: bool, evaluate):
        """Return ``evaluate()`` for these log-parameters, remembering the last few results.

        The fit, ``log_likelihood_`` and the standard errors evaluate the same
        point; a value/gradient request is served by a remembered Hessian
        evaluation at the same point.
        """
        memo = data.setdefault("_evals", {})
        key = np.asarray(log_params, dtype=float).tobytes()
        for k in ((key, True),) if hessian else ((key, True), (key, False)):
            if k in memo:
                return memo[k] if hessian else memo[k][:2]
        out = evaluate()
        if len(memo) >= 4:
            memo.pop(next(iter(memo)))
        memo[key, hessian] = out
        return out


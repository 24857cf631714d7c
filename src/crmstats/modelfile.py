"""Model files: the JSON form of a fitted estimator, read as untrusted input.

:meth:`crmstats.estimator.Estimator.save` writes, and
:func:`crmstats.estimator.load_model` reads, a small JSON document (no pickle):
format and version, crmstats version, the class name (one of
:data:`MODEL_CLASSES`, nothing else is imported), hyperparameters,
parameters, the ``summary_`` table, the variance matrix and the fit's facts.
Floats are JSON numbers, ``null`` (NaN) or ``"inf"`` / ``"-inf"``. Reading
checks the size, the JSON, every key's type and finiteness; a problem is a
:class:`~crmstats.DataError` naming the file and the key.
:func:`given_params` and :func:`given_column` check the arguments of
``from_params`` the same way.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["MAX_MODEL_FILE_BYTES", "MODEL_CLASSES", "MODEL_FORMAT", "MODEL_FORMAT_VERSION",
           "given_column", "given_count", "given_params", "read_model_file"]

#: What a model file says it is, and the version of its layout.
MODEL_FORMAT = "crmstats-model"
MODEL_FORMAT_VERSION = 1
#: A model file is a few kilobytes; anything above this is refused unread.
MAX_MODEL_FILE_BYTES = 2_000_000
#: Longest list (terms, covariates, levels...) a model file may hold.
_MAX_ITEMS = 10_000
#: The estimators a model file may name, and their modules (nothing else is imported).
MODEL_CLASSES = {
    "BetaGeoModel": "crmstats.clv.models.beta_geo",
    "ModifiedBetaGeoModel": "crmstats.clv.models.beta_geo",
    "ParetoNBDModel": "crmstats.clv.models.pareto_nbd",
    "GammaGammaModel": "crmstats.clv.models.gamma_gamma",
    "BetaGeoBetaBinomModel": "crmstats.clv.models.bg_bb",
    "ShiftedBetaGeoModel": "crmstats.clv.models.shifted_beta_geo",
    "CoxModel": "crmstats.churn.cox",
    "ShiftedBetaGeoHazardModel": "crmstats.churn.hazard",
    "LeadScoringModel": "crmstats.funnel.scoring",
    "IncrementalityModel": "crmstats.attribution.incrementality",
    "MediaMixModel": "crmstats.attribution.mmm",
}


def read_model_file(path) -> tuple[dict, str]:
    """Read a model file's JSON, bounded and strict; return it and the file's name.

    The file is untrusted input: it is refused unread above
    :data:`MAX_MODEL_FILE_BYTES` and must be strict JSON (no NaN tokens);
    :func:`crmstats.estimator.load_model` then checks its class and values.

    Raises
    ------
    DataError
        Naming the file.
    """
    source = os.fspath(path)
    try:
        size = os.stat(source).st_size
        if size > MAX_MODEL_FILE_BYTES:
            raise DataError(f"model file {source}: {size:,} bytes, more than a model file's "
                            f"{MAX_MODEL_FILE_BYTES:,}", table=source)
        with open(source, "rb") as fh:
            raw = fh.read(MAX_MODEL_FILE_BYTES + 1)
    except OSError as exc:
        raise DataError(f"model file {source}: cannot be read ({exc.strerror or exc})",
                        table=source) from None
    if len(raw) > MAX_MODEL_FILE_BYTES:
        raise DataError(f"model file {source}: more than {MAX_MODEL_FILE_BYTES:,} bytes",
                        table=source)

    def no_constants(token):
        raise ValueError(f"{token} is not a number in a model file")

    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"model file {source}: not a crmstats model file (not valid JSON: "
                        f"{str(exc)[:200]})", table=source) from None
    return data, source


# ---------------------------------------------------------------------- model-file values


def _num(value) -> float | str | None:
    """Return a float for JSON: NaN as null, infinities as "inf" / "-inf"."""
    v = float(value)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _plain(value):
    """Numpy scalars and tuples as plain JSON values (floats through :func:`_num`)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _num(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def given_count(value, name: str) -> float:
    """Check a count given to ``from_params`` (``n_obs``, ``events``): finite and >= 0."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v >= 0):
        raise DataError(f"{name}: a non-negative count expected, got {value!r}", column=name)
    return v


class _Reader:
    """Typed access to one JSON object of a model file; errors name the file and key."""

    def __init__(self, data, source: str, prefix: str = ""):
        self.source, self.prefix = source, prefix
        if not isinstance(data, dict):
            self.fail("", f"expected a JSON object, got {type(data).__name__}")
        self.data = data

    def fail(self, key: str, problem: str, *, top: bool = False):
        """Raise the DataError naming the file and the key (``top``: a key of the document)."""
        where = (key if top else f"{self.prefix}{key}") or "(top level)"
        raise DataError(f"model file {self.source}: key {where!r}: {problem}",
                        table=self.source, column=where)

    def keys(self) -> list[str]:
        if len(self.data) > _MAX_ITEMS:
            self.fail("", "too many keys")
        return list(self.data)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def get(self, key: str, kind):
        if key not in self.data:
            self.fail(key, "missing")
        value = self.data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)
                                           and kind in (int, float, (int, float))):
            self.fail(key, f"expected {getattr(kind, '__name__', 'a number')}, got "
                      f"{type(value).__name__}")
        if isinstance(value, list | dict | str) and len(value) > _MAX_ITEMS * 10:
            self.fail(key, "too long")
        return value

    def expect(self, key: str, value) -> None:
        if self.data.get(key) != value:
            self.fail(key, f"expected {value!r}: not a crmstats model file")

    def section(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict), self.source, f"{self.prefix}{key}.")

    def string(self, key: str) -> str:
        return self.get(key, str)

    def optional_string(self, key: str) -> str | None:
        return None if self.data.get(key) is None else self.string(key)

    def boolean(self, key: str) -> bool:
        return self.get(key, bool)

    def integer(self, key: str) -> int:
        value = self.get(key, int)
        if abs(value) > 2**53:
            self.fail(key, "integer out of range")
        return value

    def number(self, key: str, *, finite: bool = False) -> float:
        """Read a float: a JSON number, null (NaN) or "inf"/"-inf" (unless ``finite``)."""
        if key not in self.data:
            self.fail(key, "missing")
        return self._float(self.data[key], key, finite)

    def count(self, key: str) -> float:
        """Read a non-negative number, or NaN (null: unknown)."""
        v = self.number(key)
        if not (math.isnan(v) or (math.isfinite(v) and v >= 0)):
            self.fail(key, f"a non-negative count expected, got {v}")
        return v

    def _float(self, value, key: str, finite: bool) -> float:
        if isinstance(value, bool):
            self.fail(key, "expected a number, got a boolean")
        if isinstance(value, int | float):
            if isinstance(value, int) and abs(value) > 2**1023:
                self.fail(key, "number out of range")
            v = float(value)
        elif value is None:
            v = float("nan")
        elif value in ("inf", "-inf"):
            v = float(value)
        else:
            self.fail(key, f"expected a number, got {type(value).__name__}")
        if finite and not math.isfinite(v):
            self.fail(key, "expected a finite number")
        return v

    def numbers_of(self, values, key: str, finite: bool = False) -> list[float]:
        if not isinstance(values, list) or len(values) > _MAX_ITEMS:
            self.fail(key, "expected a list of numbers")
        return [self._float(v, f"{key}[{i}]", finite) for i, v in enumerate(values)]

    def numbers(self, key: str, *, finite: bool = False) -> list[float]:
        return self.numbers_of(self.get(key, list), key, finite)

    def strings(self, key: str) -> list[str]:
        values = self.get(key, list)
        if len(values) > _MAX_ITEMS or not all(isinstance(v, str) and len(v) <= 1000
                                               for v in values):
            self.fail(key, "expected a list of (short) strings")
        return values

    def plain(self, key: str):
        """Read a hyperparameter: a JSON scalar, a list of strings, or a str -> str mapping."""
        value = self.data.get(key)
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float):
            return self._float(value, key, True) if isinstance(value, float) else \
                self.integer(key)
        if isinstance(value, list):
            return self.strings(key)
        if isinstance(value, dict):
            if len(value) > _MAX_ITEMS or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in value.items()):
                self.fail(key, "expected a mapping of strings")
            return dict(value)
        return self.fail(key, f"unexpected {type(value).__name__}")


def given_params(cls, params, names: Sequence[str] | None = None, *,
                 positive: Sequence[str] = ()) -> pd.Series:
    """Check parameters given to ``from_params``: a mapping name -> finite number.

    ``names``: the parameters the model has (all required, no others);
    ``positive``: those that must be above 0.
    """
    if isinstance(params, pd.Series):
        params = params.to_dict()
    if not isinstance(params, Mapping) or not params:
        raise DataError(f"{cls.__name__}.from_params: params must be a mapping of parameter "
                        f"name to value{'' if names is None else ' (' + ', '.join(names) + ')'}",
                        table="params")
    keys = [str(k) for k in params]
    if names is not None:
        missing = [n for n in names if n not in keys]
        extra = [k for k in keys if k not in names]
        if missing or extra:
            raise DataError(f"{cls.__name__}.from_params: params must be exactly "
                            f"{', '.join(names)} (missing: {missing}, unknown: {extra})",
                            table="params", column=(missing or extra)[0])
        keys = list(names)
    values = {}
    for k in keys:
        raw = params[k]
        try:
            v = float(raw)
        except (TypeError, ValueError):
            v = float("nan")
        if isinstance(raw, bool) or not math.isfinite(v) or (k in positive and v <= 0):
            need = "a positive" if k in positive else "a finite"
            raise DataError(f"{cls.__name__}.from_params: parameter {k!r} must be {need} "
                            f"number, got {raw!r}", table="params", column=k)
        values[k] = v
    return pd.Series(values, name="estimate", dtype=float)


def given_column(cls, values, names: Sequence[str], what: str) -> np.ndarray:
    """Check optional per-parameter numbers of ``from_params`` (``std_err``, ``p_value``)."""
    if values is None:
        return np.full(len(names), np.nan)
    if isinstance(values, pd.Series):
        values = values.to_dict()
    if not isinstance(values, Mapping):
        raise DataError(f"{cls.__name__}.from_params: {what} must be a mapping of parameter "
                        "name to value", table=what)
    unknown = [k for k in values if k not in names]
    if unknown:
        raise DataError(f"{cls.__name__}.from_params: {what} names unknown parameter(s) "
                        f"{unknown}", table=what, column=str(unknown[0]))
    out = np.array([float(values.get(n, np.nan)) for n in names])
    if np.any(out[np.isfinite(out)] < 0) or np.any(np.isinf(out)):
        raise DataError(f"{cls.__name__}.from_params: {what} must be finite and >= 0",
                        table=what)
    return out

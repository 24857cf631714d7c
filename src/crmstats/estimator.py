"""The fitted-model contract shared by every estimator in every domain package.

Every estimator (CLV models, the churn hazard models, attribution and
lead-scoring models) follows the scikit-learn pattern — hyperparameters in
``__init__``, ``fit(...)`` returns ``self``, fitted attributes end in ``_`` —
and this module's :class:`Estimator` adds the parts that must be the same
everywhere:

* ``n_obs_`` — the number of observations the model was fitted on (customers,
  accounts, journeys, leads; weights count), set by every ``fit``;
* a fitted attribute or prediction asked of an unfitted model raises
  :class:`~crmstats.NotFittedError`;
* ``summary_`` — where a model has parameters with sampling uncertainty — is
  one table with the columns of :data:`SUMMARY_COLUMNS`: ``estimate``,
  ``std_err``, ``lower_95``, ``upper_95`` and, where a test of "no effect"
  applies, ``p_value`` (see :func:`summary_table`). The interval of a
  parameter that is positive by definition (a rate, a shape, a scale) is
  built on the log scale, so it never reaches below 0 (:func:`log_interval`);
  coefficients that may have either sign get the Wald interval;
* ``converged_`` where the model is fitted by an optimiser.

Observed-information standard errors by central differences are computed by
one function, :func:`numerical_hessian`, for every likelihood model that has no
analytic Hessian.

Keeping a fitted model (the second half of this module): every parametric
estimator can be rebuilt at given parameters (``Model.from_params(params,
**meta)``: e.g. a paper's published estimates; ``fitted_here_`` is then False
and standard errors are NaN unless given) and written to / read from a small
JSON file (``model.save(path)``, ``Model.load(path)``, or
``to_dict``/``from_dict``): class name, crmstats version, format version,
hyperparameters, parameters, the ``summary_`` table, the variance matrix where
the model keeps one, and the fit's facts that predictions need (the time unit
of the summary it was fitted on, ``n_obs_``, ``converged_``, ``boundary_``...).
No pickle: a model file is untrusted input. :func:`load_model` reads a file of
any known class; every value is checked (type, finiteness, known class and
keys, bounded size) and bad input is a :class:`~crmstats.DataError` naming the
file and the key.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from crmstats.exceptions import CRMStatsError, NotFittedError
from crmstats.modelfile import (
    MODEL_CLASSES,
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    _num,
    _plain,
    _Reader,
    given_column,
    given_count,
    given_params,
    read_model_file,
)

__all__ = ["SUMMARY_COLUMNS", "Estimator", "given_column", "given_count", "given_params",
           "load_model", "log_interval", "numerical_hessian", "summary_table"]

#: Columns of every estimator's ``summary_`` (``p_value`` only where a test applies).
SUMMARY_COLUMNS = ("estimate", "std_err", "lower_95", "upper_95", "p_value")

_Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975), without importing scipy.stats


def log_interval(estimate, std_err, z: float = _Z95) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a positive quantity on the log scale: ``θ · exp(± z · se / θ)``.

    The delta method gives ``se(log θ) = se(θ) / θ``; the interval
    ``exp(log θ ± z · se(log θ))`` is then mapped back. Unlike the Wald
    interval ``θ ± z · se`` it never reaches 0 or below, and it is wider above
    the estimate than below, as the sampling distribution of a positive
    estimate is. A missing standard error gives a missing interval; an
    infinite one gives ``(0, inf)``.

    Parameters
    ----------
    estimate, std_err : array-like
        Positive estimates and their standard errors (natural scale).
    z : float
        Normal quantile; the default gives a 95 % interval.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Lower and upper bounds.

    References
    ----------
    .. [1] Cox, D. R. and Hinkley, D. V. (1974). Theoretical Statistics.
       Chapman & Hall, section 9.3 (intervals after a transformation).
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_err, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        half = z * se / est
        return est * np.exp(-half), est * np.exp(half)


def summary_table(
    names: Sequence[str],
    estimate,
    std_err,
    *,
    lower=None,
    upper=None,
    positive=False,
    p_value=None,
    index_name: str = "parameter",
) -> pd.DataFrame:
    """Build a ``summary_`` table in the shared schema.

    Parameters
    ----------
    names : sequence of str
        Parameter names (the index).
    estimate, std_err : array-like
        Point estimates and their standard errors (``std_err`` always on the
        parameters' own scale).
    lower, upper : array-like, optional
        The 95 % interval, when the caller builds it another way (e.g. by
        profile likelihood). By default the interval comes from ``positive``.
    positive : bool or sequence of bool
        Which parameters are positive by definition (all, none, or one flag
        per parameter). Theirs is the log-scale interval of
        :func:`log_interval`, which stays above 0; the others get the Wald
        interval ``estimate ± 1.96 std_err``.
    p_value : array-like, optional
        Two-sided p-value of "no effect", where such a test applies (NaN for
        parameters without one); omitted, the column is left out.
    index_name : str
        Name of the index.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate``, ``std_err``, ``lower_95``, ``upper_95``
        [, ``p_value``].
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_err, dtype=float)
    pos = np.broadcast_to(np.asarray(positive, dtype=bool), est.shape)
    log_lo, log_hi = log_interval(est, se)
    default_lo = np.where(pos, log_lo, est - _Z95 * se)
    default_hi = np.where(pos, log_hi, est + _Z95 * se)
    out = pd.DataFrame({
        "estimate": est,
        "std_err": se,
        "lower_95": default_lo if lower is None else np.asarray(lower, dtype=float),
        "upper_95": default_hi if upper is None else np.asarray(upper, dtype=float),
    }, index=pd.Index(list(names), name=index_name))
    if p_value is not None:
        out["p_value"] = np.asarray(p_value, dtype=float)
    return out


def numerical_hessian(f: Callable[[np.ndarray], float], x, h) -> np.ndarray:
    """Central-difference Hessian of a scalar function.

    Diagonal terms from ``(f(x+h) - 2 f(x) + f(x-h)) / h²``, off-diagonal ones
    from the four-point formula; ``h`` is the step per coordinate.

    Parameters
    ----------
    f : callable
        Scalar function of a 1-d array.
    x : array-like
        Where to evaluate.
    h : array-like
        Step per coordinate.

    Returns
    -------
    numpy.ndarray
        The symmetric ``k × k`` matrix.
    """
    x = np.asarray(x, dtype=float)
    h = np.broadcast_to(np.asarray(h, dtype=float), x.shape)
    k = len(x)
    out = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        out[i, i] = (f(x + e) - 2 * f0 + f(x - e)) / h[i] ** 2
        for j in range(i + 1, k):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            out[i, j] = out[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h[i] * h[j])
    return out


class Estimator:
    """Base of every estimator: the fitted check, the shared attributes, keeping a model.

    Subclasses set ``n_obs_`` in ``fit`` (and ``summary_`` where it applies)
    and call :meth:`_check_fitted` before using fitted attributes. A
    parametric estimator also implements :meth:`from_params` and the two
    hooks of the model file, :meth:`_fit_facts` and :meth:`_restore`, and
    lists its ``__init__`` arguments in ``_hyper`` (module docstring).
    """

    #: ``__init__`` arguments written to a model file (JSON scalars, lists, str mappings).
    _hyper: ClassVar[tuple[str, ...]] = ()

    def _check_fitted(self) -> None:
        if getattr(self, "n_obs_", None) is None:
            raise self._not_fitted()

    def _not_fitted(self) -> NotFittedError:
        name = type(self).__name__
        keeps = type(self)._restore is not Estimator._restore  # it has a model file
        return NotFittedError(
            f"this {name} is not fitted yet; call fit(...) first"
            + (f" (or build it with {name}.from_params / load)" if keeps else "")
        )

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: a fitted attribute (``params_``...) asked of
        # an unfitted model is a NotFittedError (an AttributeError, so getattr(m, x, None)
        # and hasattr keep working), and so is a property whose NotFittedError Python turned
        # into this call; anything else is the usual AttributeError
        if not name.startswith("_") and self.__dict__.get("n_obs_") is None \
                and (name.endswith("_") or hasattr(type(self), name)):
            raise self._not_fitted()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def is_fitted(self) -> bool:
        """Whether the model can be used: fitted, built by ``from_params`` or loaded."""
        return getattr(self, "n_obs_", None) is not None

    @property
    def fitted_here_(self) -> bool:
        """False for a model built by :meth:`from_params` (its parameters came from elsewhere).

        A model fitted by crmstats keeps True through :meth:`save` and :meth:`load`.
        """
        self._check_fitted()
        return not getattr(self, "_given_params", False)

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}({state})"

    # ------------------------------------------------------------------ keeping a model

    @classmethod
    def from_params(cls, params) -> Estimator:
        """Return a model evaluable at given parameters (each subclass spells out its own)."""
        raise CRMStatsError(f"{cls.__name__} has no parameters to rebuild it from")

    def _fit_facts(self) -> dict[str, Any]:
        """Return the fit's facts a model file keeps (JSON values); see :meth:`_restore`."""
        raise CRMStatsError(f"{type(self).__name__} cannot be saved")

    def _restore(self, params: pd.Series, summary: pd.DataFrame, facts: _Reader,
                 variance: pd.DataFrame | None) -> None:
        """Set the fitted attributes from a model file's parts (already type-checked)."""
        raise CRMStatsError(f"{type(self).__name__} cannot be loaded")

    def _given(self, params: pd.Series, summary: pd.DataFrame, *, n_obs=None) -> None:
        """Set what every model built by :meth:`from_params` has."""
        self.params_ = params
        self.summary_ = summary
        self.n_obs_ = float("nan") if n_obs is None else given_count(n_obs, "n_obs")
        self.converged_ = None  # not fitted here: nothing converged or failed
        self.log_likelihood_ = float("nan")
        self._given_params = True

    def _common_facts(self) -> dict[str, Any]:
        """Return the facts every fitted model has: ``n_obs_``, ``converged_``, log-likelihood."""
        return {"n_obs": self.n_obs_, "converged": getattr(self, "converged_", None),
                "log_likelihood": getattr(self, "log_likelihood_", float("nan"))}

    def _restore_common(self, params: pd.Series, summary: pd.DataFrame, facts: _Reader,
                        variance: pd.DataFrame | None = None) -> None:
        """Set ``params_``, ``summary_``, ``variance_matrix_`` and :meth:`_common_facts`."""
        self.params_ = params
        self.summary_ = summary
        if variance is not None:
            self.variance_matrix_ = variance
        self.n_obs_ = facts.count("n_obs")
        self.converged_ = facts.boolean("converged") if facts.has("converged") else None
        self.log_likelihood_ = facts.number("log_likelihood")

    def to_dict(self) -> dict[str, Any]:
        """Return the model as plain JSON-ready data (the content of :meth:`save`'s file)."""
        from crmstats._version import __version__

        self._check_fitted()
        facts = _plain(self._fit_facts())  # first: a model without a file says so
        variance = getattr(self, "variance_matrix_", None)
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "crmstats_version": __version__,
            "class": type(self).__name__,
            "hyperparameters": {name: _plain(getattr(self, name)) for name in self._hyper},
            "fitted_here": self.fitted_here_,
            "params": {"names": [str(n) for n in self.params_.index],
                       "values": [_num(v) for v in self.params_.to_numpy(dtype=float)]},
            "summary": {"index_name": self.summary_.index.name,
                        "columns": {c: [_num(v) for v in self.summary_[c].to_numpy(float)]
                                    for c in self.summary_.columns}},
            "variance_matrix": None if variance is None else
            [[_num(v) for v in row] for row in np.asarray(variance, dtype=float)],
            "fit": facts,
        }

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "model") -> Estimator:
        """Rebuild a model from :meth:`to_dict`'s data, checking every value.

        Parameters
        ----------
        data : mapping
            As :meth:`to_dict` returns it (e.g. parsed from a model file).
        source : str
            What the data came from (a file name), for error messages.

        Returns
        -------
        Estimator
            An instance of the class the data name; called on a subclass, the
            data must name that class (or one of its subclasses).
        """
        r = _Reader(data, source)
        r.expect("format", MODEL_FORMAT)
        version = r.integer("format_version")
        if version != MODEL_FORMAT_VERSION:
            r.fail("format_version", f"this crmstats reads format version "
                   f"{MODEL_FORMAT_VERSION}, the file has {version}")
        r.string("crmstats_version")
        name = r.string("class")
        if name not in MODEL_CLASSES:
            r.fail("class", f"unknown model class {name!r}; known: {', '.join(MODEL_CLASSES)}")
        klass = getattr(importlib.import_module(MODEL_CLASSES[name]), name)
        if not issubclass(klass, cls):
            r.fail("class", f"the file holds a {name}, not a {cls.__name__}")
        hyper = r.section("hyperparameters")
        unknown = sorted(set(hyper.keys()) - set(klass._hyper))
        if unknown:
            hyper.fail(unknown[0], f"not a {name} hyperparameter")
        model = klass(**{k: _hyper_value(klass, hyper, k) for k in hyper.keys()})
        p = r.section("params")
        names = p.strings("names")
        values = p.numbers("values", finite=True)
        if len(names) != len(values) or len(set(names)) != len(names):
            p.fail("names", "parameter names must be distinct, one per value")
        params = pd.Series(values, index=names, name="estimate", dtype=float)
        sm = r.section("summary")
        index_name = sm.optional_string("index_name")
        cols = sm.section("columns")
        columns = {}
        for c in cols.keys():
            if c not in SUMMARY_COLUMNS:
                cols.fail(c, f"not a summary column ({', '.join(SUMMARY_COLUMNS)})")
            columns[c] = cols.numbers(c)
            if len(columns[c]) != len(names):
                cols.fail(c, f"{len(columns[c])} values for {len(names)} parameters")
        if "estimate" not in columns or not np.array_equal(columns["estimate"], values):
            cols.fail("estimate", "the summary's estimates differ from params")
        summary = pd.DataFrame(columns, index=pd.Index(names, name=index_name))
        variance = None
        if r.has("variance_matrix"):
            rows = r.get("variance_matrix", list)
            if len(rows) != len(names):
                r.fail("variance_matrix", f"expected {len(names)} rows")
            matrix = [r.numbers_of(row, f"variance_matrix[{i}]") for i, row in enumerate(rows)]
            if any(len(row) != len(names) for row in matrix):
                r.fail("variance_matrix", f"expected {len(names)} columns per row")
            variance = pd.DataFrame(matrix, index=names, columns=names, dtype=float)
        fitted_here = r.boolean("fitted_here")
        model._restore(params, summary, r.section("fit"), variance)
        model._given_params = not fitted_here
        return model

    def save(self, path) -> None:
        """Write the model to ``path`` as a small JSON file (:meth:`to_dict`; no pickle)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")

    @classmethod
    def load(cls, path) -> Estimator:
        """Read a model written by :meth:`save`, checking every value (see :func:`load_model`)."""
        return load_model(path, cls)


def load_model(path, cls=None):
    """Read a model file written by :meth:`Estimator.save`, of any known class.

    The file is untrusted input: it is refused unread above
    :data:`crmstats.modelfile.MAX_MODEL_FILE_BYTES`, must be strict JSON (no
    NaN tokens), name a class of :data:`crmstats.modelfile.MODEL_CLASSES` and
    hold values of the right types; every problem is a
    :class:`~crmstats.DataError` naming the file and the key.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    cls : type, optional
        The class the file must hold (or a subclass of it); default any estimator.

    Returns
    -------
    Estimator
    """
    data, source = read_model_file(path)
    return (cls or Estimator).from_dict(data, source=source)


def _hyper_value(klass, hyper: _Reader, key: str):
    """Read hyperparameter ``key`` and check it has the type of ``__init__``'s default."""
    import inspect

    value = hyper.plain(key)
    default = inspect.signature(klass.__init__).parameters[key].default
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, str):  # e.g. penalty="auto", or a number
        ok = isinstance(value, str | int | float) and not isinstance(value, bool)
    else:
        ok = True
    if not ok:
        hyper.fail(key, f"expected a value like the default {default!r}, got {value!r}")
    return value

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from crmstats.exceptions import NotFittedError

__all__ = ["SUMMARY_COLUMNS", "Estimator", "log_interval", "numerical_hessian", "summary_table"]

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
    """Base of every estimator: the fitted check and the shared attributes (module docstring).

    Subclasses set ``n_obs_`` in ``fit`` (and ``summary_`` where it applies)
    and call :meth:`_check_fitted` before using fitted attributes.
    """

    def _check_fitted(self) -> None:
        if getattr(self, "n_obs_", None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(...) first"
            )

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` has been called."""
        return getattr(self, "n_obs_", None) is not None

    def __repr__(self) -> str:
        state = "fitted" if self.is_fitted else "not fitted"
        return f"{type(self).__name__}({state})"

"""Splitting a media budget across channels under fitted (or true) response curves.

:func:`allocate` maximises ``Σ_c f_c(s_c)`` subject to ``Σ_c s_c = total`` and
bounds, for any per-channel response ``f`` (Hill curves are S-shaped, so the
problem is not concave): the exact optimum on a grid of budget slices by
dynamic programming (the objective is a sum of one-channel curves), then a
sequential quadratic programming polish (SLSQP) from it. The model's
:meth:`~crmstats.attribution.MediaMixModel.optimize_budget` uses it on the
fitted curves, the simulator on the true ones.

:func:`optimize_budget` maximises either the outcome under the model's point
estimate (``objective="plugin"``, the default) or the outcome averaged over
the model's parameter draws (``objective="expected"``: the Bayes decision
under the Laplace posterior; pymc-marketing's ``BudgetOptimizer`` maximises
the same posterior-mean response by default, its ``average_response``
utility). The average of one-channel curves is still a sum of one-channel
curves, so :func:`allocate` serves both.

References
----------
Jin, Y., Wang, Y., Sun, Y., Chan, D. & Koehler, J. (2017). Bayesian methods for
media mix modeling with carryover and shape effects. Google Inc. (the model and
its posterior, from which the expected outcome of a split is computed).
Berger, J. O. (1985). *Statistical Decision Theory and Bayesian Analysis*, 2nd
ed., Springer (the Bayes action maximises posterior expected utility).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from crmstats.vocabulary import with_old_column_names

__all__ = ["BudgetPlan", "allocate", "optimize_budget"]


def allocate(curve: Callable[[np.ndarray], np.ndarray], total: float, lower, upper,
             *, starts=(), n_slices: int = 400) -> np.ndarray:
    """Weekly spend per channel maximising ``curve(s).sum()`` with ``Σ s = total``.

    Parameters
    ----------
    curve : callable
        Maps a spend vector (one entry per channel) to the outcome per channel.
    total : float
        Budget to split.
    lower, upper : array-like
        Bounds per channel (``upper`` may be ``inf``); ``Σ lower <= total <= Σ upper``.
    starts : sequence of array-like
        Further starting splits (e.g. the current one).
    n_slices : int
        Slices of the budget on the grid of the first pass.

    Returns
    -------
    numpy.ndarray
        The best allocation found: the grid optimum (dynamic programming),
        the given starts and an even split, each polished by SLSQP.
    """
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    if total < lo.sum() - 1e-9 or total > hi.sum() + 1e-9:
        raise ValueError(f"a budget of {total:,.2f} does not fit the bounds (between "
                         f"{lo.sum():,.2f} and {hi.sum():,.2f})")
    cands = [_grid_optimum(curve, total, lo, hi, n_slices)]
    finite_hi = np.where(np.isfinite(hi), hi, lo + total)
    cands.append(_fit_total(lo + (finite_hi - lo) * 0.5, total, lo, hi))
    cands += [_fit_total(np.asarray(s, float), total, lo, hi) for s in starts]
    scale = max(total, 1e-12)
    bounds = [(a / scale, (b / scale if np.isfinite(b) else None))
              for a, b in zip(lo, hi, strict=True)]
    best, best_value = None, -np.inf
    for s0 in cands:
        for s in (s0, _polish(curve, s0, scale, bounds, total, lo, hi)):
            if s is None:
                continue
            value = float(np.sum(curve(s)))
            if value > best_value:
                best, best_value = s, value
    return best if best is not None else cands[0]


def _fit_total(s, total, lo, hi):
    """Scale ``s`` within the bounds so that it sums to ``total``."""
    s = np.clip(np.asarray(s, float), lo, hi)
    for _ in range(50):
        gap = total - s.sum()
        if abs(gap) <= 1e-9 * max(total, 1):
            break
        free = (s < hi) if gap > 0 else (s > lo)
        if not free.any():
            break
        s[free] += gap / free.sum()
        s = np.clip(s, lo, hi)
    return s


def _grid_optimum(curve, total, lo, hi, n_slices):
    """Exact optimum on a grid of ``n_slices`` budget slices, by dynamic programming.

    The objective is a sum of one-channel curves under one budget constraint,
    so the best split of ``m`` slices over the first ``c`` channels follows
    from the best over ``c - 1`` channels (global on the grid, S-curves included).
    """
    k = len(lo)
    rest = total - lo.sum()
    if rest <= 0:
        return lo.copy()
    step = rest / n_slices
    j = np.arange(n_slices + 1)
    values = np.array([curve(lo + i * step) for i in j])  # (slices + 1) x channels
    allowed = lo[None, :] + j[:, None] * step <= hi[None, :] * (1 + 1e-12) + 1e-9
    values = np.where(allowed, values, -np.inf)
    best = values[:, 0].copy()
    choice = np.zeros((k, n_slices + 1), dtype=int)
    choice[0] = j
    idx = j[:, None] - j[None, :]  # m - i
    valid = idx >= 0
    for c in range(1, k):
        table = np.where(valid, best[np.clip(idx, 0, None)] + values[:, c][None, :], -np.inf)
        choice[c] = np.argmax(table, axis=1)
        best = table[j, choice[c]]
    m = n_slices
    out = lo.copy()
    for c in range(k - 1, -1, -1):
        i = choice[c][m] if c > 0 else m
        out[c] += i * step
        m -= i
    return out


def _polish(curve, s0, scale, bounds, total, lo, hi):
    res = minimize(lambda z: -float(np.sum(curve(z * scale))), s0 / scale, method="SLSQP",
                   bounds=bounds, constraints=[{"type": "eq", "fun": lambda z: z.sum() - 1.0}],
                   options={"maxiter": 300, "ftol": 1e-12})
    if not np.all(np.isfinite(res.x)):
        return None
    return _fit_total(res.x * scale, total, lo, hi)


@dataclass(frozen=True)
class BudgetPlan:
    """The result of :func:`optimize_budget`.

    Attributes
    ----------
    allocation : pandas.DataFrame
        Index ``channel``; columns ``current`` (weekly spend of the current
        split, scaled to the budget), ``recommended`` (weekly spend),
        ``change``, ``current_outcome`` and ``recommended_outcome`` (expected
        outcome per week under the fitted curves), ``min_spend``/``max_spend``
        (the bounds of weekly spend used; bounds, not an interval, hence not
        ``_lower_95``). ``lower``/``upper``, their old names, still read them
        for one release (with a DeprecationWarning).
    total : float
        The weekly budget split.
    weeks : int
        Weeks the gain is counted over.
    gain, gain_lower_95, gain_upper_95 : float
        Expected extra outcome over ``weeks`` of the recommended split against
        the current one, with its 95 % interval (parameter draws).
    relative_gain : float
        ``gain`` as a share of the current split's expected outcome (media only).
    objective : str
        ``"plugin"`` (curves at the point estimate) or ``"expected"`` (curves
        averaged over the parameter draws): what was maximised, and what
        ``gain`` and the outcome columns are.
    outcome : str
        What ``gain`` and the outcome columns count (the model's ``outcome``:
        ``"conversions"``, ``"conversion_value"`` or ``"revenue"``).
    """

    allocation: pd.DataFrame
    total: float
    weeks: int
    gain: float
    gain_lower_95: float
    gain_upper_95: float
    relative_gain: float
    objective: str = "plugin"
    outcome: str = "outcome"


def _bounds(model, bounds, limit):
    chans = model.channels_
    lo = np.zeros(len(chans))
    hi = limit.copy()
    if bounds is None:
        return lo, hi
    if not isinstance(bounds, Mapping):
        raise ValueError("bounds: expected a mapping channel -> (lower, upper) weekly spend")
    unknown = [str(c) for c in bounds if c not in chans]
    if unknown:
        raise ValueError(f"bounds: unknown channel(s) {', '.join(map(repr, unknown))}; "
                         f"the model's are {', '.join(map(repr, chans))}")
    for c, pair in bounds.items():
        j = chans.index(c)
        try:
            a, b = (float(v) for v in pair)
        except (TypeError, ValueError) as err:
            raise ValueError(f"bounds[{c!r}]: expected (lower, upper)") from err
        if not (0 <= a <= b):
            raise ValueError(f"bounds[{c!r}]: need 0 <= lower <= upper, got ({a}, {b})")
        lo[j], hi[j] = a, b
    return lo, hi


OBJECTIVES = ("plugin", "expected")


def optimize_budget(model, total: float | None = None, *, bounds=None, weeks: int = 13,
                    max_extrapolation: float = 1.5, objective: str = "plugin") -> BudgetPlan:
    """Split a weekly budget across channels to maximise the expected outcome.

    The curves are the model's steady-state responses (a steady weekly spend
    has adstock equal to it). The curves are known only over the spend the
    data saw, so no channel is sent beyond ``max_extrapolation`` × its
    largest weekly spend: a bound above that, or a budget that would need
    it, is refused with a message saying so.

    Parameters
    ----------
    model : MediaMixModel
        Fitted (or rebuilt by ``from_params``).
    total : float, optional
        Weekly budget (default: the current weekly spend, the mean of the
        last 13 weeks).
    bounds : mapping, optional
        ``{channel: (lower, upper)}`` weekly spend; others get ``(0,
        max_extrapolation × largest weekly spend)``.
    weeks : int
        Weeks the expected gain is counted over.
    max_extrapolation : float
        How far beyond the largest weekly spend seen a channel may go.
    objective : {"plugin", "expected"}
        ``"plugin"``: maximise the outcome under the fitted curves (the
        point estimate). ``"expected"``: maximise the outcome averaged over
        the model's parameter draws (its ``n_draws`` Laplace draws), the
        Bayes decision; ``gain`` and the outcome columns are then averages
        over the draws too. A model without draws (``from_params``) gives
        the same split either way. On simulated plans neither scores better
        on the true curves (benchmarks/mmm.py; README, "Media mix").

    Returns
    -------
    BudgetPlan
    """
    model._check_fitted()
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(map(repr, OBJECTIVES))}, "
                         f"got {objective!r}")
    chans = model.channels_
    current = model.current_spend_.to_numpy(float)
    total = float(current.sum()) if total is None else float(total)
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"total must be a positive weekly budget, got {total}")
    limit = float(max_extrapolation) * model.max_spend_.to_numpy(float)
    lo, hi = _bounds(model, bounds, limit)
    over = [c for c, h, m in zip(chans, hi, limit, strict=True) if h > m * (1 + 1e-9)]
    if over:
        c = over[0]
        j = chans.index(c)
        raise ValueError(f"bounds[{c!r}]: an upper bound of {hi[j]:,.0f} a week is more than "
                         f"{max_extrapolation:g} x the most the data show spent on {c!r} in a "
                         f"week ({model.max_spend_.iloc[j]:,.0f}); the response there is not "
                         "known, so the model does not recommend it (raise max_extrapolation "
                         "to insist)")
    if total > hi.sum():
        raise ValueError(f"a weekly budget of {total:,.0f} needs more than {max_extrapolation:g} "
                         f"x the largest weekly spend seen in some channels (at most "
                         f"{hi.sum():,.0f} fits the bounds): the response there is not known, "
                         "so the model does not recommend a split")
    base = current * total / current.sum() if current.sum() > 0 else np.full(len(chans),
                                                                          total / len(chans))
    base = np.clip(base, lo, hi)
    curve = model.response if objective == "plugin" else _expected_curve(model)
    alloc = allocate(curve, total, lo, hi, starts=[base])
    cur_out, rec_out = curve(base), curve(alloc)
    draws = model.response(alloc, draws=True).sum(axis=1) - \
        model.response(base, draws=True).sum(axis=1)
    gain = float(rec_out.sum() - cur_out.sum()) * int(weeks)
    if len(draws) > 1:
        g_lo, g_hi = (float(v) * int(weeks) for v in np.quantile(draws, [0.025, 0.975]))
    else:
        g_lo = g_hi = float("nan")
    frame = pd.DataFrame({"current": base, "recommended": alloc, "change": alloc - base,
                          "current_outcome": cur_out, "recommended_outcome": rec_out,
                          "min_spend": lo, "max_spend": hi},
                         index=pd.Index(chans, name="channel"))
    frame = with_old_column_names(frame, {"lower": "min_spend", "upper": "max_spend"})
    rel = gain / (float(cur_out.sum()) * int(weeks)) if cur_out.sum() > 0 else float("nan")
    return BudgetPlan(frame, total, int(weeks), gain, g_lo, g_hi, rel, objective,
                      str(getattr(model, "outcome", "outcome")))


def _expected_curve(model):
    """Outcome per channel at a spend vector, averaged over the model's parameter draws."""
    def curve(s):
        return model.response(s, draws=True).mean(axis=0)
    return curve

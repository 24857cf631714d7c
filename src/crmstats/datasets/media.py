"""Weekly media spend and outcomes with known carry-over and saturation: the MMM's test bed.

:func:`simulate_media` draws a media plan like real ones — always-on channels
that follow the season, flighted channels in bursts, a shared budget factor
that moves several channels together (collinearity) — and an outcome made of
a baseline (level, trend, yearly seasonality, a promotion control) plus each
channel's response through geometric adstock and a Hill curve [1]_, plus
noise. The truth holds every parameter, each channel's true ROAS and marginal
ROAS, its weekly contributions and the optimal allocation of a weekly budget
under the true curves. :func:`media_lift_tests` draws lift-test results
(the true incremental outcome of a channel over some weeks, measured with a
given standard error) for calibration.

:func:`demo_media_plan` is the hook of :func:`crmstats.datasets.simulate_crm`:
the same plan and curves decide how many contacts each channel's spend brings
each week (see that function's story).

References
----------
.. [1] Jin, Y., Wang, Y., Sun, Y., Chan, D. and Koehler, J. (2017). Bayesian
   methods for media mix modeling with carryover and shape effects. Google
   Inc. technical report.
.. [2] Chan, D. and Perry, M. (2017). Challenges and opportunities in media
   mix modeling. Google Inc. technical report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmstats.attribution.media import assemble
from crmstats.attribution.mediacurves import geometric_adstock, hill

__all__ = ["MEDIA_CHANNELS", "media_lift_tests", "media_plan", "simulate_media",
           "true_allocation"]

#: Channel names of :func:`simulate_media`, in the order taken for ``n_channels``.
MEDIA_CHANNELS = ("paid_search", "social", "display", "video", "tv", "radio", "affiliate",
                  "email", "print", "podcast")
#: Always-on channels (spend every week, seasonal); the others run in flights.
_ALWAYS_ON = {"paid_search", "social", "affiliate", "email"}
_WEEKS_PER_YEAR = 52.1775


def media_plan(rng: np.random.Generator, n_weeks: int, channels, *,
               mean_spend=None, collinearity: float = 0.5) -> np.ndarray:
    """Draw a weekly spend plan (``n_weeks × len(channels)``, currency per week).

    Always-on channels spend every week around their mean, moved by the
    season and by a shared budget factor; flighted channels run bursts of 2-8
    weeks with gaps of 1-6 weeks. ``collinearity`` (0-1) is how much of each
    channel's week-to-week variation the shared budget factor makes.
    """
    k = len(channels)
    t = np.arange(n_weeks)
    season = 1.0 + 0.2 * np.sin(2 * np.pi * t / _WEEKS_PER_YEAR + 1.0)
    walk = np.zeros(n_weeks)
    shock = rng.normal(0.0, 0.25, n_weeks)
    for i in range(1, n_weeks):  # a stationary AR(1) budget factor: it moves, it does not trend
        walk[i] = 0.7 * walk[i - 1] + shock[i]
    shared = np.exp(walk)
    if mean_spend is None:
        mean_spend = rng.lognormal(np.log(8000.0), 0.6, k)
    out = np.zeros((n_weeks, k))
    for c, name in enumerate(channels):
        own = rng.lognormal(0.0, 0.3, n_weeks)
        level = shared ** (2 * collinearity) * own ** (1 - collinearity) * season
        if name in _ALWAYS_ON:
            # always on, in regimes of 3-10 weeks at a low, normal or high level (budget
            # shifts): without such variation no model can tell a channel from the baseline
            on = np.ones(n_weeks)
            i = 0
            while i < n_weeks:
                length = int(rng.integers(3, 11))
                on[i:i + length] = rng.choice([0.35, 1.0, 1.7])
                i += length
        else:
            on = np.zeros(n_weeks, bool)
            i = int(rng.integers(0, 4))
            while i < n_weeks:
                length = int(rng.integers(2, 9))
                on[i:i + length] = True
                i += length + int(rng.integers(1, 7))
        x = level * on
        out[:, c] = x / max(x.mean(), 1e-12) * mean_spend[c]
    return out


def _true_curves(rng, k):
    """Draw the true carry-over, saturation and ROAS targets per channel."""
    theta = rng.uniform(0.1, 0.7, k)
    half = rng.uniform(0.6, 1.6, k)  # half-saturation in units of the channel's mean spend
    shape = rng.uniform(1.0, 2.2, k)
    roas = rng.uniform(0.4, 3.5, k)
    return theta, half, shape, roas


def simulate_media(
    seed: int = 1,
    *,
    n_weeks: int = 156,
    n_channels: int = 8,
    start: str = "2023-01-02",
    noise: float = 0.05,
    collinearity: float = 0.5,
    media_share: float = 0.35,
    budget: float | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Simulate a weekly media table (revenue and spend per channel) with known truth.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``.
    n_weeks : int
        Weeks (at least 26).
    n_channels : int
        Channels, 2-10 (from :data:`MEDIA_CHANNELS` in order).
    start : str
        First week (a Monday).
    noise : float
        Standard deviation of the weekly noise, as a share of the mean outcome.
    collinearity : float
        0-1: how much the channels' spend moves together (a shared budget factor).
    media_share : float
        Rough share of the outcome that media brings.
    budget : float, optional
        Weekly budget of the true optimal allocation (default: the mean weekly
        total spend of the plan).

    Returns
    -------
    (pandas.DataFrame, dict)
        The weekly table in :func:`crmstats.attribution.media_table`'s layout
        (``("outcome", "revenue")``, ``("spend", <channel>)``, ``("control",
        "promotion")``, a 0/1 promotion week), and the truth:
        ``channels``, ``params`` (per channel ``theta``, ``half_saturation``
        in currency per week, ``shape``, ``beta`` = the outcome per week at
        full saturation), ``roas`` (contribution over the weeks ÷ spend),
        ``mroas`` (extra outcome per unit of 1 % more spend every week),
        ``contributions`` (weekly, per channel, with ``baseline``),
        ``baseline`` (level, trend, seasonality and promotion effect),
        ``noise_sd``, ``budget`` and ``optimal_allocation`` (weekly spend per
        channel maximising the expected outcome under the true curves, with
        bounds of 0-3 × the channel's mean spend) and ``optimal_outcome``.
    """
    if not 2 <= int(n_channels) <= len(MEDIA_CHANNELS):
        raise ValueError(f"n_channels must be between 2 and {len(MEDIA_CHANNELS)}, "
                         f"got {n_channels}")
    if int(n_weeks) < 26:
        raise ValueError(f"n_weeks must be at least 26, got {n_weeks}")
    rng = np.random.default_rng(seed)
    n, k = int(n_weeks), int(n_channels)
    channels = list(MEDIA_CHANNELS[:k])
    x = media_plan(rng, n, channels, collinearity=collinearity)
    mean_x = x.mean(axis=0)
    theta, half_rel, shape, roas_target = _true_curves(rng, k)
    half = half_rel * mean_x
    h = np.column_stack([hill(geometric_adstock(x[:, c], theta[c]), half[c], shape[c])
                         for c in range(k)])
    beta = roas_target * x.sum(axis=0) / h.sum(axis=0)
    contrib = h * beta
    media_total = contrib.sum(axis=1).mean()
    level = media_total * (1 - media_share) / media_share
    t = np.arange(n)
    promo = (rng.random(n) < 0.08).astype(float)
    baseline = level * (1.0 + 0.15 * t / n + 0.12 * np.sin(2 * np.pi * t / _WEEKS_PER_YEAR)
                        + 0.05 * np.cos(4 * np.pi * t / _WEEKS_PER_YEAR)) + 0.1 * level * promo
    mu = baseline + contrib.sum(axis=1)
    noise_sd = float(noise) * mu.mean()
    y = mu + rng.normal(0.0, noise_sd, n)
    weeks = pd.date_range(pd.Timestamp(start), periods=n, freq="W-MON", name="week")
    table = assemble(weeks, "revenue", y, pd.DataFrame(x, columns=channels),
                     pd.DataFrame({"promotion": promo}))
    params = pd.DataFrame({"theta": theta, "half_saturation": half, "shape": shape,
                           "beta": beta}, index=pd.Index(channels, name="channel"))
    bump = np.column_stack([hill(geometric_adstock(x[:, c] * 1.01, theta[c]), half[c],
                                 shape[c]) for c in range(k)]) * beta
    roas = pd.Series(contrib.sum(axis=0) / x.sum(axis=0), index=params.index, name="roas")
    mroas = pd.Series((bump - contrib).sum(axis=0) / (0.01 * x.sum(axis=0)),
                      index=params.index, name="mroas")
    contributions = pd.DataFrame(contrib, index=weeks, columns=channels)
    contributions.insert(0, "baseline", baseline)
    total = float(mean_x.sum()) if budget is None else float(budget)
    alloc, best = true_allocation(params, total, upper=3.0 * mean_x)
    return table, {
        "channels": channels, "params": params, "roas": roas, "mroas": mroas,
        "contributions": contributions, "baseline": pd.Series(baseline, index=weeks),
        "noise_sd": noise_sd, "mean_spend": pd.Series(mean_x, index=params.index),
        "budget": total, "optimal_allocation": alloc, "optimal_outcome": best,
    }


def steady_response(params: pd.DataFrame, spend) -> np.ndarray:
    """Outcome per week of a steady weekly ``spend`` per channel under the true curves."""
    s = np.asarray(spend, dtype=float)
    p = params
    return p["beta"].to_numpy() * hill(s, p["half_saturation"].to_numpy(),
                                       p["shape"].to_numpy())


def true_allocation(params: pd.DataFrame, total: float, *, upper=None):
    """Return the weekly allocation of ``total`` maximising the steady outcome under true curves.

    Returns the allocation (a Series by channel) and its outcome per week.
    """
    from crmstats.attribution.budget import allocate

    def curve(s):
        return steady_response(params, s)

    upper = np.full(len(params), np.inf) if upper is None else np.asarray(upper, float)
    alloc = allocate(curve, float(total), np.zeros(len(params)), upper)
    return pd.Series(alloc, index=params.index, name="spend"), float(curve(alloc).sum())


def media_lift_tests(table: pd.DataFrame, truth: dict, *, channels=None, weeks: int = 8,
                     rel_se: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Draw lift-test results: each channel's true outcome over ``weeks`` weeks, measured.

    For each channel (default all), a test window of ``weeks`` consecutive
    weeks with spend is chosen at random; the true lift is the channel's
    contribution over the window (:func:`simulate_media`'s truth); the
    measured lift is drawn around it with standard error ``rel_se`` × lift.

    Returns
    -------
    pandas.DataFrame
        Columns ``channel``, ``start``, ``end``, ``lift``, ``std_err`` and
        ``true_lift`` — the layout ``MediaMixModel.fit(lift_tests=...)`` reads.
    """
    rng = np.random.default_rng([seed, 77])
    contrib = truth["contributions"]
    rows = []
    for c in channels or truth["channels"]:
        spend = table[("spend", c)].to_numpy()
        ok = [i for i in range(len(spend) - weeks) if spend[i:i + weeks].sum() > 0]
        i = int(rng.choice(ok))
        true = float(contrib[c].iloc[i:i + weeks].sum())
        se = max(rel_se * true, 1e-9)
        rows.append({"channel": c, "start": contrib.index[i],
                     "end": contrib.index[i + weeks - 1], "lift": true + rng.normal(0, se),
                     "std_err": se, "true_lift": true})
    return pd.DataFrame(rows)

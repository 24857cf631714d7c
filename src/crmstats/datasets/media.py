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
               mean_spend=None, collinearity: float = 0.5, always_on=None) -> np.ndarray:
    """Draw a weekly spend plan (``n_weeks × len(channels)``, currency per week).

    Always-on channels spend every week around their mean, moved by the
    season and by a shared budget factor; flighted channels run bursts of 2-8
    weeks with gaps of 1-6 weeks. ``collinearity`` (0-1) is how much of each
    channel's week-to-week variation the shared budget factor makes;
    ``always_on`` names the always-on channels (default :data:`_ALWAYS_ON`).
    """
    always_on = _ALWAYS_ON if always_on is None else set(always_on)
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
        if name in always_on:
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


# ----------------------------------------------------------------------------- the demo's media

#: Share of the demo's contacts brought by media spend in the book's MMM study source.
DEMO_MEDIA_SHARE = 0.35
#: Demo channels whose spend runs in flights; the others are always on.
_DEMO_FLIGHTED = ("display", "events", "webinar")


def demo_media_plan(seed: int, n: int, channels, popularity, t0, t_end,
                    share: float = DEMO_MEDIA_SHARE) -> dict:
    """Draw the demo's weekly media plan and the contacts it brings (hook of ``simulate_crm``).

    Each channel's weekly spend (relative to its mean: flighted or always on,
    with a shared budget factor and seasonality, :func:`media_plan`) brings
    ``β_c · hill(adstock(x_c))`` contacts a week, whose first touch is that
    channel; a baseline (level, trend, seasonality) brings the others, whose
    first channel follows the channels' popularity. The channels' media
    contacts are set in proportion to their popularity, so the mix of first
    channels stays as without media. The ``n`` contacts are spread over the
    weeks and sources in proportion to these intensities. Drawn from its own
    generator (``[seed, 301]``).

    Returns
    -------
    dict
        ``created`` (sorted creation times), ``first`` (first channel code per
        contact, in that order), ``source`` (-1 baseline, else the channel
        code), ``weeks``, ``shape`` (weekly spend ÷ its mean, weeks ×
        channels), ``theta``, ``half`` (relative), ``hill_shape``, ``lam``
        (expected media contacts per week and channel), ``scale`` (contacts
        per unit of intensity) and ``beta`` (media contacts a week at full
        saturation).
    """
    rng = np.random.default_rng([seed, 301])
    k = len(channels)
    t0 = pd.Timestamp(t0)
    t_end = pd.Timestamp(t_end)
    first_week = t0 - pd.Timedelta(days=t0.day_of_week)
    weeks = pd.date_range(first_week.normalize(), t_end, freq="W-MON")
    n_w = len(weeks)
    always = [c for c in channels if c not in _DEMO_FLIGHTED]
    shape = media_plan(rng, n_w, channels, mean_spend=np.ones(k), collinearity=0.4,
                       always_on=always)
    theta = rng.uniform(0.2, 0.7, k)
    half = rng.uniform(0.6, 1.5, k)
    hs = rng.uniform(1.0, 2.0, k)
    h = np.column_stack([hill(geometric_adstock(shape[:, c], theta[c]), half[c], hs[c])
                         for c in range(k)])
    # exposure of each week inside [t0, t_end] (the first and last may be partial)
    start = np.maximum(weeks, t0)
    stop = np.minimum(weeks + pd.Timedelta(days=7), t_end + pd.Timedelta(seconds=1))
    expo = np.clip(np.asarray((stop - start) / pd.Timedelta(days=7), dtype=float), 0, 1)
    beta = popularity * share * n / np.maximum((h * expo[:, None]).sum(axis=0),
                                                          1e-12)
    t = np.arange(n_w)
    base = 1.0 + 0.15 * t / n_w + 0.15 * np.sin(2 * np.pi * t / _WEEKS_PER_YEAR + 0.5)
    base = base * expo
    base *= (1 - share) * n / base.sum()
    media = h * beta * expo[:, None]
    cells = np.concatenate([base, media.ravel()])
    counts = rng.multinomial(n, cells / cells.sum())
    week_of = np.concatenate([np.arange(n_w), np.repeat(np.arange(n_w), k)])
    source_of = np.concatenate([np.full(n_w, -1), np.tile(np.arange(k), n_w)])
    week = np.repeat(week_of, counts)
    source = np.repeat(source_of, counts)
    span = np.asarray((stop - start).total_seconds(), dtype=float)
    offset = rng.random(n) * span[week]
    created = (start.to_numpy()[week].astype("datetime64[s]")
               + offset.astype("timedelta64[s]"))
    first = np.where(source >= 0, source, rng.choice(k, n, p=popularity))
    order = np.argsort(created, kind="mergesort")
    return {"created": created[order], "first": first[order], "source": source[order],
            "weeks": weeks, "shape": shape, "theta": theta, "half": half, "hill_shape": hs,
            "beta": beta, "lam": media, "scale": 1.0, "channels": list(channels),
            "exposure": expo, "share": float(share)}


def demo_media_spend(media: dict, touches: pd.DataFrame) -> tuple:
    """Price the demo's touches by the media plan; return the touches and the daily spend.

    A channel's mean weekly spend is what its touches cost at the simulator's
    cost per touch; its weekly spend follows the plan's shape around that
    mean, and each week's spend is split over the channel's touches of that
    week in proportion to their list cost (a week without a touch of the
    channel records no spend). Spend is the daily sum of the touches' costs.
    """
    weeks = media["weeks"]
    channels = media["channels"]
    n_w = len(weeks)
    level = touches.groupby("channel")["cost"].sum().reindex(channels).fillna(0.0) / \
        media["exposure"].sum()
    plan = media["shape"] * level.to_numpy()[None, :] * media["exposure"][:, None]
    w = ((touches["timestamp"] - weeks[0]) // pd.Timedelta(days=7)).clip(0, n_w - 1).to_numpy()
    c = pd.Categorical(touches["channel"], categories=channels).codes
    listed = touches["cost"].to_numpy(float)
    key = w * len(channels) + c
    per = np.bincount(key, weights=listed, minlength=n_w * len(channels))
    target = plan.ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(per > 0, target / per, 0.0)
    out = touches.copy()
    out["cost"] = np.round(listed * factor[key], 2)
    day = out["timestamp"].dt.floor("D")
    spend = (out.assign(date=day).groupby(["date", "channel"], as_index=False, observed=True)
             ["cost"].sum())
    spend["cost"] = spend["cost"].round(2)
    spend = spend[spend["cost"] > 0].reset_index(drop=True)
    recorded = np.bincount(key, weights=out["cost"].to_numpy(), minlength=n_w * len(channels))
    weekly = pd.DataFrame(recorded.reshape(n_w, len(channels)), index=weeks, columns=channels)
    return out, spend, weekly


def demo_media_truth(media: dict, weekly_spend: pd.DataFrame, p_convert, t_close) -> dict:
    """Return the demo's media truth in conversions (``crm.truth["media"]``).

    A contact's chance to convert is ``p_convert`` (the simulator's exact
    probability given its features and journey) and the weeks from its
    creation to its deal's close (``t_close``, drawn for every contact) its
    lag; by first channel ``c`` their
    product by lag gives ``q_c(d)``, the conversions a media contact of ``c``
    brings ``d`` weeks later. The expected contacts of channel ``c``'s spend in
    week ``s``, ``λ_c(s)``, then make the weekly contributions ``Σ_s λ_c(s)
    q_c(w - s)`` over the plan's weeks, and the ROAS their sum over the weeks ÷
    the spend — as :class:`~crmstats.attribution.MediaMixModel` defines ROAS
    (a channel's contribution over the weeks ÷ its spend; conversions after
    the last week are outside the data, for the model and the truth alike).
    Marginal ROAS likewise: the extra in-window conversions of 1 % more spend
    every week, per unit of that spend. ``roas_all_conversions`` counts every
    conversion the spend brings, whenever it happens (``Σ_s λ_c(s) Σ_d q_c(d) /
    Σ_s x_c(s)``; 5-10 % above ``roas`` on the demo).
    """
    channels = media["channels"]
    k, n_w = len(channels), len(media["weeks"])
    first = media["first"]
    week0 = np.datetime64(media["weeks"][0], "s")
    seven = np.timedelta64(7 * 86400, "s")
    lag = np.clip((np.asarray(t_close, "datetime64[s]") - week0) // seven
                  - (np.asarray(media["created"], "datetime64[s]") - week0) // seven, 0, None)
    max_lag = int(min(lag.max(initial=0), 4 * n_w)) + 1
    q = np.zeros((k, max_lag))
    for c in range(k):
        mine = first == c
        if mine.any():
            q[c] = np.bincount(np.minimum(lag[mine], max_lag - 1),
                               weights=np.asarray(p_convert)[mine], minlength=max_lag) / mine.sum()
    big_q = q.sum(axis=1)
    lam = media["lam"]
    x = weekly_spend.reindex(columns=channels).fillna(0.0).to_numpy(float)
    level = x.sum(axis=0) / media["exposure"].sum()
    bump = np.column_stack([
        hill(geometric_adstock(media["shape"][:, c] * 1.01, media["theta"][c]),
             media["half"][c], media["hill_shape"][c]) for c in range(k)]) \
        * media["beta"] * media["exposure"][:, None]
    contrib = np.zeros((n_w, k))
    extra = np.zeros(k)  # in-window conversions of 1 % more spend every week
    for c in range(k):
        contrib[:, c] = np.convolve(lam[:, c], q[c])[:n_w]
        extra[c] = np.convolve(bump[:, c] - lam[:, c], q[c])[:n_w].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        roas = contrib.sum(axis=0) / x.sum(axis=0)
        roas_all = lam.sum(axis=0) * big_q / x.sum(axis=0)
        mroas = extra / (0.01 * x.sum(axis=0))
    idx = pd.Index(channels, name="channel")
    params = pd.DataFrame({"theta": media["theta"], "half_saturation": media["half"] * level,
                           "shape": media["hill_shape"], "beta": media["beta"] * big_q},
                          index=idx)
    total = float(level.sum())
    upper = 1.5 * x.max(axis=0)
    alloc, best = true_allocation(params, total, upper=upper)
    return {
        "outcome": "conversions", "channels": channels, "params": params,
        "roas": pd.Series(roas, index=idx, name="roas"),
        "roas_all_conversions": pd.Series(roas_all, index=idx, name="roas"),
        "mroas": pd.Series(mroas, index=idx, name="mroas"),
        "contributions": pd.DataFrame(contrib, index=media["weeks"], columns=channels),
        "conversions_per_contact": pd.Series(big_q, index=idx, name="conversions"),
        "media_share": media["share"], "weekly_spend": weekly_spend,
        "budget": total, "bounds_upper": pd.Series(upper, index=idx),
        "optimal_allocation": alloc, "optimal_outcome": best,
    }


def apply_media_arrivals(contacts: pd.DataFrame, media: dict) -> pd.DataFrame:
    """Give the demo's contacts the creation times and first channels the media plan drew."""
    out = contacts.copy()
    out["created_at"] = pd.to_datetime(media["created"])
    out["channel_code"] = media["first"]
    out["channel"] = np.array(media["channels"], dtype=object)[media["first"]]
    return out

"""Where the media-mix model's uncalibrated ROAS error comes from (issue 24).

Usage: ``python benchmarks/mmm_errors.py [SEEDS] [--weeks N --channels K] [--mcmc]``
(defaults 6 seeds, 156 weeks x 8 channels). For each seed of
:func:`crmstats.datasets.simulate_media` it fits ``MediaMixModel`` and splits
the error of channel ROAS (median absolute relative error, as benchmarks/mmm.py):

* **by kind of channel**: always-on channels (spend every week, in regimes,
  never near zero) against flighted ones (bursts with weeks of no spend);
* **baseline against media**: the model's total media contribution over the
  truth's, and how far the fitted intercept is from the true baseline's level
  in standard errors (the true baseline projected on the model's baseline
  columns);
* **the optimiser**: the penalised objective at the fit against the best of
  10 random starts (a better optimum elsewhere would show here);
* **oracles**: the same fit with each channel's carry-over, or its
  saturation (half-saturation and shape), or both held at the truth (the
  rest estimated): with both, what is left is the noise and the
  collinearity of the plan;
* **the point**: ROAS at the posterior mode (the fit) against the median of
  the Laplace draws and, with ``--mcmc``, of a random-walk Metropolis chain on
  the same posterior (40,000 steps, ~15 s a seed).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pandas as pd

from crmstats.attribution import MediaMixModel
from crmstats.datasets import simulate_media
from crmstats.datasets.media import _ALWAYS_ON


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def _roas(model, u, spend):
    return model._channel_stats(u, spend)[0]


def _oracle(model, truth, blocks):
    """Refit with the parameter ``blocks`` held at the truth (a prior of sd 1e-4 there)."""
    core = model._core
    p, k = core.p, core.k
    tp, m = truth["params"], truth["mean_spend"].to_numpy()
    fixed = {"logit_theta": np.log(tp["theta"] / (1 - tp["theta"])).to_numpy(),
             "log_half": np.log(tp["half_saturation"].to_numpy() / m),
             "log_shape": np.log(tp["shape"].to_numpy())}
    mean, sd = core.prior_mean.copy(), core.prior_sd.copy()
    for b in blocks:
        v = fixed[b]
        i = core.blocks.index(b)
        core.prior_mean[p + i * k:p + (i + 1) * k] = v
        core.prior_sd[p + i * k:p + (i + 1) * k] = 1e-4
    try:
        return core.fit().x
    finally:
        core.prior_mean, core.prior_sd = mean, sd


def _metropolis(model, seed, steps=40_000):
    core = model._core
    chol = np.linalg.cholesky(model._cov)
    rng = np.random.default_rng(seed)
    u = model._u.copy()
    lp = -0.5 * np.sum(core.residuals(u) ** 2)
    scale = 2.38 / np.sqrt(len(u))
    kept = []
    for i in range(steps):
        prop = u + scale * (chol @ rng.standard_normal(len(u)))
        lq = -0.5 * np.sum(core.residuals(prop) ** 2)
        if np.log(rng.random()) < lq - lp:
            u, lp = prop, lq
        if i >= steps // 5 and i % 20 == 0:
            kept.append(u.copy())
    return kept


def one(seed, weeks, channels, mcmc):
    table, truth = simulate_media(seed, n_weeks=weeks, n_channels=channels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MediaMixModel(holdout_weeks=0).fit(table)
        core = model._core
        spend = table["spend"][model.channels_].to_numpy(float)
        true = truth["roas"].reindex(model.channels_).to_numpy()
        cost = float(np.sum(core.residuals(model._u) ** 2) / 2)
        rng = np.random.default_rng(seed)
        best = np.inf
        for _ in range(10):
            u0 = core.prior_mean + 0.5 * core.prior_sd * rng.standard_normal(core.n_params)
            u0[:core.p] = model._u[:core.p]
            best = min(best, float(core.solve(u0).cost))
        points = {"mode (the fit)": model.roas_["estimate"].to_numpy(),
                  "median of Laplace draws": np.median(model._draw_stats["roas"], axis=0),
                  "oracle carry-over": _roas(model, _oracle(model, truth, ["logit_theta"]),
                                             spend),
                  "oracle saturation (K, S)": _roas(model, _oracle(
                      model, truth, ["log_half", "log_shape"]), spend),
                  "oracle carry-over and saturation": _roas(model, _oracle(
                      model, truth, ["logit_theta", "log_half", "log_shape"]), spend)}
        if mcmc:
            chain = np.array([_roas(model, u, spend) for u in _metropolis(model, seed)])
            points["median of a Metropolis chain"] = np.median(chain, axis=0)
    # the true baseline on the model's baseline columns: the intercept it should find
    X = core.X
    coef, *_ = np.linalg.lstsq(X, truth["baseline"].to_numpy() / model._ys, rcond=None)
    se = np.sqrt(model._cov[0, 0])
    rows = [{"seed": seed, "channel": c, "kind": "always-on" if c in _ALWAYS_ON else "flighted",
             "point": name, "err": abs(v[j] / true[j] - 1)}
            for name, v in points.items() for j, c in enumerate(model.channels_)]
    media = model.contributions_[model.channels_].to_numpy().sum()
    facts = {"seed": seed, "media_est_over_true": media / truth["contributions"][
        model.channels_].to_numpy().sum(), "intercept_z": (model._u[0] - coef[0]) / se,
        "objective_gap_to_best_start": cost - best}
    return pd.DataFrame(rows), facts


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 6
    weeks, channels = _arg("--weeks", 156), _arg("--channels", 8)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    parts = [one(s, weeks, channels, "--mcmc" in sys.argv) for s in range(1, seeds + 1)]
    err = pd.concat([p[0] for p in parts])
    facts = pd.DataFrame([p[1] for p in parts])
    print(f"\n{weeks} weeks x {channels} channels, seeds 1-{seeds}: median absolute relative "
          "error of channel ROAS")
    table = err.pivot_table(index="point", columns="kind", values="err", aggfunc="median")
    table["all"] = err.groupby("point")["err"].median()
    print(table.round(3).to_string())
    print("\nbaseline against media, and the optimiser, per seed")
    print(facts.round(3).to_string(index=False))
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

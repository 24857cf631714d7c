"""Where the media-mix model's uncalibrated ROAS error comes from (issue 24).

Usage: ``python benchmarks/mmm_errors.py [SEEDS] [--first SEED] [--weeks N --channels K]
[--mcmc] [--prior generating]`` (defaults 6 seeds from seed 1, 156 weeks x 8 channels). For
each seed of
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
  the same posterior (40,000 steps, ~15 s a seed);
* **what the data tell about each curve**: per parameter block (carry-over,
  half-saturation, Hill shape), the Laplace posterior's standard deviation over
  the prior's (1: the data told nothing, the estimate is the prior's; 0: the
  data pinned it), and the root mean square of the fit's error against the
  truth in posterior standard deviations (about 1 when the intervals are
  honest).

``--prior generating`` replaces the priors on carry-over, half-saturation and
shape by the simulator's own distribution of them (the normal on the model's
scale matching the mean and spread of ``simulate_media``'s draws): the most a
prior could know about these curves. Whatever error is left then is not a
matter of choosing priors.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pandas as pd

from crmstats.attribution import MediaMixModel
from crmstats.datasets import simulate_media
from crmstats.datasets.media import _ALWAYS_ON, _true_curves

#: The blocks whose information is reported, with the truth's value on the model's scale.
_INFO_BLOCKS = ("logit_theta", "log_half", "log_shape")


def _arg(name: str, default: int) -> int:
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def generating_priors() -> dict:
    """Normal priors (model scale) matching the simulator's draws of θ, K / mean spend and S."""
    theta, half, shape, _ = _true_curves(np.random.default_rng(0), 200_000)
    logit = np.log(theta / (1 - theta))
    return {"logit_theta": (float(logit.mean()), float(logit.std())),
            "log_half": (float(np.log(half).mean()), float(np.log(half).std())),
            "log_shape": (float(np.log(shape).mean()), float(np.log(shape).std()))}


def use_prior_from_argv() -> str:
    """Apply ``--prior generating`` if given (module-level priors of the model); return its name."""
    if "--prior" not in sys.argv:
        return "default"
    name = sys.argv[sys.argv.index("--prior") + 1]
    if name != "generating":
        raise SystemExit(f"--prior: only 'generating' is known, got {name!r}")
    from crmstats.attribution import mmmcore

    mmmcore.PRIORS.update(generating_priors())
    return name


def _truth_unconstrained(truth) -> dict:
    tp, m = truth["params"], truth["mean_spend"].to_numpy()
    return {"logit_theta": np.log(tp["theta"] / (1 - tp["theta"])).to_numpy(),
            "log_half": np.log(tp["half_saturation"].to_numpy() / m),
            "log_shape": np.log(tp["shape"].to_numpy())}


def information(model, truth, seed) -> list[dict]:
    """Per channel and block: posterior sd over prior sd, and the fit's error in posterior sds."""
    core = model._core
    p, k = core.p, core.k
    sd = np.sqrt(np.diag(model._cov))
    true = _truth_unconstrained(truth)
    rows = []
    for b in _INFO_BLOCKS:
        i = core.blocks.index(b)
        cols = slice(p + i * k, p + (i + 1) * k)
        z = (model._u[cols] - true[b]) / sd[cols]
        ratio = sd[cols] / core.prior_sd[cols]
        rows += [{"seed": seed, "block": b,
                  "kind": "always-on" if c in _ALWAYS_ON else "flighted",
                  "sd_ratio": ratio[j], "z": z[j]} for j, c in enumerate(model.channels_)]
    return rows


def _roas(model, u, spend):
    return model._channel_stats(u, spend)[0]


def _oracle(model, truth, blocks):
    """Refit with the parameter ``blocks`` held at the truth (a prior of sd 1e-4 there)."""
    core = model._core
    p, k = core.p, core.k
    fixed = _truth_unconstrained(truth)
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
    return pd.DataFrame(rows), facts, information(model, truth, seed)


def main() -> None:
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 6
    first = _arg("--first", 1)
    weeks, channels = _arg("--weeks", 156), _arg("--channels", 8)
    prior = use_prior_from_argv()
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    parts = [one(s, weeks, channels, "--mcmc" in sys.argv) for s in range(first, first + seeds)]
    err = pd.concat([p[0] for p in parts])
    facts = pd.DataFrame([p[1] for p in parts])
    info = pd.DataFrame([r for p in parts for r in p[2]])
    print(f"\n{weeks} weeks x {channels} channels, seeds {first}-{first + seeds - 1}, {prior} "
          "priors: median absolute relative error of channel ROAS")
    table = err.pivot_table(index="point", columns="kind", values="err", aggfunc="median")
    table["all"] = err.groupby("point")["err"].median()
    print(table.round(3).to_string())
    print("\nbaseline against media, and the optimiser, per seed")
    print(facts.round(3).to_string(index=False))
    print("\nwhat the data tell: posterior sd / prior sd (median), and the fit's error against "
          "the truth in posterior sds (root mean square)")
    print(info.groupby(["block", "kind"]).agg(
        sd_ratio=("sd_ratio", "median"),
        rms_z=("z", lambda z: float(np.sqrt(np.mean(np.square(z)))))).round(2).to_string())
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

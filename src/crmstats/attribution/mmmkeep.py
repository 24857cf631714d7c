"""Keeping a media-mix model: its model file, ``from_params`` and the weekly decomposition.

A kept model (loaded, or built by ``from_params``) holds parameters and the
calendar that places its baseline in time, not the weekly data: it decomposes
any weekly table with :meth:`KeptMediaMix.decompose`, and says so when asked
for ``contributions_`` and the other data-bound attributes. Split from
:mod:`crmstats.attribution.mmm` (the estimator) to keep each module readable.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np
import pandas as pd

from crmstats.attribution.mmmcore import MediaCore
from crmstats.attribution.mmmdata import seasonal_columns, weekly_input
from crmstats.estimator import summary_table
from crmstats.exceptions import DataError, DataWarning, NotFittedError

__all__ = ["KeptMediaMix"]


def _checked_calendar(calendar, controls) -> dict:
    """Return ``from_params``' calendar checked: start, n_weeks, a mean per control."""
    if not isinstance(calendar, dict) or not {"start", "n_weeks"} <= set(calendar):
        raise ValueError("MediaMixModel.from_params: calendar must be a dict with start (the "
                         "first week fitted), n_weeks and control_means, as a fitted model's "
                         "calendar_")
    try:
        start = pd.Timestamp(calendar["start"])
        n_weeks = int(calendar["n_weeks"])
        if pd.isna(start):
            raise ValueError("no date")
    except (TypeError, ValueError) as err:
        raise ValueError("MediaMixModel.from_params: calendar's start must be a date and "
                         "n_weeks a whole number") from err
    if n_weeks < 2:
        raise ValueError(f"MediaMixModel.from_params: calendar's n_weeks must be at least 2, "
                         f"got {n_weeks}")
    means = dict(calendar.get("control_means") or {})
    missing = [c for c in controls if c not in means]
    if missing:
        raise ValueError(f"MediaMixModel.from_params: calendar has no control_means for "
                         f"{missing[0]!r}")
    return {"start": start, "n_weeks": n_weeks,
            "control_means": {c: float(means[c]) for c in controls}}


class KeptMediaMix:
    """Mixin of :class:`~crmstats.attribution.MediaMixModel`: keeping and decomposing."""

    # ------------------------------------------------------------------ decomposition

    #: Fitted attributes that hold the weekly data (not kept by save/load or from_params).
    _DATA_BOUND = ("contributions_", "fitted_", "contribution_share_", "table_", "controls_",
                   "diagnostics_", "identifiability_", "lift_tests_")

    def __getattr__(self, name: str):
        if name in self._DATA_BOUND and self.__dict__.get("n_obs_") is not None:
            how = ("built by from_params" if self.__dict__.get("_given_params")
                   else "loaded from a model file")
            raise NotFittedError(
                f"this MediaMixModel was {how}: it keeps its parameters, not the weekly data, "
                f"so it has no {name}. model.decompose(table) returns the weekly "
                "decomposition (baseline, controls, channels) of a weekly media table — the "
                "one it was fitted on or new weeks; refit on the data for the rest")
        return super().__getattr__(name)

    def decompose(self, data: Any, *, controls: pd.DataFrame | None = None,
                  channels=None) -> pd.DataFrame:
        """Return the weekly decomposition of the weeks of ``data`` under the model.

        Works for a fitted model, a loaded one and one built by
        :meth:`from_params` (given its ``calendar``). On the table the model
        was fitted on it equals ``contributions_``.

        Parameters
        ----------
        data : CRMData or pandas.DataFrame
            As for :meth:`fit`: it must hold the model's channels' spend and
            controls (any weeks from ``calendar_["start"]`` on; the carry-over
            starts from nothing at the first week given, as in the fit).
        controls, channels
            As for :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Index the weeks; ``baseline`` (level, trend, seasonality), one
            column per control and per channel. Rows sum to the expected
            outcome of those weeks.
        """
        self._check_fitted()
        cal = getattr(self, "calendar_", None)
        if cal is None:
            raise NotFittedError(
                "this MediaMixModel does not know the weeks it was fitted on, so it cannot "
                "place its trend and seasonality: build it with MediaMixModel.from_params"
                "(params, calendar=fitted_model.calendar_) (the first week fitted, the number "
                "of weeks and the controls' means)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)  # a channel without spend is fine here
            table, _, _ = weekly_input(data, self.outcome, controls, channels)
        names = list(self.params_.index)
        ctrl_names = [n[8:-1] for n in names if n.startswith("control[") and n.endswith("]")]
        have = {str(c) for c in table["spend"].columns}
        have_ctrl = {str(c) for c in table["control"].columns} \
            if "control" in table.columns.levels[0] else set()
        for what, need, got in (("spend", self.channels_, have),
                                ("control", ctrl_names, have_ctrl)):
            missing = [c for c in need if c not in got]
            if missing:
                raise DataError(f"media table: no {what} column {missing[0]!r}, which the "
                                "model has", table="media table", column=missing[0])
        return self._decomposition(table, cal, ctrl_names)

    def _decomposition(self, table, cal, ctrl_names) -> pd.DataFrame:
        p = self.params_
        weeks = table.index
        t = np.asarray((weeks - pd.Timestamp(cal["start"])) / pd.Timedelta(days=7), float)
        cols = seasonal_columns(t, int(cal["n_weeks"]), "trend" in p.index,
                                sum(1 for n in p.index if n.startswith("sin")))
        parts = {"baseline": p["intercept"] + sum(p[n] * v for n, v in cols.items())}
        for c in ctrl_names:
            mean = cal["control_means"].get(c)
            if mean is None:
                raise NotFittedError(f"calendar: no mean of the control {c!r}")
            parts[c] = p[f"control[{c}]"] * (table[("control", c)].to_numpy(float) - mean)
        out = pd.DataFrame(parts, index=weeks)
        # the channels' part of the parameters, on a core without baseline columns
        core = MediaCore(np.zeros((len(weeks), 0)), table["spend"][self.channels_].to_numpy(
            float) / self._m, np.zeros(len(weeks)), adstock=self.adstock, max_lag=self.max_lag)
        _, media = core.contributions(self._u[self._core.p:])
        media = media * self._ys
        for j, c in enumerate(self.channels_):
            out[c] = media[:, j]
        return out

    @classmethod
    def from_params(cls, params, *, current_spend=None, max_spend=None,
                    adstock: str = "geometric", calendar: dict | None = None) -> Self:
        """Return the model at given natural-scale parameters (names as in ``params_``).

        Response curves and budget splits work (point estimates, no
        intervals); ``current_spend`` and ``max_spend`` (weekly, by channel)
        are the split a budget is compared with and the spend seen in the
        data (default: ``half_saturation``). ``calendar`` (a fitted model's
        ``calendar_``: the first week fitted, the weeks fitted, the controls'
        means) lets :meth:`decompose` place the trend, the seasonality and the
        controls; without it the model has no weekly decomposition.
        """
        from crmstats.estimator import given_params

        p = given_params(cls, params)
        names = list(p.index)
        channels = [n[5:-1] for n in names if n.startswith("beta[") and n.endswith("]")]
        if not channels:
            raise ValueError("MediaMixModel.from_params: no beta[channel] parameter")
        base = names[:names.index(f"beta[{channels[0]}]")]
        model = cls(adstock=adstock)
        model._core = None
        carry = ["theta"] if adstock == "geometric" else ["weibull_shape", "weibull_scale"]
        per = ["beta", *carry, "half_saturation", "shape"]
        expected = base + [f"{q}[{c}]" for q in per for c in channels]
        p = given_params(cls, p, expected, positive=expected[len(base):])

        def block(q):
            return p[[f"{q}[{c}]" for c in channels]].to_numpy(float)

        u = [p[base].to_numpy(float), np.log(block("beta"))]
        if adstock == "geometric":
            th = block("theta")
            if (th >= 1).any():
                raise ValueError("MediaMixModel.from_params: theta must be below 1")
            u.append(np.log(th / (1 - th)))
        else:
            u += [np.log(block("weibull_shape")), np.log(block("weibull_scale"))]
        u += [np.log(block("half_saturation")), np.log(block("shape"))]
        half = block("half_saturation")
        current = half if current_spend is None else pd.Series(current_spend).reindex(
            channels).to_numpy(float)
        top = current if max_spend is None else pd.Series(max_spend).reindex(
            channels).to_numpy(float)
        model._set_curves(np.concatenate(u), None, channels, base, np.ones(len(channels)),
                          1.0, current, top)
        model._design = {"scale": np.ones(len(base))}
        if calendar is not None:
            controls = [n[8:-1] for n in base if n.startswith("control[") and n.endswith("]")]
            model.calendar_ = _checked_calendar(calendar, controls)
        model._given(p, summary_table(expected, p.to_numpy(float), np.full(len(p), np.nan)))
        return model

    def _fit_facts(self) -> dict:
        def tab(frame):
            return {c: [float(v) for v in frame[c]] for c in frame.columns}

        return {**self._common_facts(), "channels": self.channels_,
                "base_names": self._base_names, "mean_spend": list(self._m),
                "outcome_scale": self._ys, "u": list(self._u),
                "u_covariance": None if self._cov is None else [list(r) for r in self._cov],
                "current_spend": list(self.current_spend_), "max_spend": list(self.max_spend_),
                "design_scale": list(self._design["scale"]),
                "calendar": None if getattr(self, "calendar_", None) is None else {
                    "start": self.calendar_["start"].isoformat(),
                    "n_weeks": int(self.calendar_["n_weeks"]),
                    "controls": list(self.calendar_["control_means"]),
                    "control_means": list(self.calendar_["control_means"].values())},
                "roas": tab(self.roas_) if hasattr(self, "roas_") else None,
                "mroas": tab(self.mroas_) if hasattr(self, "mroas_") else None}

    def _restore(self, params, summary, facts, variance) -> None:
        self._restore_common(params, summary, facts, variance)
        channels, base = facts.strings("channels"), facts.strings("base_names")
        u = np.array(facts.numbers("u", finite=True))
        cov = None
        if facts.has("u_covariance"):
            rows = facts.get("u_covariance", list)
            cov = np.array([facts.numbers_of(r, "u_covariance", finite=True) for r in rows])
            if cov.shape != (len(u), len(u)):
                facts.fail("u_covariance", "expected a square matrix, one row per parameter")
        self._core = None
        self._set_curves(u, cov, channels, base, facts.numbers("mean_spend", finite=True),
                         facts.number("outcome_scale", finite=True),
                         facts.numbers("current_spend"), facts.numbers("max_spend"))
        if len(u) != self._core.n_params:
            facts.fail("u", f"expected {self._core.n_params} values")
        self._design = {"scale": np.array(facts.numbers("design_scale", finite=True))}
        if facts.has("calendar"):  # files before the calendar was kept have none
            cal = facts.section("calendar")
            names, means = cal.strings("controls"), cal.numbers("control_means", finite=True)
            if len(names) != len(means):
                cal.fail("control_means", "expected one mean per control")
            try:
                start = pd.Timestamp(cal.string("start"))
            except ValueError:
                cal.fail("start", "expected a date")
            self.calendar_ = {"start": start, "n_weeks": cal.integer("n_weeks"),
                              "control_means": dict(zip(names, means, strict=True))}
        idx = pd.Index(channels, name="channel")
        for key in ("roas", "mroas"):
            if facts.has(key):
                sec = facts.section(key)
                setattr(self, f"{key}_", pd.DataFrame(
                    {c: sec.numbers(c) for c in sec.keys()}, index=idx))

"""The media-mix model's inputs: the weekly table checked, the baseline's design, lift tests."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from crmstats.attribution.media import assemble, media_table
from crmstats.exceptions import DataError, DataWarning

_WEEKS_PER_YEAR = 52.1775
#: Fewest weeks a media-mix model is fitted on.
MIN_WEEKS = 26


def weekly_input(data: Any, outcome: str, controls, channels):
    """Return ``(table, channels, controls)`` from a CRMData or a weekly media table.

    The table comes back in :func:`assemble`'s layout (a copy; the caller's
    data are not changed).
    """
    if hasattr(data, "table") and hasattr(data, "require"):
        table = media_table(data, outcome, controls=controls)
    elif isinstance(data, pd.DataFrame):
        table = _as_media_table(data, controls, channels)
    else:
        raise ValueError("MediaMixModel.fit: expected a CRMData or a weekly media table "
                         "(pandas DataFrame)")
    chans = [str(c) for c in table["spend"].columns]
    ctrls = [str(c) for c in table["control"].columns] if "control" in table.columns.levels[0] \
        else []
    taken = [n for n in [*chans, *ctrls] if n == "baseline"]
    dup = sorted({n for n in [*chans, *ctrls] if [*chans, *ctrls].count(n) > 1})
    if taken or dup:
        name = (taken or dup)[0]
        raise DataError(f"media table: the name {name!r} is used twice (or is 'baseline', the "
                        "name of the baseline's contribution); rename it",
                        table="media table", column=name)
    if not isinstance(table.index, pd.DatetimeIndex):
        raise DataError("media table: the index (or a 'week' column) must hold the weeks",
                        table="media table", column="week")
    for role, name in table.columns:
        vals = pd.to_numeric(table[(role, name)], errors="coerce").astype(float)
        bad = ~np.isfinite(vals.to_numpy())
        if bad.any():
            raise DataError(f"media table, column {name!r}: {int(bad.sum())} week(s) hold no "
                            "finite number", table="media table", column=name,
                            rows=[str(i.date()) for i in table.index[bad][:5]])
        if role == "spend" and (vals < 0).any():
            raise DataError(f"media table, column {name!r}: negative spend",
                            table="media table", column=name,
                            rows=[str(i.date()) for i in table.index[vals < 0][:5]])
        table[(role, name)] = vals
    if not table.index.is_monotonic_increasing or table.index.has_duplicates:
        raise DataError("media table: the weeks must be distinct and in order",
                        table="media table", column="week")
    gaps = np.diff(table.index.to_numpy()).astype("timedelta64[D]").astype(int)
    if len(gaps) and (gaps != 7).any():
        at = table.index[1:][gaps != 7]
        raise DataError(f"media table: the weeks are not consecutive (a gap before "
                        f"{at[0].date()})", table="media table", column="week")
    if len(table) < MIN_WEEKS:
        raise DataError(f"media table: {len(table)} weeks; a media-mix model needs at least "
                        f"{MIN_WEEKS}", table="media table")
    dead = [c for c in chans if table[("spend", c)].sum() <= 0]
    if dead:
        warnings.warn(f"MediaMixModel: no spend at all in {', '.join(map(repr, dead))}; "
                      "left out of the model", DataWarning, stacklevel=3)
        chans = [c for c in chans if c not in dead]
    if not chans:
        raise DataError("media table: no channel with spend", table="media table")
    return table, chans, ctrls


def _as_media_table(data: pd.DataFrame, controls, channels) -> pd.DataFrame:
    """Return the weekly table in :func:`assemble`'s layout (a flat one has ``outcome``)."""
    frame = data.copy()
    if isinstance(frame.columns, pd.MultiIndex):
        roles = set(frame.columns.get_level_values(0))
        if not {"outcome", "spend"} <= roles or len(frame["outcome"].columns) != 1:
            raise DataError("media table: expected columns (outcome, name), (spend, channel) "
                            "and optional (control, name), as media_table returns",
                            table="media table")
        return frame
    if "week" in frame.columns:
        frame = frame.set_index("week")
    frame.columns = [str(c) for c in frame.columns]
    if "outcome" not in frame.columns:
        raise DataError("media table: no 'outcome' column (the weekly outcome the model "
                        "explains)", table="media table", column="outcome")
    ctrls = [str(c) for c in (controls or [])]
    chans = [str(c) for c in channels] if channels is not None else [
        c for c in frame.columns if c != "outcome" and c not in ctrls]
    missing = [c for c in [*chans, *ctrls] if c not in frame.columns]
    if missing:
        raise DataError(f"media table: no column {missing[0]!r}", table="media table",
                        column=missing[0])
    return assemble(frame.index, "outcome", frame["outcome"], frame[chans],
                    frame[ctrls] if ctrls else None)


def seasonal_columns(t, n_weeks: int, trend: bool, n_fourier: int) -> dict:
    """Return the baseline's trend and yearly Fourier columns at weeks ``t`` (0: first fitted).

    The trend is ``t / (n_weeks - 1) - 0.5`` (so the intercept is the level at
    the middle of the fitted weeks and the trend the change over them).
    """
    t = np.asarray(t, dtype=float)
    out = {}
    if trend:
        out["trend"] = t / max(int(n_weeks) - 1, 1) - 0.5
    for j in range(1, int(n_fourier) + 1):
        out[f"sin{j}"] = np.sin(2 * np.pi * j * t / _WEEKS_PER_YEAR)
        out[f"cos{j}"] = np.cos(2 * np.pi * j * t / _WEEKS_PER_YEAR)
    return out


def baseline_design(table: pd.DataFrame, controls, n_fourier: int, trend: bool):
    """Return the baseline's columns (intercept, trend, Fourier, standardised controls)."""
    n = len(table)
    season = seasonal_columns(np.arange(n, dtype=float), n, trend, n_fourier)
    cols = [np.ones(n), *season.values()]
    names = ["intercept", *season]
    scale = [1.0] * len(cols)
    n_base = len(cols)
    for c in controls:
        v = table[("control", c)].to_numpy(float)
        sd = v.std()
        if sd <= 0:
            raise DataError(f"media table, control {c!r}: the same value every week; it "
                            "cannot be told from the intercept", table="media table", column=c)
        cols.append((v - v.mean()) / sd)
        names.append(f"control[{c}]")
        scale.append(sd)
    X = np.column_stack(cols)

    def base_part(w):
        return X[:, :n_base] @ w[:n_base]

    def control_part(w, j):
        return X[:, n_base + j] * w[n_base + j]

    return X, names, {"scale": np.array(scale), "base_part": base_part,
                      "control_part": control_part}


def identifiability(spend: np.ndarray, X: np.ndarray, channels) -> pd.DataFrame:
    """Per channel: spend variation, collinearity with the others and the baseline, a flag."""
    k = spend.shape[1]
    cv = spend.std(axis=0) / np.maximum(spend.mean(axis=0), 1e-12)
    r2 = np.zeros(k)
    partner = []
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(spend.T) if k > 1 else np.ones((1, 1))
    for j in range(k):
        others = np.hstack([X, np.delete(spend, j, axis=1)])
        coef, *_ = np.linalg.lstsq(others, spend[:, j], rcond=None)
        resid = spend[:, j] - others @ coef
        ss = np.sum((spend[:, j] - spend[:, j].mean()) ** 2)
        r2[j] = 1.0 - np.sum(resid ** 2) / ss if ss > 0 else 1.0
        row = np.abs(np.nan_to_num(corr[j])) if k > 1 else np.zeros(1)
        row[j] = -1
        partner.append(channels[int(np.argmax(row))] if k > 1 else "")
    flag = np.where(cv < 0.1, "constant", np.where(r2 > 0.9, "collinear", "ok"))
    return pd.DataFrame({"spend_cv": cv, "r2_others": r2, "most_collinear": partner,
                         "flag": flag}, index=pd.Index(channels, name="channel"))


def lift_measurements(lift_tests, data, table: pd.DataFrame, channels, scale: float):
    """Lift tests as ``(channel index, week mask, lift, se)`` on the outcome's scale."""
    if lift_tests is None:
        return [], None
    if not isinstance(lift_tests, pd.DataFrame):
        raise ValueError("lift_tests: expected a DataFrame (channel, start, end, lift, "
                         "std_err) or the table of crmstats.attribution.lift_test")
    lt = lift_tests.copy()
    if {"incremental_conversions", "incremental_std_err"} <= set(lt.columns):
        exp = getattr(data, "experiments", None)
        if exp is None or not hasattr(data, "table"):
            raise DataError("lift_tests: lift_test's table has no period; fit on the CRMData "
                            "with its experiments table, or give start and end per test",
                            table="lift_tests")
        e = data.table("experiments")
        from crmstats.backend import execute

        span = execute(e.group_by(channel=e.channel.cast("string")).aggregate(
            start=e.started_at.min(), end=e.started_at.max())).set_index("channel")
        lt = pd.DataFrame({"channel": lt.index.astype(str),
                           "lift": lt["incremental_conversions"].to_numpy(float),
                           "std_err": lt["incremental_std_err"].to_numpy(float)})
        lt["start"] = lt["channel"].map(span["start"])
        lt["end"] = lt["channel"].map(span["end"])
    need = ["channel", "start", "end", "lift", "std_err"]
    missing = [c for c in need if c not in lt.columns]
    if missing:
        raise DataError(f"lift_tests: no column {missing[0]!r} (expected {', '.join(need)})",
                        table="lift_tests", column=missing[0])
    out = []
    weeks = table.index
    for i, row in lt.reset_index(drop=True).iterrows():
        ch = str(row["channel"])
        if ch not in channels:
            raise DataError(f"lift_tests, row {i}: channel {ch!r} is not a channel of the "
                            "model", table="lift_tests", column="channel", rows=[i])
        lift, se = float(row["lift"]), float(row["std_err"])
        if not np.isfinite(lift) or not np.isfinite(se) or se <= 0:
            raise DataError(f"lift_tests, row {i}: lift must be a number and std_err a "
                            "positive number", table="lift_tests", column="std_err", rows=[i])
        try:
            start, end = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
        except (TypeError, ValueError) as err:
            raise DataError(f"lift_tests, row {i}: start/end are not dates",
                            table="lift_tests", column="start", rows=[i]) from err
        mask = (weeks + pd.Timedelta(days=6) >= start) & (weeks <= end)
        if not mask.any():
            raise DataError(f"lift_tests, row {i}: the test's weeks ({start.date()} to "
                            f"{end.date()}) are outside the media table's", table="lift_tests",
                            column="start", rows=[i])
        out.append((channels.index(ch), np.asarray(mask), lift / scale, se / scale))
    return out, lt[need].reset_index(drop=True)

"""build_paths (in-database) equals a plain pandas reference; format conversions; bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError, DataWarning
from crmstats.attribution import build_paths, from_channelattribution, to_channelattribution


def pandas_paths(tp: pd.DataFrame, cv: pd.DataFrame) -> pd.DataFrame:
    m = tp.merge(cv.rename(columns={"timestamp": "conv_at"}), on="journey_id", how="left")
    m = m[m.conv_at.isna() | (m.timestamp <= m.conv_at)]
    m = m.sort_values(["journey_id", "timestamp", "channel"])
    j = m.groupby("journey_id").agg(path=("channel", tuple), conv=("conv_at", "max"),
                                    value=("value", "max"))
    j["converted"] = j.conv.notna().astype(int)
    out = j.groupby("path").agg(conversions=("converted", "sum"), value=("value", "sum"),
                                nulls=("converted", lambda s: int((s == 0).sum())))
    return out


def by_path(frame: pd.DataFrame) -> dict:
    """Rows of a path-count frame keyed by path (tuple keys confuse DataFrame.loc)."""
    return {p: row for p, row in zip(frame["path"], frame.to_dict("records"), strict=True)}


def ts(*days):
    return pd.to_datetime("2024-01-01") + pd.to_timedelta(list(days), unit="D")


def test_build_paths_equals_pandas_on_the_demo(small_crm, demo_paths):
    want = pandas_paths(small_crm.touchpoints, small_crm.conversions)
    got = demo_paths.set_index("path")
    assert len(got) == len(want)
    got = got.loc[want.index]
    np.testing.assert_array_equal(got["conversions"], want["conversions"])
    np.testing.assert_array_equal(got["nulls"], want["nulls"])
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-12)
    assert demo_paths["conversions"].sum() == len(small_crm.conversions)
    n_journeys = small_crm.touchpoints["journey_id"].nunique()
    assert (demo_paths["conversions"] + demo_paths["nulls"]).sum() == n_journeys


def test_converting_journeys_end_at_the_conversion():
    tp = pd.DataFrame({"journey_id": ["x", "x", "x", "y", "y"],
                       "timestamp": ts(0, 2, 9, 0, 5),
                       "channel": ["email", "social", "events", "social", "email"]})
    cv = pd.DataFrame({"journey_id": ["x"], "timestamp": ts(2), "value": [50.0]})
    before = tp.copy()
    got = by_path(build_paths(tp, cv))
    pd.testing.assert_frame_equal(tp, before)  # the caller's frame is untouched
    assert got[("email", "social")]["conversions"] == 1  # the touch at the instant counts
    assert got[("email", "social")]["value"] == 50.0
    assert got[("social", "email")]["nulls"] == 1  # non-converting: every touch
    assert ("email", "social", "events") not in got


def test_lookback_and_max_touches():
    tp = pd.DataFrame({"journey_id": ["x"] * 4 + ["y"] * 3,
                       "timestamp": ts(0, 10, 20, 25, 0, 1, 40),
                       "channel": ["a", "b", "c", "d", "a", "b", "c"]})
    cv = pd.DataFrame({"journey_id": ["x"], "timestamp": ts(26), "value": [1.0]})
    got = by_path(build_paths(tp, cv, lookback=10))
    # x: conversion at day 26 keeps days 20 and 25; y (no conversion) counts back from day 40
    assert set(got) == {("c", "d"), ("c",)}
    got = by_path(build_paths(tp, cv, max_touches=2))
    assert set(got) == {("c", "d"), ("b", "c")}
    got = by_path(build_paths(tp, cv, lookback=pd.Timedelta(days=30), max_touches=1))
    assert set(got) == {("d",), ("c",)}


def test_time_decay_weights_by_hand():
    tp = pd.DataFrame({"journey_id": ["x", "x", "z"], "timestamp": ts(0, 7, 3),
                       "channel": ["a", "b", "a"]})
    cv = pd.DataFrame({"journey_id": ["x", "z"], "timestamp": ts(14, 3), "value": [30.0, 5.0]})
    got = by_path(build_paths(tp, cv, half_life=7))
    # touches 14 and 7 days before: weights 1/4 and 1/2, normalised to 1/3 and 2/3
    np.testing.assert_allclose(got[("a", "b")]["decay_conversions"], [1 / 3, 2 / 3])
    np.testing.assert_allclose(got[("a", "b")]["decay_value"], [10.0, 20.0])
    np.testing.assert_allclose(got[("a",)]["decay_conversions"], [1.0])


def test_conversion_without_touches_warns():
    tp = pd.DataFrame({"journey_id": ["x", "y"], "timestamp": ts(0, 5), "channel": ["a", "b"]})
    cv = pd.DataFrame({"journey_id": ["y", "w"], "timestamp": ts(1, 2), "value": [1.0, 2.0]})
    with pytest.warns(DataWarning, match="2 of 2 conversions"):
        got = build_paths(tp, cv)
    assert got["conversions"].sum() == 0
    ok = pd.DataFrame({"journey_id": ["x"], "timestamp": ts(1), "value": [1.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert build_paths(tp, ok)["conversions"].sum() == 1


def test_channelattribution_format_round_trip(demo_paths):
    ca = to_channelattribution(demo_paths)
    assert list(ca.columns) == ["path", "total_conversions", "total_conversion_value",
                                "total_null"]
    back = from_channelattribution(ca).set_index("path")
    want = demo_paths.set_index("path").loc[back.index]
    np.testing.assert_allclose(back[["conversions", "value", "nulls"]].to_numpy(),
                               want[["conversions", "value", "nulls"]].to_numpy())


def test_channelattribution_format_strips_spaces_and_merges_duplicates():
    ca = pd.DataFrame({"path": ["a > b", "a>b", " c "], "total_conversions": [1, 2, 0],
                       "total_null": [0, 1, 4]})
    got = by_path(from_channelattribution(ca))
    assert got[("a", "b")]["conversions"] == 3
    assert got[("a", "b")]["nulls"] == 1
    assert got[("c",)]["value"] == 0.0


@pytest.mark.parametrize("frame, column", [
    (pd.DataFrame({"path": [("a",), ()], "conversions": [1, 1]}), "path"),
    (pd.DataFrame({"path": ["a > b", "a >  > c"], "total_conversions": [1, 1]}), "path"),
    (pd.DataFrame({"path": [("a",), ("b",)], "conversions": [1, -1]}), "conversions"),
    (pd.DataFrame({"path": [("a",), ("b",)], "conversions": [1, 1],
                   "value": [1.0, np.inf]}), "value"),
])
def test_bad_path_counts_name_the_column_and_rows(frame, column):
    with pytest.raises(DataError) as err:
        from_channelattribution(frame)
    assert err.value.table == "paths"
    assert err.value.column == column
    assert err.value.rows == [1]


def test_paths_with_equal_counts_are_in_tuple_order():
    """Most journeys first, then most conversions, then the path (tuple order: a path
    before its extensions, "a" before "a b" before "b")."""
    journeys = [("a", "b"), ("a",), ("a b",), ("b",), ("a", "a"), ("b", "a"), ("a", "b", "a")]
    rows, conv = [], []
    for j, path in enumerate(journeys * 2 + [("b",)]):
        for k, channel in enumerate(path):
            rows.append((f"j{j}", pd.Timestamp("2024-01-01") + pd.Timedelta(hours=k), channel))
    tp = pd.DataFrame(rows, columns=["journey_id", "timestamp", "channel"])
    conv = pd.DataFrame({"journey_id": ["j0"], "timestamp": [pd.Timestamp("2024-02-01")],
                         "value": [5.0]})
    got = build_paths(tp, conv)
    expected = sorted(got.itertuples(index=False),
                      key=lambda r: (-(r.conversions + r.nulls), -r.conversions, r.path))
    assert list(got["path"]) == [r.path for r in expected]
    assert list(got["path"][:2]) == [("b",), ("a", "b")]


def test_models_on_one_frame_read_its_paths_once(monkeypatch):
    """Ten models on one frame of paths encode it once; an edited frame is read again."""
    from crmstats.attribution import MarkovAttribution, heuristic
    from crmstats.attribution import paths as paths_module

    frame = pd.DataFrame({"path": [("a", "b"), ("b",), ("a",), ("b", "a", "c")],
                          "conversions": [3, 1, 2, 1], "value": [30.0, 5.0, 12.0, 8.0],
                          "nulls": [5, 9, 4, 2]})
    reads = []
    original = paths_module._as_path_data

    def counting(paths, **kw):
        reads.append(1)
        return original(paths, **kw)

    monkeypatch.setattr(paths_module, "_as_path_data", counting)
    linear = heuristic(frame, "linear")
    heuristic(frame, "first_touch")
    chain = MarkovAttribution().fit(frame)
    assert len(reads) == 1
    frame.loc[0, "conversions"] = 30  # an edit: read again, and the credit follows it
    again = heuristic(frame, "linear")
    assert len(reads) == 2
    assert again.loc["a", "conversions"] == linear.loc["a", "conversions"] + 27 / 2
    monkeypatch.setattr(paths_module, "_as_path_data", original)
    fresh = MarkovAttribution().fit(frame.copy())
    assert not np.allclose(fresh.removal_effects_.to_numpy(),
                           chain.removal_effects_.to_numpy())


def test_path_tuples_from_arrow_lists():
    """Paths read as Arrow lists: sliced and chunked columns, repeated paths, odd names."""
    import pyarrow as pa

    from crmstats.attribution.paths import _path_tuples

    first = pa.array([["x > y", "émail"], ["a,b"], ["x > y", "émail"]])
    column = pa.chunked_array([first.slice(1), pa.array([["a,b", "a,b"], ["émail"]])])
    assert _path_tuples(column) == [("a,b",), ("x > y", "émail"), ("a,b", "a,b"), ("émail",)]
    assert _path_tuples(pa.chunked_array([], type=first.type)) == []
    with_null = pa.array([["a"], None, ["b", None]])
    assert _path_tuples(with_null) == [("a",), None, ("b", None)]


def test_build_paths_keeps_channel_names_and_order():
    touch = pd.DataFrame({
        "journey_id": ["j1", "j1", "j2", "j2", "j3", "j4"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01",
                                     "2024-01-05", "2024-01-05"]),
        "channel": ["x > y", "émail", "émail", "x > y", "a,b", "a,b"]})
    conv = pd.DataFrame({"journey_id": ["j1", "j3"],
                         "timestamp": pd.to_datetime(["2024-01-02", "2024-01-06"]),
                         "value": [10.0, 5.0]})
    out = build_paths(touch, conv)
    got = {row.path: (row.conversions, row.value, row.nulls) for row in out.itertuples()}
    assert got == {("x > y", "émail"): (1, 10.0, 1), ("a,b",): (1, 5.0, 1)}
    assert all(type(p) is tuple for p in out["path"])


def test_tuple_paths_are_encoded_once_per_distinct_path_with_the_same_codes():
    """build_paths' rows repeat paths (one row per covariate cell): encoded as each row alone."""
    from crmstats.attribution.paths import _encode_paths

    rng = np.random.default_rng(3)
    names = ["email", " email", "search", "social", "tv"]
    distinct = [tuple(rng.choice(names, size=n)) for n in rng.integers(1, 5, size=12)]
    distinct.append(())  # an empty path: flagged empty
    rows = [distinct[i] for i in rng.integers(0, len(distinct), size=200)]
    once = _encode_paths(pd.Series(rows, dtype=object), ">")
    alone = _encode_paths(pd.Series([list(p) for p in rows], dtype=object), ">")  # row by row
    assert once[1] == alone[1] == ["email", "search", "social", "tv"]
    for a, b in zip((once[0], once[2], once[3]), (alone[0], alone[2], alone[3]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert once[3].sum() == sum(len(p) == 0 for p in rows) > 0

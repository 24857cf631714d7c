"""The simulator's Arrow text helpers give what the plain Python/pandas spelling gives."""

import numpy as np
import pandas as pd

from crmstats.datasets import _text


def test_take_is_indexing_as_str():
    labels = ("paid_search", "email", "événements")
    idx = np.array([2, 0, 0, 1, 2])
    expected = pd.Series(np.array(labels, dtype=object)[idx])
    pd.testing.assert_series_equal(pd.Series(_text.take(labels, idx)), expected)
    # a pandas text array is taken as it is
    arr = pd.array(["a", "b", "c"], dtype="str")
    pd.testing.assert_series_equal(pd.Series(_text.take(arr, [2, 2, 0])),
                                   pd.Series(["c", "c", "a"]))


def test_ids_and_numbers_are_zero_padded_like_zfill_and_never_cut():
    n = 1_000_012  # past the width: no digit is lost
    ids = pd.Series(_text.ids("C", n, 6))
    expected = pd.Series(np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
                         .astype(object))
    pd.testing.assert_series_equal(ids, expected)
    assert list(ids.iloc[[0, 999_998, 999_999, n - 1]]) == ["C000001", "C999999", "C1000000",
                                                             "C1000012"]


def test_join_concatenates_row_by_row_with_constants():
    d, p = np.array([10, 98, 45]), np.array([0, 9_999_999, 1_234_567])
    got = pd.Series(_text.join("+", _text.numbers(d, 2), " ", _text.numbers(p // 10000, 3),
                               " ", _text.numbers(p % 10000, 4)))
    expected = pd.Series([f"+{a:02d} {b // 10000:03d} {b % 10000:04d}"
                          for a, b in zip(d, p, strict=True)])
    pd.testing.assert_series_equal(got, expected)
    both = pd.Series(_text.join(pd.array(["x", "ü"], dtype="str"), "@",
                                np.array(["a", "b"], dtype=object)))
    assert list(both) == ["x@a", "ü@b"]


def test_sort_rows_is_a_stable_sort_like_pandas_mergesort():
    rng = np.random.default_rng(0)
    n = 5000
    frame = pd.DataFrame({
        # few distinct times and ids: many ties on both keys (stability decides the order)
        "when": pd.to_datetime(rng.integers(0, 20, n) * 86400, unit="s"),
        "id": pd.array(np.array(["O0000123", "O0000123-R", "O0000124", "C1000000", "C999999",
                                 "Ábel", "abel"], dtype=object)[rng.integers(0, 7, n)],
                       dtype="str"),
        "row": np.arange(n),
    })
    expected = frame.sort_values(["when", "id"], kind="mergesort").reset_index(drop=True)
    pd.testing.assert_frame_equal(_text.sort_rows(frame, ["when", "id"]), expected)

"""rfm_summary / calibration_holdout_split against lifetimes and plain pandas."""

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats.clv import calibration_holdout_split, rfm_summary


@pytest.fixture(scope="module")
def lifetimes_utils():
    from lifetimes import utils

    return utils


def _aligned(ours, ref):
    ref = ref.copy()
    ref.index = ref.index.astype(str)
    ref = ref.sort_index()
    assert list(ours.index) == list(ref.index)
    return ref


@pytest.mark.parametrize(("freq", "unit", "mult"), [("D", "D", 1), ("D", "W", 7), ("W", "W", 1)])
def test_rfm_summary_equals_lifetimes_on_cdnow(cdnow, lifetimes_utils, freq, unit, mult):
    ours = rfm_summary(cdnow, period=freq, time_unit=unit)
    ref = lifetimes_utils.summary_data_from_transaction_data(
        cdnow, "customer_id", "timestamp", monetary_value_col="amount", freq=freq,
        freq_multiplier=mult,
    )
    ref = _aligned(ours, ref)
    assert len(ours) == 23_570
    for col in ["frequency", "recency", "T", "monetary_value"]:
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-12, atol=1e-9, err_msg=col)


def test_calibration_holdout_equals_lifetimes_on_cdnow(cdnow, lifetimes_utils):
    ours = calibration_holdout_split(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W"
    )
    ref = lifetimes_utils.calibration_and_holdout_data(
        cdnow, "customer_id", "timestamp", calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30", monetary_value_col="amount", freq="D",
        freq_multiplier=7,
    )
    ref = _aligned(ours, ref)
    pairs = {"frequency": "frequency_cal", "recency": "recency_cal", "T": "T_cal",
             "monetary_value": "monetary_value_cal", "frequency_holdout": "frequency_holdout",
             "duration_holdout": "duration_holdout"}
    for a, b in pairs.items():
        np.testing.assert_allclose(ours[a], ref[b], rtol=1e-12, atol=1e-9, err_msg=a)
    assert ours["duration_holdout"].iloc[0] == pytest.approx(273 / 7)


def test_calibration_holdout_monetary_is_mean_of_merged_occasions(cdnow):
    ours = calibration_holdout_split(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W"
    )
    hold = cdnow[(cdnow.timestamp > "1997-09-30") & (cdnow.amount >= 0)]
    per_day = hold.groupby(["customer_id", "timestamp"])["amount"].sum()
    ref = per_day.groupby(level=0).mean().reindex(ours.index).fillna(0.0)
    np.testing.assert_allclose(ours["monetary_holdout"], ref, rtol=1e-12)


def test_calibration_without_monetary_works(cdnow):
    # lifetimes' calibration_and_holdout_data fails here on pandas 3 ("No objects to concatenate")
    out = calibration_holdout_split(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W",
        monetary=False,
    )
    assert list(out.columns) == ["frequency", "recency", "T", "frequency_holdout",
                                 "duration_holdout"]
    assert out["frequency_holdout"].sum() > 0


def test_refunds_are_not_purchases_and_late_rows_are_ignored():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b"],
        "timestamp": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 15:00", "2024-01-08 00:00",
                                     "2024-01-10 00:00", "2024-02-01 00:00"]),
        "amount": [10.0, 5.0, 20.0, -20.0, 7.0],
    })
    out = rfm_summary(tx, observation_end="2024-01-15")
    assert list(out.index) == ["a"]  # b bought after the end
    row = out.loc["a"]
    assert row["frequency"] == 1  # same-day purchases merge, the refund is no purchase
    assert row["recency"] == 7
    assert row["T"] == 14
    assert row["monetary_value"] == 20.0
    weekly = rfm_summary(tx, observation_end="2024-01-15", time_unit="W")
    assert weekly.loc["a", "T"] == pytest.approx(2.0)


def test_monthly_granularity_counts_calendar_months():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a"],
        "timestamp": pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-20"]),
        "amount": [1.0, 2.0, 3.0],
    })
    out = rfm_summary(tx, period="M", observation_end="2024-06-15")
    assert out.loc["a"].tolist() == [1.0, 1.0, 5.0, 5.0]


def test_bad_arguments_and_empty_results(cdnow):
    with pytest.raises(ValueError, match="period must be"):
        rfm_summary(cdnow, period="H")
    with pytest.raises(ValueError, match="finer than period"):
        rfm_summary(cdnow, period="W", time_unit="D")
    with pytest.raises(DataError, match="no purchase"):
        rfm_summary(cdnow, observation_end="1990-01-01")
    with pytest.raises(ValueError, match="must be after calibration_end"):
        calibration_holdout_split(cdnow, calibration_end="1998-07-01",
                                  observation_end="1998-06-30")
    with pytest.raises(DataError, match="'amount'"):
        rfm_summary(cdnow.drop(columns="amount"))


def _pandas_summary(tx: pd.DataFrame, end: pd.Timestamp, freq: str, unit: str) -> pd.DataFrame:
    """The BTYD summary written plainly in pandas: the reference for the Ibis query."""
    buys = tx[(tx["amount"] >= 0) & (tx["timestamp"] <= end)].copy()
    if freq == "M":
        buys["period"] = buys["timestamp"].dt.year * 12 + buys["timestamp"].dt.month - 1
        end_period, scale = end.year * 12 + end.month - 1, 1.0
    else:
        days = (buys["timestamp"] - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
        end_days = (end - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1)
        step = {"D": 1, "W": 7}[freq]
        # weeks start on Monday; 1970-01-01 was a Thursday
        buys["period"] = (days + 3) // 7 if freq == "W" else days
        end_period = (end_days + 3) // 7 if freq == "W" else end_days
        scale = step / {"D": 1.0, "W": 7.0}[unit]
    occ = buys.groupby(["customer_id", "period"], as_index=False)["amount"].sum()
    occ = occ.sort_values(["customer_id", "period"])
    g = occ.groupby("customer_id")
    first = g["period"].min()
    n = g.size()
    repeat_value = g["amount"].sum() - g["amount"].first()
    out = pd.DataFrame({
        "frequency": (n - 1).astype(float),
        "recency": (g["period"].max() - first) * scale,
        "T": (end_period - first) * scale,
        "monetary_value": np.where(n > 1, repeat_value / (n - 1).clip(lower=1), 0.0),
    })
    return out.astype(float)


@pytest.mark.parametrize(("freq", "unit"), [("D", "D"), ("D", "W"), ("W", "W"), ("M", "M")])
def test_rfm_summary_equals_a_pandas_reference_on_messy_data(freq, unit):
    """Random logs with same-day repeats, refunds, zero-value rows and rows after the end."""
    rng = np.random.default_rng(21)
    n = 6_000
    start = pd.Timestamp("2023-01-01")
    seconds = rng.integers(0, 400 * 86400, n)
    tx = pd.DataFrame({
        "customer_id": rng.integers(0, 700, n),
        "timestamp": start + pd.to_timedelta(seconds, unit="s"),
        "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
    })
    tx.loc[rng.random(n) < 0.05, "amount"] *= -1  # refunds
    tx.loc[rng.random(n) < 0.03, "amount"] = 0.0  # free orders are purchases
    same_day = tx.sample(800, random_state=3).assign(amount=lambda d: d["amount"].abs() + 1)
    tx = pd.concat([tx, same_day], ignore_index=True)  # same customer, same instant
    end = pd.Timestamp("2024-01-20 12:00")
    ours = rfm_summary(tx, observation_end=end, period=freq, time_unit=unit)
    ref = _pandas_summary(tx, end, freq, unit)
    assert list(ours.index) == list(ref.index)
    pd.testing.assert_frame_equal(ours, ref, check_names=False, rtol=1e-12)
    # the data exercise what the test is about: merged occasions and ignored refunds
    kept = tx[(tx["amount"] >= 0) & (tx["timestamp"] <= end)]
    rows = kept.groupby("customer_id").size().reindex(ref.index)
    assert (ours["frequency"] < rows - 1).sum() > 50
    assert ((tx["amount"] < 0) & (tx["timestamp"] <= end)).sum() > 100

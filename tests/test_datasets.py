import pandas as pd
import pytest

from crmstats.datasets import load_cdnow, load_donations


def test_cdnow_master_matches_published_size(cdnow):
    assert len(cdnow) == 69_659
    assert cdnow["customer_id"].nunique() == 23_570
    assert list(cdnow.columns) == ["customer_id", "timestamp", "quantity", "amount"]
    assert cdnow["timestamp"].min() == pd.Timestamp("1997-01-01")
    assert cdnow["timestamp"].max() == pd.Timestamp("1998-06-30")
    # the whole cohort made its first purchase in the first quarter of 1997
    first = cdnow.groupby("customer_id")["timestamp"].min()
    assert first.max() < pd.Timestamp("1997-04-01")


def test_cdnow_sample_size_and_ids_from_master(cdnow):
    sample = load_cdnow("sample")
    assert len(sample) == 6_919
    assert sample["customer_id"].nunique() == 2_357
    assert set(sample["customer_id"]) <= set(cdnow["customer_id"])
    # the sample rows are exactly the master rows of the sampled customers
    sub = cdnow[cdnow["customer_id"].isin(set(sample["customer_id"]))]
    assert len(sub) == len(sample)
    assert sub["amount"].sum() == pytest.approx(sample["amount"].sum())


def test_cdnow_is_read_without_lifetimes_datasets():
    import sys

    sys.modules.pop("lifetimes.datasets", None)
    load_cdnow("sample")
    assert "lifetimes.datasets" not in sys.modules


def test_cdnow_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        load_cdnow("full")


def test_donations_summary():
    d = load_donations()
    assert list(d.columns) == ["frequency", "recency", "periods", "weights"]
    assert len(d) == 22
    assert d["weights"].sum() == 11_104
    assert (d["periods"] == 6).all()
    assert (d["frequency"] <= d["recency"]).all()

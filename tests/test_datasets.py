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


def test_example_exports_are_the_generators_output_byte_for_byte(tmp_path):
    """data/giftshop and data/deals are written by crmstats.datasets.exports, never by hand."""
    from pathlib import Path

    from crmstats.datasets.exports import write_examples

    committed = Path(__file__).parents[1] / "data"
    write_examples(tmp_path)
    for name in ("giftshop", "deals"):
        made = sorted(p.name for p in (tmp_path / name).iterdir())
        assert made == sorted(p.name for p in (committed / name).iterdir()
                              if p.name != "run.yml")
        for file in made:
            made_bytes = (tmp_path / name / file).read_bytes()
            assert made_bytes == (committed / name / file).read_bytes(), \
                f"data/{name}/{file} differs from write_examples' output"
            assert (committed / name / file).stat().st_size < 1_000_000


def test_example_exports_have_the_real_shapes():
    from pathlib import Path

    base = Path(__file__).parents[1] / "data"
    log = pd.read_csv(base / "giftshop" / "invoices.csv", dtype=str, keep_default_na=False)
    assert list(log.columns) == ["InvoiceNo", "StockCode", "Description", "Quantity",
                                 "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    cancelled = log["InvoiceNo"].str.startswith("C")
    assert cancelled.sum() > 10 and (log.loc[cancelled, "Quantity"].astype(int) < 0).all()
    assert (log["CustomerID"] == "").mean() > 0.03  # guest sales without a customer id
    when = pd.to_datetime(log["InvoiceDate"], format="%d/%m/%Y %H:%M")
    assert (when.dt.day > 12).any()  # day-first, visibly
    assert when.max() < pd.Timestamp("2024-12-10")  # a partial last month (9 days)
    deals = pd.read_csv(base / "deals" / "deals.csv", dtype=str, keep_default_na=False)
    assert set(deals["deal_stage"]) == {"Prospecting", "Engaging", "Won", "Lost"}
    prospecting = deals["deal_stage"] == "Prospecting"
    assert (deals.loc[prospecting, ["engage_date", "close_date"]] == "").all().all()
    engaging = deals["deal_stage"] == "Engaging"
    assert (deals.loc[engaging, "close_date"] == "").all()
    assert (deals.loc[~prospecting, "engage_date"] != "").all()
    assert deals["opportunity_id"].is_unique

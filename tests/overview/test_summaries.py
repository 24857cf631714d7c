"""The in-database overview aggregations equal plain pandas references."""

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import DataError
from crmstats.overview import (
    monthly_activity,
    orders_per_customer,
    spend_by_channel,
    stage_counts,
    table_overview,
)


def pandas_monthly_activity(tx: pd.DataFrame) -> pd.DataFrame:
    tx = tx.assign(period=tx["timestamp"].dt.to_period("M").dt.to_timestamp())
    buy = tx[tx["amount"] >= 0]
    first = buy.groupby("customer_id")["period"].min()
    out = pd.DataFrame(
        {
            "orders": buy.groupby("period").size(),
            "customers": buy.groupby("period")["customer_id"].nunique(),
            "new_customers": first.value_counts(),
            "revenue": tx.groupby("period")["amount"].sum(),
            "refunds": -tx[tx["amount"] < 0].groupby("period")["amount"].sum(),
        }
    )
    return out.fillna(0)


def test_monthly_activity_equals_pandas_on_cdnow(cdnow):
    got = monthly_activity(cdnow)
    want = pandas_monthly_activity(cdnow)
    assert len(got) == 18
    pd.testing.assert_index_equal(pd.DatetimeIndex(got.index.to_numpy()),
                                  pd.DatetimeIndex(want.index.to_numpy()))
    for col in ["orders", "customers"]:
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    # the first month's buyers cannot be told new: missing, not all of them
    assert np.isnan(got["new_customers"].iloc[0])
    np.testing.assert_array_equal(got["new_customers"].to_numpy()[1:],
                                  want["new_customers"].to_numpy()[1:])
    np.testing.assert_allclose(got["revenue"], want["revenue"], rtol=1e-12)
    assert got.left_out() == ""  # CDNOW ends on 30 June 1998: June is complete


def test_monthly_activity_counts_refunds_in_revenue_not_orders():
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "b", "b"],
        "timestamp": pd.to_datetime(["2024-01-03", "2024-01-20", "2024-02-01", "2024-02-29"]),
        "amount": [100.0, -30.0, 50.0, 20.0],
    })
    got = monthly_activity(tx)
    want = pandas_monthly_activity(tx)
    want.loc["2024-01-01", "new_customers"] = np.nan  # the data's first month
    np.testing.assert_allclose(got[want.columns].to_numpy(dtype=float),
                               want.to_numpy(dtype=float))
    assert got.loc["2024-01-01", "orders"] == 1
    assert got.loc["2024-01-01", "refunds"] == 30.0
    assert got.loc["2024-01-01", "revenue"] == 70.0


@pytest.mark.parametrize("period,freq", [("W", "W"), ("Q", "Q"), ("D", "D")])
def test_monthly_activity_other_periods(cdnow, period, freq):
    got = monthly_activity(cdnow, period=period)
    ref = cdnow.groupby(cdnow.timestamp.dt.to_period(freq).dt.to_timestamp())["amount"].sum()
    if period == "W":  # the data end on Tuesday 30 June 1998: that week is partial
        assert got.left_out().startswith("The week of 29 June 1998 is left out")
        ref = ref.iloc[:-1]
    np.testing.assert_allclose(got["revenue"].to_numpy(), ref.to_numpy())
    np.testing.assert_array_equal(got.index.to_numpy(), ref.index.to_numpy())


def test_orders_per_customer_equals_pandas(cdnow):
    got = orders_per_customer(cdnow, max_orders=10)
    counts = cdnow[cdnow.amount >= 0].groupby("customer_id").size().clip(upper=10)
    want = counts.value_counts().sort_index()
    np.testing.assert_array_equal(got.index.to_numpy(), want.index.to_numpy())
    np.testing.assert_array_equal(got["customers"].to_numpy(), want.to_numpy())
    assert got["share"].sum() == pytest.approx(1.0)
    assert got["pooled"].tolist() == [False] * 9 + [True]
    with pytest.raises(ValueError, match="max_orders"):
        orders_per_customer(cdnow, max_orders=0)


def test_column_mapping_and_other_inputs(cdnow, tmp_path):
    renamed = cdnow.rename(columns={"customer_id": "cust", "timestamp": "ts", "amount": "usd"})
    got = monthly_activity(renamed, customer_id_col="cust", timestamp_col="ts", amount_col="usd")
    base = monthly_activity(cdnow)
    pd.testing.assert_frame_equal(got, base)
    path = tmp_path / "tx.parquet"
    cdnow.to_parquet(path)
    pd.testing.assert_frame_equal(monthly_activity(path), base)
    pd.testing.assert_frame_equal(monthly_activity(crmstats.as_table(cdnow, "transactions")), base)


def test_stage_counts_and_spend(small_crm):
    ev = small_crm.stage_events
    got = stage_counts(ev)
    want = ev.groupby("stage")["lead_id"].nunique()
    assert got["leads"].to_dict() == want.to_dict()
    order = list(got.index)
    assert order.index("subscriber") < order.index("lead") < order.index("opportunity")
    sp = spend_by_channel(small_crm.spend)
    ref = small_crm.spend.assign(p=small_crm.spend.date.dt.to_period("M").dt.to_timestamp())
    ref = ref.pivot_table(index="p", columns="channel", values="cost", aggfunc="sum", fill_value=0)
    np.testing.assert_allclose(sp[ref.columns].to_numpy(), ref.to_numpy())
    assert sp.sum().sum() == pytest.approx(small_crm.spend.cost.sum())


def test_table_overview_reports_counts_and_invalid_tables(small_crm):
    ov = table_overview(small_crm)
    assert ov.loc["transactions", "rows"] == len(small_crm.transactions)
    assert ov.loc["transactions", "ids"] == small_crm.transactions.customer_id.nunique()
    assert ov.loc["transactions", "first"] == small_crm.transactions.timestamp.min()
    assert (ov.drop(["experiments", "deals"])["status"] == "ok").all()
    # no holdouts in this simulation, and its sales cycle is stage events, not a deals export
    assert (ov.loc[["experiments", "deals"], "status"] == "absent").all()
    # an experiments table without its optional started_at has no date range
    exp = pd.DataFrame({"journey_id": ["a", "b"], "channel": "email",
                        "group": ["treatment", "holdout"]})
    ov3 = table_overview(crmstats.CRMData(experiments=exp))
    assert ov3.loc["experiments", "rows"] == 2 and pd.isna(ov3.loc["experiments", "first"])
    broken = crmstats.CRMData(transactions=small_crm.transactions.drop(columns="amount"))
    ov2 = table_overview(broken)
    assert ov2.loc["transactions", "status"] == "invalid"
    assert "'amount'" in ov2.loc["transactions", "message"]
    assert ov2.loc["customers", "status"] == "absent"
    # the overview never exposes personal data
    assert "@" not in ov.to_string()


def test_bad_input_is_a_data_error(cdnow):
    with pytest.raises(DataError, match="transactions table.*'amount'"):
        monthly_activity(cdnow.drop(columns="amount"))
    with pytest.raises(ValueError, match="period must be one of"):
        monthly_activity(cdnow, period="fortnight")


def test_monthly_activity_on_a_log_that_starts_mid_stream_with_a_partial_last_month():
    from crmstats.book import findings

    tx = crmstats.load_crm("demo").transactions
    cut = tx[(tx["timestamp"] >= "2024-12-01") & (tx["timestamp"] < "2025-12-10")]
    got = monthly_activity(cut)
    want = pandas_monthly_activity(cut)
    # December 2025 (9 days) is left out, not shown as a month with a third of the revenue
    assert got.index[-1] == pd.Timestamp("2025-11-01") and len(got) == len(want) - 1
    assert got.left_out().startswith("December 2025 is left out")
    # every December 2024 buyer is in the first month of the data: none is known to be new
    assert np.isnan(got["new_customers"].iloc[0])
    np.testing.assert_array_equal(got["new_customers"].to_numpy()[1:],
                                  want["new_customers"].to_numpy()[1:-1])
    for col in ("orders", "customers", "revenue", "refunds"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float),
                                   want[col].to_numpy(dtype=float)[:-1], rtol=1e-12)
    text = " ".join(findings.data_overview(got, pd.DataFrame({"share": [0.5]}),
                                           pd.Series([1.0, 2.0]), 0.6))
    assert "from December 2024 to December 2025" in text  # the data's span, 9 December included
    assert "December 2025 is left out of the per-period figures" in text


def test_top_revenue_share_against_a_plain_pandas_reference():
    from crmstats import overview

    rng = np.random.default_rng(3)
    revenue = pd.Series(rng.gamma(0.7, 80.0, 503) - 20.0, name="revenue",
                        index=pd.Index(range(503), name="customer_id"))
    before = revenue.copy()
    net = revenue.clip(lower=0)  # refunds beyond the purchases count as nothing
    k = int(np.ceil(0.2 * len(net)))
    expected = net.sort_values(ascending=False).iloc[:k].sum() / net.sum()
    assert overview.top_revenue_share(revenue) == pytest.approx(expected, rel=1e-12)
    k10 = int(np.ceil(0.1 * len(net)))
    assert overview.top_revenue_share(revenue, top_fraction=0.1) == pytest.approx(
        net.sort_values(ascending=False).iloc[:k10].sum() / net.sum(), rel=1e-12)
    pd.testing.assert_series_equal(revenue, before)


def test_top_revenue_share_refuses_what_it_cannot_share():
    from crmstats import DataError, overview

    with pytest.raises(DataError, match="total value is zero"):
        overview.top_revenue_share(pd.Series([-5.0, 0.0]))
    with pytest.raises(DataError, match="customer_revenue"):
        overview.top_revenue_share(pd.DataFrame({"revenue": [1.0]}))

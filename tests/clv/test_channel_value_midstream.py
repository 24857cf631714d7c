"""Value of a new customer by channel on a transaction log that starts mid-stream.

Customers acquired before the log's first purchase enter it as survivors; a new
customer's value is estimated without them (``fit_channel_value(acquired_since="auto")``).
"""

import pandas as pd
import pytest

import crmstats
from crmstats import DataError, clv
from crmstats.book import findings
from crmstats.datasets.customer_effects import REFERENCE


@pytest.fixture(scope="module")
def cut_log(tmp_path_factory):
    """The demo's transactions from 40 % of their span on, as a frame and as a Parquet file."""
    crm = crmstats.load_crm("demo:seed=2,n_contacts=12000")
    tx = crm.transactions
    lo, hi = tx["timestamp"].min(), tx["timestamp"].max()
    cut = tx[tx["timestamp"] >= lo + (hi - lo) * 0.4].reset_index(drop=True)
    path = tmp_path_factory.mktemp("midstream") / "transactions.parquet"
    cut.to_parquet(path)
    return crm, cut, path


def test_the_summary_records_where_its_log_starts(cut_log):
    crm, cut, path = cut_log
    buys = cut[cut["amount"] >= 0]
    for source in (cut, path):  # a frame, and a file DuckDB reads
        summary = clv.rfm_summary(source, period="D", time_unit="W")
        assert summary.first_purchase == buys["timestamp"].min()
        # kept through what one does to a summary; lost where pandas drops metadata
        assert summary[summary["frequency"] > 0].first_purchase == summary.first_purchase
        assert summary.copy().first_purchase == summary.first_purchase
        assert clv.with_units(summary, period="D", time_unit="W").first_purchase \
            == summary.first_purchase
        assert clv.with_units(pd.DataFrame(summary), period="D",
                              time_unit="W").first_purchase is None
    end = buys["timestamp"].max() - pd.Timedelta(days=90)
    split = clv.calibration_holdout_split(cut, calibration_end=end)
    assert split.first_purchase == buys["timestamp"].min()


def test_customers_acquired_before_the_log_are_left_out(cut_log):
    crm, cut, _ = cut_log
    summary = clv.rfm_summary(cut, period="D", time_unit="W")
    customers = crm.customers
    start = summary.first_purchase.normalize()
    acquired = customers.set_index("customer_id")["acquired_at"]
    old = acquired.reindex(summary.index) < start
    assert 0 < old.sum() < len(summary)  # the cut leaves both kinds

    kw = dict(reference=dict(REFERENCE), n_draws=40, seed=1, allow_unconverged=True)
    auto = clv.fit_channel_value(summary, customers, **kw)
    assert auto.acquired_since == start
    assert auto.left_out == int(old.sum())
    assert auto.values["customers"].sum() == len(summary) - int(old.sum())
    assert not set(auto.covariates.index) & set(old.index[old.to_numpy()])

    # the same figures as a fit on the new customers' rows only, by hand
    by_hand = clv.fit_channel_value(summary[~old.to_numpy()], customers, acquired_since=None,
                                    **kw)
    assert by_hand.left_out == 0 and by_hand.acquired_since is None
    pd.testing.assert_frame_equal(auto.values, by_hand.values)

    everyone = clv.fit_channel_value(summary, customers, acquired_since=None, **kw)
    assert everyone.values["customers"].sum() == len(summary)
    # the survivors make a new customer look more valuable
    assert (everyone.values["clv"] > auto.values["clv"]).mean() >= 0.5

    sentences = findings.new_customer_value(auto)
    told = [s for s in sentences if "acquired before" in s]
    assert len(told) == 1 and f"{auto.left_out:,} customers" in told[0]
    assert f"{start.day} {start:%B %Y}" in told[0]
    assert not any("acquired before" in s for s in findings.new_customer_value(by_hand))


def test_a_complete_log_leaves_nobody_out(cut_log):
    crm = cut_log[0]
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit="W")
    kw = dict(reference=dict(REFERENCE), n_draws=20, seed=1, allow_unconverged=True)
    auto = clv.fit_channel_value(summary, crm.customers, **kw)
    assert auto.left_out == 0
    pd.testing.assert_frame_equal(
        auto.values, clv.fit_channel_value(summary, crm.customers, acquired_since=None,
                                           **kw).values)


def test_acquired_since_given_or_not_usable(cut_log):
    crm, cut, _ = cut_log
    summary = clv.rfm_summary(cut, period="D", time_unit="W")
    kw = dict(reference=dict(REFERENCE), n_draws=20, seed=1, allow_unconverged=True)
    # no acquired_at: "auto" uses everyone; an explicit date is refused with the column named
    bare = crm.customers.drop(columns="acquired_at")
    assert clv.fit_channel_value(summary, bare, **kw).left_out == 0
    with pytest.raises(DataError, match="acquired_at") as err:
        clv.fit_channel_value(summary, bare, acquired_since="2025-01-01", **kw)
    assert err.value.table == "customers"
    with pytest.raises(ValueError, match="acquired_since"):
        clv.fit_channel_value(summary, crm.customers, acquired_since="soon", **kw)
    # text that is not a date names the rows
    messy = crm.customers.astype({"acquired_at": object})
    messy.loc[messy.index[messy["customer_id"].isin(summary.index)][:2], "acquired_at"] = "n/a"
    kept = messy.copy()
    with pytest.raises(DataError, match="not a date in 2 rows"):
        clv.fit_channel_value(summary, messy, **kw)
    pd.testing.assert_frame_equal(messy, kept)  # the caller's table is left as it was
    # nobody acquired within the log: an error, or the reason in words for a study
    late = crm.customers.assign(acquired_at=pd.Timestamp("2000-01-01"))
    with pytest.raises(DataError, match="every customer with a purchase was acquired before"):
        clv.fit_channel_value(summary, late, **kw)
    reported = clv.fit_channel_value(summary, late, on_problem="report", **kw)
    assert reported.values.empty and "acquired before" in reported.problem

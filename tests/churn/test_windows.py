"""Honest time windows of the churn KPIs on data that start mid-stream (crmstats._windows).

The fixture cuts the demo's purchase log to start in December 2024 (customers
bought before it) and to stop on 9 December 2025 (a 9-day last month), the
shape of a real export. References are plain pandas on the cut log, and the
uncut log: a value the cut data can observe must equal the uncut data's.
"""

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import churn
from crmstats.book import findings

N = 3  # churned_after


@pytest.fixture(scope="module")
def full():
    return crmstats.load_crm("demo").transactions


@pytest.fixture(scope="module")
def cut(full):
    keep = (full["timestamp"] >= "2024-12-01") & (full["timestamp"] < "2025-12-10")
    return full[keep].reset_index(drop=True)


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 12 + ts.dt.month - 1


def _pandas_churn(tx: pd.DataFrame, n: int, first: int, last: int) -> pd.DataFrame:
    """Active at start/end and churned per month by the inactivity rule, customer by customer."""
    buys = tx[tx["amount"] >= 0]
    months = _month(buys["timestamp"]).groupby(buys["customer_id"]).agg(set)

    def active(s, t):  # the last purchase at or before t is fewer than n months old
        past = [p for p in s if p <= t]
        return bool(past) and t - max(past) < n

    rows = {}
    for t in range(first, last + 1):
        rows[t] = (sum(active(s, t - 1) for s in months), sum(active(s, t) for s in months),
                   sum(active(s, t - 1) and not active(s, t) for s in months))
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["active_start", "active_end", "churned"])


def test_churn_is_missing_not_zero_where_nobody_can_churn_yet(cut):
    rates = churn.churn_rate(cut, lapsed_after=N)
    first = rates.index[:N]
    assert list(first) == list(pd.date_range("2024-12-01", periods=N, freq="MS"))
    # the old code reported 0.0 % here: nobody could have churned yet
    assert rates.loc[first, ["active_start", "churned", "churn_rate"]].isna().all().all()
    assert rates["churn_rate"].iloc[N:].notna().all()
    assert (rates["churn_rate"].iloc[N:] > 0).all()


def test_partial_last_month_is_left_out(cut, full):
    rates = churn.churn_rate(cut, lapsed_after=N)
    assert rates.index[-1] == pd.Timestamp("2025-11-01")  # December holds 9 days only
    assert "December 2025" in rates.left_out()
    assert "9 December 2025" in rates.left_out()
    # a log that reaches the month's last day keeps it
    whole = churn.churn_rate(full, lapsed_after=N)
    assert whole.index[-1] == pd.Timestamp("2025-12-01")
    assert whole.left_out() == ""


def test_observable_churn_equals_plain_pandas_and_the_uncut_data(cut, full):
    rates = churn.churn_rate(cut, lapsed_after=N)
    m = _month(cut["timestamp"])
    ref = _pandas_churn(cut, N, int(m.min()), int(m.max()) - 1)
    seen = rates.iloc[N:]
    np.testing.assert_array_equal(seen[["active_start", "active_end", "churned"]].to_numpy(),
                                  ref.iloc[N:].to_numpy())
    np.testing.assert_array_equal(rates["active_end"].iloc[N - 1], ref["active_end"].iloc[N - 1])
    # what the cut data can observe, the uncut data observe alike
    uncut = churn.churn_rate(full, lapsed_after=N).reindex(seen.index)
    cols = ["active_start", "churned", "active_end", "churn_rate"]
    pd.testing.assert_frame_equal(seen[cols], uncut[cols])


def test_headline_and_findings_use_observable_months_only(cut):
    rates = churn.churn_rate(cut, lapsed_after=N)
    retention = churn.retention_matrix(cut, max_age=6)
    observable = rates["churn_rate"].dropna()
    assert len(observable) == 9  # March to November 2025
    kpis = findings.churn_kpis(rates, N, "M")
    assert kpis["churn_rate"]["value"] == pytest.approx(observable.mean())
    assert "last 9 months" in kpis["churn_rate"]["label"]
    text = findings.churn(rates, retention, N, period="M")
    assert f"{100 * observable.mean():.1f} %" in text[0]
    assert "last 9 months, March 2025 to November 2025 (no purchase" in text[0]
    recent, before = observable.tail(3).mean(), observable.iloc[:-3].mean()
    trend = "higher" if recent > before else "lower"
    # averaging the 0 % months in (the old code) reversed this comparison to "higher"
    assert trend == "lower"
    assert any(f"is {trend} than in the 6 months before" in s for s in text), text
    assert any("December 2025 is left out" in s for s in text), text
    assert any("first 3 months show no churn figure" in s for s in text), text


def test_first_cohort_and_partial_cells_are_missing(cut):
    counts = churn.cohort_table(cut, metric="customers")
    # the first cohort holds every December 2024 buyer, acquired then or before: no cohort
    assert counts.loc["2024-12-01"].isna().all()
    # no age column that only the first cohort reached (it would be blank)
    assert counts.notna().any().all() and counts.columns[-1] == 10
    # the 9-day December 2025 is left out: no cohort of it, no cell in it
    assert counts.index[-1] == pd.Timestamp("2025-11-01")
    assert np.isnan(counts.loc["2025-11-01", 1])
    assert counts.loc["2025-11-01", 0] > 0
    # every other cell equals plain pandas on the cut log
    buys = cut[cut["amount"] >= 0].assign(m=_month(cut["timestamp"]))
    buys = buys[buys["m"] <= buys["m"].max() - 1]
    first = buys.groupby("customer_id")["m"].transform("min")
    ref = (buys.assign(c=first, age=buys["m"] - first).groupby(["c", "age"])["customer_id"]
           .nunique().unstack(fill_value=0))
    got = counts.to_numpy()[1:]
    want = ref.reindex(columns=counts.columns).to_numpy(dtype=float)[1:]
    known = ~np.isnan(got)
    np.testing.assert_array_equal(got[known], want[known])
    ages = np.arange(counts.shape[1])
    assert (known == (ages[None, :] <= np.arange(len(got))[::-1, None])).all()


def test_retention_by_segment_leaves_out_customers_first_seen_at_the_start(cut):
    demo = crmstats.load_crm("demo")
    got = churn.retention_matrix(cut, by="acquisition_channel", customers=demo.customers,
                                 max_age=4)
    buys = cut[cut["amount"] >= 0].assign(m=_month(cut["timestamp"]))
    last = int(buys["m"].max()) - 1  # December 2025 is partial
    buys = buys[buys["m"] <= last]
    start = int(buys["m"].min())
    first = buys.groupby("customer_id")["m"].transform("min")
    buys = buys.assign(first=first, age=buys["m"] - first)
    buys = buys[buys["first"] > start]  # their acquisition is not observed
    channel = demo.customers.set_index("customer_id")["acquisition_channel"]
    buys["ch"] = buys["customer_id"].map(channel)
    counts = buys.groupby(["ch", "age"])["customer_id"].nunique().unstack(fill_value=0)
    firsts = buys.drop_duplicates("customer_id")
    for age in range(5):
        exposed = firsts[firsts["first"] + age <= last].groupby("ch").size()
        ref = counts[age] / exposed.reindex(counts.index)
        np.testing.assert_allclose(got[age].to_numpy(), ref.reindex(got.index).to_numpy())


def test_a_small_hand_made_log():
    """Three customers, January to a partial April (the log stops on 10 April)."""
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "b", "c", "c", "b"],
        "timestamp": pd.to_datetime(["2025-01-05", "2025-02-07", "2025-01-20", "2025-01-09",
                                     "2025-03-15", "2025-04-10"]),
        "amount": [10.0, 12.0, 5.0, 8.0, 9.0, 7.0],
    })
    rates = churn.churn_rate(tx, lapsed_after=2)
    # January and February: nobody can be seen to churn after two months yet
    assert list(rates.index) == list(pd.date_range("2025-01-01", "2025-03-01", freq="MS"))
    assert rates["churn_rate"].iloc[:2].isna().all()
    # March: active at its start a (Feb), b (Jan), c (Jan); b churns (Jan + 2), c buys again
    assert rates.loc["2025-03-01", ["active_start", "churned", "active_end"]].tolist() == [
        3.0, 1.0, 2.0]
    assert rates.loc["2025-03-01", "churn_rate"] == pytest.approx(1 / 3)
    assert "April 2025 is left out" in rates.left_out()


# ----------------------------------------------------------------- key accounts


@pytest.fixture(scope="module")
def subs():
    return crmstats.load_crm("demo").subscriptions


def test_mrr_bridge_on_subscriptions_that_start_mid_stream(subs):
    cut = subs[subs["month"] >= "2025-01-01"]
    b = churn.mrr_bridge(cut)
    # January 2025 has no observed start: the old bridge called all its MRR new
    assert b.loc["2025-01-01"].drop("end").isna().all()
    assert b.loc["2025-01-01", "end"] == pytest.approx(cut.loc[cut["month"] == "2025-01-01",
                                                               "mrr"].sum())
    # every later month equals the uncut bridge (new and reactivated only as their sum:
    # an account that paid before the data and comes back looks new in the cut)
    whole = churn.mrr_bridge(subs).loc[b.index[1:]]
    same = ["start", "expansion", "contraction", "churned", "end", "accounts_start",
            "accounts_churned", "logo_churn_rate", "nrr", "grr"]
    pd.testing.assert_frame_equal(b.iloc[1:][same], whole[same])
    np.testing.assert_allclose((b["new"] + b["reactivated"]).iloc[1:],
                               whole["new"] + whole["reactivated"])
    # NRR and GRR by cohort: the first cohort is every account paying in January 2025
    for table in (churn.nrr_by_cohort(cut), churn.grr_by_cohort(cut)):
        assert table.loc["2025-01-01"].isna().all()
        assert (table[0].iloc[1:] == 1.0).all()


def test_key_account_headlines_count_observed_months(subs):
    cut = subs[subs["month"] >= "2025-01-01"]  # 12 months: the first has no start
    b = churn.mrr_bridge(cut)
    kpis = findings.key_accounts_kpis(b, "M")
    observed = b["nrr"].dropna()
    assert len(b) == 12 and len(observed) == 11
    assert kpis["nrr"]["value"] == pytest.approx(observed.mean())
    assert kpis["grr"]["value"] == pytest.approx(b["grr"].dropna().mean())
    assert all("mean of the last 11 months" in k["label"] for k in kpis.values())
    text = " ".join(findings.key_accounts(b))
    assert f"averaged {100 * observed.mean():.1f} % per month over the last 11 months, " \
           "February 2025 to December 2025" in text
    assert "at the start of February 2025" in text


def test_account_lifetimes_flag_starts_before_the_data(subs):
    cut = subs[subs["month"] >= "2025-01-01"]
    life = churn.account_lifetimes(cut)
    january = set(cut.loc[(cut["month"] == "2025-01-01") & (cut["mrr"] > 0), "account_id"])
    assert set(life.index[~life["start_observed"]]) == january
    kept = churn.account_lifetimes(cut, observed_starts=True)
    assert set(kept.index) == set(life.index) - january
    # an account that starts inside the cut has the same first spell as in the uncut data
    whole = churn.account_lifetimes(subs).loc[kept.index]
    started = whole["start"] >= "2025-02-01"  # (its first spell may begin before the cut)
    cols = ["start", "tenure", "duration", "churned"]
    pd.testing.assert_frame_equal(kept.loc[started[started].index, cols],
                                  whole.loc[started, cols])


def test_the_shipped_invoice_log_that_starts_mid_stream():
    """data/giftshop: an invoice log from 1 December 2023 to 9 December 2024, mapped by its file."""
    from tests.conftest import ROOT

    crm = crmstats.load_crm(str(ROOT / "data" / "giftshop"))
    tx = crmstats.execute(crm.table("transactions"))
    rates = churn.churn_rate(crm.transactions, lapsed_after=N)
    m = _month(tx["timestamp"])
    ref = _pandas_churn(tx, N, int(m.min()), int(m.max()) - 1)  # December 2024 is partial
    assert len(rates) == len(ref) and rates["churn_rate"].iloc[:N].isna().all()
    np.testing.assert_array_equal(
        rates[["active_start", "active_end", "churned"]].to_numpy()[N:], ref.to_numpy()[N:])
    observable = (ref["churned"] / ref["active_start"]).iloc[N:]
    kpis = findings.churn_kpis(rates, N, "M")
    assert kpis["churn_rate"]["value"] == pytest.approx(observable.mean())
    assert f"last {len(observable)} months" in kpis["churn_rate"]["label"]
    text = " ".join(findings.churn(rates, churn.retention_matrix(crm.transactions), N))
    assert f"over the last {len(observable)} months, March 2024 to November 2024" in text
    assert "December 2024 is left out" in text

"""The weekly media table: in-database sums equal a plain-pandas reference, on every source."""

import numpy as np
import pandas as pd
import pytest

from crmstats import CRMData, DataError
from crmstats.attribution import media_table


def _daily_spend(start="2024-01-01", days=200, channels=("tv", "search", "email"), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for d in pd.date_range(start, periods=days, freq="D"):
        for c in channels:
            if c == "tv" and (d.day_of_year // 21) % 2:  # flighted: weeks without tv spend
                continue
            rows.append((d, c, round(float(rng.gamma(2.0, 50.0)), 2)))
    return pd.DataFrame(rows, columns=["date", "channel", "cost"])


def _events(start, days, per_day, seed):
    rng = np.random.default_rng(seed)
    n = rng.poisson(per_day, days)
    day = np.repeat(np.arange(days), n)
    ts = pd.Timestamp(start) + pd.to_timedelta(day + rng.random(len(day)) * 0.999, unit="D")
    return pd.DataFrame({"journey_id": [f"j{i}" for i in range(len(ts))],
                         "timestamp": ts.sort_values().floor("s"),
                         "value": np.round(rng.gamma(2.0, 30.0, len(ts)), 2)})


@pytest.fixture(scope="module")
def crm():
    conv = _events("2024-01-03 10:00", 560, 4.0, 1)  # starts mid-week, ends mid-week
    tx = _events("2024-01-01", 600, 6.0, 2).rename(columns={"journey_id": "customer_id",
                                                            "value": "amount"})
    return CRMData(conversions=conv, transactions=tx, spend=_daily_spend(days=590))


def _week(ts):
    return ts.dt.to_period("W-SUN").dt.start_time


def _reference(crm, outcome):
    """Plain pandas: sum per Monday-starting week over the full weeks both tables cover."""
    if outcome == "revenue":
        t, col = crm.transactions, "amount"
    else:
        t, col = crm.conversions, "value"
    per = t.groupby(_week(t["timestamp"]))
    y = per.size().astype(float) if outcome == "conversions" else per[col].sum()
    sp = crm.spend.assign(week=_week(crm.spend["date"]))
    wide = sp.pivot_table(index="week", columns="channel", values="cost", aggfunc="sum")
    first = max(_week(t["timestamp"]).min() + pd.Timedelta(days=7 * (
        t["timestamp"].min().normalize() > _week(t["timestamp"]).min())), wide.index.min())
    last_t = t["timestamp"].max()
    last = min(_week(pd.Series([last_t]))[0] - pd.Timedelta(days=7 * (
        last_t < _week(pd.Series([last_t]))[0] + pd.Timedelta(days=6))),
        wide.index.max() - pd.Timedelta(days=7 * (crm.spend["date"].max().day_of_week < 6)))
    weeks = pd.date_range(first, last, freq="W-MON")
    out = {("outcome", outcome): y.reindex(weeks).to_numpy(float)}
    wide = wide.reindex(weeks).fillna(0.0)
    for c in wide.sum().sort_values(ascending=False).index:
        out[("spend", c)] = wide[c].to_numpy()
    return pd.DataFrame(out, index=weeks)


@pytest.mark.parametrize("outcome", ["conversions", "conversion_value", "revenue"])
def test_media_table_equals_a_pandas_reference(crm, outcome):
    got = media_table(crm, outcome)
    expected = _reference(crm, outcome)
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_array_equal(got.index.to_numpy(), expected.index.to_numpy())
    np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-9)
    assert got.columns.names == ["role", "name"]
    assert (got[("spend", "tv")] == 0).any() and (got[("spend", "tv")] > 0).any()  # flights
    assert got.index.day_of_week.unique().tolist() == [0]


def test_media_table_reads_files_and_database_tables_alike(crm, tmp_path):
    import ibis

    expected = media_table(crm, "conversions")
    crm.spend.to_parquet(tmp_path / "spend.parquet")
    crm.conversions.to_csv(tmp_path / "conversions.csv", index=False)
    from_files = CRMData(conversions=str(tmp_path / "conversions.csv"),
                         spend=str(tmp_path / "spend.parquet"))
    pd.testing.assert_frame_equal(media_table(from_files, "conversions"), expected)
    con = ibis.duckdb.connect()
    con.create_table("spend", crm.spend)
    con.create_table("conversions", crm.conversions)
    in_db = CRMData(conversions=con.table("conversions"), spend=con.table("spend"))
    pd.testing.assert_frame_equal(media_table(in_db, "conversions"), expected)


def test_a_week_without_outcome_is_an_error_naming_it(crm):
    conv = crm.conversions
    week = _week(conv["timestamp"])
    gap = week.sort_values().unique()[10]
    holed = CRMData(conversions=conv[week != gap].reset_index(drop=True), spend=crm.spend)
    with pytest.raises(DataError, match=str(pd.Timestamp(gap).date())):
        media_table(holed, "conversions")
    # restricted to the weeks after the gap, the table is fine
    after = media_table(holed, "conversions", start=pd.Timestamp(gap) + pd.Timedelta(days=7))
    assert after.index.min() > pd.Timestamp(gap)


def test_quiet_weeks_of_a_small_outcome_are_zeros(crm):
    few = crm.conversions.sample(frac=0.06, random_state=0).sort_values("timestamp")  # ~2 a week
    table = media_table(CRMData(conversions=few, spend=crm.spend), "conversions")
    y = table[("outcome", "conversions")]
    assert (y == 0).any() and y.sum() <= len(few)


def test_monthly_spend_is_refused(crm):
    sp = crm.spend
    monthly = sp.groupby([sp["date"].dt.to_period("M").dt.to_timestamp(), "channel"],
                         as_index=False)["cost"].sum()
    with pytest.raises(DataError, match="per month"):
        media_table(CRMData(conversions=crm.conversions, spend=monthly), "conversions")


def test_controls_join_by_week_and_missing_weeks_are_named(crm):
    table = media_table(crm, "conversions")
    controls = pd.DataFrame({"price": np.linspace(10, 12, len(table))}, index=table.index)
    with_controls = media_table(crm, "conversions", controls=controls)
    assert list(with_controls["control"].columns) == ["price"]
    np.testing.assert_allclose(with_controls[("control", "price")], controls["price"])
    short = controls.drop(table.index[5])
    with pytest.raises(DataError, match=str(table.index[5].date())):
        media_table(crm, "conversions", controls=short)
    bad = controls.assign(price=controls["price"].astype(object))
    bad.iloc[3, 0] = "n/a"
    with pytest.raises(DataError, match="price"):
        media_table(crm, "conversions", controls=bad)
    before = controls.copy()
    media_table(crm, "conversions", controls=controls)
    pd.testing.assert_frame_equal(controls, before)  # the caller's frame is untouched


def test_a_channel_named_like_a_control_is_refused_by_the_model(crm):
    from crmstats.attribution import MediaMixModel

    table = media_table(crm, "conversions")
    controls = pd.DataFrame({"tv": np.linspace(0, 1, len(table))}, index=table.index)
    with pytest.raises(DataError, match="'tv' is used twice"):
        MediaMixModel().fit(crm, controls=controls)

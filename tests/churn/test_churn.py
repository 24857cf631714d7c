"""crmstats.churn against plain pandas references and the simulator's ground truth."""

import warnings

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import DataError, churn
from crmstats.clv import ShiftedBetaGeoModel


@pytest.fixture(scope="module")
def demo():
    return crmstats.load_crm("demo")


def _month(ts: pd.Series) -> pd.Series:
    return ts.dt.year * 12 + ts.dt.month - 1


# ----------------------------------------------------------------- cohorts against pandas


@pytest.mark.parametrize("metric", ["customers", "revenue", "orders"])
def test_cohort_table_equals_pandas(demo, metric):
    tx = demo.transactions
    got = churn.cohort_table(tx, period="M", metric=metric)
    m = _month(tx["timestamp"])
    buys = tx["amount"] >= 0
    first = m[buys].groupby(tx.loc[buys, "customer_id"]).min()
    age = m - tx["customer_id"].map(first)
    frame = tx.assign(cohort=tx["customer_id"].map(first), age=age).dropna(subset=["cohort"])
    frame = frame[frame["age"] >= 0]
    if metric == "customers":
        ref = frame[frame["amount"] >= 0].groupby(["cohort", "age"])["customer_id"].nunique()
    elif metric == "orders":
        ref = frame[frame["amount"] >= 0].groupby(["cohort", "age"]).size()
    else:
        ref = frame.groupby(["cohort", "age"])["amount"].sum()
    ref = ref.unstack(fill_value=0).sort_index()
    assert got.shape[0] == ref.shape[0]
    values = got.to_numpy()
    # the data's first cohort (every customer of its first month) is not observed as a cohort
    assert np.isnan(values[0]).all()
    # ages only that first cohort reaches get no column
    assert (ref.iloc[1:, values.shape[1]:] == 0).all().all()
    for (i, cohort), row in zip(enumerate(ref.index), ref.itertuples(index=False), strict=True):
        if i == 0:
            continue
        n = min(len(row), values.shape[1])
        row = row[:n]
        known = ~np.isnan(values[i, :n])
        np.testing.assert_allclose(values[i, :n][known], np.asarray(row, float)[known],
                                   rtol=1e-9, atol=1e-6)
        assert known.sum() == int(m.max() - cohort + 1) or known.all()


def test_cohort_table_by_channel_equals_pandas(demo):
    got = churn.cohort_table(demo.transactions, by="acquisition_channel",
                             customers=demo.customers, metric="customers", max_age=6)
    tx = demo.transactions[demo.transactions["amount"] >= 0]
    m = _month(tx["timestamp"])
    first = m.groupby(tx["customer_id"]).transform("min")
    age = m - first
    channel = tx["customer_id"].map(demo.customers.set_index("customer_id")[
        "acquisition_channel"])
    # customers first seen in the data's first month have no observed acquisition
    seen = tx.assign(age=age, ch=channel)[(age <= 6) & (first > m.min())]
    ref = seen.groupby(["ch", "age"])["customer_id"].nunique().unstack(fill_value=0)
    pd.testing.assert_frame_equal(got, ref.astype(float), check_names=False,
                                  check_column_type=False, check_index_type=False)


def test_retention_matrix_is_share_of_cohort(demo):
    counts = churn.cohort_table(demo.transactions)
    share = churn.retention_matrix(demo.transactions)
    assert (share[0].iloc[1:] == 1.0).all() and share.iloc[0].isna().all()
    pd.testing.assert_frame_equal(share, counts.div(counts[0], axis=0))
    assert ((share.fillna(0) >= 0) & (share.fillna(0) <= 1)).all().all()


def test_churn_rate_equals_brute_force(small_crm):
    tx = small_crm.transactions
    n = 2
    got = churn.churn_rate(tx, period="M", lapsed_after=n)
    buys = tx[tx["amount"] >= 0]
    months = sorted(set(_month(buys["timestamp"])))
    per_customer = _month(buys["timestamp"]).groupby(buys["customer_id"]).agg(set)
    first, last = min(months), int(_month(tx["timestamp"]).max())
    rows = []
    for t in range(first, last + 1):
        def active(c_months, t):  # last purchase at or before t is fewer than n periods old
            past = [p for p in c_months if p <= t]
            return bool(past) and t - max(past) < n
        act_end = sum(active(s, t) for s in per_customer)
        act_start = sum(active(s, t - 1) for s in per_customer)
        churned = sum(active(s, t - 1) and not active(s, t) for s in per_customer)
        rows.append((act_start, churned, act_end))
    ref = pd.DataFrame(rows, columns=["active_start", "churned", "active_end"]).iloc[: len(got)]
    # every complete month is reported (this log's last purchase is on 30 December: the
    # month is not covered to its end and is left out) ...
    assert len(got) == len(rows) - (not tx["timestamp"].max().is_month_end)
    # ... but the first n are missing: they depend on purchases before the data
    assert got.iloc[:n][["active_start", "churned", "churn_rate"]].isna().all().all()
    np.testing.assert_array_equal(got[["active_start", "churned", "active_end"]].to_numpy()[n:],
                                  ref.to_numpy()[n:])
    assert got.index[0] == pd.Timestamp(2024, 1, 1) + pd.DateOffset(months=first - 24288)


# ----------------------------------------------------------------- key accounts


def test_mrr_bridge_identity_and_pandas_totals(demo):
    b = churn.mrr_bridge(demo.subscriptions)
    # the first month has no observed start: everything but its end is missing
    assert b.iloc[0].drop("end").isna().all() and b["end"].iloc[0] > 0
    lhs = b["start"] + b["new"] + b["expansion"] - b["contraction"] - b["churned"] + b[
        "reactivated"]
    np.testing.assert_allclose(lhs.iloc[1:], b["end"].iloc[1:], rtol=1e-9, atol=1e-6)
    ref = demo.subscriptions.groupby("month")["mrr"].sum()
    np.testing.assert_allclose(b["end"].to_numpy(), ref.reindex(b.index).to_numpy(), rtol=1e-9)
    # churned accounts: present last month, absent this month (pandas)
    acc = demo.subscriptions.groupby("month")["account_id"].agg(set)
    months = list(acc.index)
    lost = [len(acc[a] - acc[b_]) for a, b_ in zip(months[:-1], months[1:], strict=True)]
    assert b["accounts_churned"].iloc[1:].tolist() == lost
    assert (b["grr"].dropna() <= b["nrr"].dropna() + 1e-12).all()


def test_mrr_bridge_quarterly_identity(demo):
    b = churn.mrr_bridge(demo.subscriptions, period="Q")
    lhs = b["start"] + b["new"] + b["expansion"] - b["contraction"] - b["churned"] + b[
        "reactivated"]
    np.testing.assert_allclose(lhs.iloc[1:], b["end"].iloc[1:], rtol=1e-9, atol=1e-6)


def test_nrr_by_cohort_starts_at_one(demo):
    table = churn.nrr_by_cohort(demo.subscriptions)
    assert (table[0].iloc[1:] == 1.0).all() and table.iloc[0].isna().all()
    assert table.shape[1] >= 12


def test_cross_sell_counts_equal_pandas(small_crm):
    subs = small_crm.subscriptions
    got = churn.cross_sell(subs)
    s = subs[subs["mrr"] > 0].assign(m=_month(subs["month"]))
    first_cat = s.groupby(["account_id", "product_category"])["m"].transform("min")
    first_acc = s.groupby("account_id")["m"].transform("min")
    added = s[(s["m"] == first_cat) & (s["m"] > first_acc)].groupby("m")["account_id"].nunique()
    accounts = s.groupby("m")["account_id"].nunique()
    idx = range(int(s["m"].min()), int(s["m"].max()) + 1)
    assert got["cross_sell_accounts"].tolist() == added.reindex(idx, fill_value=0).tolist()
    assert got["accounts"].tolist() == accounts.reindex(idx, fill_value=0).tolist()


def _pandas_service(tk: pd.DataFrame, target: float = 48.0) -> pd.DataFrame:
    """Service KPIs per complete month of opening, resolution times censored at the end."""
    end = max(tk["opened_at"].max(), tk["resolved_at"].max())
    last = tk["opened_at"].max()
    month = tk["opened_at"].dt.to_period("M")
    if not last.is_month_end:  # the last month is partial: left out
        tk, month = tk[month < last.to_period("M")], month[month < last.to_period("M")]
    hours = (tk["resolved_at"] - tk["opened_at"]).dt.total_seconds() / 3600
    age = (end - tk["opened_at"]).dt.total_seconds() / 3600
    rows = {}
    for m, g in hours.groupby(month):
        a = age[g.index]
        row = {"tickets": len(g), "resolved": int(g.notna().sum())}
        for name, q in (("median_hours", 0.5), ("p90_hours", 0.9)):
            # an open ticket resolves some time after its age: bound it by a huge finite
            # time (inf would make pandas' interpolation inf * 0 = NaN even where the
            # quantile sits on a resolved ticket, e.g. the middle one of three)
            high, low = g.fillna(1e15).quantile(q), g.fillna(a).quantile(q)
            row[name] = high if high == low else np.nan  # open tickets could move it
        decided = (g <= target) | (a >= target)
        row["within_target"] = (g <= target).sum() / decided.sum() if decided.any() else np.nan
        rows[m.start_time] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def test_service_kpis_equal_pandas(small_crm):
    tk = small_crm.tickets.copy()
    # two tickets still open at the end: an old one (a miss) and a recent one (not yet due)
    tk.loc[tk.index[5], "resolved_at"] = pd.NaT
    tk.loc[tk["opened_at"].idxmax() - 1, "resolved_at"] = pd.NaT
    got = churn.service_kpis(tk, period="M", target_hours=48)
    ref = _pandas_service(tk)
    assert got.index.equals(ref.index)
    for col in ("tickets", "resolved"):
        np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy())
    for col in ("median_hours", "p90_hours", "within_target"):
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), ref[col].to_numpy(),
                                   rtol=1e-9, err_msg=col)
    # the old ticket left open is a miss: the old within_target (of resolved tickets only)
    # did not count it
    m = tk.loc[tk.index[5], "opened_at"].to_period("M").start_time
    row = got.loc[m]
    hours = (tk["resolved_at"] - tk["opened_at"]).dt.total_seconds() / 3600
    within = int(((hours <= 48) & (tk["opened_at"].dt.to_period("M").dt.start_time == m)).sum())
    assert row["open"] == 1 and row["within_target"] == pytest.approx(within / row["tickets"])
    assert row["within_target"] < within / row["resolved"]


def test_service_kpis_recent_tickets_are_not_yet_known():
    """Five tickets: the log ends 31 March 12:00; two March tickets are still open."""
    tk = pd.DataFrame({
        "ticket_id": [1, 2, 3, 4, 5], "customer_id": ["a", "b", "a", "c", "b"],
        "opened_at": pd.to_datetime(["2025-02-03 00:00", "2025-02-10 00:00", "2025-03-01 00:00",
                                     "2025-03-30 12:00", "2025-03-31 12:00"]),
        "resolved_at": pd.to_datetime(["2025-02-04 00:00", "2025-02-17 00:00",
                                       "2025-03-01 10:00", None, None]),
    })
    got = churn.service_kpis(tk, target_hours=48)
    assert list(got.index) == [pd.Timestamp("2025-02-01"), pd.Timestamp("2025-03-01")]
    # February: 24 h and 168 h, one within 48 h
    assert got.loc["2025-02-01", "within_target"] == 0.5
    assert got.loc["2025-02-01", "median_hours"] == pytest.approx(96.0)
    # March: 10 h resolved, two open for 24 h and 0 h: the median is not known yet (the old
    # median of resolved tickets said 10 h), and neither open ticket is due: 1 of 1 known
    assert np.isnan(got.loc["2025-03-01", "median_hours"])
    assert got.loc["2025-03-01", "within_target"] == 1.0
    assert got.loc["2025-03-01", "open"] == 2


# ----------------------------------------------------------------- truth recovery


def test_hall_wellner_band_is_wider_than_the_pointwise_interval(demo):
    """The simultaneous band is its own (it silently fell back to the pointwise interval when
    1 - 0.95 was not exactly the 0.05 statsmodels tabulates)."""
    curves = churn.survival_curves(churn.account_lifetimes(demo.subscriptions, demo.tickets))
    c = curves.curves[curves.curves["time"] > 0]
    assert (c["survival_band_lower_95"] <= c["survival_lower_95"]).all()
    assert (c["survival_band_lower_95"] < c["survival_lower_95"] - 1e-3).mean() > 0.9
    other = churn.survival_curves(churn.account_lifetimes(demo.subscriptions, demo.tickets),
                                  level=0.9).curves
    later = other[other["time"] > 0]
    assert later["survival_band_lower_90"].isna().all()  # not tabulated: no band, not a wrong one


def test_kaplan_meier_band_covers_true_survival(demo):
    life = churn.account_lifetimes(demo.subscriptions, demo.tickets)
    curves = churn.survival_curves(life)
    truth = demo.truth["key_account_survival"]["survival"]
    at = curves.at(np.arange(1, 19))
    true = truth.reindex(at["time"].astype(int)).to_numpy()
    assert ((at["survival_band_lower_95"] <= true) & (true <= at["survival_band_upper_95"])).all()
    # the pointwise intervals sit inside the simultaneous band
    assert (at["survival_band_lower_95"] <= at["survival_lower_95"] + 1e-12).all()
    assert (at["survival_upper_95"] <= at["survival_band_upper_95"] + 1e-12).all()


@pytest.fixture(scope="module")
def big():
    """The demo company with half its customers key accounts (~850 churns)."""
    return crmstats.load_crm("demo:key_account_share=0.5")


@pytest.fixture(scope="module")
def big_panel(big):
    return churn.account_months(big.subscriptions, big.tickets)


def test_cox_recovers_the_service_drivers(big, big_panel):
    """Both true drivers come out with the right sign and significance.

    The sBG frailty (theta ~ Beta(1, 7)) attenuates the estimated effects to
    about half their true size, so the default demo's ~230 churn events give
    too little power; the demo company with half its customers key accounts
    (~850 events) is used.
    """
    panel = big_panel
    drivers = churn.CoxModel().fit(panel, covariates=["tickets_recent", "log_resolution_days"])
    truth = big.truth["churn_hazard_coefficients"]
    assert truth["tickets_last_3m"] > 0 and truth["resolution_days_z"] > 0
    assert (drivers.table["coef"] > 0).all()
    assert (drivers.table["p_value"] < 0.01).all()
    assert (drivers.table["hazard_ratio_lower_95"] > 1).all()
    assert drivers.n_obs_ == len(panel)
    assert drivers.events_ == int(panel["churned"].sum()) > 600


def test_log_rank_and_medians_on_known_groups():
    rng = np.random.default_rng(2)
    fast = rng.geometric(0.25, 400)  # median lifetime 3
    slow = rng.geometric(0.08, 400)  # median lifetime 9
    censor = rng.integers(5, 30, 800)
    d = np.minimum(np.concatenate([fast, slow]), censor)
    e = (np.concatenate([fast, slow]) <= censor).astype(int)
    frame = pd.DataFrame({"duration": d, "churned": e, "g": ["fast"] * 400 + ["slow"] * 400})
    curves = churn.survival_curves(frame, by="g")
    assert curves.logrank["p_value"] < 1e-6
    assert curves.medians.loc["fast", "median"] == pytest.approx(3, abs=1)
    assert curves.medians.loc["slow", "median"] == pytest.approx(9, abs=2)
    same = churn.survival_curves(frame.assign(g=rng.choice(["a", "b"], 800)), by="g")
    assert same.logrank["p_value"] > 0.01


def test_sbg_recovers_simulated_alpha_beta():
    rng = np.random.default_rng(4)
    alpha, beta = 1.0, 7.0  # the simulator's key-account sBG
    theta = rng.beta(alpha, beta, 20_000)
    lifetime = rng.geometric(theta)
    survivors = [int((lifetime > t).sum()) for t in range(13)]
    model = ShiftedBetaGeoModel().fit(survivors)
    for name, value in {"alpha": alpha, "beta": beta}.items():
        row = model.summary_.loc[name]
        assert row["lower_95"] <= value <= row["upper_95"], name


def test_projection_tracks_observed_retention(demo):
    life = churn.account_lifetimes(demo.subscriptions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proj = churn.project_retention(life, fit_periods=6, period="Y", min_size=50)
    later = proj[~proj["fitted"] & proj["observed"].notna()]
    assert len(later) > 5
    assert (later["observed"] - later["projected"]).abs().mean() < 0.08


# ----------------------------------------------------------------- errors


def test_bad_inputs_are_named(demo):
    with pytest.raises(DataError, match="churned"):
        churn.survival_curves(pd.DataFrame({"duration": [1, 2]}))
    with pytest.raises(DataError, match="events must be 0"):
        churn.survival_curves(pd.DataFrame({"duration": [1, 2], "churned": [1, 3]}))
    with pytest.raises(DataError, match="no column 'nope'"):
        churn.cohort_table(demo.transactions, by="nope", customers=demo.customers)
    with pytest.raises(ValueError, match="metric"):
        churn.cohort_table(demo.transactions, metric="profit")
    with pytest.raises(ValueError, match="lapsed_after"):
        churn.churn_rate(demo.transactions, lapsed_after=0)


def test_plots_return_axes(demo):
    import matplotlib.axes

    life = churn.account_lifetimes(demo.subscriptions, demo.tickets)
    panel = churn.account_months(demo.subscriptions, demo.tickets)
    bridge = churn.mrr_bridge(demo.subscriptions)
    axes = [
        churn.plot_cohort_heatmap(churn.retention_matrix(demo.transactions, max_age=6)),
        churn.plot_retention_curves(churn.retention_matrix(demo.transactions)),
        churn.plot_survival(churn.survival_curves(life),
                            truth=demo.truth["key_account_survival"]["survival"]),
        churn.plot_hazard_ratios(churn.CoxModel().fit(
            panel, covariates=["tickets_recent"])),
        churn.plot_mrr_bridge(bridge),
        churn.plot_retention_trend(bridge),
    ]
    assert all(isinstance(a, matplotlib.axes.Axes) and a.get_title() for a in axes)


# ----------------------------------------------------------------- additions


def test_retention_by_channel_counts_only_customers_observable_at_each_age(small_crm):
    tx, cu = small_crm.transactions, small_crm.customers
    got = churn.retention_matrix(tx, by="acquisition_channel", customers=cu, max_age=8)
    buys = tx[tx["amount"] >= 0]
    m = _month(buys["timestamp"])
    first = m.groupby(buys["customer_id"]).min()
    # the last complete month (a log not reaching its last month's end leaves that month out),
    # and no customer first seen in the data's first month (their acquisition is not observed)
    last = int(_month(tx["timestamp"]).max()) - (not tx["timestamp"].max().is_month_end)
    first = first[first > m.min()]
    buys = buys[m <= last]
    m = m[m <= last]
    channel = cu.set_index("customer_id")["acquisition_channel"]
    age = m - buys["customer_id"].map(first)
    for ch in got.index:
        members = first[first.index.map(channel) == ch]
        for a in range(9):
            base = members[members + a <= last]
            if base.empty:
                assert np.isnan(got.loc[ch, a])
                continue
            bought = buys.loc[(age == a) & buys["customer_id"].isin(base.index), "customer_id"]
            assert got.loc[ch, a] == pytest.approx(bought.nunique() / len(base))


def test_grr_by_cohort_caps_each_account_at_its_start(demo):
    subs = demo.subscriptions
    got = churn.grr_by_cohort(subs)
    nrr = churn.nrr_by_cohort(subs)
    per = subs.groupby(["account_id", _month(subs["month"]).rename("m")])["mrr"].sum()
    per = per[per > 0].reset_index()
    start = per.groupby("account_id")["m"].transform("min")
    base = per.loc[per["m"] == start].set_index("account_id")["mrr"]
    per = per.assign(c=start, age=per["m"] - start,
                     kept=np.minimum(per["mrr"], per["account_id"].map(base)))
    ref = per.groupby(["c", "age"])["kept"].sum().unstack(fill_value=0.0)
    ref = ref.div(ref[0], axis=0)
    values = got.to_numpy()
    known = ~np.isnan(values)
    np.testing.assert_allclose(values[known], ref.to_numpy()[:, : got.shape[1]][known],
                               rtol=1e-9)
    assert (got.fillna(0) <= nrr.fillna(0) + 1e-12).all().all()
    assert np.nanmax(values) <= 1 + 1e-12


def test_cross_sell_on_transactions_equals_pandas(small_crm):
    tx = small_crm.transactions
    got = churn.cross_sell(tx, period="M")
    b = tx[tx["amount"] >= 0].assign(m=_month(tx["timestamp"]))
    if not tx["timestamp"].max().is_month_end:  # a partial last month is left out
        b = b[b["m"] < _month(tx["timestamp"]).max()]
    cells = b.groupby(["customer_id", "product_category", "m"])["amount"].sum().reset_index()
    cells = cells.sort_values(["customer_id", "product_category", "m"])
    grp = cells.groupby(["customer_id", "product_category"])
    cells["prev_m"], cells["prev_amount"] = grp["m"].shift(), grp["amount"].shift()
    cells["first"] = cells.groupby("customer_id")["m"].transform("min")
    idx = range(int(cells["m"].min()), int(cells["m"].max()) + 1)
    added = cells[cells["prev_m"].isna() & (cells["m"] > cells["first"])]
    up = cells[(cells["prev_m"] == cells["m"] - 1) & (cells["amount"] > cells["prev_amount"])]
    returning = cells[cells["m"] > cells["first"]].groupby("m")["customer_id"].nunique()
    ref_added = added.groupby("m")["customer_id"].nunique().reindex(idx, fill_value=0)
    assert got["cross_sell_accounts"].tolist() == ref_added.tolist()
    assert got["upsell_accounts"].tolist() == up.groupby("m")["customer_id"].nunique().reindex(
        idx, fill_value=0).tolist()
    np.testing.assert_allclose(got["cross_sell_rate"].to_numpy(),
                               (ref_added / returning.reindex(idx)).to_numpy())
    # breadth: categories ever bought by the period's buyers, up to the period
    first_cat = cells.groupby(["customer_id", "product_category"])["m"].min().reset_index()
    buyers = cells[["customer_id", "m"]].drop_duplicates()
    ever = [((first_cat["customer_id"] == c) & (first_cat["m"] <= m_)).sum()
            for c, m_ in buyers.itertuples(index=False)]
    ref_breadth = buyers.assign(ever=ever).groupby("m")["ever"].mean().reindex(idx)
    np.testing.assert_allclose(got["breadth"].to_numpy(), ref_breadth.to_numpy())


def test_service_kpis_per_active_key_account_equal_pandas(small_crm):
    tk, subs = small_crm.tickets, small_crm.subscriptions
    got = churn.service_kpis(tk, subscriptions=subs)
    key = tk[tk["customer_id"].isin(set(subs["account_id"]))]
    if not tk["opened_at"].max().is_month_end:  # a partial last month is left out
        key = key[key["opened_at"] < tk["opened_at"].max().to_period("M").start_time]
    month = key["opened_at"].dt.to_period("M").dt.start_time
    tickets = key.groupby(month).size()
    active = subs[subs["mrr"] > 0].groupby("month")["account_id"].nunique()
    np.testing.assert_array_equal(got["tickets"].to_numpy(), tickets.to_numpy())
    np.testing.assert_allclose(got["tickets_per_active_customer"].to_numpy(),
                               (tickets / active.reindex(tickets.index)).to_numpy())


# ----------------------------------------------------------------- sBG with churn drivers


def _resolution_z(panel):
    # the simulator's slowness: (log mean resolution days - log 2) / 0.6 (see simulate.py)
    return panel.assign(resolution_z=(panel["log_resolution_days"] - np.log(2.0)) / 0.6)


def test_sbg_hazard_model_recovers_the_simulators_churn_process(big, big_panel):
    """alpha, beta and the ticket effect lie within 3 standard errors on the CRM tables.

    The account's resolution level is measured from a handful of its tickets,
    so its effect is attenuated (errors in a covariate); it must still be
    positive and significant.
    """
    panel = _resolution_z(big_panel)
    model = churn.ShiftedBetaGeoHazardModel().fit(
        panel, covariates=["tickets_recent", "resolution_z"])
    truth = big.truth
    s = model.summary_
    for name, value in _sbg_truth(truth):
        # within 3 standard errors on this seed; coverage of the 95 % intervals over
        # seeds is the next test's (one seed's miss is a 1-in-20 event, not a bug)
        z = (s.loc[name, "estimate"] - value) / s.loc[name, "std_err"]
        assert abs(z) < 3, (name, z)
    assert 0 < s.loc["resolution_z", "estimate"] < truth["churn_hazard_coefficients"][
        "resolution_days_z"]
    assert s.loc["resolution_z", "p_value"] < 0.01
    assert model.events_ == int(panel["churned"].sum())
    # Cox, ignoring the heterogeneity, shrinks the ticket effect toward no effect
    cox = churn.CoxModel().fit(panel, covariates=["tickets_recent", "resolution_z"])
    true_ticket = truth["churn_hazard_coefficients"]["tickets_last_3m"]
    assert abs(model.table.loc["tickets_recent", "coef"] - true_ticket) < abs(
        cox.table.loc["tickets_recent", "coef"] - true_ticket)
    # baseline survival (no tickets, typical resolution) is the true baseline sBG
    t = np.arange(24)
    np.testing.assert_allclose(model.survival(t),
                               truth["key_account_survival"]["baseline_sbg"], atol=0.05)


def _sbg_truth(truth):
    return [("alpha", truth["sbg"]["alpha"]), ("beta", truth["sbg"]["beta"]),
            ("tickets_recent", truth["churn_hazard_coefficients"]["tickets_last_3m"])]


def test_sbg_hazard_intervals_cover_the_truth_over_seeds():
    """alpha, beta and the ticket effect inside their 95 % intervals on most of 4 seeds.

    Measured: 15 of 18 on seeds 1-6 before the simulator's customer effects, 9 of 12 on
    seeds 1-4 after (alpha and beta miss together, being correlated; the ticket effect is
    slightly attenuated by the sBG frailty). Below 9 of 12 has probability < 2 % at 95 %
    coverage and flags a biased fit or an interval too narrow.
    """
    covered = []
    for seed in (1, 2, 3, 4):
        crm = crmstats.load_crm(f"demo:seed={seed},key_account_share=0.5")
        panel = _resolution_z(churn.account_months(crm.subscriptions, crm.tickets))
        s = churn.ShiftedBetaGeoHazardModel().fit(
            panel, covariates=["tickets_recent", "resolution_z"]).summary_
        covered += [s.loc[n, "lower_95"] <= v <= s.loc[n, "upper_95"]
                    for n, v in _sbg_truth(crm.truth)]
    assert sum(covered) >= 9, covered


def test_sbg_hazard_model_recovers_a_time_varying_driver():
    rng = np.random.default_rng(7)
    alpha, beta, b = 0.8, 5.0, 0.6
    n, horizon = 4000, 18
    theta = rng.beta(alpha, beta, n)
    rows = []
    for i in range(n):
        for t in range(1, horizon + 1):
            x = rng.poisson(0.5)
            churned = rng.random() < 1 - (1 - theta[i]) ** np.exp(b * x)
            rows.append((i, t, int(churned), x))
            if churned:
                break
    panel = pd.DataFrame(rows, columns=["account_id", "exit", "churned", "x"])
    model = churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"])
    for name, value in {"alpha": alpha, "beta": beta, "x": b}.items():
        row = model.summary_.loc[name]
        assert row["lower_95"] <= value <= row["upper_95"], name


def test_sbg_hazard_model_without_drivers_is_the_sbg():
    rng = np.random.default_rng(5)
    lifetime = rng.geometric(rng.beta(1.0, 7.0, 3000))
    horizon = 12
    panel = pd.DataFrame([(i, t, int(t == life)) for i, life in enumerate(lifetime)
                          for t in range(1, min(life, horizon) + 1)],
                         columns=["account_id", "exit", "churned"])
    model = churn.ShiftedBetaGeoHazardModel().fit(panel)
    survivors = [int((lifetime > t).sum()) for t in range(horizon + 1)]
    sbg = ShiftedBetaGeoModel().fit(survivors)
    for name in ("alpha", "beta"):
        assert model.params_[name] == pytest.approx(sbg.params_[name], rel=1e-3)
    np.testing.assert_allclose(model.survival(np.arange(10)), sbg.survival(np.arange(10)),
                               rtol=1e-3)


def test_sbg_hazard_model_bad_panels_are_named():
    panel = pd.DataFrame({"account_id": ["a", "a", "b"], "exit": [1, 3, 1],
                          "churned": [0, 1, 1], "x": [0.0, 1.0, 2.0]})
    before = panel.copy()
    with pytest.raises(DataError, match="without gaps"):
        churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"])
    with pytest.raises(DataError, match="last period"):
        churn.ShiftedBetaGeoHazardModel().fit(
            panel.assign(exit=[1, 2, 1], churned=[1, 0, 1]), covariates=["x"])
    with pytest.raises(DataError, match="'x'"):
        churn.ShiftedBetaGeoHazardModel().fit(panel.assign(exit=[1, 2, 1], x=[0, np.nan, 1]),
                                              covariates=["x"])
    pd.testing.assert_frame_equal(panel, before)


def test_kaplan_meier_on_account_lifetimes_is_unbiased_under_staggered_entry():
    """Accounts start over 36 months and churn at each renewal with probability q.

    A still-paying account has faced ``tenure - 1`` renewals; counting its last
    paid month as a survived renewal (the old ``tenure`` duration) lifts the
    curve by 0.005-0.016 here, beyond the sampling error of 20,000 accounts
    (with 200,000 accounts the fixed curve is within 0.0025 of the truth).
    """
    rng = np.random.default_rng(11)
    n, q, months = 20_000, 0.12, 36
    start = rng.integers(0, months, n)
    paid = rng.geometric(q, n)  # months paid before churning
    last = np.minimum(start + paid - 1, months - 1)
    lengths = last - start + 1
    rows = np.repeat(np.arange(n), lengths)
    month = start[rows] + np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    subs = pd.DataFrame({"account_id": rows.astype(str), "mrr": 100.0,
                         "month": pd.to_datetime({"year": 2022 + month // 12,
                                                  "month": month % 12 + 1, "day": 1})})
    life = churn.account_lifetimes(subs)
    assert (life["duration"] == life["tenure"] - 1 + life["churned"]).all()
    ages = np.arange(1, 13)
    truth = (1 - q) ** ages
    km = churn.survival_curves(life).at(ages)["survival"].to_numpy()
    np.testing.assert_allclose(km, truth, atol=0.01)
    biased = churn.survival_curves(life, duration_col="tenure").at(ages)["survival"].to_numpy()
    assert (biased - km).min() > 0.003  # the old duration lifted every month of the curve


def test_log_rank_p_value_is_the_upper_tail_not_one_minus_cdf():
    """Before: 1 - chi2.cdf rounded a p-value of ~1e-28 to exactly 0."""
    from scipy import stats

    rng = np.random.default_rng(2)
    fast, slow = rng.geometric(0.25, 400), rng.geometric(0.08, 400)
    censor = rng.integers(5, 30, 800)
    d = np.minimum(np.concatenate([fast, slow]), censor)
    e = (np.concatenate([fast, slow]) <= censor).astype(int)
    frame = pd.DataFrame({"duration": d, "churned": e, "g": ["fast"] * 400 + ["slow"] * 400})
    test = churn.survival_curves(frame, by="g").logrank
    assert test["statistic"] > 100  # overwhelming evidence ...
    assert 0 < test["p_value"] < 1e-20  # ... and still a positive p-value
    assert test["p_value"] == pytest.approx(stats.chi2.sf(test["statistic"], 1), rel=1e-12)


def test_sbg_hazard_churn_probability_is_the_posterior_next_period_churn():
    rng = np.random.default_rng(11)
    alpha, beta, b = 0.9, 4.0, 0.5
    n, fit_to = 6000, 12
    theta = rng.beta(alpha, beta, n)
    rows, next_churn = [], {}
    for i in range(n):
        for t in range(1, fit_to + 2):
            x = rng.poisson(0.5)
            churned = rng.random() < 1 - (1 - theta[i]) ** np.exp(b * x)
            if t == fit_to + 1:
                next_churn[i] = int(churned)
                break
            rows.append((i, t, int(churned), x))
            if churned:
                break
    panel = pd.DataFrame(rows, columns=["account_id", "exit", "churned", "x"])
    model = churn.ShiftedBetaGeoHazardModel().fit(panel, covariates=["x"])
    p = model.churn_probability(panel)
    at_risk = p.dropna()
    assert set(at_risk.index) == set(next_churn)
    assert p.drop(at_risk.index).isna().all()  # churned accounts are not at risk
    # calibrated against what happened next: mean predicted vs realised churn in period 13
    realised = pd.Series(next_churn).reindex(at_risk.index)
    assert at_risk.mean() == pytest.approx(realised.mean(), abs=0.01)
    # without drivers: the sBG's retention, P(churn at n+1 | survived n) = a / (a + b + n)
    plain = churn.ShiftedBetaGeoHazardModel().fit(panel)
    a, bb = plain.params_["alpha"], plain.params_["beta"]
    q = plain.churn_probability(panel)
    survived = panel.groupby("account_id")["exit"].max()
    alive = q.dropna().index
    np.testing.assert_allclose(q[alive], a / (a + bb + survived[alive]), rtol=1e-9)
    new = plain.churn_probability(panel, accounts=["not-yet-in-the-panel"])
    assert new.iloc[0] == pytest.approx(a / (a + bb))


def test_cohort_heatmap_annotations_leave_the_layout_as_it_was():
    """The cell labels are kept out of the layout's measuring: the PNG is the same bytes."""
    import io

    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from crmstats.churn import plot_cohort_heatmap

    rng = np.random.default_rng(3)
    table = pd.DataFrame(rng.uniform(0.2, 1.0, (18, 13)),
                         index=pd.period_range("2024-01", periods=18, freq="M"))
    pngs = []
    for in_layout in (False, True):
        with matplotlib.rc_context({"figure.constrained_layout.use": True}):
            ax = plot_cohort_heatmap(table, title="Net revenue retention by start cohort")
        assert ax.texts and not any(t.get_in_layout() for t in ax.texts)
        for text in ax.texts:
            text.set_in_layout(in_layout)
        buffer = io.BytesIO()
        ax.figure.savefig(buffer, format="png", bbox_inches="tight")
        pngs.append(buffer.getvalue())
        plt.close(ax.figure)
    assert pngs[0] == pngs[1]

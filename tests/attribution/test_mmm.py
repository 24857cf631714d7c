"""MediaMixModel: recovers the simulator's truth, says when it cannot, calibrates, splits budgets.

Accuracy over many seeds and the speed goals are in benchmarks/mmm.py; these
tests check behaviour on one or two simulated plans each.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError, DataWarning
from crmstats.attribution import MediaMixModel
from crmstats.attribution.mediacurves import geometric_adstock, hill
from crmstats.datasets import media_lift_tests, simulate_media
from crmstats.datasets.media import steady_response, true_allocation


@pytest.fixture(scope="module")
def sim():
    return simulate_media(11)


@pytest.fixture(scope="module")
def model(sim):
    table, _ = sim
    return MediaMixModel(n_draws=300).fit(table)


def test_recovers_true_roas_with_honest_intervals(sim, model):
    _, truth = sim
    r = model.roas_.join(truth["roas"].rename("true"))
    covered = (r["lower_95"] <= r["true"]) & (r["true"] <= r["upper_95"])
    assert covered.sum() >= 6, r
    assert np.median(np.abs(r["estimate"] / r["true"] - 1)) < 0.35, r
    assert (r["lower_95"] < r["estimate"]).all() and (r["estimate"] < r["upper_95"]).all()
    m = model.mroas_.join(truth["mroas"].rename("true"))
    assert ((m["lower_95"] <= m["true"]) & (m["true"] <= m["upper_95"])).sum() >= 6, m


def test_contributions_sum_to_the_fitted_outcome(sim, model):
    table, truth = sim
    c = model.contributions_
    assert list(c.columns) == ["baseline", "promotion", *truth["channels"]]
    np.testing.assert_allclose(c.sum(axis=1), model.fitted_, rtol=1e-10)
    # a channel's contribution over the weeks is its ROAS times its spend
    np.testing.assert_allclose(c[truth["channels"]].sum() / table["spend"].sum(),
                               model.roas_["estimate"], rtol=1e-10)
    d = model.diagnostics_
    assert 0.5 < d["r2"] <= 1 and 0 < d["mape"] < 0.2 and 0 < d["holdout_mape"] < 0.3
    assert model.n_obs_ == len(table) and model.converged_
    assert set(model.summary_.columns) == {"estimate", "std_err", "lower_95", "upper_95"}


def test_response_curves_rise_and_flatten(model):
    curves = model.response_curves(n_points=21)
    for _, g in curves.groupby("channel"):
        assert g["response"].iloc[0] == 0 and (np.diff(g["response"]) >= -1e-9).all()
        assert (g["response_lower_95"] <= g["response"] + 1e-9).all()
        assert (g["response"] <= g["response_upper_95"] + 1e-9).all()
        assert g["observed"].iloc[0] and not g["observed"].iloc[-1]


def _resimulate(table, truth, spend, seed=0):
    """A table with ``spend`` (weekly, by channel) and its outcome under the true curves."""
    p = truth["params"]
    media = sum(p.loc[c, "beta"] * hill(geometric_adstock(spend[c].to_numpy(), p.loc[c, "theta"]),
                                        p.loc[c, "half_saturation"], p.loc[c, "shape"])
                for c in truth["channels"])
    rng = np.random.default_rng(seed)
    out = table.copy()
    out[("outcome", "revenue")] = truth["baseline"].to_numpy() + media + rng.normal(
        0, truth["noise_sd"], len(out))
    for c in truth["channels"]:
        out[("spend", c)] = spend[c].to_numpy()
    return out


def test_curve_information_is_the_posterior_narrowing_of_the_prior(sim, model):
    info = model.curve_information_
    assert list(info.columns) == ["theta", "half_saturation", "shape"]
    assert list(info.index) == model.channels_
    assert ((info >= 0) & (info <= 1)).all().all()
    # independently: the spread of the model's parameter draws against the priors' sds
    core = model._core
    for i in range(1, len(core.blocks)):
        cols = slice(core.p + i * core.k, core.p + (i + 1) * core.k)
        from_draws = 1 - model._draws[:, cols].std(axis=0) / core.prior_sd[cols]
        np.testing.assert_allclose(info.iloc[:, i - 1], from_draws, atol=0.08)
    # three years of weekly data say little about the saturation's shape
    assert info["shape"].median() < 0.3


def test_curve_table_reads_the_information_for_a_page(model):
    from crmstats.attribution import curve_table

    table = curve_table(model)
    assert list(table.columns) == ["carry-over", "saturation point", "curve shape"]
    info = model.curve_information_
    np.testing.assert_array_equal(table.to_numpy(), info[["theta", "half_saturation",
                                                          "shape"]].to_numpy())


def test_returns_table_quotes_roas_per_a_readable_amount_of_spend(model):
    from crmstats.attribution import returns_table
    from crmstats.formatting import per_spend

    table = returns_table(model)
    amount, _ = per_spend(model.roas_["estimate"])
    typical = (amount * model.roas_["estimate"].abs()).median()  # one amount for the page
    assert typical >= 1 and (amount == 1 or typical < 10)  # the smallest amount that reads
    per = next(c for c in table.columns if c.startswith("marginal per "))[len("marginal "):]
    assert per.endswith(f"{amount:,}")  # after the currency, if a study set one
    assert list(table.columns) == [f"marginal {per}", "lower 95", "upper 95"]
    m = model.mroas_.loc[table.index]
    np.testing.assert_allclose(table[f"marginal {per}"], amount * m["estimate"])
    np.testing.assert_allclose(table[["lower 95", "upper 95"]],
                               amount * m[["lower_95", "upper_95"]].to_numpy())
    assert table[f"marginal {per}"].is_monotonic_decreasing


def test_fit_table_says_the_diagnostics_in_words(model):
    from crmstats.attribution import fit_table
    from crmstats.formatting import fmt_pct

    table = fit_table(model)
    d = model.diagnostics_
    assert list(table.columns) == ["value"] and not table.index.str.contains("_").any()
    shown = table["value"].to_dict()
    assert shown["Variation explained (R²)"] == fmt_pct(d["r2"])
    assert shown["Holdout tests used"] == "0"
    held = int(d["holdout_weeks"])
    mape = fmt_pct(d["holdout_mape"])
    assert shown[f"Last {held} weeks, predicted unseen: typical error"] == mape
    assert shown[f"Last {held} weeks: variation explained (R²)"] == fmt_pct(d["holdout_r2"])
    assert max(len(k) for k in shown) <= 50  # a page's column, not a scrolling table


def test_more_weeks_tell_more_about_the_curves():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        short = MediaMixModel(n_draws=20, holdout_weeks=0).fit(
            simulate_media(5, n_weeks=104)[0]).curve_information_
        long = MediaMixModel(n_draws=20, holdout_weeks=0).fit(
            simulate_media(5, n_weeks=520)[0]).curve_information_
    assert (long.median() - short.median()).min() > 0.05, (short, long)


def test_collinear_spend_warns_and_widens_the_interval(sim, model):
    table, truth = sim
    spend = table["spend"].copy()
    rng = np.random.default_rng(1)
    spend["social"] = spend["paid_search"] * 1.3 * rng.lognormal(0, 0.02, len(spend))
    data = _resimulate(table, truth, spend)
    p = truth["params"]
    true = {c: float(np.sum(p.loc[c, "beta"] * hill(geometric_adstock(
        spend[c].to_numpy(), p.loc[c, "theta"]), p.loc[c, "half_saturation"],
        p.loc[c, "shape"])) / spend[c].sum()) for c in ("paid_search", "social")}
    with pytest.warns(DataWarning, match="social") as record:
        fit = MediaMixModel(n_draws=300, holdout_weeks=0).fit(data)
    assert "paid_search" in str(record[0].message)
    assert fit.identifiability_.loc["social", "flag"] == "collinear"
    for c in ("paid_search", "social"):
        lo, hi = fit.roas_.loc[c, ["lower_95", "upper_95"]]
        assert lo <= true[c] <= hi, (c, lo, hi, true[c])
        assert hi / lo > 3  # wide: the data cannot split the pair's effect


def test_nearly_constant_spend_warns(sim):
    table, truth = sim
    spend = table["spend"].copy()
    spend["email"] = spend["email"].mean() * np.random.default_rng(2).lognormal(
        0, 0.03, len(spend))
    with pytest.warns(DataWarning, match="email.*hardly varies"):
        fit = MediaMixModel(n_draws=100, holdout_weeks=0).fit(_resimulate(table, truth, spend))
    assert fit.identifiability_.loc["email", "flag"] == "constant"


def test_lift_tests_pull_roas_toward_the_experiment_by_its_precision(sim, model):
    table, truth = sim
    c = "paid_search"
    weeks = table.index[60:68]
    true_lift = float(truth["contributions"][c].loc[weeks].sum())

    def calibrated(rel_se):
        lt = pd.DataFrame({"channel": [c], "start": [weeks[0]], "end": [weeks[-1]],
                           "lift": [1.6 * true_lift], "std_err": [rel_se * true_lift]})
        return MediaMixModel(n_draws=100, holdout_weeks=0).fit(table, lift_tests=lt)

    precise, loose = calibrated(0.02), calibrated(3.0)
    before = model.roas_.loc[c, "estimate"]
    assert precise.lift_tests_["model_lift"].iloc[0] == pytest.approx(1.6 * true_lift, rel=0.1)
    move_precise = precise.roas_.loc[c, "estimate"] - before
    move_loose = loose.roas_.loc[c, "estimate"] - before
    assert move_precise > 0 and abs(move_loose) < 0.25 * move_precise
    assert precise.diagnostics_["n_lift_tests"] == 1


def test_lift_tests_from_the_simulator_improve_roas(sim, model):
    table, truth = sim
    lt = media_lift_tests(table, truth, seed=3)
    cal = MediaMixModel(n_draws=100, holdout_weeks=0).fit(table, lift_tests=lt)
    err = (model.roas_["estimate"] / truth["roas"] - 1).abs().median()
    err_cal = (cal.roas_["estimate"] / truth["roas"] - 1).abs().median()
    assert err_cal < err


@pytest.mark.parametrize("change, match", [
    ({"channel": "nope"}, "not a channel"),
    ({"std_err": 0.0}, "positive"),
    ({"start": pd.Timestamp("1990-01-01"), "end": pd.Timestamp("1990-02-01")}, "outside"),
])
def test_bad_lift_tests_are_named(sim, change, match):
    table, _ = sim
    row = {"channel": "tv", "start": table.index[10], "end": table.index[15], "lift": 1e4,
           "std_err": 1e3, **change}
    with pytest.raises(DataError, match=match):
        MediaMixModel(n_draws=10, holdout_weeks=0).fit(table, lift_tests=pd.DataFrame([row]))


def test_budget_split_beats_the_current_one_and_refuses_to_extrapolate(sim, model):
    _, truth = sim
    total = float(model.current_spend_.sum())
    plan = model.optimize_budget(total)
    a = plan.allocation
    assert a["recommended"].sum() == pytest.approx(total)
    assert (a["recommended"] <= a["max_spend"] + 1e-6).all()
    assert plan.gain >= 0 and plan.gain_lower_95 <= plan.gain <= plan.gain_upper_95
    # scored on the true curves, the recommended split does better than the current one
    true_rec = steady_response(truth["params"], a["recommended"]).sum()
    true_cur = steady_response(truth["params"], a["current"]).sum()
    assert true_rec > true_cur
    with pytest.raises(ValueError, match="not known"):
        model.optimize_budget(total, bounds={"tv": (0, 10 * model.max_spend_["tv"])})
    with pytest.raises(ValueError, match="not known"):
        model.optimize_budget(10 * model.max_spend_.sum())


def test_the_optimiser_finds_the_true_optimum_on_true_curves(sim):
    _, truth = sim
    p = truth["params"]
    params = {f"beta[{c}]": p.loc[c, "beta"] for c in p.index}
    params.update({f"theta[{c}]": p.loc[c, "theta"] for c in p.index})
    params.update({f"half_saturation[{c}]": p.loc[c, "half_saturation"] for c in p.index})
    params.update({f"shape[{c}]": p.loc[c, "shape"] for c in p.index})
    mean = truth["mean_spend"]
    rebuilt = MediaMixModel.from_params(params, current_spend=mean, max_spend=2 * mean)
    plan = rebuilt.optimize_budget(float(mean.sum()), max_extrapolation=1.5)
    _, best = true_allocation(p, float(mean.sum()), upper=3.0 * mean.to_numpy())
    got = steady_response(p, plan.allocation["recommended"]).sum()
    assert got >= 0.999 * best


def test_bad_tables_are_refused(sim):
    table, _ = sim
    with pytest.raises(DataError, match="at least 26"):
        MediaMixModel().fit(table.iloc[:20])
    neg = table.copy()
    neg.iloc[3, 1] = -5.0  # the first channel's spend
    with pytest.raises(DataError, match="negative"):
        MediaMixModel().fit(neg)
    gap = table.drop(table.index[30])
    with pytest.raises(DataError, match="consecutive"):
        MediaMixModel().fit(gap)
    before = table.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MediaMixModel(n_draws=10, holdout_weeks=0).fit(table)
    pd.testing.assert_frame_equal(table, before)


def test_fit_on_a_crm_reads_the_media_table():
    from crmstats import CRMData

    table, _ = simulate_media(4, n_weeks=60, n_channels=3)
    days = pd.date_range(table.index[0], periods=7 * len(table), freq="D")
    channels = list(table["spend"].columns)
    spend = pd.DataFrame([(d, c, table.loc[d - pd.Timedelta(days=d.day_of_week), ("spend", c)]
                           / 7) for d in days for c in channels],
                         columns=["date", "channel", "cost"])
    per_day = np.repeat(table[("outcome", "revenue")].to_numpy() / 7 / 1000, 7)
    rng = np.random.default_rng(0)
    n = rng.poisson(per_day)
    ts = np.repeat(days.to_numpy(), n) + pd.to_timedelta(
        rng.random(n.sum()) * 86399, unit="s").to_numpy()
    conv = pd.DataFrame({"journey_id": np.arange(n.sum()).astype(str),
                         "timestamp": np.sort(ts).astype("datetime64[s]"), "value": 1.0})
    crm = CRMData(conversions=conv, spend=spend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        fit = MediaMixModel(n_draws=50, holdout_weeks=0).fit(crm)
    assert fit.n_obs_ == len(table) and set(fit.channels_) == set(channels)
    assert (fit.roas_["estimate"] > 0).all()

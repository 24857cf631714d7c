"""LTV:CAC and payback of a channel's next customer: by hand, the readers' table, findings."""

import types
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from crmstats import DataError, clv
from crmstats import attribution as A
from crmstats.book import findings, report
from crmstats.datasets import simulate_crm

CREDIT = pd.DataFrame({"conversions": [10.0, 5.0, 4.0], "value": [500.0, 100.0, 40.0]},
                      index=pd.Index(["email", "events", "social"], name="channel"))
SPEND = pd.DataFrame({"date": pd.to_datetime(["2024-01-01"] * 4),
                      "channel": ["email", "events", "social", "display"],
                      "cost": [200.0, 1000.0, 400.0, 25.0]})
NEW = pd.DataFrame({"customers": [30, 12, 20], "clv": [80.0, 400.0, 30.0],
                    "clv_lower_95": [60.0, 300.0, 20.0], "clv_upper_95": [100.0, 540.0, 60.0]},
                   index=pd.Index(["email", "events", "social"], name="acquisition_channel"))


def test_payback_and_value_intervals_by_hand():
    e = A.channel_economics(CREDIT, SPEND, pd.Series({"email": 120.0, "events": 600.0}),
                            horizon_months=12, new_customer_value=NEW)
    assert e.loc["events", ["new_clv_lower_95", "new_clv_upper_95"]].tolist() == [300.0, 540.0]
    # events: CAC 200, first order 20: 180 to recover at CLV / 12 a month; more value pays
    # back sooner, so the upper end of the CLV gives the lower end of the payback
    assert e.loc["events", "new_payback_months"] == pytest.approx(180 / (400 / 12))
    assert e.loc["events", "new_payback_months_lower_95"] == pytest.approx(180 / (540 / 12))
    assert e.loc["events", "new_payback_months_upper_95"] == pytest.approx(180 / (300 / 12))
    # social: CAC 100, first order 10, new CLV 30: LTV:CAC 0.4 (0.3 to 0.7)
    assert e.loc["social", "new_ltv_cac"] == pytest.approx(0.4)
    assert e.loc["social", "new_ltv_cac_upper_95"] == pytest.approx(0.7)
    view = A.new_customer_economics(e)
    assert list(view.columns) == A.economics.NEW_CUSTOMER_COLUMNS
    assert "display" not in view.index  # no customers and no new-customer value
    assert view.index[-1] == "total"
    with pytest.raises(ValueError, match="channel_economics"):
        A.new_customer_economics(NEW)
    ax = A.plot_new_customer_ltv_cac(e)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["social", "events", "email"]
    plt.close("all")


def fit_of(values):
    """A channel fit with these values (the findings read values and the fits' trust)."""
    return types.SimpleNamespace(values=values, problem=None, transaction_model=None,
                                 spend_model=None)


def test_findings_name_what_does_not_pay_back_and_what_the_data_cannot_tell():
    e = A.channel_economics(CREDIT, SPEND, None, horizon_months=12, new_customer_value=NEW)
    said = findings.new_customer_value(fit_of(NEW), e, horizon_months=12)
    assert said[0].startswith("A new customer's repeat purchases over the next 12 months are "
                              "worth most from events: 400")
    assert "from email is expected to bring the most" in said[1]
    assert "The least, from social: 0.400x, 95 % interval 0.300x to 0.700x" in said[1]
    assert any(s.startswith("A new customer from social does not pay back") for s in said)
    assert said[-1] == ("The first order alone pays a new customer's acquisition cost back in "
                        "1 of 3 channels; from social it takes the longest: 36.0 months (95 % "
                        "interval 18.0 to 54.0), beyond the 12-month horizon (counted at its "
                        "average monthly value).")
    # an interval reaching above 1x: the data cannot tell
    wide = NEW.assign(clv_upper_95=[100.0, 540.0, 120.0])
    e2 = A.channel_economics(CREDIT, SPEND, None, horizon_months=12, new_customer_value=wide)
    said = findings.new_customer_value(fit_of(wide), e2)
    assert any(s.startswith("From social, a new customer is expected to return less than its "
                            "cost, but the interval reaches above 1x") for s in said)


def test_a_source_that_cannot_be_valued_by_channel_says_why():
    crm = simulate_crm(seed=4, n_contacts=3000)
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit="W")
    cases = {
        "no customers table": (None, "no customers table"),
        "one channel": (crm.customers.assign(acquisition_channel="email"),
                        "does not vary enough"),
        "blank channels": (crm.customers.assign(acquisition_channel=crm.customers[
            "acquisition_channel"].where(crm.customers.index > 4)), "some customers have no"),
    }
    for what, (customers, reason) in cases.items():
        cv = clv.fit_channel_value(summary, customers, on_problem="report", n_draws=0)
        assert reason in cv.problem, what
        assert "C0" not in cv.problem  # no customer ids on a page
        assert cv.values.empty and list(cv.values.columns)[:4] == [
            "customers", "expected_purchases", "expected_spend", "clv"]
        said = findings.new_customer_value(cv)
        assert said == [f"What a channel's next customer is worth could not be estimated on "
                        f"this data: {cv.problem}. The channel figures above rest on the "
                        "customers' own histories only."]
        assert findings.customer_effects(cv)[0].endswith(f"{cv.problem}.")
        e = A.channel_economics(CREDIT, SPEND, None, new_customer_value=cv.values)
        assert e["new_ltv_cac"].isna().all()
        A.plot_new_customer_ltv_cac(e)
        clv.plot_channel_value(cv.values)
        plt.close("all")
    with pytest.raises(DataError, match="same level"):
        clv.fit_channel_value(summary, crm.customers.assign(acquisition_channel="email"))


def test_hostile_channel_names_show_as_text_in_the_new_customer_table_and_findings():
    hostile = {"paid_search": "<script>alert(1)</script>", "email": "**x** [y](javascript:z)"}
    crm = simulate_crm(seed=5, n_contacts=4000)
    customers = crm.customers.assign(
        acquisition_channel=crm.customers["acquisition_channel"].replace(hostile))
    tp = crm.touchpoints.assign(channel=crm.touchpoints["channel"].replace(hostile))
    spend = crm.spend.assign(channel=crm.spend["channel"].replace(hostile))
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = clv.fit_channel_value(summary, customers, n_draws=20, allow_unconverged=True,
                                   on_problem="report")
        credit = A.heuristic(A.build_paths(tp, crm.conversions), "linear")
        e = A.channel_economics(credit, spend, None, new_customer_value=cv.values)
    assert cv.problem is None and set(hostile.values()) <= set(e.index)
    assert e.loc[hostile["email"], "new_clv"] == pytest.approx(cv.values.loc[hostile["email"],
                                                                              "clv"])
    page = report.points(findings.new_customer_value(cv, e)).data
    page += report.points(findings.attribution(pd.DataFrame({"linear": credit["conversions"]
                                                             / credit["conversions"].sum()}),
                                               e, model="linear")).data
    html = "".join(report.format_table(frame)._repr_html_()
                   for frame in (A.new_customer_economics(e), cv.values))
    assert "<script>" not in page and "[y](" not in page
    assert r"\*\*x\*\* \[y\](javascript:z)" in page or "&lt;script&gt;" in page
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    ax = A.plot_new_customer_ltv_cac(e)
    assert hostile["paid_search"] in [t.get_text() for t in ax.get_yticklabels()]
    plt.close("all")
    assert np.isfinite(e.loc[hostile["paid_search"], "new_ltv_cac"])


def test_the_customers_table_may_be_a_file_as_a_folder_source_gives_it(tmp_path):
    """A folder or crmstats.yml source hands the studies a path or a source table, not a frame."""
    crm = simulate_crm(seed=4, n_contacts=3000)
    path = tmp_path / "customers.parquet"
    crm.customers.to_parquet(path)
    summary = clv.rfm_summary(crm.transactions, period="D", time_unit="W")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = clv.fit_channel_value(summary, crm.customers, n_draws=0, allow_unconverged=True)
        read = clv.fit_channel_value(summary, str(path), n_draws=0, on_problem="report",
                                     allow_unconverged=True)
    assert read.problem is None
    pd.testing.assert_frame_equal(read.values, frame.values)

"""funnel.pipeline on a deals export and on stage events: plain pandas references, agreement."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crmstats
from crmstats import CRMData, DataError, funnel
from crmstats.backend import execute as _execute

DEALS = Path(__file__).parents[2] / "data" / "deals"


@pytest.fixture(scope="module")
def export():
    """The deals example read with plain pandas, as the export writes it."""
    return pd.read_csv(DEALS / "deals.csv", dtype=str, keep_default_na=False)


def _reference(raw: pd.DataFrame, as_of: pd.Timestamp, window_days=365) -> dict:
    created = pd.to_datetime(raw["engage_date"].replace("", None))
    closed = pd.to_datetime(raw["close_date"].replace("", None))
    amount = pd.to_numeric(raw["close_value"].replace("", None))
    stage = raw["deal_stage"]
    in_window = (closed > as_of - pd.Timedelta(days=window_days)) & (closed <= as_of)
    won, lost = (stage == "Won") & in_window, (stage == "Lost") & in_window
    is_open = stage.isin(["Prospecting", "Engaging"])
    cycle = (closed - created).dt.days[won]
    return {"won": int(won.sum()), "lost": int(lost.sum()),
            "win_rate": won.sum() / (won.sum() + lost.sum()),
            "open_deals": int(is_open.sum()), "open_value": amount[is_open].sum(),
            "open_undated": int((is_open & created.isna()).sum()),
            "average_deal_size": amount[won].mean(), "cycle_days": cycle.mean(),
            "cycle_days_median": cycle.median(), "won_value": amount[won].sum()}


def test_deals_export_equals_plain_pandas(export):
    crm = crmstats.load_crm(DEALS)
    assert crm.stage_events is None and crm.deals is not None
    out = funnel.pipeline(crm)
    as_of = pd.Timestamp(export["close_date"].replace("", None).dropna().max())
    assert out.summary["as_of"] == as_of and out.summary["source"] == "deals"
    ref = _reference(export, as_of)
    for key, want in ref.items():
        assert out.summary[key] == pytest.approx(want, rel=1e-12), key
    # every open deal, the undated Prospecting ones included (they were lost before)
    assert out.open.to_numpy().sum() == ref["open_deals"] == (
        export["deal_stage"].isin(["Prospecting", "Engaging"])).sum()
    assert out.open.loc["Prospecting", "no date"] == (export["deal_stage"] == "Prospecting").sum()
    assert list(out.open.index) == ["Prospecting", "Engaging"]  # the data's stages, in order
    assert out.open_value.to_numpy().sum() == pytest.approx(ref["open_value"])
    engaging = export[export["deal_stage"] == "Engaging"]
    age = (as_of - pd.to_datetime(engaging["engage_date"])).dt.days
    assert out.open.loc["Engaging", "30-60 days"] == ((age >= 30) & (age < 60)).sum()
    assert out.summary["sales_velocity_per_day"] == pytest.approx(
        ref["open_deals"] * ref["win_rate"] * ref["average_deal_size"] / ref["cycle_days"])
    # by owner, product and account
    for col, raw_col in [("owner", "sales_agent"), ("product", "product"),
                         ("account", "account")]:
        got = out.by[col]
        for name, part in export.groupby(raw_col):
            want = _reference(part, as_of)
            row = got.loc[name]
            for key in ("won", "lost", "win_rate", "open_deals", "open_value",
                        "average_deal_size", "cycle_days", "cycle_days_median"):
                assert row[key] == pytest.approx(want[key], rel=1e-12, nan_ok=True), (col, key)
        assert got["deals"].sum() == len(export)
    # a window: only deals closed in it count
    half = funnel.pipeline(crm, window_days=90)
    assert half.summary["won"] == _reference(export, as_of, 90)["won"] < ref["won"]


def test_deal_stages_follow_the_source_file_then_usual_order(export, tmp_path):
    crm = crmstats.load_crm(DEALS)
    assert funnel.deal_stages(crm) == ["Prospecting", "Engaging", "won", "lost"]
    frame = _execute(crm.table("deals"))
    bare = CRMData(deals=frame.assign(stage=frame["stage"].replace({"Engaging": "Negotiation"})))
    assert funnel.deal_stages(bare) == ["Prospecting", "Negotiation", "won", "lost"]
    assert funnel.deal_stages(bare, ["Negotiation", "Prospecting", "Demo"]) == [
        "Negotiation", "Prospecting", "won", "lost"]  # no stage the data lack


def _deals_from_events(events: pd.DataFrame, conversions: pd.DataFrame, as_of) -> pd.DataFrame:
    """Plain pandas: one row per lead that reached an open stage, with its current stage."""
    rank = {s: i for i, s in enumerate(["subscriber", "lead", "qualified", "unqualified",
                                        "opportunity", "lost", "won"])}
    seen = events[events["entered_at"] <= as_of]
    latest = seen.assign(r=seen["stage"].map(rank)).sort_values(["entered_at", "r"]) \
        .groupby("lead_id").last()
    first = seen.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    keep = latest["stage"].isin(["qualified", "opportunity", "won", "lost"])
    latest, first = latest[keep], first.reindex(latest.index[keep])
    created = first[["lead", "qualified", "opportunity", "won"]].bfill(axis=1).iloc[:, 0]
    closed = first["won"].where(latest["stage"] == "won", first["lost"])
    value = conversions.set_index("journey_id")["value"]
    return pd.DataFrame({
        "deal_id": latest.index, "stage": latest["stage"].to_numpy(),
        "created_at": created.to_numpy(),
        "closed_at": closed.where(latest["stage"].isin(["won", "lost"])).to_numpy(),
        "amount": value.reindex(latest.index).where((latest["stage"] == "won").to_numpy())
        .to_numpy(), "owner": latest["owner"].to_numpy()})


def test_deals_and_stage_events_of_one_pipeline_agree(small_crm):
    as_of = pd.Timestamp("2024-06-30")
    events = small_crm.stage_events
    deals = _deals_from_events(events, small_crm.conversions, as_of)
    from_events = funnel.pipeline(CRMData(stage_events=events, conversions=small_crm.conversions),
                                  as_of=as_of)
    from_deals = funnel.pipeline(CRMData(deals=deals), as_of=as_of,
                                 stages=["qualified", "opportunity"])
    both = funnel.pipeline(CRMData(deals=deals, stage_events=events,
                                   conversions=small_crm.conversions), as_of=as_of,
                           stages=["qualified", "opportunity"])
    assert both.summary["source"] == "deals"
    for key in ("won", "lost", "win_rate", "average_deal_size", "won_value", "cycle_days",
                "cycle_days_median", "open_leads_in_pipeline"):
        assert from_deals.summary[key] == pytest.approx(from_events.summary[key], rel=1e-9), key
        assert both.summary[key] == pytest.approx(from_deals.summary[key], rel=1e-12), key
    assert from_events.summary["won"] > 20 and from_events.summary["lost"] > 20
    pd.testing.assert_series_equal(from_deals.open.sum(axis=1), from_events.open.sum(axis=1))
    for key in ("won", "lost", "open_deals"):
        pd.testing.assert_series_equal(from_deals.by["owner"][key],
                                       from_events.by["owner"][key].loc[
                                           from_deals.by["owner"].index], check_names=False)


def test_pipeline_of_a_source_without_deals_or_events_is_named():
    crm = CRMData(transactions=pd.DataFrame({"customer_id": ["a"], "amount": [1.0],
                                             "timestamp": [pd.Timestamp("2024-01-01")]}))
    with pytest.raises(DataError, match="neither a deals nor a stage_events"):
        funnel.pipeline(crm)


def test_default_funnel_is_the_datas_own_stages(small_crm):
    events = small_crm.stage_events
    no_subscribers = events[events["stage"] != "subscriber"]
    out = funnel.pipeline(no_subscribers, as_of="2024-06-30")
    assert list(out.open.index) == ["qualified", "opportunity"]
    assert np.isfinite(out.summary["win_rate"])


def test_funnel_findings_on_a_deals_only_source(export):
    """The funnel study's findings from a deals export name only what the export has."""
    from crmstats.book import findings

    out = funnel.pipeline(crmstats.load_crm(DEALS))
    text = findings.funnel(None, None, out.summary, out.by["owner"], 365)
    joined = " ".join(text)
    assert "283 deals are open (115 of them without a date yet)" in joined
    assert "1,217 deals closed in the last 365 days, 56.0 % were won" in joined
    for invented in ("lead", "subscriber", "qualified", "opportunit"):
        assert invented not in joined.lower()


@pytest.mark.parametrize("names, closed, order", [
    (["Prospecting", "Negotiation/Review", "Qualification", "Closed Won", "Closed Lost"],
     {"Closed Won": "won", "Closed Lost": "lost"},
     ["Prospecting", "Qualification", "Negotiation/Review"]),  # Salesforce
    (["qualifiedtobuy", "contractsent", "appointmentscheduled", "closedwon", "closedlost"],
     {"closedwon": "won", "closedlost": "lost"},
     ["appointmentscheduled", "qualifiedtobuy", "contractsent"]),  # HubSpot
])
def test_crm_stage_names_map_onto_won_and_lost(names, closed, order):
    from crmstats.validation import SourceTable

    rng = np.random.default_rng(5)
    stage = rng.choice(names, 400)
    frame = pd.DataFrame({"Id": [f"d{i}" for i in range(400)], "StageName": stage,
                          "Amount": rng.integers(100, 5000, 400).astype(float)})
    table = SourceTable(frame, columns={"deal_id": "Id", "stage": "StageName",
                                        "amount": "Amount"}, values={"stage": closed})
    crm = CRMData(deals=table)
    assert funnel.deal_stages(crm) == [*order, "won", "lost"]
    out = funnel.pipeline(crm, window_days=None)  # no dates: every closed deal counts
    won = np.isin(stage, [k for k, v in closed.items() if v == "won"])
    lost = np.isin(stage, [k for k, v in closed.items() if v == "lost"])
    assert out.summary["win_rate"] == pytest.approx(won.sum() / (won.sum() + lost.sum()))
    assert out.summary["average_deal_size"] == pytest.approx(frame["Amount"][won].mean())
    assert list(out.open.index) == order and out.open["no date"].sum() == (~won & ~lost).sum()


def test_plot_pipeline_draws_every_stage_and_age():
    import matplotlib.pyplot as plt

    out = funnel.pipeline(crmstats.load_crm(DEALS))
    ax = funnel.plot_pipeline(out)
    widths = [p.get_width() for p in ax.patches]
    assert sum(widths) == out.open.to_numpy().sum()
    # funnel order from the top: the first stage highest
    ticks = {t.get_text(): t.get_position()[1] for t in ax.get_yticklabels()}
    assert ticks["Prospecting"] > ticks["Engaging"]
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="funnel.pipeline"):
        funnel.plot_pipeline(out.summary)

"""Lifecycle stages and flows on the demo CRM, and the funnel figures."""

import dataclasses

import matplotlib.axes
import matplotlib.pyplot as plt
import pandas as pd
import pytest

import crmstats
from crmstats import DataError, funnel


@pytest.fixture(scope="module")
def stages(demo):
    return funnel.lifecycle_stage(demo)


def test_every_lifecycle_stage_appears_with_plausible_counts(demo, stages):
    counts = stages["stage"].value_counts()
    assert set(counts.index) == set(funnel.LIFECYCLE_STAGES)
    assert (counts > 100).all(), counts
    assert len(stages) == len(demo.contacts) and stages.index.is_unique
    assert not {"name", "email", "phone"} & set(stages.columns)
    events = demo.stage_events
    won = set(events.loc[events["stage"] == "won", "lead_id"])
    customer_like = stages["stage"].astype(str).str.contains("customer|evangelist")
    assert set(stages.index[customer_like]) == won
    # pre-sale stages mirror the events: e.g. every lost opportunity has a lost event
    lost = set(events.loc[events["stage"] == "lost", "lead_id"])
    assert set(stages.index[stages["stage"] == "lost opportunity"]) == lost - won
    never = set(demo.contacts["contact_id"]) - set(events.loc[events["stage"] != "subscriber",
                                                               "lead_id"])
    assert set(stages.index[stages["stage"] == "subscriber"]) == never
    # shares as the simulator's funnel probabilities imply
    assert counts["subscriber"] / len(stages) == pytest.approx(
        1 - demo.truth["funnel_probabilities"]["lead"], abs=0.02)


def test_evangelists_are_the_customers_who_referred(demo, stages):
    referrers = set(demo.contacts["referred_by"].dropna())
    assert set(stages.index[stages["stage"] == "evangelist"]) == referrers
    counted = demo.contacts["referred_by"].value_counts()
    pd.testing.assert_series_equal(stages.loc[counted.index, "referrals"], counted,
                                   check_names=False, check_index=False, check_dtype=False)
    # a few customers refer many: evangelists are a minority of customers
    customer_like = stages["stage"].astype(str).str.contains("customer|evangelist").sum()
    assert 0.05 < len(referrers) / customer_like < 0.3


def test_former_customers_are_ranked_by_p_alive_times_value(demo, stages):
    high = stages[stages["stage"] == "former customer, high priority"]
    low = stages[stages["stage"] == "former customer, low priority"]
    assert high["score"].min() >= low["score"].max()
    lapse = stages["lapsed_after"].dropna().unique()
    assert len(lapse) == 1
    lapse = lapse[0]
    assert (high["time_since_purchase"] >= lapse).all()
    assert (stages.loc[stages["stage"] == "customer", "time_since_purchase"] < lapse).all()
    # against the truth: high-priority former customers are worth more (true weekly spend
    # of the alive) than low-priority ones, and current customers are more often alive
    truth = demo.truth["customer_truth"]
    worth = truth["alive_at_end"] * truth["lambda"] * truth["mean_spend"]
    assert worth.reindex(high.index).mean() > 1.5 * worth.reindex(low.index).mean()
    current = stages.index[stages["stage"] == "customer"]
    former = high.index.union(low.index)
    assert truth["alive_at_end"].reindex(current).mean() > truth["alive_at_end"].reindex(
        former).mean()


def test_earlier_snapshot_and_no_referral_data(small_crm):
    early = funnel.lifecycle_stage(small_crm, as_of="2024-06-30", models=False)
    created = small_crm.contacts.set_index("contact_id")["created_at"]
    assert set(early.index) == set(created.index[created <= "2024-06-30"])
    assert funnel.snapshot_date(small_crm, "2024-06-30") == pd.Timestamp("2024-06-30")
    last = max(small_crm.transactions["timestamp"].max(),
               small_crm.stage_events["entered_at"].max())
    assert funnel.snapshot_date(small_crm) == pd.Timestamp(last)
    plain = crmstats.CRMData(stage_events=small_crm.stage_events,
                             transactions=small_crm.transactions,
                             contacts=small_crm.contacts.drop(columns=["referred_by"]))
    out = funnel.lifecycle_stage(plain, models=False)
    assert "evangelist" not in set(out["stage"]) and (out["referrals"] == 0).all()
    assert "former customer, high priority" not in set(out["stage"])  # no models, no ranking


def test_stage_flows_move_forward_and_sum_per_period(small_crm):
    flows = funnel.stage_flows(small_crm, start="2025-01-01", end="2025-06-30")
    long = funnel.stage_flows(small_crm, start="2025-01-01", end="2025-06-30", by_period=True)
    assert long["period"].nunique() == 5  # Feb..Jun month ends after the Jan snapshot
    summed = long.groupby(["from", "to"])["contacts"].sum()
    for (a, b), n in summed.items():
        assert flows.loc[a, b] == n
    assert flows.to_numpy().sum() == long["contacts"].sum()
    # contacts never go back to a pre-sale stage once they are customers, and a
    # disqualified lead stays disqualified
    for pre in ("subscriber", "lead", "qualified lead", "opportunity"):
        for post in ("customer", "evangelist", "former customer", "unqualified lead"):
            if post in flows.index and pre in flows.columns:
                assert flows.loc[post, pre] == 0, (post, pre)
    # every contact of a snapshot is counted once per move: (new) are the contacts created
    created = small_crm.contacts["created_at"]
    new = long.loc[long["from"] == "(new)", "contacts"].sum()
    assert new == int(((created > "2025-01-31 23:59:59") & (created <= "2025-06-30 23:59:59"))
                      .sum())
    with pytest.raises(DataError, match="fewer than two period ends"):
        funnel.stage_flows(small_crm, start="2025-01-01", end="2025-01-15")


def test_plots_return_axes(small_crm):
    leads = funnel.lead_features(small_crm)
    model = funnel.LeadScoringModel().fit(leads, features=["engagement_score", "industry"])
    stages = funnel.lifecycle_stage(small_crm, models=False)
    axes = [
        funnel.plot_funnel(funnel.stage_conversion(small_crm.stage_events)),
        funnel.plot_days_in_stage(funnel.stage_durations(small_crm.stage_events)),
        funnel.plot_lead_kpis(funnel.lead_kpis(small_crm.stage_events, small_crm.spend)),
        funnel.plot_lead_kpis(funnel.lead_kpis(small_crm.stage_events, small_crm.spend,
                                               period=None)),
        funnel.plot_lift(model), funnel.plot_calibration(model),
        funnel.plot_lifecycle(stages),
        funnel.plot_stage_flows(funnel.stage_flows(small_crm, start="2025-01-01",
                                                   end="2025-04-30")),
    ]
    assert all(isinstance(a, matplotlib.axes.Axes) and a.get_title() for a in axes)
    with pytest.raises(ValueError, match="without `by`"):
        funnel.plot_funnel(funnel.stage_conversion(small_crm.stage_events, by="channel"))
    plt.close("all")


def _pandas_snapshot(crm, as_of):
    """Plain pandas reference of lifecycle_stage(models=False): the rule of the module's table."""
    from crmstats.clv import lapse_threshold, rfm_summary

    as_of = pd.Timestamp(as_of)
    rank = {"subscriber": 0, "lead": 1, "unqualified": 2, "qualified": 3, "opportunity": 4,
            "lost": 5, "won": 6}
    ladder = {"won": "customer", "lost": "lost opportunity", "opportunity": "opportunity",
              "qualified": "qualified lead", "unqualified": "unqualified lead", "lead": "lead",
              "subscriber": "subscriber"}
    ev = crm.stage_events
    ev = ev[(ev["entered_at"] <= as_of) & ev["stage"].isin(list(rank))]
    furthest = ev.assign(r=ev["stage"].map(rank)).groupby("lead_id")["r"].max()
    names = {r: ladder[s] for s, r in rank.items()}
    c = crm.contacts[crm.contacts["created_at"] <= as_of]
    stage = c["contact_id"].map(furthest.map(names)).fillna("subscriber")
    stage.index = c["contact_id"].to_numpy()
    summary = rfm_summary(crm.transactions, observation_end=as_of, time_unit="W")
    s = summary.reindex(stage.index[stage == "customer"]).dropna()
    since = (s["T"] - s["recency"]).reindex(stage.index)
    stage[since >= lapse_threshold(s, default=26.0)] = "former customer, low priority"
    referrals = (c["referred_by"].dropna().value_counts().reindex(stage.index).fillna(0)
                 .astype("int64"))
    customer_like = (stage == "customer") | stage.str.startswith("former")
    stage[customer_like & (referrals > 0)] = "evangelist"
    return pd.DataFrame({"stage": stage, "weeks_since_purchase": since, "referrals": referrals})


def test_snapshots_and_flows_match_a_pandas_reference(small_crm):
    # re-entries and contradicting exits, so the furthest-stage rule is exercised: some won
    # leads are also lost later, some qualified leads later disqualified
    ev = small_crm.stage_events
    won = ev[ev["stage"] == "won"].head(40)
    qualified = ev[(ev["stage"] == "qualified") & ~ev["lead_id"].isin(won["lead_id"])].head(40)
    extra = pd.concat([won.assign(stage="lost"), qualified.assign(stage="unqualified")])
    extra["entered_at"] = extra["entered_at"] + pd.Timedelta(days=3)
    crm = dataclasses.replace(small_crm, stage_events=pd.concat([ev, extra], ignore_index=True))
    ends = ["2025-03-31 23:59:59", "2025-04-30 23:59:59", "2025-05-31 23:59:59"]
    refs = [_pandas_snapshot(crm, when) for when in ends]
    for when, ref in zip(ends, refs, strict=True):
        got = funnel.lifecycle_stage(crm, as_of=when, models=False)
        assert list(got.index) == list(ref.index)
        assert (got["stage"].astype(str).to_numpy() == ref["stage"].to_numpy()).all()
        assert (got["referrals"].to_numpy() == ref["referrals"].to_numpy()).all()
        pd.testing.assert_series_equal(got["time_since_purchase"], ref["weeks_since_purchase"],
                                       check_names=False, check_index=False)
    # flows: each contact's move from one snapshot to the next, (new) if not on file before
    expected = []
    for before, after, when in zip(refs, refs[1:], ends[1:], strict=False):
        prev = before["stage"].replace({"former customer, low priority": "former customer"})
        now = after["stage"].replace({"former customer, low priority": "former customer"})
        moves = pd.DataFrame({"from": prev.reindex(now.index).fillna("(new)"), "to": now})
        counts = moves.groupby(["from", "to"]).size()
        expected.append(counts.rename("contacts").reset_index().assign(
            period=pd.Timestamp(when).normalize()))
    expected = pd.concat(expected).set_index(["period", "from", "to"])["contacts"].sort_index()
    long = funnel.stage_flows(crm, start="2025-03-01", end="2025-05-31", by_period=True)
    got = long.set_index(["period", "from", "to"])["contacts"].sort_index()
    pd.testing.assert_series_equal(got, expected, check_dtype=False)


def test_stages_and_flows_read_the_stage_entries_once_until_the_data_change(small_crm,
                                                                           monkeypatch):
    from crmstats.funnel import lifecycle

    built = []
    original = lifecycle._Contacts.__init__

    def counting(self, crm):
        built.append(crm)
        original(self, crm)

    monkeypatch.setattr(lifecycle._Contacts, "__init__", counting)
    crm = dataclasses.replace(small_crm)  # its own tables' memo
    first = funnel.lifecycle_stage(crm, models=False)
    flows = funnel.stage_flows(crm, start="2025-06-01")
    assert len(built) == 1
    # other data: read again, and the labels follow them
    events = crm.stage_events
    won = events.loc[events["stage"] == "won", "lead_id"]
    dropped = set(won.iloc[: len(won) // 2])
    crm.stage_events = events[~((events["stage"] == "won") & events["lead_id"].isin(dropped))
                              ].reset_index(drop=True)
    again = funnel.lifecycle_stage(crm, models=False)
    assert len(built) == 2
    customer_like = again["stage"].astype(str).str.contains("customer|evangelist")
    assert not customer_like[list(dropped)].any()
    assert first["stage"].astype(str).str.contains("customer|evangelist")[list(dropped)].all()
    pd.testing.assert_frame_equal(
        flows, funnel.stage_flows(dataclasses.replace(small_crm), start="2025-06-01"))

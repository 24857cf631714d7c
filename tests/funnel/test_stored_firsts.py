"""Every stage's first entry per lead, stored once in the embedded DuckDB, equals pandas."""

import ibis
import numpy as np
import pandas as pd
import pytest

from crmstats import funnel
from crmstats.backend import execute
from crmstats.funnel import summaries


def _events():
    rows = [("a", "subscriber", "2024-01-01", "email"), ("a", "lead", "2024-01-03", "social"),
            ("a", "lead", "2024-01-09", "email"),  # a re-entry: the first one counts
            ("a", "won", "2024-02-01", "email"),  # skipped qualified/opportunity
            ("b", "lead", "2024-01-05", "events"), ("b", "unqualified", "2024-01-20", "events"),
            ("c", "subscriber", "2024-01-02", "display"), ("c", "lead", "2024-01-04", "email"),
            ("c", "qualified", "2024-01-10", "email"), ("c", "opportunity", "2024-01-15", "social"),
            ("c", "lost", "2024-03-01", "social")]
    return pd.DataFrame(rows, columns=["lead_id", "stage", "entered_at", "channel"]).assign(
        entered_at=lambda f: pd.to_datetime(f["entered_at"]))


def _reference(events, stages):
    """Plain pandas: first entry per lead and stage, the channel of its first event."""
    first = events.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    out = pd.DataFrame({f"t_{s}": first[s] if s in first else pd.NaT for s in stages},
                       index=first.index)
    out["channel"] = events.sort_values("entered_at").groupby("lead_id")["channel"].first()
    return out.sort_index()


def _run(t, stages):
    got = execute(funnel.lead_stage_times(t, stages=stages[:5], extra=stages[5:]))
    got = got.set_index("lead_id").sort_index()
    return got[[f"t_{s}" for s in stages] + ["channel"]]


STAGES = ["subscriber", "lead", "qualified", "opportunity", "won", "unqualified", "lost",
          "churned"]  # "churned" occurs nowhere: an empty column


def test_stored_once_and_equal_to_pandas(monkeypatch):
    # the store keeps 8 tables at most: earlier tests in this worker may have filled it
    monkeypatch.setattr(summaries, "_FIRSTS", {})
    events = _events()
    before = len(summaries._FIRSTS)
    first = _run(events, STAGES)
    assert len(summaries._FIRSTS) == before + 1
    again = _run(events, STAGES)  # from the stored table
    assert len(summaries._FIRSTS) == before + 1
    expected = _reference(events, STAGES)
    for got in (first, again):
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_names=False,
                                      check_index_type=False)
    assert first["t_churned"].isna().all()


def test_a_database_table_is_aggregated_where_it_lives(tmp_path, monkeypatch):
    monkeypatch.setattr(summaries, "_FIRSTS", {})
    events = _events()
    con = ibis.duckdb.connect(str(tmp_path / "crm.duckdb"))
    t = con.create_table("stage_events", events)
    before = len(summaries._FIRSTS)
    got = _run(t, STAGES)
    assert len(summaries._FIRSTS) == before  # nothing stored in another database
    pd.testing.assert_frame_equal(got, _reference(events, STAGES), check_dtype=False,
                                  check_names=False, check_index_type=False)


def test_funnel_kpis_equal_without_the_stored_table(small_crm, monkeypatch):
    crm = small_crm
    stored = {
        "conversion": funnel.stage_conversion(crm.stage_events, by="channel"),
        "kpis": funnel.lead_kpis(crm.stage_events, crm.spend),
        "pipeline": funnel.pipeline(crm).summary,
        "leads": funnel.lead_features(crm),
    }
    monkeypatch.setattr(summaries, "_stored_firsts", lambda t, others: None)
    direct = {
        "conversion": funnel.stage_conversion(crm.stage_events, by="channel"),
        "kpis": funnel.lead_kpis(crm.stage_events, crm.spend),
        "pipeline": funnel.pipeline(crm).summary,
        "leads": funnel.lead_features(crm),
    }
    for name in ("conversion", "kpis", "leads"):
        pd.testing.assert_frame_equal(stored[name], direct[name], check_exact=False,
                                      rtol=1e-12)
    a, b = stored["pipeline"], direct["pipeline"]
    numeric = [k for k in a.index if isinstance(a[k], (int, float, np.number))]
    np.testing.assert_allclose(a[numeric].astype(float), b[numeric].astype(float), rtol=1e-12)
    assert len(a) == len(b) > 10


@pytest.mark.parametrize("bad", ["qualified", "won"])
def test_a_stage_missing_from_the_data_gives_an_empty_column(bad):
    events = _events()
    kept = events[events["stage"] != bad]
    pd.testing.assert_frame_equal(_run(kept, STAGES), _reference(kept, STAGES),
                                  check_dtype=False, check_names=False, check_index_type=False)

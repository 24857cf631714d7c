"""Shared data of the funnel tests: the demo CRM and plain pandas references of the funnel rule."""

import pandas as pd
import pytest

import crmstats
from crmstats import funnel

STAGES = list(funnel.FUNNEL_STAGES)


@pytest.fixture(scope="session")
def demo():
    return crmstats.load_crm("demo")


@pytest.fixture(scope="session")
def demo_leads(demo):
    return funnel.lead_features(demo)


def first_entries(events: pd.DataFrame, stages=STAGES, extra=()) -> pd.DataFrame:
    """pandas reference of the funnel rule: first entry per stage; reached = it or any later one."""
    first = events.groupby(["lead_id", "stage"])["entered_at"].min().unstack()
    out = pd.DataFrame(index=first.index)
    later = pd.Series(False, index=first.index)
    for s in reversed(stages):
        t = first[s] if s in first else pd.Series(pd.NaT, index=first.index)
        later = later | t.notna()
        out[f"reached_{s}"] = later
        out[f"t_{s}"] = t
    for s in extra:
        out[f"t_{s}"] = first[s] if s in first else pd.Series(pd.NaT, index=first.index)
    return out


def next_entry(ref: pd.DataFrame, stage: str, stages=STAGES) -> pd.Series:
    """Entry time of the next funnel stage a lead actually entered after ``stage``."""
    later = stages[stages.index(stage) + 1:]
    return ref[[f"t_{x}" for x in later]].bfill(axis=1).iloc[:, 0]

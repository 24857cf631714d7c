"""CRMData.has_tables: does a source hold these tables (with a one-line note on a page if not).

The check moved from crmstats.funnel to the data source; funnel.has_tables still
answers the same for the templates written before.
"""

import pandas as pd
import pytest

import crmstats
from crmstats import funnel


@pytest.fixture
def notes(monkeypatch):
    """The Markdown notes a call displays (IPython's display, recorded)."""
    import IPython.display

    shown: list[str] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    return shown


@pytest.fixture
def crm():
    tx = pd.DataFrame({"customer_id": [1, 2], "timestamp": pd.to_datetime(["2024-01-01"] * 2),
                       "amount": [10.0, 20.0]})
    spend = pd.DataFrame({"date": pd.to_datetime(["2024-01-01"]), "channel": ["email"],
                          "amount": [5.0]})
    return crmstats.CRMData(transactions=tx, spend=spend)


@pytest.mark.parametrize("check", ["method", "funnel"])
def test_present_tables_are_true_and_quiet(crm, notes, check):
    has = crm.has_tables if check == "method" else lambda t, **kw: funnel.has_tables(crm, t, **kw)
    assert has("spend") is True
    assert has(["transactions", "spend"]) is True
    assert has(("spend",)) is True
    assert notes == []


@pytest.mark.parametrize("check", ["method", "funnel"])
def test_an_absent_table_is_false_and_named_once_in_words(crm, notes, check):
    has = crm.has_tables if check == "method" else lambda t, **kw: funnel.has_tables(crm, t, **kw)
    assert has("stage_events") is False
    assert notes == ["*Not available for this source: this part needs "
                     "the stage history of leads (stage_events).*"]
    notes.clear()
    assert has(["spend", "stage_events", "contacts"]) is False
    assert notes == ["*Not available for this source: this part needs the stage history of "
                     "leads (stage_events) and the contacts (contacts).*"]
    notes.clear()
    assert has(["stage_events"], show=False) is False
    assert notes == []


def test_an_unknown_name_is_absent_and_said_as_given(crm, notes):
    assert crm.has_tables("budgets") is False
    assert notes == ["*Not available for this source: this part needs budgets.*"]


def test_a_table_that_fails_validation_counts_as_present(crm, notes):
    """Presence only (as funnel.has_tables always did): reading the table raises, not this."""
    broken = crmstats.CRMData(transactions=crm.transactions.drop(columns="amount"))
    assert broken.has_tables("transactions") is True
    assert funnel.has_tables(broken, "transactions") is True
    assert notes == []
    with pytest.raises(crmstats.DataError, match="amount"):
        broken.table("transactions")


def test_the_caller_s_source_is_left_as_it_was(crm):
    before = crm.tables()
    crm.has_tables(["transactions", "deals"], show=False)
    assert crm.tables().keys() == before.keys()
    assert crm._validated == {}  # nothing read or validated

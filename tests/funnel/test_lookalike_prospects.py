"""lookalike_prospects: the lead-scoring page's look-alike section in one call."""

import pandas as pd
import pytest

from crmstats import DataError, clv, funnel

FEATURES = ["channel", "industry", "company_size_code"]


@pytest.fixture(scope="module")
def leads(small_crm):
    return funnel.lead_features(small_crm)


def test_one_call_gives_what_the_three_calls_of_the_old_cell_gave(small_crm, leads):
    # the lead-scoring template's cell before this function, step by step
    value = clv.fit_value(small_crm.transactions, horizon_months=12)
    tiers = clv.value_tiers(value.values, {"top tier": 0.2, "others": 0.8})
    old = funnel.lookalike_scores(
        leads[leads.stage == "won"],
        leads[leads.stage.isin(["lead", "qualified", "opportunity"])],
        value_tier=tiers, features=FEATURES, model=funnel.LeadScoringModel(penalty=1.0))
    before = leads.copy()
    new = funnel.lookalike_prospects(leads, small_crm.transactions, features=FEATURES,
                                     top_share=0.2, penalty=1.0, horizon_months=12)
    pd.testing.assert_frame_equal(leads, before)
    pd.testing.assert_frame_equal(new.scores, old.scores)
    pd.testing.assert_frame_equal(new.model.coefficients_, old.model.coefficients_)
    assert new.model.penalty == 1.0 and new.model.auc_ == old.model.auc_
    assert set(new.scores.index) == set(leads.index[leads.stage.isin(funnel.OPEN_STAGES)])


@pytest.mark.filterwarnings("ignore::crmstats.exceptions.ConvergenceWarning")  # penalty=0
def test_the_options_reach_the_steps(small_crm, leads):
    base = funnel.lookalike_prospects(leads, small_crm.transactions, features=FEATURES)
    # a larger top tier: more customers labelled top, so a higher base rate and smaller lifts
    wide = funnel.lookalike_prospects(leads, small_crm.transactions, features=FEATURES,
                                      top_share=0.5)
    assert wide.scores["score"].mean() > base.scores["score"].mean()
    plain = funnel.lookalike_prospects(leads, small_crm.transactions, features=FEATURES,
                                       penalty=0.0)
    slopes = [t for t in base.model.coefficients_.index if t != "intercept"]
    assert ((base.model.coefficients_.loc[slopes, "coef"] ** 2).sum()
            < (plain.model.coefficients_.loc[slopes, "coef"] ** 2).sum())


@pytest.mark.parametrize("share", [0, 1, -0.2, 1.5, float("nan"), "a fifth", None])
def test_a_top_share_outside_0_1_is_refused(small_crm, leads, share):
    with pytest.raises(ValueError, match="top_share must be a share strictly between 0 and 1"):
        funnel.lookalike_prospects(leads, small_crm.transactions, features=FEATURES,
                                   top_share=share)


def test_bad_leads_are_named(small_crm, leads):
    tx = small_crm.transactions
    before = leads.copy()
    with pytest.raises(DataError, match="leads table: missing column.*stage") as err:
        funnel.lookalike_prospects(leads.drop(columns="stage"), tx, features=FEATURES)
    assert err.value.table == "leads" and err.value.column == "stage"
    with pytest.raises(DataError, match="leads table: missing column.*industry"):
        funnel.lookalike_prospects(leads.drop(columns="industry"), tx, features=FEATURES)
    with pytest.raises(DataError, match="no won lead"):
        funnel.lookalike_prospects(leads[leads.stage != "won"], tx, features=FEATURES)
    with pytest.raises(DataError, match="no open lead .*lead or qualified or opportunity"):
        funnel.lookalike_prospects(leads[~leads.stage.isin(funnel.OPEN_STAGES)], tx,
                                   features=FEATURES)
    with pytest.raises(DataError, match="no tier for any customer"):
        funnel.lookalike_prospects(leads.set_axis([f"x{i}" for i in range(len(leads))]), tx,
                                   features=FEATURES)
    with pytest.raises(DataError, match="expected a DataFrame"):
        funnel.lookalike_prospects(leads.to_dict(), tx, features=FEATURES)
    pd.testing.assert_frame_equal(leads, before)

"""The funnel page's channel tables: the twelve lead KPIs as two narrow tables."""

import numpy as np
import pandas as pd
import pytest

from crmstats import funnel


@pytest.fixture(scope="module")
def kpis(small_crm):
    return funnel.lead_kpis(small_crm.stage_events, small_crm.spend, period=None)


def test_lead_kpis_split_in_volume_and_quality(kpis):
    before = kpis.copy()
    volume, quality = funnel.lead_volume_table(kpis), funnel.lead_quality_table(kpis)
    assert list(volume.columns) == ["spend", "leads", "qualified", "opportunities", "won"]
    assert list(quality.columns) == ["per lead", "per opportunity", "CAC", "to opportunity",
                                     "to customer"]
    assert volume.index.equals(kpis.index) and quality.index.equals(kpis.index)
    for short, long in (("per lead", "cost_per_lead"), ("CAC", "cac"),
                        ("to customer", "lead_to_won")):
        np.testing.assert_array_equal(quality[short], kpis[long])
    pd.testing.assert_frame_equal(kpis, before)
    assert volume["spend"].sum() == pytest.approx(kpis["spend"].sum())


def test_another_frame_is_refused_by_name():
    with pytest.raises(ValueError, match="expected the DataFrame returned by lead_kpis"):
        funnel.lead_quality_table(pd.DataFrame({"spend": [1.0]}))

"""Value pyramid, Pareto analysis and RFM segments (no models needed)."""

import numpy as np
import pandas as pd
import pytest

from crmstats import DataError
from crmstats.clv import pareto_analysis, rfm_segments, rfm_summary, value_tiers


def test_value_tiers_sizes_and_order():
    rng = np.random.default_rng(13)
    values = pd.Series(rng.lognormal(3, 1.2, 1000), index=[f"c{i}" for i in range(1000)])
    tiers = value_tiers(values)
    counts = tiers["tier"].value_counts().reindex(["platinum", "gold", "iron", "base"])
    assert counts.tolist() == [10, 40, 150, 800]
    # every platinum customer is worth at least every gold customer, and so on
    by_tier = tiers.groupby("tier", observed=True)["value"]
    assert (by_tier.min().to_numpy()[:-1] >= by_tier.max().to_numpy()[1:]).all()
    assert tiers.loc[values.idxmax(), "rank"] == 1
    assert values.equals(pd.Series(values))  # input untouched


def test_value_tiers_custom_and_invalid():
    v = pd.Series([5.0, 4.0, 3.0, 2.0, 1.0])
    t = value_tiers(v, tiers={"top": 0.4, "rest": 0.6})
    assert t["tier"].astype(str).tolist() == ["top", "top", "rest", "rest", "rest"]
    with pytest.raises(ValueError, match="sum to 1"):
        value_tiers(v, tiers={"a": 0.5, "b": 0.4})
    with pytest.raises(DataError, match="non-finite"):
        value_tiers(pd.Series([1.0, np.nan]))


def test_pareto_analysis_against_hand_computation():
    v = pd.Series([100.0, 50.0, 25.0, 15.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    res = pareto_analysis(v)
    assert res.top_share == pytest.approx(150 / 200)
    # Gini by the mean-absolute-difference formula
    x = v.to_numpy()
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert res.gini == pytest.approx(gini)
    assert res.lorenz.iloc[0].tolist() == [0.0, 0.0]
    assert res.lorenz.iloc[-1].tolist() == [1.0, 1.0]
    # a customer belongs to the class in which its value starts: shares before each
    # customer are 0, .5, .75, .875, .95 → A, A, A (crosses 80 %), B, C
    assert res.abc.loc[[0, 1, 2, 3, 4, 9]].tolist() == ["A", "A", "A", "B", "C", "C"]
    summ = res.summary()
    assert summ["value_share"].sum() == pytest.approx(1.0)
    equal = pareto_analysis(pd.Series(np.ones(50)))
    assert equal.gini == pytest.approx(0.0, abs=1e-12)
    assert equal.top_share == pytest.approx(0.2)
    with pytest.raises(DataError, match="negative"):
        pareto_analysis(pd.Series([1.0, -1.0]))


def test_cdnow_revenue_concentration(cdnow):
    revenue = cdnow.groupby("customer_id")["amount"].sum()
    res = pareto_analysis(revenue)
    # a heavily concentrated base: well above half of revenue from the top fifth
    assert 0.55 < res.top_share < 0.8
    assert 0.5 < res.gini < 0.8


def test_rfm_segments_scores(cdnow):
    summary = rfm_summary(cdnow, time_unit="W")
    seg = rfm_segments(summary)
    for col in "RFM":
        sizes = seg[col].value_counts()
        assert sorted(sizes.index) == [1, 2, 3, 4, 5]
        assert sizes.max() - sizes.min() <= 1  # quintiles of customers
    best = seg[seg["segment"] == "champions"].index
    assert summary.loc[best, "frequency"].mean() > summary["frequency"].mean()
    since = summary["T"] - summary["recency"]
    assert since[seg["R"] == 5].max() <= since[seg["R"] == 1].min()
    assert seg["rfm"].str.len().eq(3).all()
    assert set(seg["segment"]) <= {
        "champions", "loyal customers", "potential loyalists", "new customers", "promising",
        "need attention", "about to sleep", "cannot lose them", "at risk", "hibernating", "lost",
        "others",
    }

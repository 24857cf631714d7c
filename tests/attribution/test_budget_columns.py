"""BudgetPlan.allocation names its bounds min_spend/max_spend; the old lower/upper still read."""

import warnings

import pytest

from crmstats.attribution import MediaMixModel
from crmstats.datasets import simulate_media


def test_the_plan_names_its_bounds_and_reads_the_old_names_with_a_warning():
    _, truth = simulate_media(3)
    p = truth["params"]
    params = {f"{k}[{c}]": p.loc[c, k] for c in p.index
              for k in ("beta", "theta", "half_saturation", "shape")}
    mean = truth["mean_spend"]
    model = MediaMixModel.from_params(params, current_spend=mean, max_spend=2 * mean)
    plan = model.optimize_budget(float(mean.sum()), bounds={p.index[0]: (5.0, float(mean.iloc[0]))})
    a = plan.allocation
    assert "lower" not in a.columns and "upper" not in a.columns
    assert a.loc[p.index[0], ["min_spend", "max_spend"]].tolist() == [5.0, float(mean.iloc[0])]
    assert (a["min_spend"] <= a["recommended"] + 1e-9).all()
    assert (a["recommended"] <= a["max_spend"] + 1e-6).all()
    with pytest.warns(DeprecationWarning, match="'upper' is renamed 'max_spend'"):
        old = a["upper"]
    assert old.equals(a["max_spend"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a["min_spend"]  # the new name reads without a warning

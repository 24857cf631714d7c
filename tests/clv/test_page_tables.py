"""The CLV page's model comparison: what ranks the models, and whether each fit is ranked."""

import pandas as pd

from crmstats import clv
from crmstats.clv.models.limits import one_dropout_clause


def test_comparison_table_keeps_the_ranking_and_says_the_fit_in_words():
    comparison = pd.DataFrame({
        "log_likelihood": [-8120.0, -8092.0, -9000.0], "n_params": [4, 4, 4],
        "bic": [16270.0, 16215.0, 18000.0], "actual": [1953.0] * 3,
        "predicted": [1838.0, 1913.0, 900.0], "total_error": [-0.059, -0.020, -0.54],
        "mae": [0.9705, 0.9809, 1.4], "rmse": [1.673, 1.670, 2.0],
        "fit_problem": [one_dropout_clause("the same dropout rate for every customer"), "",
                        "did not converge (the optimiser's last step was not small)"]},
        index=pd.Index(["Pareto/NBD", "BG/NBD", "other"], name="model"))
    before = comparison.copy()
    t = clv.comparison_table(comparison)
    assert list(t.columns) == ["error per customer", "predicted", "actual", "total error", "fit"]
    assert t.index.equals(comparison.index)  # the ranking compare_models made
    assert t["fit"].tolist() == ["one dropout rate for all", "", "not ranked"]
    assert t["error per customer"].tolist() == comparison["mae"].tolist()
    pd.testing.assert_frame_equal(comparison, before)

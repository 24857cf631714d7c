"""crmstats.page_tables: the helpers every domain's page tables use."""

import numpy as np
import pandas as pd
import pytest

from crmstats.page_tables import INTERVAL, pick, ratio_table, term_words


def test_pick_renames_orders_and_says_an_interval_as_text():
    frame = pd.DataFrame({"b": [1.0, 2.0], "a": [0.5, 0.25], "lo": [0.1, 0.2],
                          "hi": [0.3, float("inf")]}, index=["x", "y"])
    before = frame.copy()
    out = pick(frame, {"a": "first", "b": "second"}, "f", interval=("lo", "hi", "number"))
    assert list(out.columns) == ["first", INTERVAL, "second"]
    assert out[INTERVAL].tolist() == ["0.100 to 0.300", "0.200 or more"]
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match="returned by f; missing column"):
        pick(frame, {"c": "c"}, "f")


@pytest.mark.parametrize(("term", "words"), [("industry[software]", "industry = software"),
                                              ("job_title[T.VP Sales]", "job title = VP Sales"),
                                              ("tickets_recent", "tickets recent"),
                                              ("<b>x</b>", "<b>x</b>")])
def test_term_words(term, words):
    assert term_words(term) == words  # text: escaping is the renderer's job


def test_ratio_table_drops_the_intercept():
    frame = pd.DataFrame({"odds_ratio": [0.1, 2.0], "odds_ratio_lower_95": [0.05, 1.5],
                          "odds_ratio_upper_95": [0.2, 2.5], "p_value": [1e-9, 0.01]},
                         index=["intercept", "industry[retail]"])
    out = ratio_table(frame, "odds_ratio", "m")
    assert list(out.index) == ["industry = retail"] and out.index.name == "term"
    assert list(out.columns) == ["odds ratio", INTERVAL, "p-value"]
    np.testing.assert_array_equal(out["odds ratio"], [2.0])


def test_data_quality_in_two_tables(small_crm):
    import crmstats

    quality = crmstats.data_quality(small_crm)
    rows, contents = crmstats.quality_rows_table(quality), crmstats.quality_contents_table(quality)
    assert list(rows.columns) == ["rows read", "rows dropped", "dropped because", "rows used",
                                  "flags"]
    assert list(contents.columns) == ["first", "last", "ids", "channels", "stages", "mapping"]
    assert rows.index.equals(quality.index) and contents.index.equals(quality.index)
    assert rows["rows used"].tolist() == quality["rows_used"].tolist()
    assert len(rows.columns) + len(contents.columns) == len(quality.columns)  # nothing lost

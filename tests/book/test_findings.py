"""Key findings are written from the study's own results (crmstats.book.findings)."""

import pandas as pd
import pytest

from crmstats.book import findings, report


@pytest.fixture(autouse=True)
def _dollars():
    report.set_currency("$")
    yield
    report.set_currency("")


def _between_3_and_5(sentences):
    assert 3 <= len(sentences) <= 5, sentences
    assert all(s.endswith(".") for s in sentences)
    return " ".join(sentences)


def test_data_overview_findings_follow_the_data():
    activity = pd.DataFrame({"revenue": [100.0, 2500.0, 400.0], "customers": [3, 40, 8]},
                            index=pd.to_datetime(["2025-01-01", "2025-02-01", "2025-03-01"]))
    orders = pd.DataFrame({"customers": [60, 40], "share": [0.6, 0.4]}, index=[1, 2])
    revenue = pd.Series([1000.0] * 3 + [10.0] * 97)
    text = _between_3_and_5(findings.data_overview(activity, orders, revenue, 0.7))
    for part in ("100 customers", "$3,970", "January 2025 to March 2025", "70.0 %", "60.0 %",
                 "February 2025", "$2,500", "40 customers"):
        assert part in text, part


def test_clv_findings_name_the_better_model_and_the_spend():
    comparison = pd.DataFrame({"mae": [0.5, 0.4], "actual": [90.0, 90.0],
                               "predicted": [110.0, 95.0]}, index=["BG/NBD", "Pareto/NBD"])
    values = pd.DataFrame({"clv": [100.0, 50.0, 0.0, 10.0]})
    pareto = type("P", (), {"top_share": 0.625})()
    text = _between_3_and_5(findings.clv(comparison, values, pareto,
                                         {"p": 6.0, "q": 4.0, "v": 15.0}, 6))
    assert "$40.00 over the next 6 months" in text and "$160.0" in text
    assert "Pareto/NBD predicted" in text and "0.400" in text and "95.0 predicted" in text
    assert "62.5 %" in text and "$30.00 per purchase" in text  # 6 * 15 / 3
    assert "25.0 % of customers" in text


def test_attribution_findings_rank_channels_and_payback():
    shares = pd.DataFrame({"last touch": [0.5, 0.3, 0.2], "Markov (order 1)": [0.4, 0.35, 0.25]},
                          index=["paid_search", "email", "events"])
    economics = pd.DataFrame({"cac": [10.0, 50.0, 20.0, 25.0], "ltv_cac": [5.0, 0.5, 2.0, 2.5]},
                             index=["paid_search", "events", "email", "total"])
    accuracy = pd.DataFrame({"mae": [0.04, 0.02]}, index=["last touch", "Markov (order 1)"])
    text = _between_3_and_5(findings.attribution(shares, economics, accuracy))
    assert "paid search earns the largest share of conversions (40.0 %)" in text
    assert "disagree most on paid search: from 40.0 % to 50.0 %" in text
    assert "Markov (order 1) comes closest (mean absolute error 2.0 %" in text
    assert "$25.00 to acquire and returns 2.50x" in text
    assert "Paid search pays back best (5.00x), events worst (0.500x)" in text


def test_lead_scoring_findings_read_terms_and_bands():
    coef = pd.DataFrame({"odds_ratio": [0.1, 1.07, 2.4, 0.9], "p_value": [1e-9, 1e-5, 1e-4, 0.5]},
                        index=["intercept", "engagement_score", "industry[software]",
                               "country[fr]"])
    bands = pd.Series([0.8, 0.5, 0.2], index=["A", "B", "C"])
    text = _between_3_and_5(findings.lead_scoring(0.83, coef, bands))
    assert "AUC of 0.83" in text and "strong" in text
    assert "industry = software (odds × 2.40 against the base level)" in text
    assert "engagement score (odds × 1.07 per unit)" in text and "country" not in text
    assert "band A end qualified 80.0 %" in text and "20.0 % in band C" in text


def test_lifecycle_findings_count_stages():
    counts = pd.Series({"subscriber": 500, "customer": 80, "evangelist": 20,
                        "former customer, high priority": 10,
                        "former customer, low priority": 40})
    text = _between_3_and_5(findings.lifecycle(counts))
    assert "Of 650 contacts, 100 are active customers (15.4 %) and 50 are former" in text
    assert "10 former customers are high priority" in text and "20 customers" in text
    assert "largest group is subscriber (76.9 %" in text


def test_incrementality_findings_agree_in_number_and_never_print_a_negative_share():
    lifts = pd.DataFrame({"p_value": [0.01, 0.4], "lift": [0.02, 0.001],
                          "lower_95": [0.005, -0.01], "relative_lift": [0.4, 0.01],
                          "relative_lower_95": [0.1, -0.2], "relative_upper_95": [0.7, 0.2]},
                         index=["events", "social"])
    calibrated = pd.DataFrame({"share": [0.8, 0.2004, -0.0004]},
                              index=["events", "email", "social"])
    journey = pd.Series({"events": 0.5, "email": 0.2, "social": 0.3})
    text = " ".join(findings.incrementality(lifts, calibrated, journey_shares=journey))
    assert "Of 2 channels tested with holdouts, 1 raises conversion significantly" in text
    assert "events: +40.0 %" in text
    assert "social most: 30.0 % of the credit against next to none of what" in text, text


def test_an_empty_table_reads_as_a_sentence_not_a_bare_header():
    shown = report.format_table(pd.DataFrame(columns=["table", "exported"]),
                                empty="No mapping: the source uses the canonical names.")
    assert shown.data == "No mapping: the source uses the canonical names."
    with_rows = report.format_table(pd.DataFrame({"table": ["a"]}), empty="unused")
    assert "<table" in with_rows.to_html()


def test_data_quality_findings_agree_in_number():
    """'1 table was read', not '1 tables were read' (a transactions-only export)."""
    quality = pd.DataFrame(
        {"rows_read": [8788], "rows_dropped": [0], "dropped_because": [""], "flags": [""],
         "first": [pd.Timestamp("2023-12-01")], "last": [pd.Timestamp("2024-12-09")],
         "mapping": ["InvoiceDate -> timestamp"]}, index=pd.Index(["transactions"]))
    lines = findings.data_quality(quality)
    assert lines[0] == "1 table was read, 8,788 rows in all."
    assert lines[-1].startswith("1 table is mapped from the export's own names")
    two = pd.concat([quality, quality.rename(index={"transactions": "customers"})])
    assert findings.data_quality(two)[0] == "2 tables were read, 17,576 rows in all."


@pytest.mark.parametrize(("p", "said"), [(3e-12, "(p < 0.001)"), (0.0312, "(p = 0.031)")])
def test_a_drivers_p_value_reads_as_a_p_value(p, said):
    """Not 'p = 0.0000000000': a tiny p-value is said as below 0.001."""
    bridge = pd.DataFrame({"start": [100.0, 110.0], "new": [10.0, 5.0], "expansion": [2.0, 1.0],
                           "contraction": [1.0, 1.0], "churned": [1.0, 2.0],
                           "reactivated": [0.0, 0.0], "end": [110.0, 113.0],
                           "accounts_start": [10, 11], "accounts_churned": [1, 1],
                           "logo_churn_rate": [0.1, 0.09], "nrr": [1.0, 0.98],
                           "grr": [0.98, 0.97]},
                          index=pd.period_range("2025-01", periods=2, freq="M").to_timestamp())
    drivers = pd.DataFrame({"estimate": [0.66], "p_value": [p]}, index=["tickets_recent"])
    text = " ".join(findings.key_accounts(bridge, None, drivers))
    assert f"hazard ratio 1.93 per unit {said}" in text


def test_attribution_findings_leave_out_a_model_without_shares():
    """The counterfactual model's shares are empty when its total is noise: not ranked, no crash."""
    shares = pd.DataFrame({"Markov": [0.5, 0.3, 0.2], "counterfactual": [float("nan")] * 3},
                          index=pd.Index(["a", "b", "c"], name="channel"))
    text = findings.attribution(shares, model="Markov")
    assert text[0].startswith("By the Markov model, a earns")
    assert not any("disagree" in t for t in text)  # one model with shares: nothing to compare
    empty = findings.attribution(shares, model="counterfactual")
    assert empty[0].startswith("The counterfactual model gives no shares here")
    shares["linear"] = [0.4, 0.4, 0.2]
    said = " ".join(findings.attribution(shares, model="Markov"))
    assert "disagree most on" in said and "nan" not in said.lower()

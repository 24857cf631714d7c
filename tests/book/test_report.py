"""Reader formatting, key findings and data notes (crmstats.book.report)."""

import warnings

import nbformat
import numpy as np
import pandas as pd
import pytest

from crmstats import ConvergenceWarning, CRMStatsError, DataWarning
from crmstats.book import report
from crmstats.book.kpis import format_kpi, record_kpis
from crmstats.book.report import (
    StudyPage,
    fmt_count,
    fmt_money,
    fmt_number,
    fmt_pct,
    fmt_ratio,
    format_table,
    reader_text,
)


@pytest.fixture(autouse=True)
def _no_currency():
    report.set_currency("")
    yield
    report.set_currency("")


@pytest.mark.parametrize("value, text", [
    (-95415.118618, "-95,415"), (190870.508155, "190,871"), (1234.5, "1,234"),
    (95.4151, "95.42"), (0.243123, "0.2431"), (0.0001234567, "0.0001235"), (0, "0"),
    (float("nan"), "—"), (None, "—"), (-0.00001, "-0.00001000"),
])
def test_numbers_have_separators_and_four_significant_digits(value, text):
    assert fmt_number(value) == text


def test_money_counts_percents_ratios():
    assert fmt_money(190870.508155, "$") == "$190,871"
    assert fmt_money(-95415.118618, "$") == "-$95,415"
    assert fmt_money(45.2345, "EUR") == "45.23 EUR"
    assert fmt_money(0.5, "€") == "€0.50"
    assert fmt_money(12.0, "") == "12.00"
    report.set_currency("CHF")
    assert fmt_money(1e6) == "1,000,000 CHF" and fmt_money(153.391) == "153.39 CHF"
    assert fmt_count(23570.0) == "23,570" and fmt_count(np.int64(3)) == "3"
    assert fmt_pct(0.62) == "62.0 %" and fmt_pct(1) == "100.0 %"
    assert fmt_pct(0.00123) == "0.12 %" and fmt_pct(0) == "0.0 %"
    assert fmt_pct(0.05, signed=True) == "+5.0 %" and fmt_pct(-0.05, signed=True) == "-5.0 %"
    assert fmt_ratio(3.254) == "3.25x"
    assert fmt_number(-0.0000001, decimals=2) == "0.00"  # no negative zero


def test_currency_must_be_a_short_symbol_or_code():
    with pytest.raises(CRMStatsError, match="currency"):
        report.set_currency("dollars of the united states")
    with pytest.raises(CRMStatsError, match="currency"):
        report.set_currency(5)


def test_format_table_formats_by_role_and_keeps_the_values():
    frame = pd.DataFrame({"channel_name": ["email", "paid"],
                          "spend": [190870.508155, -95415.118618],
                          "conversion_rate": [0.0312, 0.5], "leads": [1234, 56],
                          "roas": [0.2412, 1.5]},
                         index=pd.date_range("2025-01-01", periods=2, name="month"))
    before = frame.copy()
    styled = format_table(frame, money="spend", pct="conversion_rate", currency="$")
    html = styled.to_html()
    for text in ("$190,871", "-$95,415", "3.1 %", "50.0 %", "1,234", "2025-01-01",
                 "channel name", "conversion rate", "0.2412", "1.5000"):
        assert text in html, text
    whole = format_table(pd.DataFrame({"actual": [90.0, 12.0], "x": [0.5, 1.0]})).to_html()
    for text in (">90<", ">12<", ">0.5000<"):
        assert text in whole, text
    assert "190870.5" not in html and "00:00:00" not in html
    pd.testing.assert_frame_equal(frame, before)
    assert styled.data is frame or styled.data.equals(frame)
    # a series, and the study's currency by default
    report.set_currency("EUR")
    assert "12.50 EUR" in format_table(pd.Series([12.5], name="value"), money="value").to_html()


def test_format_table_is_deterministic_apart_from_its_running_id():
    frame = pd.DataFrame({"x": [1.23456, 2.5]})
    a, b = format_table(frame).to_html(), format_table(frame).to_html()
    assert a.replace(a.split('id="')[1].split('"')[0], "ID") == \
        b.replace(b.split('id="')[1].split('"')[0], "ID")


def test_format_table_names_a_missing_column():
    with pytest.raises(CRMStatsError, match="'spend' is not in the table"):
        format_table(pd.DataFrame({"x": [1]}), money=["spend"])


def test_kpis_use_the_currency_and_percent_everywhere():
    report.set_currency("$")
    frame = record_kpis(average_clv=45.2345, top20_revenue_share=0.62, ltv_cac=3.1, show=False)
    assert frame["formatted"].tolist() == ["$45.23", "62.0 %", "3.10x"]
    assert frame.loc["average_clv", "currency"] == "$"
    assert format_kpi(1234567.0, "money", "EUR") == "1,234,567 EUR"


@pytest.mark.parametrize("message, text", [
    ("rfm_summary: 3 rows of /tmp/tmpab12/transactions.parquet are late",
     "rfm_summary: 3 rows of transactions.parquet are late"),
    ("read C:\\Users\\ana\\crm\\orders.csv", "read orders.csv"),
    ("folder ~/data/acme/ has no spend", "folder a folder has no spend"),
    ("3 of 100 customers (3.0 %) bought once", "3 of 100 customers (3.0 %) bought once"),
    ("1 repeat customer(s) with zero mean spend were left out of the fit, e.g. rows ['10244']",
     "1 repeat customer(s) with zero mean spend were left out of the fit"),
    ("2 blank ids in customers (e.g. rows [4, 9]); dropped", "2 blank ids in customers; dropped"),
    ("names differ in case, e.g. 'Email', 'email'", "names differ in case"),
])
def test_reader_text_cuts_machine_paths(message, text):
    assert reader_text(message) == text


def test_study_page_collects_warnings_into_data_notes():
    shown = warnings.showwarning
    page = StudyPage(currency="EUR")
    assert report.get_currency() == "EUR"
    for _ in range(2):
        warnings.warn_explicit("transactions: 4 rows in /srv/x/tmp123/t.csv are late",
                               DataWarning, "f.py", 1)
    warnings.warn_explicit("fit stopped early", ConvergenceWarning, "f.py", 2)
    warnings.warn_explicit("deprecated thing", FutureWarning, "f.py", 3)
    notes = page.notes_markdown()
    assert "## Data notes" in notes
    # Markdown of the text: the file name escaped so it is not made a link
    assert r"**Data.** transactions: 4 rows in t\.csv are late (noted 2 times)" in notes
    assert "**Model fit.** fit stopped early" in notes
    assert "1 technical message" in notes and "deprecated thing" not in notes
    assert "/srv" not in notes
    assert page.finish(["One.", "Two.", "Three."]) == ["One.", "Two.", "Three."]
    assert warnings.showwarning is shown  # restored
    with pytest.raises(CRMStatsError, match="1 to 5 findings"):
        StudyPage().finish([])
    warnings.showwarning = shown


@pytest.mark.slow
def test_key_findings_land_at_the_top_of_the_executed_notebook(tmp_path):
    """The findings, computed at the end, are shown by the first cell; warnings are notes."""
    from crmstats.book import run_study

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("from crmstats.book import report\npage = report.StudyPage()"),
        nbformat.v4.new_code_cell("currency: str = '$'  # currency of money figures",
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import warnings, crmstats\n"
            "warnings.warn('transactions: 2 rows of /tmp/tmpq1/x.parquet dated late',"
            " crmstats.DataWarning)"),
        nbformat.v4.new_code_cell("page.finish([f'Customers are worth "
                                  "{report.fmt_money(1234.5, currency)} each.'])"),
    ]
    nbformat.write(nb, tmp_path / "t.ipynb")
    out = run_study(tmp_path / "t.ipynb", tmp_path / "out.ipynb", {"currency": "€"})
    done = nbformat.read(out, as_version=4)
    first = "".join(o.get("data", {}).get("text/markdown", "") for o in done.cells[0].outputs)
    assert "Key findings" in first and "Customers are worth €1,234 each." in first
    texts = [o for c in done.cells for o in c.outputs if o.get("output_type") == "stream"]
    assert texts == []  # no warning printed into the page
    last = "".join(o.get("data", {}).get("text/markdown", "") for o in done.cells[-1].outputs)
    assert "Data notes" in last and r"2 rows of x\.parquet dated late" in last  # Markdown
    assert "/tmp" not in last



def test_a_number_recorded_per_unit_is_shown_per_its_amount():
    """next-euro's best marginal ROAS is 0.066 conversions per $1; the page says 6.6 per $100
    and the summary said 0.06582 'per $1': shown per the amount its label names, recorded as
    it is."""
    from crmstats.book.kpis import _change

    frame = record_kpis({"mroas": {"value": 0.06582, "per": 100, "label": "per $100"}},
                        show=False)
    assert frame.loc["mroas", "formatted"] == "6.582" and frame.loc["mroas", "value"] == 0.06582
    assert format_kpi(0.06582, "number") == "0.06582"
    assert format_kpi(0.06582, "number", per="100") == "0.06582"  # not an amount: as recorded
    assert _change(0.07, 0.0, "number", 100) == "+7.000"  # from zero: in the unit shown
    assert _change(0.07, 0.0658, "number", 100) == _change(0.07, 0.0658, "number")  # relative
    for bad in (0, 0.5, -100, True, "100", float("nan"), 10_000_000):
        with pytest.raises(CRMStatsError, match="per"):
            record_kpis({"mroas": {"value": 0.06582, "per": bad}}, show=False)
    with pytest.raises(CRMStatsError, match="per"):
        record_kpis({"cac": {"value": 35.0, "kind": "money", "per": 100}}, show=False)

"""Names from the data or a configuration are text on every page: hostile rendering inputs.

A channel, a stage, a segment or a source file's ``name:`` can hold anything a CRM
user typed. Each rendering path of the book (Markdown built by ``report.md_text``,
tables by ``report.format_table``, the summary page, a study's title, the failure
page, plot labels) is fed hostile names here and its output is rendered the way
the book renders it (MyST with Jupyter Book's extensions, then HTML) and checked
with the publication scan's :func:`crmstats.privacy.scan_html`: nothing runs, and
the name reads as typed. The browser test (``tests/test_browser.py``) does the same
on a whole built book.
"""

from __future__ import annotations

import html
import re

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from crmstats.book import report
from crmstats.book.kpis import record_kpis, strip_kpi_records, summary_page
from crmstats.book.report import StudyPage, format_record, format_table, md_code, md_text
from crmstats.privacy import scan_html

#: What a CRM user can type into a name: script, handlers, links, MyST roles and
#: directives, substitutions, math, Markdown blocks, entities, line breaks.
HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "[click](javascript:alert(1))",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "{raw}`html <b onmouseover=alert(1)>x</b>`",
    "{eval-rst}`.. raw:: html`",
    "```{raw} html",
    "line one\n```{raw} html\n<script>alert(1)</script>\n```",
    ":::{raw} html\n<script>alert(1)</script>\n:::",
    "{{ substitution }}",
    "$x^2$ and $\\foo{ $",
    "# a heading",
    "ends in a heading's closing ##",
    "1. a list",
    "- [ ] a task",
    "> a quote",
    "%a comment",
    "(label)=",
    "*emphasis* __strong__ ~~gone~~",
    "a | b | c",
    "&lt;b&gt; &amp; &#60;script&#62;",
    "back\\slash \\<escaped\\>",
    "www.example.com and a@b.com and http://x.io/y",
    "tab\there\rcarriage\x0bvt\u2028sep",
]

#: Jupyter Book 1.x's default MyST extensions (jupyter_book/default_config.yml).
MYST_EXTENSIONS = ["colon_fence", "dollarmath", "linkify", "substitution", "tasklist"]


def render_myst(source: str) -> str:
    """Render MyST Markdown to an HTML body as the book does (docutils, Jupyter Book's syntax)."""
    from docutils.core import publish_parts
    from myst_parser.parsers.docutils_ import Parser

    return publish_parts(source, parser=Parser(), writer_name="html5",
                         settings_overrides={"myst_enable_extensions": MYST_EXTENSIONS,
                                             "report_level": 5, "halt_level": 5,
                                             "raw_enabled": True,
                                             "doctitle_xform": False,
                                             # links to pages kept (Sphinx resolves them)
                                             "myst_all_links_external": True})["body"]


def shown_text(body: str) -> str:
    """The text a reader sees in an HTML fragment (tags dropped, entities decoded)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def one_line(name: str) -> str:
    return " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", name).split())


def test_unescaped_markdown_would_run_script():
    """The check can fail: the same names written raw are markup after MyST."""
    body = render_myst("- " + HOSTILE[0] + "\n- " + HOSTILE[1] + "\n")
    assert scan_html(body)


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("place", ["paragraph", "list item", "heading", "table cell",
                                   "link text"])
def test_md_text_renders_as_the_text_typed(name, place):
    text = md_text(name)
    assert "\n" not in text
    source = {"paragraph": f"Data from {text}.",
              "list item": f"- {text}",
              "heading": f"# {text}",
              "table cell": f"| a | b |\n|---|---|\n| {text} | x |",
              "link text": f"[{text}](studies/x)"}[place]
    body = render_myst(source)
    assert scan_html(body) == [], body
    assert re.findall(r"<a [^>]*>", body) == (
        ['<a class="reference external" href="studies/x">'] if place == "link text" else [])
    assert "math" not in body and "raw" not in re.findall(r'class="([^"]*)"', body)
    assert one_line(name) in shown_text(body), body


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_md_code_shows_the_value_in_one_code_span(name):
    body = render_myst(f"| p |\n|---|\n| {md_code('x=' + repr(name))} |")
    assert scan_html(body) == []
    assert body.count('class="docutils literal') == 1
    assert one_line("x=" + repr(name)) in shown_text(body)


def _tags(fragment: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<([A-Za-z][\w:-]*)", fragment)}


@pytest.mark.parametrize("name", HOSTILE[:8], ids=range(8))
def test_format_table_escapes_cells_headers_index_names_and_caption(name):
    frame = pd.DataFrame({name: [1.5, 2.25], "channel": [name, "email"],
                          "flag": [True, False]},
                         index=pd.Index([name, "b"], name=name))
    frame.columns.name = name
    before = frame.copy()
    for labels in (True, False):
        out = format_table(frame, caption=name, labels=labels).to_html()
        assert scan_html(out) == [], out
        assert _tags(out) <= {"style", "table", "caption", "thead", "tbody", "tr", "th", "td"}
        assert out.count(html.escape(name, quote=True)) >= 5  # header, cell, index, names, caption
    pd.testing.assert_frame_equal(frame, before)
    assert frame.index.name == name and frame.columns.name == name  # the caller's names kept


def test_format_table_multiindex_record_and_empty_sentence_escape():
    name = HOSTILE[1]
    frame = pd.DataFrame({(name, "spend"): [10.0], ("x", name): ["y"]},
                         index=pd.MultiIndex.from_tuples([(name, 1)], names=[name, "n"]))
    assert scan_html(format_table(frame, money=[(name, "spend")]).to_html()) == []
    assert scan_html(format_record({name: name, "spend": 3.0}, money=["spend"]).to_html()) == []
    empty = format_table(pd.DataFrame({"a": []}), empty=f"No row for {name}.")
    assert scan_html(render_myst(empty.data)) == []
    assert name in shown_text(render_myst(empty.data))


def test_study_page_findings_notes_and_data_source_are_text():
    import warnings

    import crmstats
    from crmstats.exceptions import DataWarning

    shown = warnings.showwarning
    try:
        page = StudyPage(currency="$")
        warnings.warn_explicit(f"stage names outside the funnel: {HOSTILE[1]}", DataWarning,
                               "f.py", 1)
        findings = [f"Most customers came through {n}." for n in HOSTILE[:4]]
        page.finish(findings)
        markdown = page._findings_markdown(findings) + page.notes_markdown()
    finally:
        warnings.showwarning = shown
    crm = crmstats.CRMData(transactions=pd.DataFrame(
        {"customer_id": ["a"], "timestamp": pd.to_datetime(["2024-01-01"]), "amount": [1.0]}),
        name=HOSTILE[0])
    markdown += "\n\n" + page.data_source(crm)
    body = render_myst(markdown)
    assert scan_html(body) == [], body
    text = shown_text(body)
    for name in (*HOSTILE[:4], f"stage names outside the funnel: {HOSTILE[1]}"):
        assert name in text
    assert f"Data source: {HOSTILE[0]}" in text


def test_kpi_table_labels_are_escaped():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        with pytest.MonkeyPatch.context() as mp:
            shown = []
            mp.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
            record_kpis(x={"value": 1.0, "label": HOSTILE[1]})
    finally:
        InteractiveShell.clear_instance()
    assert shell is not None and shown
    out = shown[0]["text/html"]
    assert scan_html(out) == [] and html.escape(HOSTILE[1], quote=True) in out


def _run_record(title: str, source: str, status: str = "ok") -> dict:
    return {"run": "2026-01-02_000000", "started": "2026-01-02T00:00:00+00:00",
            "parameters": {"note": HOSTILE[9]},
            "studies": {"s1": {"title": title, "status": status,
                               "error": f"DataError: {HOSTILE[1]}" if status != "ok" else None,
                               "parameters": {"data_source": source, "segment": HOSTILE[6]},
                               "kpis": {"customers": {"value": 3.0, "label": HOSTILE[0],
                                                      "kind": "count"}}}}}


@pytest.mark.parametrize("status", ["ok", "failed"])
def test_summary_page_shows_titles_sources_labels_and_parameters_as_text(tmp_path, status):
    source = tmp_path / "crmstats.yml"
    source.write_text(f"name: {HOSTILE[0]!r}\n")  # source_label reads only the name here
    page = summary_page(_run_record(f"{HOSTILE[1]} {HOSTILE[3]}", str(source), status), [])
    body = render_myst(page)
    assert scan_html(body) == [], body
    text = shown_text(body)
    assert HOSTILE[0] in text and f"{HOSTILE[1]} {HOSTILE[3]}" in text
    assert f"note={HOSTILE[9]!r}" in text  # the run parameter as written, in a code span
    assert all("javascript" not in href for href in re.findall(r'href="([^"]*)"', body))


def test_a_study_title_becomes_a_heading_of_text(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Study\n\nText.")]
    nbformat.write(nb, tmp_path / "in.ipynb")
    title = f"{HOSTILE[0]} — {HOSTILE[6]}"
    strip_kpi_records(tmp_path / "in.ipynb", tmp_path / "out.ipynb", title=title)
    heading = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].source
    body = render_myst(heading)
    assert scan_html(body) == [] and title in shown_text(body)
    assert len(re.findall(r"<h[1-6]", body)) == 1


def test_a_failed_studys_page_title_is_text():
    from crmstats.book.build import _failure_page
    from crmstats.book.studies import Study

    study = Study(slug="s", title=f"{HOSTILE[1]} {HOSTILE[10]}", template=None, parameters={})
    body = render_myst(_failure_page(study, "DataError: bad", "2026-01-01_000000"))
    assert scan_html(body) == [], body
    assert one_line(f"{HOSTILE[1]} {HOSTILE[10]}") in shown_text(body)


def test_plot_labels_with_dollars_draw_as_typed():
    """A channel named with ``$`` signs: matplotlib's mathtext would fail or typeset it."""
    import io

    names = ["$\\foo{ $", "$5 off $10", "<script>alert(1)</script>"]
    report.plain_plot_text()
    fig, ax = plt.subplots()
    ax.bar(names, [1, 2, 3])
    ax.set_title(names[1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg")  # mathtext on: ValueError (Unknown symbol: \foo)
    svg = buffer.getvalue().decode()
    assert scan_html(svg) == []
    assert "&lt;script&gt;" in svg or "<script" not in svg


def _search_index(alltitles: dict) -> str:
    import json

    return "Search.setIndex(" + json.dumps(
        {"titles": ["&lt;b&gt; page", "KPI summary"], "alltitles": alltitles,
         "indexentries": {}, "docnames": ["a", "b"]}, sort_keys=True) + ")"


def test_search_titles_are_escaped_once_and_the_scan_sees_raw_ones(tmp_path):
    """Sphinx's search page writes matching titles as HTML: raw section titles would run."""
    from crmstats.book.sphinx_ext import escape_search_titles
    from crmstats.privacy import scan_search_index

    raw = {HOSTILE[1] + " — data quality": [[0, None]], "Key findings": [[0, "key-findings"]],
           "&lt;b&gt; page": [[0, None]]}
    path = tmp_path / "searchindex.js"
    path.write_text(_search_index(raw))
    found = scan_search_index(path.read_text())
    assert [f.pattern for f in found] == ["event handler attribute onerror= in a search title"]
    assert escape_search_titles(path) is True
    assert scan_search_index(path.read_text()) == []
    text = path.read_text()
    assert html.escape(HOSTILE[1], quote=False) in text and '"Key findings"' in text
    assert "&amp;lt;" not in text  # an escaped title is not escaped twice
    assert escape_search_titles(path) is False  # idempotent: a rebuild keeps it as it is


@pytest.mark.parametrize("text", ["Search.setIndex({broken", "var index = {};",
                                  "Search.setIndex([])"])
def test_a_search_index_the_scan_cannot_read_is_refused(text, tmp_path):
    """What the scan cannot read it cannot pass (it returned no finding before)."""
    from crmstats.book.scan import _scan_fix
    from crmstats.book.sphinx_ext import escape_search_titles
    from crmstats.privacy import scan_search_index

    assert [f.pattern for f in scan_search_index(text)] == ["unreadable search index"]
    assert "constraints.txt" in _scan_fix("unreadable search index")
    path = tmp_path / "searchindex.js"
    path.write_text(text)
    assert escape_search_titles(path) is False and path.read_text() == text

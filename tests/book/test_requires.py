"""Studies declare what they need; a build runs those that apply and lists the others."""

import json
import os
import subprocess
import sys
import textwrap

import nbformat
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crmstats import CRMData, DataError, StudyError, load_crm
from crmstats.book import build_book, load_studies
from crmstats.book.build import unmet_needs
from crmstats.book.kpis import strip_kpi_records, summary_page
from crmstats.book.studies import parse_requirements, unmet_requirements
from crmstats.cli import app
from crmstats.sources import expand_source, resolve_source
from tests.book.fakebook import install, make_repo
from tests.conftest import ROOT

STUDIES = ROOT / "book" / "studies.yml"


def _transactions_only() -> CRMData:
    tx = pd.DataFrame({"customer_id": ["a", "b", "a"], "amount": [10.0, 20.0, 5.0],
                       "timestamp": pd.to_datetime(["2024-01-03", "2024-02-01",
                                                    "2024-03-01"])})
    return CRMData(transactions=tx, source="shop")


@pytest.mark.parametrize(("value", "message"), [
    ("transactions", "must be a list"),
    ([5], "a table name, table.column or a list"),
    (["orders"], "names no table 'orders'"),
    (["transactions.Amount x"], "the column is not a name"),
    ([[]], "empty list of alternatives"),
])
def test_requires_is_checked(value, message):
    with pytest.raises(StudyError, match=message):
        parse_requirements(value, "studies.yml: study 'x'")


def test_requirements_tables_columns_and_alternatives():
    requires = parse_requirements(["transactions", "transactions.quantity",
                                   ["deals", "stage_events"]], "x")
    assert requires == (("transactions",), ("transactions.quantity",),
                        ("deals", "stage_events"))
    assert unmet_requirements(requires, {"transactions", "stage_events"},
                              lambda t, c: c == "quantity") == []
    assert unmet_requirements(requires, {"transactions", "deals"},
                              lambda t, c: False) == [("transactions.quantity",)]
    assert unmet_requirements(requires, set()) == list(requires)


def test_the_books_studies_declare_what_their_templates_read(small_crm):
    studies = load_studies(STUDIES, check_parameters=False)
    # the demo holds every table (and simulates its experiments): every study applies
    assert {s.slug: unmet_needs(s, small_crm, "demo:seed=3") for s in studies} == {
        s.slug: [] for s in studies}
    shop = _transactions_only()
    supported = [s.slug for s in studies if not unmet_needs(s, shop)]
    assert supported == ["data-quality", "data-overview", "clv-cdnow", "clv", "churn",
                         "value-migration"]
    needs = {s.slug: unmet_needs(s, shop) for s in studies}
    assert needs["attribution"] == [("touchpoints",), ("conversions",), ("customers",),
                                    ("spend",)]
    assert needs["funnel"] == [("deals", "stage_events")]
    assert needs["key-accounts"] == [("subscriptions",), ("tickets",)]
    # a source that is not the demo has no simulated experiments
    assert ("experiments",) in unmet_needs(studies[5], CRMData(
        touchpoints=small_crm.touchpoints, conversions=small_crm.conversions,
        spend=small_crm.spend, contacts=small_crm.contacts, source="x"))


def test_slugs_are_source_neutral_and_remember_the_old_ones():
    studies = {s.slug: s for s in load_studies(STUDIES, check_parameters=False)}
    assert not [slug for slug in studies if slug.endswith("-demo")]
    assert studies["clv"].formerly == ("clv-demo",)


def test_each_study_shows_its_sources_currency(tmp_path):
    studies = {s.slug: s for s in load_studies(STUDIES)}
    assert studies["clv-cdnow"].parameters["currency"] == "USD"
    assert "currency" not in studies["data-quality"].parameters  # it declares none
    run = {s.slug: s for s in load_studies(STUDIES, overrides={"currency": "GBP"})}
    assert run["clv"].parameters["currency"] == "GBP"
    assert run["clv-cdnow"].parameters["currency"] == "USD"  # CDNOW is in dollars
    (tmp_path / "transactions.csv").write_text("customer_id,timestamp,amount\na,2024-01-01,1\n")
    (tmp_path / "crmstats.yml").write_text("name: shop\ncurrency: EUR\ntables:\n"
                                           "  transactions: transactions.csv\n")
    run = {s.slug: s for s in load_studies(STUDIES, overrides={
        "data_source": str(tmp_path), "currency": "GBP",
        "studies": {"churn": {"currency": "CHF"}}})}
    assert run["clv"].parameters["currency"] == "EUR"  # the source's, not the run's default
    assert run["churn"].parameters["currency"] == "CHF"  # named explicitly for the study
    assert run["clv-cdnow"].parameters["currency"] == "USD"
    (tmp_path / "crmstats.yml").write_text("currency: [1]\ntables:\n"
                                           "  transactions: transactions.csv\n")
    with pytest.raises(DataError, match="'currency' must be a currency code"):
        load_crm(tmp_path)


def test_run_parameter_errors_name_the_run_file():
    with pytest.raises(StudyError, match=r"^run parameters \(/x/run.yml\): parameter\(s\) "
                                         r"\['colour'\] are declared by no study"):
        load_studies(STUDIES, overrides={"colour": "red"}, params_file="/x/run.yml")
    with pytest.raises(StudyError, match=r"^run parameters \(run.yml\), for study 'churn': "
                                         r"parameter 'churned_after' is a str"):
        load_studies(STUDIES, overrides={"churned_after": "3"}, params_file="run.yml")
    with pytest.raises(StudyError, match=r"^run parameters \(run.yml\) of study 'clv': "
                                         r"parameter\(s\) \['horizon'\] are not declared"):
        load_studies(STUDIES, overrides={"studies": {"clv": {"horizon": 3}}},
                     params_file="run.yml")


def test_summary_compares_a_renamed_study_with_its_runs_under_the_old_slug():
    def run(stamp, slug, value, **extra):
        kpis = {"customers": {"value": value, "label": "Customers", "kind": "count"}}
        return {"run": stamp, "started": stamp, "parameters": {}, "published": True,
                "studies": {slug: {"title": "CLV", "status": "ok", "kpis": kpis,
                                   "parameters": {"data_source": "demo"}, **extra}}}

    old = run("2026-01-01_000000", "clv-demo", 1000)
    new = run("2026-01-08_000000", "clv", 1100, formerly=["clv-demo"])
    row = next(line for line in summary_page(new, [old]).splitlines()
               if line.startswith("| Customers"))
    assert "+10.0 %" in row and "2026-01-01_000000" in row
    new["studies"]["clv"]["formerly"] = []
    assert "first run" in summary_page(new, [old])


def test_expand_source_reads_home_and_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("CRM_EXPORTS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert expand_source("$CRM_EXPORTS/shop") == f"{tmp_path}/shop"
    assert expand_source("${CRM_EXPORTS}/shop") == f"{tmp_path}/shop"
    assert expand_source("~/shop") == f"{tmp_path}/shop"
    assert expand_source("demo:seed=3") == "demo:seed=3"
    assert resolve_source("data/shop", "/repo") == "/repo/data/shop"
    assert resolve_source("$CRM_EXPORTS/shop", "/repo") == f"{tmp_path}/shop"
    monkeypatch.delenv("CRM_NOPE", raising=False)
    with pytest.raises(DataError, match="environment variable CRM_NOPE is not set"):
        load_crm("$CRM_NOPE/shop")
    (tmp_path / "shop").mkdir()
    _transactions_only().transactions.to_parquet(tmp_path / "shop" / "transactions.parquet")
    for spelling in ("$CRM_EXPORTS/shop", "${CRM_EXPORTS}/shop", "~/shop", str(tmp_path / "shop")):
        assert len(load_crm(spelling).table("transactions").execute()) == 3, spelling


def _executed(tmp_path, source):
    """An executed notebook as papermill and the kernel leave it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('data_source: str = "demo"  # source',
                                       metadata={"tags": ["parameters", "hide-input"]})
    injected = nbformat.v4.new_code_cell(f"# Parameters\ndata_source = {source!r}\n",
                                         metadata={"tags": ["injected-parameters"],
                                                   "papermill": {"duration": 0.1}})
    table = nbformat.v4.new_code_cell("report.format_table(x)", metadata={
        "tags": ["hide-input"], "execution": {"iopub.status.idle": "2026-12-07T10:00:00Z"}})
    table.outputs = [nbformat.v4.new_output("execute_result", {
        "text/html": "<table></table>",
        "text/plain": "<pandas.io.formats.style.Styler at 0x7f3a2b1c0d90>"}, execution_count=3)]
    printed = nbformat.v4.new_code_cell("print(model)", metadata={"tags": ["hide-input"]})
    printed.outputs = [nbformat.v4.new_output("execute_result", {
        "text/plain": "fitted <crmstats.clv.BetaGeoModel object at 0x7f00aa>"}, execution_count=4)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Study"), params, injected, table, printed]
    nb.metadata["papermill"] = {"input_path": "/x/t.ipynb", "output_path": "/y/t.ipynb",
                                "start_time": "2026-12-07T10:00:00", "duration": 3.2,
                                "parameters": {"data_source": source}}
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    return path


def test_published_notebook_has_no_toggles_no_path_and_the_same_bytes_every_run(tmp_path):
    source = str(tmp_path / "exports" / "shop")
    out1, out2 = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    strip_kpi_records(_executed(tmp_path, source), out1, title="Churn: shop",
                      source_name="shop")
    strip_kpi_records(_executed(tmp_path, source), out2, title="Churn: shop",
                      source_name="shop")
    assert out1.read_bytes() == out2.read_bytes()  # fresh random ids and addresses each time
    text = out1.read_text()
    assert str(tmp_path) not in text and "0x7f" not in text
    nb = nbformat.read(out1, as_version=4)
    assert [c.id for c in nb.cells] == [f"cell-{i}" for i in range(5)]
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]  # the parameters
    assert tags[3] == ["remove-input"] and not any("hide-input" in t for t in tags)
    assert "data_source = 'shop'" in nb.cells[2].source  # the code stays for analysts
    assert nb.cells[3].outputs[0]["data"] == {"text/html": "<table></table>"}
    assert nb.cells[4].outputs[0]["data"]["text/plain"] == (
        "fitted <crmstats.clv.BetaGeoModel object>")
    assert nb.metadata["papermill"] == {"parameters": {"data_source": "shop"}}
    assert not any("execution" in c.metadata or "papermill" in c.metadata for c in nb.cells)


@pytest.fixture
def shop(tmp_path, small_crm):
    """A transactions-only export (the demo's transactions alone), in a folder."""
    folder = tmp_path / "exports" / "shop"
    folder.mkdir(parents=True)
    small_crm.transactions.to_parquet(folder / "transactions.parquet", index=False)
    return folder


def _fake_book(tmp_path, monkeypatch, studies):
    book = make_repo(tmp_path / "repo")
    install(monkeypatch.setattr, tmp_path / "fake_jb.py")
    spec = {"studies": [{"slug": slug, "title": f"Study {slug}: {{source}}",
                         "template": "notebooks/t.ipynb", **({"requires": req} if req else {})}
                        for slug, req in studies]}
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return book


def test_a_build_runs_what_applies_and_lists_the_rest_on_one_page(tmp_path, monkeypatch, shop):
    book = _fake_book(tmp_path, monkeypatch, [
        ("clv", ["transactions"]), ("attribution", ["touchpoints", "conversions"]),
        ("funnel", [["deals", "stage_events"]]), ("plain", None)])
    result = build_book(book, params={"data_source": str(shop)})
    assert result.published and not result.failures
    assert sorted(r.slug for r in result.studies) == ["clv", "plain"]
    assert result.unavailable == {"attribution": [["touchpoints"], ["conversions"]],
                                  "funnel": [["deals", "stage_events"]]}
    html = book / "_build" / "html"
    page = (html / "studies" / "not-available.html").read_text()
    assert "Not available for this source" in page and "Study attribution: shop" in page
    assert "touchpoints:" in page and "journey_id: &lt;your column&gt;" in page
    assert not (html / "studies" / "attribution.html").exists()
    record = json.loads((result.run_dir / "kpis.json").read_text())
    assert record["studies"]["funnel"]["status"] == "not available"
    assert record["studies"]["funnel"]["needs"] == [["deals", "stage_events"]]
    summary = (html / "summary.html").read_text()
    assert "failed" not in summary and "Not available for this source" in summary
    # the absolute path of the source is on no page
    for path in html.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb", ".md"):
            assert str(shop) not in path.read_text(), path


def test_only_runs_only_the_chosen_studies(tmp_path, monkeypatch, shop):
    book = _fake_book(tmp_path, monkeypatch, [("s1", None), ("s2", None)])
    assert build_book(book, only=["s1"]).published
    spec = yaml.safe_load((book / "studies.yml").read_text())
    spec["studies"].append({"slug": "s3", "title": "Study 3", "template": "notebooks/t.ipynb"})
    (book / "studies.yml").write_text(yaml.safe_dump(spec))
    result = build_book(book, only=["s2"])
    assert [r.slug for r in result.studies] == ["s2"]  # s3 (never built) is not run
    record = json.loads((result.run_dir / "kpis.json").read_text())
    assert {s: st["status"] for s, st in record["studies"].items()} == {"s1": "kept",
                                                                        "s2": "ok"}


def test_source_check_lists_the_studies_the_source_supports(shop):
    result = CliRunner().invoke(app, ["source", "check", str(shop), "--book-dir",
                                      str(ROOT / "book")])
    assert result.exit_code == 0, result.output
    assert ("studies supported (6 of 13): data-quality, data-overview, clv-cdnow, clv, churn, "
            "value-migration") in result.output
    assert "not available: funnel — needs deals or stage_events" in result.output
    assert "not available: attribution — needs touchpoints, conversions, customers, spend" \
        in result.output


def test_a_duckdb_file_source_is_read_by_several_processes_at_once(tmp_path, small_crm):
    import duckdb

    path = tmp_path / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("tx", small_crm.transactions)
        con.execute("CREATE TABLE transactions AS SELECT * FROM tx")
    url = f"duckdb:///{path}"
    crm = load_crm(url)  # held open here, as by one study's kernel ...
    rows = crm.table("transactions").count().execute()
    other = subprocess.run(  # ... while another kernel opens it too
        [sys.executable, "-c", textwrap.dedent(f"""
            import crmstats
            print(crmstats.load_crm({url!r}).table("transactions").count().execute())
        """)], capture_output=True, text=True, env={**os.environ}, timeout=300)
    assert other.returncode == 0, other.stderr[-2000:]
    assert int(other.stdout.strip().splitlines()[-1]) == rows == len(small_crm.transactions)


def _book_copy(tmp_path, slugs):
    """The repository's book and templates in ``tmp_path``, with only the studies ``slugs``."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copytree(ROOT / "book", root / "book",
                    ignore=shutil.ignore_patterns("_build*", "runs", "studies", "_toc.yml"))
    spec = yaml.safe_load((root / "book" / "studies.yml").read_text())
    spec["studies"] = [s for s in spec["studies"] if s["slug"] in slugs]
    (root / "book" / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root / "book"


@pytest.mark.slow
def test_a_scheduled_run_on_a_transactions_only_export_publishes(tmp_path, monkeypatch):
    """Done-when of issue 21: absolute path in run.yml, no flags, exit 0, what applies.

    On the project's gift-shop invoice log (transactions only, starting mid-stream, invoice
    numbers as order ids), copied to an absolute path of this machine.
    """
    import shutil

    shop = tmp_path / "exports" / "giftshop"
    shutil.copytree(ROOT / "data" / "giftshop", shop)
    book = _book_copy(tmp_path, ["data-quality", "churn", "attribution", "funnel"])
    run = tmp_path / "run.yml"
    run.write_text(f"data_source: {shop}\ncurrency: GBP\n")
    monkeypatch.chdir(book.parent)
    result = CliRunner().invoke(app, ["book", "build", "--params", str(run)])
    assert result.exit_code == 0, result.output
    html = book / "_build" / "html"
    assert (html / "studies" / "churn.html").exists()
    assert (html / "studies" / "data-quality.html").exists()
    page = (html / "studies" / "not-available.html").read_text()
    assert "attribution" in page.lower() and "touchpoints" in page
    churn = (html / "studies" / "churn.html").read_text()
    assert "Cohort retention and churn: Gift shop invoices" in churn
    assert "Show code cell source" not in churn  # no code toggles for readers
    for path in html.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".ipynb", ".md", ".js"):
            assert str(shop) not in path.read_text(), path
    # next week's run on the same data publishes the same bytes (issue 22)
    published = {p: (html / p).read_bytes() for p in ("_sources/studies/churn.ipynb",
                                                      "_sources/studies/data-quality.ipynb",
                                                      "studies/churn.html")}
    again = CliRunner().invoke(app, ["book", "build", "--params", str(run)])
    assert again.exit_code == 0, again.output
    for page, content in published.items():
        assert (html / page).read_bytes() == content, page


@pytest.mark.slow
def test_the_book_builds_on_a_duckdb_file_with_the_default_parallelism(tmp_path, small_crm):
    import duckdb

    path = tmp_path / "crm.duckdb"
    with duckdb.connect(str(path)) as con:
        con.register("tx", small_crm.transactions)
        con.execute("CREATE TABLE transactions AS SELECT * FROM tx")
    book = _book_copy(tmp_path, ["data-quality", "churn"])
    result = build_book(book, params={"data_source": f"duckdb:///{path}"})  # default -j
    assert result.published and not result.failures
    assert sorted(r.slug for r in result.studies) == ["churn", "data-quality"]


def test_runs_of_a_source_under_a_machine_path_are_compared(tmp_path):
    """The summary redacts values, but compares runs by the source as given."""
    from crmstats.book.scan import _public_record

    source = str(tmp_path / "exports" / "shop")  # under the temporary folder: a machine path

    def run(stamp, value):
        kpis = {"customers": {"value": value, "label": "Customers", "kind": "count"}}
        return {"run": stamp, "started": stamp, "parameters": {"data_source": source},
                "published": True,
                "studies": {"clv": {"title": "CLV: shop", "status": "ok", "kpis": kpis,
                                    "parameters": {"data_source": source}}}}

    page = summary_page(_public_record(run("2026-01-08_000000", 1100), (), [str(tmp_path)]),
                        [run("2026-01-01_000000", 1000)])
    row = next(line for line in page.splitlines() if line.startswith("| Customers"))
    assert "+10.0 %" in row and str(tmp_path) not in page and "data_source='shop'" in page



def test_a_relative_source_is_named_as_the_kernels_read_it(tmp_path, monkeypatch):
    """A cron job started elsewhere: data/giftshop is the repository's, titles use its name:."""
    import shutil

    book = _fake_book(tmp_path, monkeypatch, [("s1", ["transactions"]), ("s2", ["deals"])])
    shutil.copytree(ROOT / "data" / "giftshop", book.parent / "data" / "giftshop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = build_book(book, params={"data_source": "data/giftshop"})
    assert result.published and list(result.unavailable) == ["s2"]
    html = book / "_build" / "html"
    assert "Study s1: Gift shop invoices" in (html / "studies" / "s1.html").read_text()
    import html as html_module

    summary = html_module.unescape((html / "summary.html").read_text())
    assert "data_source='Gift shop invoices'" in summary
    assert "Gift shop invoices" in (html / "studies" / "not-available.html").read_text()


def test_a_study_needing_weekly_spend_is_not_available_on_monthly_spend():
    """data/acme records spend once a month: the budget study is listed, not run and failed."""
    studies = {s.slug: s for s in load_studies(ROOT / "book" / "studies.yml")}
    study = studies["next-euro"]
    assert ("spend@weekly",) in study.requires
    monthly = load_crm(ROOT / "data" / "acme")
    unmet = unmet_needs(study, monthly, str(ROOT / "data" / "acme"))
    assert unmet == [("spend@weekly",)]
    from crmstats.book.build import needs_text

    assert needs_text(unmet[0]) == "`spend` recorded daily or weekly (not once a month)"
    demo = load_crm("demo:seed=3,n_contacts=2000")  # monthly spend, but the study's
    assert unmet_needs(study, demo, "demo:seed=3,n_contacts=2000") == []  # demo simulates media
    weekly = load_crm("demo:seed=3,n_contacts=2000,media_share=0.35")
    assert unmet_needs(study, weekly, "demo:seed=3,n_contacts=2000,media_share=0.35") == []
    assert unmet_requirements((("spend@weekly",),), {"spend"}, is_weekly=lambda t: False) == [
        ("spend@weekly",)]
    with pytest.raises(StudyError, match="only qualifier"):
        parse_requirements(["spend@monthly"], "studies.yml")

"""The book builds from the studies, and a failed build never touches the published HTML."""

import json
import re

import pytest
import yaml

from crmstats import StudyError, load_crm
from crmstats.book import build_book, load_studies, read_kpis
from crmstats.book.build import build_lock
from crmstats.book.kpis import KPI_MIME, format_kpi
from crmstats.book.studies import check_no_secrets
from tests.conftest import ROOT, SMALL_DEMO, make_study_template


@pytest.mark.slow
def test_book_builds_with_every_study_and_figures(built_book):
    book, result, spec = built_book
    html = book / "_build" / "html"
    assert result.published and result.html == html
    assert (html / "index.html").exists()
    for study in spec["studies"]:
        page = html / "studies" / f"{study['slug']}.html"
        assert page.exists(), page
        assert study["title"].split(":")[0] in page.read_text()
    overview = (html / "studies" / "data-overview.html").read_text()
    assert overview.count("<img") >= 3
    images = list((html / "_images").glob("*.png"))
    assert images and all(p.stat().st_size > 1000 for p in images)
    assert not (book / "_build.staging").exists()


@pytest.mark.slow
def test_failed_study_keeps_the_published_book(book_to_modify):
    book, _, _ = book_to_modify
    index = book / "_build" / "html" / "index.html"
    before = index.read_bytes()
    mtime = index.stat().st_mtime_ns
    make_study_template(book.parent / "notebooks" / "broken.ipynb",
                        "raise RuntimeError('study exploded')")
    spec = yaml.safe_load((book / "studies.yml").read_text())
    spec["studies"].append({"slug": "broken", "title": "Broken",
                            "template": "notebooks/broken.ipynb"})
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(StudyError, match=r"broken.ipynb: cell \d+.*RuntimeError: study exploded"):
        build_book(book, only=["broken"], jobs=1)
    assert index.read_bytes() == before
    assert index.stat().st_mtime_ns == mtime


def _add_study(book, slug, *cells):
    """Add a minimal study (see ``make_study_template``) to the book copy's studies.yml."""
    template = book.parent / "notebooks" / f"{slug.replace('-', '_')}.ipynb"
    make_study_template(template, *cells)
    spec = yaml.safe_load((book / "studies.yml").read_text())
    if not any(s["slug"] == slug for s in spec["studies"]):
        spec["studies"].append({"slug": slug, "title": slug.title(),
                                "template": f"notebooks/{template.name}"})
        (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _add_broken_study(book):
    _add_study(book, "broken", "raise RuntimeError('study exploded')")


#: A study that records fixed KPIs: its summary rows compare with the previous run's.
FIXED_KPIS = ("from crmstats.book import record_kpis\n"
              "record_kpis(customers=1234, revenue=5678.5, top20_revenue_share=0.5)")


def _runs(book):
    return sorted((book / "runs").iterdir())


def test_old_run_archives_are_pruned_but_the_latest_published_one_stays(tmp_path):
    from crmstats.book.build import prune_runs

    runs = tmp_path / "runs"
    published = {"2026-01-01_000000": True, "2026-01-02_000000": True,
                 "2026-01-03_000000": False, "2026-01-04_000000": False,
                 "2026-01-05_000000": False}
    for name, ok in published.items():
        (runs / name).mkdir(parents=True)
        (runs / name / "kpis.json").write_text(json.dumps({"published": ok}))
    (runs / "2026-01-06_000000").mkdir()  # a run that died before writing its record
    assert prune_runs(runs, 0) == [] and len(list(runs.iterdir())) == 6
    deleted = prune_runs(runs, 2)
    left = sorted(p.name for p in runs.iterdir())
    # the two newest, plus the latest published run the next summary compares with
    assert left == ["2026-01-02_000000", "2026-01-05_000000", "2026-01-06_000000"]
    assert sorted(p.name for p in deleted) == ["2026-01-01_000000", "2026-01-03_000000",
                                               "2026-01-04_000000"]
    assert prune_runs(runs, 5) == []


@pytest.mark.slow
def test_summary_page_is_built_from_the_recorded_kpis(built_book):
    book, result, spec = built_book
    html = book / "_build" / "html"
    record = json.loads((result.run_dir / "kpis.json").read_text())
    assert record["published"] is True
    assert sorted(p.name for p in (result.run_dir / "notebooks").iterdir()) == sorted(
        f"{s['slug']}.ipynb" for s in spec["studies"])
    # every KPI a notebook displayed is in the run record, and on the summary page
    summary = (html / "summary.html").read_text()
    assert "summary.html" in (html / "index.html").read_text()  # the book opens on it
    recorded = 0
    for slug, study in record["studies"].items():
        assert study["status"] == "ok"
        assert study["kpis"] == read_kpis(book / "studies" / f"{slug}.ipynb")
        for rec in study["kpis"].values():
            recorded += 1
            shown = format_kpi(rec["value"], rec["kind"], rec.get("currency", ""),
                               rec.get("per", 1))
            assert shown in summary
        if study["kpis"]:
            assert f'href="studies/{slug}.html"' in summary
    assert recorded >= 4
    data = record["studies"]["data-overview"]["kpis"]
    crm = load_crm(SMALL_DEMO)
    buyers = crm.transactions[crm.transactions["amount"] >= 0]["customer_id"].nunique()
    assert data["customers"]["value"] == buyers
    assert data["revenue"]["value"] == pytest.approx(crm.transactions["amount"].sum())
    # the machine-readable record is not rendered as an unknown output
    assert KPI_MIME not in (html / "studies" / "data-overview.html").read_text()


@pytest.mark.slow
def test_keep_going_publishes_with_the_failure_marked(book_to_modify):
    book, _, _ = book_to_modify
    _add_study(book, "fixed-kpis", FIXED_KPIS)
    build_book(book, only=["fixed-kpis"], jobs=1)  # the previous published run to compare with
    _add_broken_study(book)
    result = build_book(book, only=["fixed-kpis", "broken"], jobs=2, keep_going=True)
    assert result.published
    assert [r.slug for r in result.failures] == ["broken"]
    html = book / "_build" / "html"
    failed_page = (html / "studies" / "broken.html").read_text()
    assert "failed" in failed_page and "study exploded" in failed_page
    summary = (html / "summary.html").read_text()
    assert "study exploded" in summary
    # the change column compares with the previous published run: same data, no change
    rows = [line.split("|") for line in (result.run_dir / "summary.md").read_text().splitlines()
            if "(studies/fixed-kpis)" in line and line.count("|") == 7]
    assert len(rows) == 3
    assert all(row[3].strip() == "no change" for row in rows), rows
    record = json.loads((result.run_dir / "kpis.json").read_text())
    assert record["studies"]["broken"]["status"] == "failed"
    assert record["published"] is True
    assert len(_runs(book)) >= 2


@pytest.mark.slow
def test_book_pages_show_no_personal_data_or_secrets(built_book):
    """Every page and published source, entity-decoded: no e-mail, phone, name, key or path."""
    from crmstats.book.build import scan_book
    from crmstats.privacy import machine_paths

    book, _, _ = built_book
    crm = load_crm(SMALL_DEMO)
    contacts = crm.contacts
    personal = tuple(contacts["name"]) + tuple(contacts["email"]) + tuple(contacts["phone"])
    html = book / "_build" / "html"
    pages = list(html.rglob("*.html"))
    sources = list((html / "_sources").rglob("*.ipynb"))
    assert len(pages) >= 4 and len(sources) >= 4
    assert scan_book(html, personal=personal,
                     paths=machine_paths([book.parent, ROOT])) == []
    # and the scan does see a leak in this very book when there is one
    leaky = book.parent / "leaky"
    leaky.mkdir()
    (leaky / "page.html").write_text(f"<td>{contacts['email'].iloc[0].replace('@', '&#64;')}"
                                     f"</td><td>{contacts['name'].iloc[1]}</td>")
    assert [f[1] for f in scan_book(leaky, personal=personal, paths=[])] == [
        "email address", "personal value", "personal value"]


@pytest.mark.parametrize("params", [
    {"password": "hunter2"},
    {"api_key": "abc"},
    {"data_source": "postgresql://crm:s3cret@db.example.com/crm"},
    {"data_source": "host=db user=crm password=s3cret"},
])
def test_credentials_in_parameters_are_refused(params):
    with pytest.raises(StudyError, match="credential|password|environment variables") as err:
        load_studies(ROOT / "book" / "studies.yml", overrides=params)
    assert "s3cret" not in str(err.value) and "hunter2" not in str(err.value)


def test_harmless_parameters_pass_the_credential_check():
    check_no_secrets({"data_source": "postgresql://crm@localhost/crm", "period": "M",
                      "segment_col": "segment", "monkey": 1}, "test")


def test_second_build_is_refused_while_one_runs(tmp_path):
    with build_lock(tmp_path):
        with pytest.raises(StudyError, match="another build"):
            with build_lock(tmp_path):
                pass


def _tables(page):
    """The tables of a published page, as HTML text."""
    return re.findall(r"<table.*?</table>", page.read_text(), flags=re.S)


@pytest.mark.slow
def test_only_rebuilds_the_chosen_studies_and_reruns_are_byte_identical(built_book, tmp_path):
    """--only keeps the other pages (marked with their run); same data, same bytes."""
    import shutil

    book, first, spec = built_book
    copy = tmp_path / "repo"
    shutil.copytree(book.parent, copy, symlinks=True)
    book2 = copy / "book"
    rerun = ["clv-cdnow"]  # the one template this suite runs twice: reproducibility
    result = build_book(book2, only=rerun, jobs=2)
    assert result.published and sorted(r.slug for r in result.studies) == sorted(rerun)
    html = book2 / "_build" / "html"
    record = json.loads((result.run_dir / "kpis.json").read_text())
    before = json.loads((first.run_dir / "kpis.json").read_text())
    for study in spec["studies"]:
        slug = study["slug"]
        page = html / "studies" / f"{slug}.html"
        assert page.exists(), slug  # no study vanished from the book
        if slug in rerun:
            assert record["studies"][slug]["status"] == "ok"
            assert "Not rerun in this build" not in page.read_text()
        else:
            assert record["studies"][slug]["status"] == "kept"
            assert record["studies"][slug]["from_run"] == first.run_dir.name
            assert "Not rerun in this build" in page.read_text()
            assert first.run_dir.name in page.read_text()
        # reproducible: byte-identical KPI records and published tables
        assert json.dumps(record["studies"][slug]["kpis"], sort_keys=True) == json.dumps(
            before["studies"][slug]["kpis"], sort_keys=True), slug
        assert _tables(page) == _tables(book / "_build" / "html" / "studies" / f"{slug}.html")
        # a rerun publishes its notebook byte for byte (no random cell ids, timings,
        # object addresses); a kept one differs by its "not rerun" note only
        notebook = f"_sources/studies/{slug}.ipynb"
        if slug in rerun:
            assert (html / notebook).read_bytes() == (
                book / "_build" / "html" / notebook).read_bytes(), slug
    summary = (html / "summary.html").read_text()
    assert "Not rerun in this build" in summary
    lines = (result.run_dir / "summary.md").read_text().splitlines()
    assert any("(studies/clv-cdnow)" in line and "| no change |" in line for line in lines)


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_customer_lists_are_pseudonymous_and_map_back(built_book):
    from crmstats.privacy import reidentify

    book, _, _ = built_book
    html = book / "_build" / "html"
    crm = load_crm(SMALL_DEMO)
    raw_id = re.compile(r"\bC\d{6}\b")
    for page in html.rglob("*.html"):
        assert not raw_id.search(page.read_text()), page.name
    for slug in ("clv", "lifecycle", "lead-scoring"):
        shown = sorted(set(re.findall(r"\bC-[0-9a-f]{8}\b",
                                      (html / "studies" / f"{slug}.html").read_text())))
        assert len(shown) >= 10, slug
        ids = (crm.customers["customer_id"] if slug == "clv"
               else crm.contacts["contact_id"])
        back = reidentify(shown, ids)  # the test key of conftest, as the kernels had it
        assert back.notna().all(), slug

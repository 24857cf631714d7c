"""The book builds from the studies, and a failed build never touches the published HTML."""

import shutil
from pathlib import Path

import pytest
import yaml

from crmstats import StudyError
from crmstats.book import build_book
from crmstats.book.build import build_lock
from tests.conftest import SMALL_DEMO

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def book_copy(tmp_path_factory):
    """A copy of the repository's book and templates, built once on small demo data."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", "intro.md", "studies.yml"):
        shutil.copy2(ROOT / "book" / name, book / name)
    spec = yaml.safe_load((book / "studies.yml").read_text())
    spec["defaults"]["data_source"] = SMALL_DEMO
    for study in spec["studies"]:
        if study.get("parameters", {}).get("data_source", "demo") == "demo":
            study.setdefault("parameters", {})["data_source"] = SMALL_DEMO
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = build_book(book, jobs=2)
    return book, result, spec


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_book_builds_with_every_study_and_figures(book_copy):
    book, result, spec = book_copy
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
@pytest.mark.xdist_group("book")
def test_failed_study_keeps_the_published_book(book_copy):
    book, _, _ = book_copy
    index = book / "_build" / "html" / "index.html"
    before = index.read_bytes()
    mtime = index.stat().st_mtime_ns
    broken = book.parent / "notebooks" / "broken.ipynb"
    import nbformat

    nb = nbformat.read(book.parent / "notebooks" / "data_overview.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('study exploded')"))
    nbformat.write(nb, broken)
    spec = yaml.safe_load((book / "studies.yml").read_text())
    spec["studies"].append({"slug": "broken", "title": "Broken",
                            "template": "notebooks/broken.ipynb"})
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(StudyError, match=r"broken.ipynb: cell \d+.*RuntimeError: study exploded"):
        build_book(book, only=["broken"], jobs=1)
    assert index.read_bytes() == before
    assert index.stat().st_mtime_ns == mtime


def test_second_build_is_refused_while_one_runs(tmp_path):
    with build_lock(tmp_path):
        with pytest.raises(StudyError, match="another build"):
            with build_lock(tmp_path):
                pass

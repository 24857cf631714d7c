import os
import shutil
from pathlib import Path

import matplotlib
import pytest
import yaml

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
# pseudonyms in tests (and their notebook kernels) use a fixed key, not the user's key file
os.environ.setdefault("CRMSTATS_PSEUDONYM_KEY", "crmstats-test-key")

#: A small simulated CRM: the data source the end-to-end tests run studies on.
SMALL_DEMO = "demo:seed=3,n_contacts=2000"

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser):
    parser.addoption("--spark", action="store_true", default=False,
                     help="also run the Spark backend tests (make test-spark)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--spark"):
        return
    skip = pytest.mark.skip(reason="Spark tests run with make test-spark (pytest --spark)")
    for item in items:
        if "spark" in item.keywords:
            item.add_marker(skip)


def requires_system_tool(found: bool, what: str, install: str) -> None:
    """Skip a test whose system package is absent — or fail when ``CI=true``."""
    if found:
        return
    message = f"{what} is not installed ({install})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must have it (.ci/run installs it)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The repository's book and templates, built once on small demo data (do not modify)."""
    from crmstats.book import build_book

    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", "studies.yml", *(p.name for p in (ROOT / "book").glob("*.md"))):
        shutil.copy2(ROOT / "book" / name, book / name)
    if (ROOT / "book" / "_static").is_dir():  # the book's CSS
        shutil.copytree(ROOT / "book" / "_static", book / "_static")
    spec = yaml.safe_load((book / "studies.yml").read_text())
    spec["defaults"]["data_source"] = SMALL_DEMO
    for study in spec["studies"]:
        if study.get("parameters", {}).get("data_source", "demo") == "demo":
            study.setdefault("parameters", {})["data_source"] = SMALL_DEMO
    (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = build_book(book, jobs=2)
    return book, result, spec


@pytest.fixture
def book_to_modify(built_book, tmp_path):
    """A private copy of the built book's repository, for tests that rebuild or break it."""
    book, result, spec = built_book
    shutil.copytree(book.parent, tmp_path / "repo", symlinks=True)
    return tmp_path / "repo" / "book", result, spec


@pytest.fixture(scope="session")
def cdnow():
    from crmstats.datasets import load_cdnow

    return load_cdnow("master")


@pytest.fixture(scope="session")
def small_crm():
    import crmstats

    return crmstats.load_crm(SMALL_DEMO)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")

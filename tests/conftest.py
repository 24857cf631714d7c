import fcntl
import os
import pickle
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


def _run_dir(tmp_path_factory) -> Path:
    """A folder shared by every xdist worker of this run (this run's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The repository's book and templates, built once per test run on small demo data.

    The one build executes every template once; tests assert on its executed
    notebooks (``book/studies/<slug>.ipynb``) and HTML. Under pytest-xdist the
    first worker that needs the book builds it while holding a lock; the other
    workers wait for it and reuse it (a session fixture alone would build it once
    per worker). Do not modify it: use ``book_to_modify``.
    """
    from crmstats.book import build_book

    shared = _run_dir(tmp_path_factory)
    done, failed = shared / "built-book.pickle", shared / "built-book.error"
    with open(shared / "built-book.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if failed.exists():
            pytest.fail(f"the book build failed in another worker:\n{failed.read_text()}")
        if not done.exists():
            root = shared / "built-book"
            shutil.copytree(ROOT / "notebooks", root / "notebooks")
            book = root / "book"
            book.mkdir()
            for name in ("_config.yml", "studies.yml",
                         *(p.name for p in (ROOT / "book").glob("*.md"))):
                shutil.copy2(ROOT / "book" / name, book / name)
            if (ROOT / "book" / "_static").is_dir():  # the book's CSS
                shutil.copytree(ROOT / "book" / "_static", book / "_static")
            spec = yaml.safe_load((book / "studies.yml").read_text())
            spec["defaults"]["data_source"] = SMALL_DEMO
            for study in spec["studies"]:
                if study.get("parameters", {}).get("data_source", "demo") == "demo":
                    study.setdefault("parameters", {})["data_source"] = SMALL_DEMO
            (book / "studies.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
            try:
                result = build_book(book, jobs=2)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}")
                raise
            done.write_bytes(pickle.dumps((book, result, spec)))
        return pickle.loads(done.read_bytes())


def make_study_template(path: Path, *cells: str, parameters: str = "") -> Path:
    """Write a minimal study template: a title, the ``parameters`` cell, then ``cells``.

    Tests of the book machinery (failures, the summary's comparison with the
    previous run) use it instead of re-running a real template. ``parameters``:
    lines declaring more parameters than ``data_source``.
    """
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    params = nbformat.v4.new_code_cell('data_source: str = "demo"  # unused\n' + parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params,
                *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


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


@pytest.fixture(autouse=True)
def _keep_the_currency():
    """Every test starts with the currency the one before it found (a StudyPage sets it for
    the process: a test that builds one must not change how the next test's money reads)."""
    from crmstats import formatting

    before = formatting.get_currency()
    yield
    formatting.set_currency(before)

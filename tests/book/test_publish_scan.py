"""The publication scan stops a book that shows personal data, credentials or machine paths."""

import json

import pytest

from crmstats import StudyError
from crmstats.book import build, build_book
from crmstats.book.build import public_error, scan_book
from tests.book.fakebook import install, make_repo, published_text


@pytest.fixture
def book(tmp_path, monkeypatch):
    book = make_repo(tmp_path / "repo")
    install(monkeypatch.setattr, tmp_path / "fake_jb.py")
    assert build_book(book, params={"note": "first build"}, jobs=1).published
    return book


LEAKS = [
    ("e-mail (rendered as &#64;)", "contact anna@example.com", "email address"),
    ("e-mail spelled &commat;", "contact anna&commat;example.com", "email address"),
    ("e-mail percent-encoded", "contact anna%40example.com", "email address"),
    ("e-mail as \\u0040", "contact anna\\u0040example.com", "email address"),
    ("phone", "call +49 30 1234567 today", "phone number"),
    ("personal name", "top customer: Anna Berg", "personal value"),
    ("credential", "CREDENTIAL", "AWS access key"),
    ("home path", "/root/.cache/x.parquet", "machine path"),
    ("temp path", "/tmp/ipykernel_123/456.py:1: DataWarning", "machine path"),
]


@pytest.mark.parametrize(("what", "note", "pattern"), LEAKS, ids=[c[0] for c in LEAKS])
def test_a_leak_stops_the_publish_and_names_page_and_pattern_only(book, what, note, pattern):
    before = published_text(book)
    with pytest.raises(StudyError) as err:
        build_book(book, params={"note": note}, jobs=1)
    message = str(err.value)
    assert message.startswith("publication scan:") and "not published" in message
    lines = message.splitlines()
    assert any(ln.strip().startswith("studies/s1.html: ") and pattern in ln for ln in lines)
    # the published source too
    assert any(ln.strip().startswith("_sources/studies/s1.ipynb: ") and pattern in ln
               for ln in lines)
    # the message shows a redacted excerpt and the fix, never the value found
    from crmstats.privacy import scan_text

    assert scan_text(message, extra_values=("Anna Berg",)) == []
    assert "anna" not in message.lower() and "AKIA" not in message and "1234567" not in message
    assert "[…]" in message
    assert any(ln.startswith("fix (") and pattern in ln.split(":")[0] for ln in lines)
    assert published_text(book) == before  # the last good book stays
    assert not (book / "_build.staging").exists()
    runs = sorted((book / "runs").glob("*/kpis.json"))
    assert json.loads(runs[-1].read_text())["published"] is False


def test_the_themes_own_assets_and_a_clean_book_raise_no_alarm(book):
    html = book / "_build" / "html"
    assert "someone@example.com" in (html / "_static" / "theme.js").read_text()
    assert scan_book(html, personal=("Anna Berg",), paths=[str(book.parent)]) == []


def test_published_notebooks_carry_no_machine_paths(book):
    html = book / "_build" / "html"
    source = json.loads((html / "_sources" / "studies" / "s1.ipynb").read_text())
    assert "input_path" not in source["metadata"]["papermill"]
    assert "output_path" not in source["metadata"]["papermill"]
    # the archived notebook (not published) keeps papermill's record as it was
    archived = next((book / "runs").glob("*/notebooks/s1.ipynb"))
    assert json.loads(archived.read_text())["metadata"]["papermill"]["input_path"].startswith("/")
    for page in html.rglob("*"):
        if page.is_file() and page.suffix in (".html", ".ipynb", ".md"):
            assert str(book.parent) not in page.read_text(), page


def test_failure_pages_and_summary_name_columns_and_counts_not_values(book):
    result = build_book(book, params={"note": "FAIL"}, jobs=1, keep_going=True)
    assert result.published and len(result.failures) == 2
    assert "anna@example.com" in str(result.failures[0].error)  # the analyst sees it all
    html = book / "_build" / "html"
    for page in ("studies/s1.html", "summary.html"):
        text = (html / page).read_text()
        assert "DataError" in text and "2 duplicate keys" in text and "customer_id" in text
        assert "anna" not in text and "example.com" not in text and "&#64;" not in text


@pytest.mark.parametrize(("error", "shown"), [
    ("t.ipynb: cell 3 failed: DataError: transactions: 2 duplicate keys "
     "['anna@example.com', 'bob@x.org'] in column 'customer_id'",
     "t.ipynb: cell 3 failed: DataError: transactions: 2 duplicate keys […] in column "
     "'customer_id'"),
    ("t.ipynb: cell 1 failed: DataError: customer 'Anna Berg' has no email",
     "t.ipynb: cell 1 failed: DataError: customer '…' has no email"),
    ("t.ipynb: cell 2 failed: FileNotFoundError: /root/data/crm.csv",
     "t.ipynb: cell 2 failed: FileNotFoundError: …"),
    ("t.ipynb: cell 4 failed: DataError: 5 rows with phone +1 (555) 010-0123\nrow 7",
     "t.ipynb: cell 4 failed: DataError: 5 rows with phone …"),
    # a symlink to a system file: its first line came back as "columns present"
    ("t.ipynb: cell 3 failed: DataError: transactions table: missing required column "
     "'customer_id', 'timestamp', 'amount'; columns present: root:x:0:0:root:/root:/bin/bash",
     "t.ipynb: cell 3 failed: DataError: transactions table: missing required column "
     "'customer_id', 'timestamp', 'amount' (details in the run archive)"),
])
def test_public_error_keeps_columns_and_counts(error, shown):
    assert public_error(error, ("Anna Berg",), ["/root"]) == shown


def test_personal_values_come_from_the_sources_personal_columns():
    from crmstats import load_crm
    from crmstats.book.studies import Study

    source = "demo:seed=3,n_contacts=300"
    values = build.__dict__["_personal_values"]([Study("s", "S", None, {"data_source": source}),
                                                 Study("t", "T", None, {"data_source": "nope"})])
    crm = load_crm(source)
    contacts = crm.contacts
    assert set(contacts["email"]) <= set(values) and set(contacts["name"]) <= set(values)
    assert set(crm.customers["customer_id"]) <= set(values)  # text ids: C000123
    assert not {str(v) for v in crm.transactions["amount"]} & set(values)


def test_personal_values_are_the_same_from_a_folder_source(tmp_path):
    """A folder holds paths, not frames: the scan reads it through the gate all the same."""
    from crmstats import export_crm, load_crm
    from crmstats.book.studies import Study

    source = "demo:seed=3,n_contacts=300"
    export_crm(load_crm(source), tmp_path / "export")
    scan = build.__dict__["_personal_values"]
    from_frames = scan([Study("s", "S", None, {"data_source": source})])
    from_folder = scan([Study("s", "S", None, {"data_source": str(tmp_path / "export")})])
    assert len(from_folder) > 300 and from_folder == from_frames


def test_personal_values_are_the_same_from_a_database_source(tmp_path):
    """A DuckDB database's tables are read through its engine (the gate hands back the
    source's own table once validated: the scan took it for a frame and raised
    AttributeError 'StringColumn' object has no attribute 'dropna' while publishing)."""
    import ibis

    from crmstats import load_crm
    from crmstats.book.studies import Study

    source = "demo:seed=3,n_contacts=300"
    crm = load_crm(source)
    con = ibis.duckdb.connect(tmp_path / "crm.duckdb")
    for name in ("transactions", "customers"):
        con.create_table(name, getattr(crm, name))
    con.disconnect()
    scan = build.__dict__["_personal_values"]
    from_db = scan([Study("s", "S", None, {"data_source": f"duckdb:///{tmp_path / 'crm.duckdb'}"})])
    assert set(crm.customers["customer_id"]) <= set(from_db)  # text ids: C000123
    assert not {str(v) for v in crm.transactions["amount"]} & set(from_db)


def test_personal_values_of_frames_are_read_without_validating_them():
    """In-memory tables give their values as they are: no validation in the build process."""
    from crmstats import load_crm
    from crmstats.book.studies import Study
    from crmstats.validation.memory import COUNTS

    source = "demo:seed=3,n_contacts=300"
    crm = load_crm(source)
    before = sum(COUNTS.values())
    values = build.__dict__["_personal_values"]([Study("s", "S", None, {"data_source": source})],
                                                {source: crm})
    assert sum(COUNTS.values()) == before
    assert set(crm.contacts["email"]) <= set(values)
    assert set(crm.customers["customer_id"]) <= set(values)

"""The book on one's own data: titles, pinned sources, per-source summaries, templates."""

import nbformat
import pytest
from typer.testing import CliRunner

from crmstats import StudyError
from crmstats.book import load_studies
from crmstats.book.kpis import summary_page
from crmstats.book.studies import source_label, study_title
from crmstats.book.template import check_template
from crmstats.cli import app
from tests.conftest import ROOT

STUDIES = ROOT / "book" / "studies.yml"


def test_study_titles_name_the_source_never_a_path():
    for source, label in [("demo", "demo CRM"), ("demo:seed=3,n_contacts=2000", "demo CRM"),
                          ("/srv/data/acme/crmstats.yml", "acme")]:
        assert source_label(source) == label
        assert study_title("Churn: {source}", source) == f"Churn: {label}"
    assert study_title("Data overview", "demo") == "Data overview"


def test_titles_follow_the_run_source_and_the_cdnow_study_keeps_its_own():
    default = {s.slug: s for s in load_studies(STUDIES)}
    assert default["clv"].title.endswith(source_label("demo"))
    assert default["clv-cdnow"].title.endswith(source_label("cdnow"))
    run = {s.slug: s for s in load_studies(STUDIES, overrides={"data_source": "data/acme"})}
    assert run["clv"].parameters["data_source"] == "data/acme"
    # a relative source is read from the repository root, as the kernels read it, whatever
    # folder the test process is in
    assert source_label("data/acme", root=ROOT) == "ACME CRM export"
    assert run["clv"].title == "Customer lifetime value: ACME CRM export"
    assert run["data-overview"].title.endswith("ACME CRM export")
    # a global data_source does not override the study pinned to CDNOW ...
    assert run["clv-cdnow"].parameters["data_source"] == "cdnow"
    assert run["clv-cdnow"].title.endswith(source_label("cdnow"))
    # ... naming the study does
    explicit = {s.slug: s for s in load_studies(STUDIES, overrides={
        "data_source": "data/acme", "studies": {"clv-cdnow": {"data_source": "data/acme2"}}})}
    assert explicit["clv-cdnow"].parameters["data_source"] == "data/acme2"
    with pytest.raises(StudyError, match="names no study"):
        load_studies(STUDIES, overrides={"studies": {"nope": {"data_source": "x"}}})
    with pytest.raises(StudyError, match="not declared"):
        load_studies(STUDIES, overrides={"studies": {"clv-cdnow": {"colour": "red"}}})


def _run(stamp, source, value, status="ok", **extra):
    study = {"title": "Data overview", "status": status, "parameters": {"data_source": source},
             "kpis": {"customers": {"value": value, "label": "Customers", "kind": "count"}},
             **extra}
    return {"run": stamp, "started": stamp, "parameters": {}, "published": True,
            "studies": {"data-overview": study}}


def test_summary_compares_only_runs_of_the_same_source():
    demo1 = _run("2026-01-01_000000", "demo", 1000)
    acme = _run("2026-01-02_000000", "data/acme", 6730)
    page = summary_page(acme, [demo1])
    row = next(line for line in page.splitlines() if line.startswith("| Customers"))
    assert "| — | first run |" in row and "+573" not in page
    assert f"No earlier published run of {source_label('data/acme')}" in page
    demo2 = _run("2026-01-03_000000", "demo", 1100)
    page = summary_page(demo2, [acme, demo1])  # newest first: skips the acme run
    row = next(line for line in page.splitlines() if line.startswith("| Customers"))
    assert "+10.0 %" in row and "2026-01-01_000000" in row
    assert "No earlier published run" not in page


def test_kept_study_is_marked_with_its_run_and_not_compared_with_itself():
    old = _run("2026-01-01_000000", "demo", 1000)
    kept = _run("2026-01-02_000000", "demo", 1000, status="kept", from_run="2026-01-01_000000")
    page = summary_page(kept, [old])
    assert "Not rerun in this build" in page and "run 2026-01-01_000000" in page
    row = next(line for line in page.splitlines() if line.startswith("| Customers"))
    assert "| not rerun | 2026-01-01_000000 |" in row and "No earlier published run" not in page


def _template(tmp_path, *, kernelspec=True, parameters="data_source: str = 'demo'  # source"):
    nb = nbformat.v4.new_notebook()
    if isinstance(kernelspec, dict):
        nb.metadata["kernelspec"] = kernelspec
    elif kernelspec:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A study")]
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("kwargs, message", [
    ({"kernelspec": False}, "names no kernel"),
    ({"kernelspec": {"name": "python3", "display_name": "P"}}, "names no language"),
    ({"parameters": None}, "no code cell is tagged 'parameters'"),
    ({"parameters": "print(1)  # source"}, "line 1 is not an assignment"),
    ({"parameters": "n: int = 2 * 3  # rows"}, "line 1 assigns an expression"),
    ({"parameters": "# the source\nn: int = 3"}, "line 2 has no comment"),
])
def test_a_template_breaking_the_contract_gets_one_line_naming_the_study(tmp_path, kwargs,
                                                                          message):
    path = _template(tmp_path, **kwargs)
    with pytest.raises(StudyError, match=message) as err:
        check_template(path, "my-study")
    assert str(err.value).startswith("study 'my-study' (mine.ipynb): ")
    assert "\n" not in str(err.value)
    result = CliRunner().invoke(app, ["study", "run", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message.split("'")[0] in lines[0], result.output


def test_contract_errors_for_a_folder_and_a_non_notebook(tmp_path):
    with pytest.raises(StudyError, match="is a folder"):
        check_template(tmp_path, "x")
    (tmp_path / "t.ipynb").write_text("not json")
    with pytest.raises(StudyError, match="not a readable notebook"):
        check_template(tmp_path / "t.ipynb", "x")
    check_template(_template(tmp_path))  # a template keeping the contract passes


def test_the_book_names_a_broken_template_in_one_line(tmp_path):
    import shutil

    import yaml

    (tmp_path / "book").mkdir()
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    spec = {"studies": [{"slug": "mine", "title": "Mine", "template": "notebooks/mine.ipynb"}]}
    (tmp_path / "book" / "studies.yml").write_text(yaml.safe_dump(spec))
    _template(tmp_path / "notebooks", kernelspec=False)
    with pytest.raises(StudyError, match=r"^study 'mine' \(mine.ipynb\): the notebook names "
                                         r"no kernel"):
        load_studies(tmp_path / "book" / "studies.yml")


def test_summary_shows_no_machine_path_of_a_parameter():
    run = _run("2026-01-02_000000", "/srv/crm/exports/acme/crmstats.yml", 10)
    run["parameters"] = {"data_source": "/srv/crm/exports/acme/crmstats.yml"}
    page = summary_page(run, [])
    # the source by its name (the folder's, as the file has no name:), never by its path
    assert "/srv" not in page and "data_source='acme'" in page

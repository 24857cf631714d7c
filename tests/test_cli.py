"""The command line: help, version, study run (success and failure), data export, studies.yml."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from typer.testing import CliRunner

from crmstats import StudyError
from crmstats.book import load_studies, parse_value
from crmstats.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def make_template(path: Path, body: str, params: str = 'x: int = 1  # a number') -> Path:
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_help_and_version():
    out = runner.invoke(app, ["--help"])
    assert out.exit_code == 0
    for command in ("study", "book", "data"):
        assert command in out.output
    out = runner.invoke(app, ["--version"])
    assert out.exit_code == 0 and "crmstats 0.1.0" in out.output


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("crmstats")
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "book" in proc.stdout


@pytest.mark.parametrize(("text", "value"), [("3", 3), ("2.5", 2.5), ("true", True),
                                             ("None", None), ("demo:seed=3", "demo:seed=3"),
                                             ("1997-09-30", "1997-09-30")])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_study_run_success_and_injected_parameter(tmp_path):
    t = make_template(tmp_path / "ok.ipynb", "print(x * 2)")
    out = tmp_path / "out.ipynb"
    res = runner.invoke(app, ["study", "run", str(t), "-o", str(out), "-p", "x=21"])
    assert res.exit_code == 0, res.output
    nb = nbformat.read(out, as_version=4)
    assert "42" in nb.cells[-1].outputs[0]["text"]


def test_study_run_failure_names_notebook_cell_and_error(tmp_path):
    t = make_template(tmp_path / "broken.ipynb", "raise ValueError('bad input here')")
    res = runner.invoke(app, ["study", "run", str(t), "-o", str(tmp_path / "o.ipynb")])
    assert res.exit_code == 1
    assert "broken.ipynb" in res.output
    assert "cell" in res.output and "ValueError: bad input here" in res.output
    assert "Traceback" not in res.output


def test_study_run_rejects_undeclared_parameter(tmp_path):
    t = make_template(tmp_path / "ok.ipynb", "print(x)")
    res = runner.invoke(app, ["study", "run", str(t), "-p", "y=1"])
    assert res.exit_code == 1
    assert "['y']" in res.output and "not declared" in res.output
    res = runner.invoke(app, ["study", "run", str(t), "-p", "novalue"])
    assert res.exit_code == 1 and "NAME=VALUE" in res.output


def test_data_export(tmp_path):
    res = runner.invoke(app, ["data", "export", "demo:seed=2,n_contacts=300", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "transactions.parquet").exists()
    assert (tmp_path / "contacts.parquet").exists()
    res = runner.invoke(app, ["data", "export", "nowhere", str(tmp_path / "x")])
    assert res.exit_code == 1 and "unknown data source" in res.output


def write_studies(tmp_path, studies, defaults=None):
    (tmp_path / "book").mkdir(exist_ok=True)
    path = tmp_path / "book" / "studies.yml"
    path.write_text(yaml.safe_dump({"defaults": defaults or {}, "studies": studies}))
    return path


def test_studies_yml_is_checked(tmp_path):
    (tmp_path / "notebooks").mkdir()
    make_template(tmp_path / "notebooks" / "t.ipynb", "print(x)")
    ok = {"slug": "a", "title": "A", "template": "notebooks/t.ipynb"}
    studies = load_studies(write_studies(tmp_path, [ok], {"x": 5}))
    assert studies[0].parameters == {"x": 5}
    cases = [
        ([ok, ok], "duplicate slug"),
        ([{**ok, "template": "notebooks/missing.ipynb"}], "does not exist"),
        ([{**ok, "colour": "red"}], "unknown key"),
        ([{"slug": "a", "title": "A"}], "missing key"),
        ([{**ok, "slug": "Bad Slug"}], "slug is lowercase"),
        ([{**ok, "parameters": {"y": 1}}], "not declared"),
    ]
    for entries, message in cases:
        with pytest.raises(StudyError, match=message):
            load_studies(write_studies(tmp_path, entries))
    with pytest.raises(StudyError, match="declared by no study"):
        load_studies(write_studies(tmp_path, [ok]), overrides={"zzz": 1})
    with pytest.raises(StudyError, match="no study with slug"):
        load_studies(write_studies(tmp_path, [ok]), only=["b"])


def test_real_studies_yml_is_valid():
    studies = load_studies(ROOT / "book" / "studies.yml")
    assert [s.slug for s in studies[:2]] == ["data-quality", "data-overview"]
    assert all(s.template.exists() for s in studies)


def test_a_typo_in_run_yml_is_reported_against_run_yml(tmp_path):
    run = tmp_path / "run.yml"
    run.write_text("data_source: demo\nperoid: M\n")
    result = runner.invoke(app, ["book", "build", "--params", str(run),
                                 "--book-dir", str(ROOT / "book")])
    assert result.exit_code == 1
    assert f"run parameters ({run}): parameter(s) ['peroid'] are declared by no study" in (
        result.output)
    assert "book/studies.yml: run parameter" not in result.output

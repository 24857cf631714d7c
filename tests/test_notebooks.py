"""Study templates: committed clean, documented parameters, and each one runs."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

from crmstats.book import load_studies, run_study
from tests.conftest import SMALL_DEMO

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "notebooks").glob("*.ipynb"))
STUDIES = load_studies(ROOT / "book" / "studies.yml")


def test_there_are_templates_and_every_one_is_in_the_book():
    assert TEMPLATES
    used = {s.template for s in STUDIES}
    assert set(TEMPLATES) == used


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {i} has outputs"
            assert cell["execution_count"] is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_parameters_cell_is_typed_commented_literals(path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    source = cells[0].source
    tree = ast.parse(source)
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.AnnAssign), f"not a typed assignment: {ast.unparse(stmt)}"
        assert isinstance(stmt.value, ast.Constant), f"not a literal: {ast.unparse(stmt)}"
        names.append(stmt.target.id)
    for line in source.strip().splitlines():
        assert "  # " in line, f"parameter without a comment: {line}"
    assert "data_source" in names
    # the first cell is a markdown title for the book
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES, ids=lambda s: s.slug)
def test_study_runs_on_small_simulated_data(study, built_book):
    """Each study's notebook as the one book build executed it (no template is run twice)."""
    book, result, _ = built_book
    assert study.slug in {r.slug for r in result.studies if r.ok}
    nb = nbformat.read(book / "studies" / f"{study.slug}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) == len([c for c in nbformat.read(study.template, as_version=4).cells
                             if c.cell_type == "code"]) + 1  # + papermill's injected cell
    assert all(c.execution_count is not None for c in code), "every cell ran"
    images = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    if "plot_" in study.template.read_text():  # the data-quality study is tables only
        assert images >= 1, "a study that plots shows its figures"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    injected = next(c for c in code if "injected-parameters" in c.metadata.get("tags", []))
    if study.parameters.get("data_source", "demo") == "demo":
        assert SMALL_DEMO in injected.source  # it ran on the small simulated CRM


def test_a_kernel_that_dies_on_start_is_started_again(tmp_path, monkeypatch):
    """Two kernels can draw the same free port; the study then runs on a fresh kernel."""
    import papermill

    from crmstats import StudyError

    template = tmp_path / "t.ipynb"
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell('x: int = 1  # a parameter',
                                          metadata={"tags": ["parameters"]})]
    nbformat.write(nb, template)
    calls = []

    def flaky(inp, out, **kwargs):
        calls.append(inp)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return None

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    assert run_study(template, tmp_path / "out.ipynb") == tmp_path / "out.ipynb"
    assert len(calls) == 2

    def dead(inp, out, **kwargs):
        calls.append(inp)
        raise RuntimeError("Kernel died before replying to kernel_info")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", dead)
    with pytest.raises(StudyError, match="t.ipynb: RuntimeError: Kernel died"):
        run_study(template, tmp_path / "out.ipynb")
    assert len(calls) == 3

    def failing_cell(inp, out, **kwargs):  # a study's own error is never retried
        from papermill.exceptions import PapermillExecutionError

        calls.append(inp)
        raise PapermillExecutionError(2, 3, "x = int('a')", "ValueError", "bad", ["tb"])

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", failing_cell)
    with pytest.raises(StudyError, match="cell 2 .*ValueError: bad"):
        run_study(template, tmp_path / "out.ipynb")
    assert len(calls) == 1


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_template_reads_like_a_report(path):
    """Code behind toggles; a StudyPage opens the study and its findings close it."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    hidden = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
    shown = [c.source.splitlines()[0] for c in code
             if not hidden & set(c.metadata.get("tags", []))]
    assert not shown, f"code cells shown to readers: {shown}"
    sources = "\n".join(c.source for c in code)
    assert "StudyPage(" in sources and ".finish(" in sources
    if "money" in sources:  # money is labelled with the run's currency
        assert "currency" in next(c.source for c in code
                                  if "parameters" in c.metadata.get("tags", []))

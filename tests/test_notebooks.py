"""Study templates: committed clean, documented parameters, and each one runs."""

import json
from pathlib import Path

import nbformat
import pytest

from crmstats.book import load_studies, run_study
from crmstats.book.template import check_template, skeleton_problems
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
def test_template_keeps_the_contract_and_the_skeleton(path):
    """The package's own checks (crmstats.book.template), as a study run applies them."""
    check_template(path)  # raises StudyError naming the study
    assert skeleton_problems(path) == []


def _broken(tmp_path, edit) -> list[str]:
    """The skeleton problems of a copy of a good template after ``edit(notebook)``."""
    nb = json.loads((ROOT / "notebooks" / "clv.ipynb").read_text())
    edit(nb)
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(nb))
    check_template(path)
    return skeleton_problems(path)


def _code(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _params(nb):
    return next(c for c in _code(nb) if "parameters" in c["metadata"].get("tags", []))


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda nb: nb["cells"][0].update(source=["Churn"]), "Markdown title"),
    (lambda nb: _params(nb).update(source=["".join(_params(nb)["source"])
                                           + "\nextra = 3  # untyped"]), "without a type"),
    (lambda nb: _params(nb).update(source=["".join(_params(nb)["source"])
                                           + "\nextra: int = 3 # one space"]), "without a comment"),
    (lambda nb: _params(nb).update(source=["".join(
        line for line in "".join(_params(nb)["source"]).splitlines(keepends=True)
        if not line.startswith("data_source"))]), "'data_source'"),
    (lambda nb: _params(nb).update(source=["".join(
        line for line in "".join(_params(nb)["source"]).splitlines(keepends=True)
        if not line.startswith("currency"))]), "'currency'"),
    (lambda nb: _code(nb)[0]["metadata"].update(tags=["hide-input"]), "'remove-input'"),
    (lambda nb: nb["cells"].remove(_code(nb)[0]), "open the page"),
    (lambda nb: nb["cells"].remove(_code(nb)[-1]), "finish the page"),
    (lambda nb: _code(nb)[3]["metadata"].update(tags=[]), "shown to readers"),
], ids=["title", "untyped", "uncommented", "no-data-source", "no-currency", "page-tag",
        "no-page", "no-finish", "shown-code"])
def test_skeleton_check_names_each_departure(tmp_path, edit, problem):
    assert _broken(tmp_path, lambda nb: None) == []
    problems = _broken(tmp_path, edit)
    assert any(problem in p for p in problems), problems


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

"""The study template contract, checked before a template runs.

A study template is a Jupyter notebook that

1. names its kernel (``metadata.kernelspec``, e.g. ``python3``), so papermill
   knows what to start;
2. has exactly one code cell tagged ``parameters`` holding only commented
   literals, one per line, typed (``period: str = "M"  # W, M or Q``) so that
   a run's values are checked against the type; papermill overrides them and
   ``papermill --help-notebook`` documents them (a parameter without a type
   accepts any plain value);
3. records its headline figures with :func:`crmstats.book.record_kpis` (a
   study without one is allowed, it just adds nothing to the summary).

:func:`check_template` enforces 1 and 2 with a one-line error naming the
study, instead of the page of papermill traceback a broken template used to
give. :func:`skeleton_problems` lists where a template departs from the
skeleton every study of the book shares (the README's "Write your own study"):
a Markdown title first; every parameter typed; ``data_source`` declared, and
``currency`` where money is shown; ``page = report.StudyPage()`` in the first
code cell, tagged ``remove-input``; every code cell behind a toggle; the page
finished in the last code cell. A study that breaks it still runs; the book's
own templates are held to it by the test suite.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from crmstats.exceptions import StudyError

__all__ = ["check_template", "skeleton_problems"]


def check_template(template: str | Path, study: str | None = None) -> None:
    """Check a study template against the contract; raise a one-line error naming the study.

    Parameters
    ----------
    template : str or Path
        The template notebook.
    study : str, optional
        The study's name for the message (default the template's file name).

    Raises
    ------
    StudyError
        For a template that is missing, a folder, not a notebook, has no
        kernelspec, no or several ``parameters`` cells, or a parameter line
        that is not one commented assignment of a literal.
    """
    template = Path(template)
    name = f"study {study!r} ({template.name})" if study else f"template {template.name}"
    if not template.exists():
        raise StudyError(f"{name}: no such template")
    if not template.is_file():
        raise StudyError(f"{name}: the template is a folder, not a notebook")
    try:
        nb = json.loads(template.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StudyError(f"{name}: not a readable notebook ({type(exc).__name__})") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise StudyError(f"{name}: not a Jupyter notebook (no list of cells)")
    kernelspec = (nb.get("metadata") or {}).get("kernelspec") or {}
    if not isinstance(kernelspec, dict) or not kernelspec.get("name"):
        raise StudyError(f"{name}: the notebook names no kernel (metadata.kernelspec); open it "
                         "in JupyterLab, pick the Python 3 kernel and save it")
    language = kernelspec.get("language") or ((nb.get("metadata") or {}).get("language_info")
                                              or {}).get("name")
    if not language:
        raise StudyError(f"{name}: the notebook names no language (metadata.kernelspec.language "
                         "or language_info.name); save it from JupyterLab with its kernel")
    tagged = [c for c in nb["cells"] if c.get("cell_type") == "code"
              and "parameters" in ((c.get("metadata") or {}).get("tags") or [])]
    if not tagged:
        raise StudyError(f"{name}: no code cell is tagged 'parameters' (the cell of typed, "
                         "commented parameters papermill overrides)")
    if len(tagged) > 1:
        raise StudyError(f"{name}: {len(tagged)} cells are tagged 'parameters'; exactly one is "
                         "allowed")
    source = tagged[0].get("source", "")
    source = "".join(source) if isinstance(source, list) else str(source)
    for number, line in enumerate(source.splitlines(), start=1):
        code = line.split("#", 1)[0].strip() if "#" in line else line.strip()
        if not code:
            continue
        problem = _parameter_problem(line)
        if problem:
            raise StudyError(f"{name}: parameters cell line {number} {problem}; write "
                             "`name: type = literal  # what it means`")


def _parameter_problem(line: str) -> str | None:
    try:
        tree = ast.parse(line.strip())
    except SyntaxError:
        return "is not valid Python"
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.AnnAssign, ast.Assign)):
        return "is not an assignment"
    node = tree.body[0]
    targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
    if len(targets) != 1 or not isinstance(targets[0], ast.Name) or node.value is None:
        return "does not assign a value to one name"
    try:
        ast.literal_eval(node.value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return "assigns an expression, not a literal"
    if "#" not in line:
        return "has no comment saying what the parameter means"
    return None


_HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _tags(cell: dict) -> set[str]:
    return set((cell.get("metadata") or {}).get("tags") or [])


def skeleton_problems(template: str | Path) -> list[str]:
    """List where a template departs from the skeleton every study shares.

    Run :func:`check_template` first: this assumes a readable notebook with one
    ``parameters`` cell of literals.

    Parameters
    ----------
    template : str or Path
        The template notebook.

    Returns
    -------
    list of str
        One sentence per departure, naming the cell (by its first line); empty
        when the template keeps the skeleton.
    """
    nb = json.loads(Path(template).read_text(encoding="utf-8"))
    cells = nb["cells"]
    code = [c for c in cells if c.get("cell_type") == "code"]
    problems = []
    if not (cells and cells[0].get("cell_type") == "markdown"
            and _source(cells[0]).startswith("# ")):
        problems.append("the first cell is not a Markdown title ('# ...')")
    params = next((c for c in code if "parameters" in _tags(c)), None)
    names = []
    if params is not None:
        for stmt in ast.parse(_source(params)).body:
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                problems.append(f"parameter without a type: {ast.unparse(stmt)}")
                continue
            names.append(stmt.target.id)
        for line in _source(params).strip().splitlines():
            if "  # " not in line:
                problems.append(f"parameter without a comment ('  # ...'): {line.strip()}")
    if "data_source" not in names:
        problems.append("no 'data_source' parameter")
    sources = "\n".join(_source(c) for c in code)
    if "money" in sources and "currency" not in names:
        problems.append("money is shown but there is no 'currency' parameter")
    if not code or "StudyPage(" not in _source(code[0]):
        problems.append("the first code cell does not open the page (page = report.StudyPage())")
    elif "remove-input" not in _tags(code[0]):
        problems.append("the first code cell (page = report.StudyPage()) is not tagged "
                        "'remove-input'")
    if not code or ".finish(" not in _source(code[-1]):
        problems.append("the last code cell does not finish the page (page.finish(...))")
    for cell in code:
        if not _HIDDEN & _tags(cell):
            first = (_source(cell).strip().splitlines() or [""])[0]
            problems.append(f"code cell shown to readers (tag it 'hide-input'): {first}")
    return problems

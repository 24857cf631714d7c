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
give.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from crmstats.exceptions import StudyError

__all__ = ["check_template"]


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

"""The docstring examples of the package run and show what they say (``doctest``).

Every module of ``src/crmstats`` is imported and its examples run, so an
example that drifts from the code fails here (CI runs the whole suite).
"""

import doctest
import importlib

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src"
#: Modules whose source holds an example (read as text: collection imports nothing).
WITH_EXAMPLES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "crmstats").rglob("*.py") if ">>> " in path.read_text(encoding="utf-8"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def examples(name: str) -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder()
    return [t for t in finder.find(importlib.import_module(name)) if t.examples]


def test_the_package_has_docstring_examples():
    assert len(WITH_EXAMPLES) >= 8


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = examples(name)
    assert tests, f"{name} has '>>> ' in its source but no docstring example doctest finds"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"

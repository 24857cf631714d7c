"""The layers of the package point one way: the domains never import the book runner.

Read statically from the source (``ast``), so an import inside a function, or in
an ``if TYPE_CHECKING:`` block, counts as much as one at the top of a module —
a lazy import still ties the layers together.
"""

import pytest

from tests.conftest import ROOT
from tests.import_graph import import_graph, rings_and_floors

SRC = ROOT / "src"
DOMAINS = ["attribution", "churn", "clv", "datasets", "funnel", "overview", "scores"]


GRAPH = import_graph(SRC)
MODULES = sorted(GRAPH)


def imports_of(name: str) -> set[str]:
    """The crmstats modules that module ``name`` imports anywhere in its source."""
    return GRAPH[name]


def in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def domain_modules() -> list[str]:
    return [m for m in MODULES if any(in_package(m, f"crmstats.{d}") for d in DOMAINS)]


def test_the_scan_sees_function_level_imports():
    # crmstats.cli imports the book runner inside its commands only
    assert "crmstats.book.runner" in imports_of("crmstats.cli")
    assert len(domain_modules()) > 30


@pytest.mark.parametrize("module", domain_modules())
def test_no_domain_module_imports_the_book(module):
    book = sorted(m for m in imports_of(module) if in_package(m, "crmstats.book"))
    assert book == [], f"{module} imports {book}: the book runner sits above the domains"


def test_nothing_a_domain_needs_reaches_the_book():
    """Follow every import from the domains (the shared plotting helpers included)."""
    seen: set[str] = set()
    todo = list(domain_modules())
    via: dict[str, str] = {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for target in imports_of(module):
            via.setdefault(target, module)
            todo.append(target)
    book = sorted(m for m in seen if in_package(m, "crmstats.book"))
    assert book == [], [f"{via[m]} -> {m}" for m in book]


def test_formatting_sits_below_the_domains():
    assert imports_of("crmstats.formatting") <= {"crmstats.exceptions"}
    assert "crmstats.formatting" in imports_of("crmstats.plotting")


def test_the_book_keeps_its_formatting_names():
    from crmstats import formatting
    from crmstats.book import report

    for name in formatting.__all__:
        assert getattr(report, name) is getattr(formatting, name), name
    before = formatting.get_currency()
    try:
        report.set_currency("EUR")  # one currency state for the book and the plots
        assert formatting.get_currency() == "EUR"
        assert formatting.fmt_money(1234.5) == "1,234 EUR"
    finally:
        formatting.set_currency(before)


def test_the_io_shim_is_gone():
    """``crmstats.io`` (a re-export of the data layer) is gone: import from the real homes."""
    import importlib.util

    assert importlib.util.find_spec("crmstats.io") is None


def test_no_import_ring():
    """No modules import each other, directly or through others (lazy imports count).

    The top level used to sit in a ring of 24 through ``crmstats.estimator``'s
    ``from crmstats import __version__`` (now ``crmstats._version``).
    """
    rings, _ = rings_and_floors(GRAPH)
    assert rings == []


def test_long_modules_say_why_at_their_top():
    """No module over 500 lines without the reason written in its docstring (issue 23)."""
    import ast
    import re

    silent = []
    for path in sorted((ROOT / "src" / "crmstats").rglob("*.py")):
        text = path.read_text()
        if text.count("\n") <= 500:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if not re.search(r"500\s+lines", doc):
            silent.append(f"{path.name}: {text.count(chr(10))} lines")
    assert not silent, silent

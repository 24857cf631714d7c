"""Lazy exports for the package's ``__init__`` modules.

``import crmstats`` and ``import crmstats.clv`` should not pay for Ibis,
SciPy's statistics, statsmodels or matplotlib before a function that needs
them is called. Each ``__init__`` therefore lists its public names as imports
inside an ``if TYPE_CHECKING:`` block — linters, type checkers and IDEs see
ordinary imports — and :func:`lazy_exports` reads that block from the
module's source once and returns the module's ``__getattr__`` and
``__dir__``: a public name is imported from its submodule on first access
(PEP 562), then cached in the package namespace.

References
----------
.. [1] PEP 562 -- Module ``__getattr__`` and ``__dir__``.
   https://peps.python.org/pep-0562/
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["lazy_exports"]


def _typing_imports(path: Path, package: str) -> dict[str, tuple[str, str]]:
    """``{public name: (module, attribute)}`` from the ``if TYPE_CHECKING:`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    table: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name)
                and node.test.id == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            if isinstance(stmt, ast.ImportFrom):
                module = stmt.module or ""
                if stmt.level:  # relative import: resolve against the package
                    base = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
                    module = f"{base}.{module}" if module else base
                for alias in stmt.names:
                    table[alias.asname or alias.name] = (module, alias.name)
    return table


def lazy_exports(
    name: str, file: str, submodules: Iterable[str] = ()
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """Return ``(__getattr__, __dir__)`` for the package ``name`` defined in ``file``.

    Parameters
    ----------
    name : str
        The package's ``__name__``.
    file : str
        The package's ``__file__``; its ``if TYPE_CHECKING:`` block of
        ``from module import name`` statements is the table of lazy exports.
    submodules : iterable of str
        Subpackages and modules reachable as attributes (``crmstats.clv``),
        imported on first access.

    Returns
    -------
    tuple of callable
        The module-level ``__getattr__`` and ``__dir__`` (PEP 562).
    """
    table = _typing_imports(Path(file), name)
    subs = frozenset(submodules)

    def __getattr__(attr: str) -> object:
        module = sys.modules[name]
        if attr in table:
            source, original = table[attr]
            if source == name:  # `from package import submodule`
                value = importlib.import_module(f"{name}.{original}")
            else:
                value = getattr(importlib.import_module(source), original)
        elif attr in subs:
            value = importlib.import_module(f"{name}.{attr}")
        else:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        setattr(module, attr, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[name])) | set(table) | subs)

    # Importing a submodule binds it in its package under its own name. Where a public name
    # equals its submodule's (attribution.heuristic, the function, lives in
    # attribution/heuristic.py), the public object must win, as with an eager import.
    clashes = {public: original for public, (source, original) in table.items()
               if source == f"{name}.{public}"}
    package = sys.modules.get(name)
    if clashes and package is not None and type(package) is types.ModuleType:
        package.__class__ = _package_class(clashes, name)
    return __getattr__, __dir__


def _package_class(clashes: dict[str, str], name: str) -> type:
    """Build a module class that binds the ``clashes`` names to their objects, not submodules."""

    class _Package(types.ModuleType):
        def __setattr__(self, key: str, value: object) -> None:
            if (key in clashes and isinstance(value, types.ModuleType)
                    and value.__name__ == f"{name}.{key}" and hasattr(value, clashes[key])):
                value = getattr(value, clashes[key])
            super().__setattr__(key, value)

    return _Package

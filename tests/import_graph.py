"""The import graph of the crmstats package, read from its source with ``ast``.

Shared by ``tests/test_layers.py`` (no domain module imports the book) and
``benchmarks/import_layers.py`` (rings and floors). Every import counts:
top-level, function-level and ``if TYPE_CHECKING:`` ones — a lazy import
still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path


def import_graph(src: Path) -> dict[str, set[str]]:
    """``{module: crmstats modules it imports}`` for the package under ``src``."""
    paths = {}
    for path in sorted((src / "crmstats").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        paths[".".join(parts)] = path

    def resolve(name: str) -> str:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([module] if module else []))
                names = [f"{module}.{alias.name}" for alias in node.names]
                targets = [n for n in names if n in paths]
                if len(targets) < len(names):
                    targets.append(module)
            else:
                continue
            found |= {resolve(t) for t in targets if t.startswith("crmstats")}
        graph[name] = found - {name, ""}
    return graph

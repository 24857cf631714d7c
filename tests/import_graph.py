"""The import graph of the crmstats package, read from its source with ``ast``.

Shared by ``tests/test_layers.py`` (no domain module imports the book) and
``benchmarks/import_layers.py`` (rings and floors). Every import counts:
top-level, function-level and ``if TYPE_CHECKING:`` ones — a lazy import
still ties two modules together.
"""

from __future__ import annotations

import ast
import sys
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


def rings_and_floors(graph: dict[str, set[str]]) -> tuple[list[list[str]], dict[str, int]]:
    """Strongly connected components (Tarjan) and each module's floor."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    room = {v: i for i, component in enumerate(components) for v in component}
    floor_of_room: dict[int, int] = {}
    for i, component in enumerate(components):  # Tarjan emits imported rooms first
        below = {room[w] for v in component for w in graph[v]} - {i}
        floor_of_room[i] = 1 + max((floor_of_room[j] for j in below), default=0)
    rings = [c for c in components if len(c) > 1]
    return rings, {v: floor_of_room[room[v]] for v in graph}

"""Structure, not time: the import graph of crmstats, its rings and its floors.

Usage: ``python benchmarks/import_layers.py [REPO] [-v]`` (default: this checkout).

Reads every module's source with ``ast`` and lists the crmstats modules it
imports anywhere (function-level and ``TYPE_CHECKING`` imports included: a lazy
import still ties two modules together). It prints

* the rings: sets of modules that import each other, directly or through others
  (strongly connected components of more than one module);
* the floors: with each ring taken as one room, a module's floor is 1 + the
  highest floor it imports (``crmstats.exceptions`` is on floor 1), and the
  number of floors is the highest;
* the floors of the book's modules and of the shared plotting helpers, the
  domain -> book imports (goal: none) and the users of ``crmstats.io``.

``-v`` lists every module with its floor and imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.import_graph import import_graph  # noqa: E402

DOMAINS = ("attribution", "churn", "clv", "datasets", "funnel", "overview", "scores")


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


def main(argv: list[str]) -> None:
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    repo = Path(args[0]) if args else Path(__file__).resolve().parents[1]
    graph = import_graph(repo / "src")
    rings, floor = rings_and_floors(graph)
    print(f"modules: {len(graph)}; imports between them: {sum(map(len, graph.values()))}")
    print(f"floors: {max(floor.values())}")
    print(f"rings: {len(rings)} (sizes {[len(r) for r in rings]})")
    for ring in rings:
        print("  ring:", ", ".join(ring))
    for name in ("crmstats.formatting", "crmstats.plotting", "crmstats.book.report",
                 "crmstats.book.runner", "crmstats.book.build", "crmstats.book"):
        if name in graph:
            print(f"  floor of {name}: {floor[name]}")
    domain_to_book = sorted(
        f"{m} -> {t}" for m, targets in graph.items() for t in targets
        if any(m.startswith(f"crmstats.{d}") for d in DOMAINS) and t.startswith("crmstats.book"))
    print(f"domain -> book imports: {len(domain_to_book)}", *domain_to_book, sep="\n  ")
    io_users = sorted(m for m, targets in graph.items() if "crmstats.io" in targets)
    print(f"modules importing crmstats.io: {len(io_users)}", *io_users, sep="\n  ")
    if verbose:
        for name in sorted(graph, key=lambda m: (floor[m], m)):
            print(f"{floor[name]:3d} {name}: {', '.join(sorted(graph[name]))}")


if __name__ == "__main__":
    main(sys.argv[1:])

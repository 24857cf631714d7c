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
  domain -> book imports (goal: none).

``-v`` lists every module with its floor and imports.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.import_graph import import_graph, rings_and_floors  # noqa: E402

DOMAINS = ("attribution", "churn", "clv", "datasets", "funnel", "overview", "scores")


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
    if verbose:
        for name in sorted(graph, key=lambda m: (floor[m], m)):
            print(f"{floor[name]:3d} {name}: {', '.join(sorted(graph[name]))}")


if __name__ == "__main__":
    main(sys.argv[1:])

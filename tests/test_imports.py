"""The shape of the package: no import cycles anywhere in enhscan/ (counting imports inside
functions and under TYPE_CHECKING, which hide a cycle without removing it), and io/ imports
nothing above it. A new cycle fails here with the modules that form it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "enhscan"
#: What io/ may import besides itself: errors and the pure leaf modules below it.
IO_MAY_IMPORT = {"enhscan.errors", "enhscan.calling", "enhscan.intervals", "enhscan.naming",
                 "enhscan.sequence"}  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the enhscan modules it imports (a package's ``from p import m`` counts as
    importing ``p.m`` where that is a module, else ``p``)."""
    mods = modules()

    def known(name: str) -> str:
        while name not in mods:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {known(a.name) for a in node.names if a.name.startswith("enhscan")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                if base.startswith("enhscan"):
                    edges |= {known(f"{base}.{a.name}") for a in node.names}
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_io_imports_nothing_above_it() -> None:
    graph = import_graph()
    above = {
        name: sorted(e for e in edges if not e.startswith("enhscan.io") and e not in IO_MAY_IMPORT)
        for name, edges in graph.items()
        if name.startswith("enhscan.io")
    }
    assert {name: e for name, e in above.items() if e} == {}

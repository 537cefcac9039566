"""No import cycles in ``src/ocikit``, read from the source with :mod:`ast`.

The graph has one node per module (a package is its ``__init__``) and an edge for every
``import`` and ``from ... import`` statement anywhere in a module: at the top, inside a
function (a lazy import still depends on what it imports), under ``if TYPE_CHECKING:``.
Relative imports are resolved against the importing module. ``from P import n`` is an edge to
the module ``P.n`` when there is one, else to ``P`` (a package's ``__init__``); ``import P.Q``
is an edge to ``P.Q``. The parent packages Python initialises on the way to a module are not
edges (every module would otherwise depend on ``ocikit/__init__``). Imports of anything
outside ``ocikit`` are ignored.

A cycle fails the test with every group of modules that import each other (a strongly
connected component), each shown as one cycle through it with the line of each import, so the
place to cut is visible.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
PACKAGE = "ocikit"


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    is_package: bool


def modules(src: str = SRC, package: str = PACKAGE) -> dict[str, Module]:
    """Every module of ``package`` under ``src``, by dotted name."""
    out: dict[str, Module] = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(src, package)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            out[".".join(parts)] = Module(".".join(parts), path, is_package)
    return out


def _base(module: Module, level: int, name: str | None) -> str:
    """The absolute name a ``from`` import of ``level`` dots and ``name`` means inside ``module``."""
    if level == 0:
        return name or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts = parts[:-1]  # a module's own package is one dot
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def imports(module: Module, known: dict[str, Module]) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in ``module`` that names a known module."""
    with open(module.path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), module.path)
    out: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node.level, node.module)
            for a in node.names:
                target = f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                if target in known and target != module.name:
                    out.append((target, node.lineno))
    return out


def import_graph(src: str = SRC, package: str = PACKAGE) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first import of it}."""
    known = modules(src, package)
    graph: dict[str, dict[str, int]] = {}
    for name, module in known.items():
        edges: dict[str, int] = {}
        for target, line in imports(module, known):
            edges.setdefault(target, line)
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def a_cycle(graph: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One cycle through the first module of a component (shortest, by breadth-first search)."""
    members = set(component)
    start = component[0]
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v]):
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start} in {component}")


def describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_the_source_has_no_import_cycle() -> None:
    graph = import_graph()
    cycles = [f"{describe(graph, a_cycle(graph, c))}   [all of: {', '.join(c)}]" for c in strongly_connected(graph)]
    assert not cycles, "import cycles in src/ocikit (cut one edge of each):\n" + "\n".join(cycles)


def test_the_graph_sees_lazy_relative_and_type_checking_imports(tmp_path) -> None:
    """The reader finds the imports a cycle can hide in, and reports a cycle made of them."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (pkg / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..top import y\nx = 1\n")
    (pkg / "top.py").write_text("def f():\n    from .sub import x\n    return x\ny = 2\n")
    (pkg / "other.py").write_text("import pkg.top\nfrom . import top\n")
    graph = import_graph(str(tmp_path), "pkg")
    assert graph["pkg.sub"] == {"pkg.sub.leaf": 1}
    assert graph["pkg.sub.leaf"] == {"pkg.top": 3}
    assert graph["pkg.top"] == {"pkg.sub": 2}       # a package imported: its __init__
    assert graph["pkg.other"] == {"pkg.top": 1}
    components = strongly_connected(graph)
    assert components == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]
    assert describe(graph, a_cycle(graph, components[0])) == \
        "pkg.sub (line 1) -> pkg.sub.leaf (line 3) -> pkg.top (line 2) -> pkg.sub"

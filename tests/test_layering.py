"""The shape of ``src/ocikit`` that docs/architecture.md draws: no module over 600 lines, no two
modules sharing a file name (a traceback names one place), and the pure core importing nothing
else of ocikit."""

from __future__ import annotations

import ast
import collections
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "ocikit")
MAX_LINES = 600


def _modules() -> list[str]:
    return [os.path.join(d, n) for d, dirs, names in os.walk(ROOT) for n in names
            if n.endswith(".py") and "__pycache__" not in d]


def test_no_module_over_600_lines():
    long = {os.path.relpath(p, ROOT): n for p in _modules()
            if (n := sum(1 for _ in open(p, encoding="utf-8"))) > MAX_LINES}
    assert long == {}, f"split these by concern: {long}"


def test_no_two_modules_share_a_file_name():
    by_name = collections.defaultdict(list)
    for p in _modules():
        if os.path.basename(p) not in ("__init__.py", "__main__.py"):
            by_name[os.path.basename(p)].append(os.path.relpath(p, ROOT))
    assert {n: ps for n, ps in by_name.items() if len(ps) > 1} == {}


def test_the_core_imports_nothing_else_of_ocikit():
    core = os.path.join(ROOT, "core")
    outside = []
    for name in sorted(os.listdir(core)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(core, name), encoding="utf-8").read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level > 1 or (node.module or "").startswith("ocikit")):
                outside.append(f"core/{name}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.startswith("ocikit") for a in node.names):
                outside.append(f"core/{name}:{node.lineno}")
    assert outside == []

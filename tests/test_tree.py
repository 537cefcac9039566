"""The test tree mirrors the source tree (the rule tests/README.md states).

Every test module is ``tests/<package>/test_<module>.py`` for a module (or subpackage) of
``src/ocikit/<package>``, optionally with an ``_<aspect>`` suffix (``_peers`` for round trips
with real peer tools); every test directory is a package (an ``__init__.py``), so two test
modules may share a file name in different directories.
"""

from __future__ import annotations

import os

import ocikit

SRC = os.path.dirname(ocikit.__file__)
TESTS = os.path.dirname(os.path.abspath(__file__))
TREE_WIDE = {"architecture", "import_graph", "public_api", "tree"}
"""Root test modules that check the whole tree rather than one module."""


def _modules(src_dir: str) -> set[str]:
    out = set()
    for name in os.listdir(src_dir):
        if name.endswith(".py") and name != "__init__.py":
            out.add(name[:-3].lstrip("_"))
        elif os.path.isfile(os.path.join(src_dir, name, "__init__.py")):
            out.add(name)
    return out


def _test_dirs() -> list[str]:
    # a directory with no Python file is data (tests/trust/js: the sigstore-js peer and its node_modules)
    return [d for d, dirs, files in os.walk(TESTS) if not os.path.basename(d).startswith((".", "__"))
            and "__pycache__" not in d and "node_modules" not in d.split(os.sep)
            and any(f.endswith(".py") for f in files)]


def test_every_test_directory_is_a_package() -> None:
    assert [d for d in _test_dirs() if not os.path.isfile(os.path.join(d, "__init__.py"))] == []


def test_every_test_module_names_a_module_of_the_mirrored_package() -> None:
    misplaced = []
    for d in _test_dirs():
        rel = os.path.relpath(d, TESTS)
        if rel.split(os.sep)[0] == "helpers":
            continue  # the helpers' own tests
        src_dir = SRC if rel == "." else os.path.join(SRC, rel)
        if not os.path.isdir(src_dir):
            misplaced.append(f"{rel}/: no package src/ocikit/{rel}")
            continue
        modules = _modules(src_dir) | (TREE_WIDE if rel == "." else set())
        for f in sorted(os.listdir(d)):
            if not (f.startswith("test_") and f.endswith(".py")):
                continue
            name = f[len("test_"):-len(".py")]
            if not any(name == m or name.startswith(m + "_") for m in modules):
                misplaced.append(f"{os.path.join(rel, f)}: names no module of src/ocikit/{rel if rel != '.' else ''}")
    assert misplaced == []

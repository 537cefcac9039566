"""Store abilities are declared, never guessed: no ``getattr``/``hasattr`` of an undeclared name.

The rule, checked on every module of ``src/ocikit/ops``, ``src/ocikit/mirror`` and
``src/ocikit/server`` with :mod:`ast`:

- every ``getattr(obj, name[, default])`` and ``hasattr(obj, name)`` must name its attribute
  with a string literal (a computed name cannot be checked);
- the name must be declared in ``src/ocikit/content.py``: a member (method, property,
  field, class attribute or enum member) of one of its classes — the Store protocol, its
  traits and the ability protocols;
- the one exception: ``obj`` is an exception object, which is not a store — a parameter
  annotated with an exception class (one of ``ocikit.core.errors``, or a builtin ``*Error`` /
  ``*Exception``) or a name bound by ``except ... as obj``.

An ability a store may or may not have is a protocol in ``content.py`` tested with
``isinstance``; a fact about what a store accepts is a field of ``StoreTraits``, and every
Store class in ``src/ocikit`` declares its ``traits``.
"""

from __future__ import annotations

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "ocikit")
SCANNED = ("ops", "mirror", "server")


def _parse(path: str) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def declared_in_content(path: str = os.path.join(ROOT, "content.py")) -> set[str]:
    """Every member name of every class in ``content.py``."""
    names: set[str] = set()
    for cls in (n for n in ast.walk(_parse(path)) if isinstance(n, ast.ClassDef)):
        for item in cls.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                names.add(item.name)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                names.add(item.target.id)
            elif isinstance(item, ast.Assign):
                names.update(t.id for t in item.targets if isinstance(t, ast.Name))
    return names


def exception_classes(path: str = os.path.join(ROOT, "core/errors.py")) -> set[str]:
    """The exception classes of ``ocikit.core.errors`` (every class there derives from OcikitError)."""
    return {n.name for n in ast.walk(_parse(path)) if isinstance(n, ast.ClassDef)}


def _annotation_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | \
           {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | \
           {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _is_exception_type(name: str, errors: set[str]) -> bool:
    return name in errors or name.endswith(("Error", "Exception")) or name == "BaseException"


def exception_names(func: ast.AST, errors: set[str]) -> set[str]:
    """Names in ``func`` that hold exception objects: annotated parameters and ``except ... as`` names."""
    out: set[str] = set()
    if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = func.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
            if any(_is_exception_type(n, errors) for n in _annotation_names(arg.annotation)):
                out.add(arg.arg)
    for node in ast.walk(func):
        if isinstance(node, ast.ExceptHandler) and node.name:
            out.add(node.name)
    return out


def violations(tree: ast.Module, where: str, declared: set[str], errors: set[str]) -> list[str]:
    """Every getattr/hasattr in ``tree`` that the rule refuses, as ``where:line: why``."""
    out: list[str] = []

    def visit(node: ast.AST, scope: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope = node
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "hasattr") and len(node.args) >= 2:
            obj, name = node.args[0], node.args[1]
            call = f"{where}:{node.lineno}: {node.func.id}({ast.unparse(obj)}, {ast.unparse(name)})"
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                out.append(f"{call}: the attribute name is computed")
            elif name.value not in declared and not (
                    isinstance(obj, ast.Name) and obj.id in exception_names(scope, errors)):
                out.append(f"{call}: {name.value!r} is not declared in content.py "
                           "(declare it: a StoreTraits field or an ability protocol)")
        for child in ast.iter_child_nodes(node):
            visit(child, scope)

    visit(tree, tree)
    return out


def test_ops_mirror_and_server_look_up_only_declared_abilities() -> None:
    declared, errors = declared_in_content(), exception_classes()
    assert {"traits", "link_blob_from", "abort", "accepts_sparse_index", "referrers_api"} <= declared
    found: list[str] = []
    for package in SCANNED:
        for dirpath, _, filenames in os.walk(os.path.join(ROOT, package)):
            for f in sorted(filenames):
                if f.endswith(".py"):
                    path = os.path.join(dirpath, f)
                    found += violations(_parse(path), os.path.relpath(path, ROOT), declared, errors)
    assert not found, "undeclared look-ups:\n" + "\n".join(found)


def test_the_rule_refuses_what_it_should_and_allows_exceptions() -> None:
    declared, errors = declared_in_content(), exception_classes()
    source = '''
def copy(dst, exc: OcikitError, name):
    a = getattr(dst, "last_link_kind", None)      # 3: undeclared
    b = hasattr(dst, "image_store")               # 4: undeclared
    c = getattr(dst, name)                        # 5: computed
    d = getattr(exc, "challenge", None)           # an exception: allowed
    e = getattr(dst, "abort", None)               # declared (Aborter): allowed
    try:
        pass
    except ValueError as err:
        f = getattr(err, "errno", None)           # an exception: allowed
    g = getattr(err2, "headers", None)            # 12: not known to be an exception
'''
    got = violations(ast.parse(source), "x.py", declared, errors)
    assert [v.split(":")[1] for v in got] == ["3", "4", "5", "12"], got


def store_classes(root: str = ROOT) -> dict[str, ast.ClassDef]:
    """Every class under ``root`` that implements the Store protocol's reading half (``resolve``
    and ``blob_chunks``), by ``path:ClassName``."""
    out: dict[str, ast.ClassDef] = {}
    for dirpath, _, filenames in os.walk(root):
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            path = os.path.join(dirpath, f)
            for cls in (n for n in ast.walk(_parse(path)) if isinstance(n, ast.ClassDef)):
                methods = {m.name for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
                if {"resolve", "blob_chunks"} <= methods:
                    out[f"{os.path.relpath(path, root)}:{cls.name}"] = cls
    return out


def _declares_traits(cls: ast.ClassDef) -> bool:
    """``traits = ...`` or ``traits: ...`` in the class body, a ``traits`` property, or
    ``self.traits = ...`` in ``__init__`` (traits that follow the store's configuration)."""
    for item in cls.body:
        if isinstance(item, ast.FunctionDef) and item.name == "__init__":
            for node in ast.walk(item):
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Attribute) and t.attr == "traits" and isinstance(t.value, ast.Name)
                        and t.value.id == "self" for t in node.targets):
                    return True
        if isinstance(item, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "traits" for t in item.targets):
            return True
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.target.id == "traits":
            return True
        if isinstance(item, ast.FunctionDef) and item.name == "traits":
            return True
    return False


def test_every_store_class_declares_its_traits() -> None:
    classes = store_classes()
    assert any(k.endswith(":OCILayout") for k in classes) and any(k.endswith(":RegistryStore") for k in classes)
    assert len(classes) >= 8, sorted(classes)
    missing = [name for name, cls in classes.items() if not _declares_traits(cls) and cls.name != "Store"]
    assert not missing, "Store classes without a `traits = StoreTraits(...)` declaration: " + ", ".join(missing)

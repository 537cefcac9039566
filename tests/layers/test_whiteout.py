"""Whiteout planning (pure): classification, the upper set, and removal plans checked against a
model of applying one layer to an in-memory tree, exhaustively with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.errors import LayerInvalid
from ocikit.layers.safepath import clean
from ocikit.layers.whiteout import UpperSet, Whiteout, classify, plan_removal


@pytest.mark.parametrize("rel, expected", [
    ("a/b", None),
    ("a/.wh.b", Whiteout("a/b")),
    (".wh.top", Whiteout("top")),
    ("a/.wh..wh..opq", Whiteout("a", opaque=True)),
    (".wh..wh..opq", Whiteout("", opaque=True)),
    ("a/.wh..wh.plnk", "meta"),
    ("a/.wh..wh.aufs", "meta"),
    ("a/.whb", None),
    ("a/x.wh.b", None),
    ("a/.wh.b.wh.c", Whiteout("a/b.wh.c")),
])
def test_classify(rel, expected) -> None:
    assert classify(rel) == expected


@pytest.mark.parametrize("rel", ["a/.wh.", "a/.wh..", "a/.wh..."])
def test_classify_refuses_empty_or_dot_names(rel) -> None:
    with pytest.raises(LayerInvalid):
        classify(rel)


@pytest.mark.parametrize("name, rel", [
    ("a/b", "a/b"), ("./a/b/", "a/b"), ("/abs/x", "abs/x"), ("../../x", "x"), ("a/../../b", "b"),
    ("a//b/./c", "a/b/c"), ("./", ""), ("/", ""), ("..", ""), ("a/..", ""), (".wh.x", ".wh.x"),
    ("a/.hidden", "a/.hidden"), ("...", "..."), ("a/...", "a/..."),
])
def test_clean(name, rel) -> None:
    assert clean(name) == rel


@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "c.d", ".x"]), max_size=8), st.booleans())
def test_clean_never_climbs_and_is_idempotent(parts, absolute) -> None:
    name = ("/" if absolute else "") + "/".join(parts)
    rel = clean(name)
    assert not rel.startswith("/")
    assert ".." not in rel.split("/") and "." not in rel.split("/") and "" not in rel.split("/") or rel == ""
    assert clean(rel) == rel


def test_upper_set_holds_ancestors() -> None:
    u = UpperSet(["a/b/c"])
    assert "a/b/c" in u and "a/b" in u and "a" in u and "" in u
    assert "a/b/d" not in u and "b" not in u


# ---- a model: a tree as a set of paths with kinds ------------------------------------------------------


def _children(tree: dict[str, str], d: str) -> list[tuple[str, bool]]:
    prefix = d + "/" if d else ""
    out = []
    for p, kind in tree.items():
        if p.startswith(prefix) and p != d and "/" not in p[len(prefix):]:
            out.append((p[len(prefix):], kind == "dir"))
    return out


def _remove(tree: dict[str, str], p: str) -> None:
    for k in [k for k in tree if k == p or k.startswith(p + "/")]:
        del tree[k]


def test_plan_plain_whiteout_of_a_lower_directory() -> None:
    tree = {"a": "dir", "a/x": "file", "a/y": "dir", "a/y/z": "file", "b": "file"}
    plan = plan_removal(Whiteout("a"), UpperSet([""]), lambda d: _children(tree, d), lambda p: p in tree)
    assert plan == ["a"]


def test_plan_whiteout_keeps_what_the_same_layer_wrote() -> None:
    tree = {"a": "dir", "a/old": "file", "a/new": "file", "a/sub": "dir", "a/sub/new2": "file",
            "a/sub/old2": "file"}
    upper = UpperSet(["a/new", "a/sub/new2"])
    plan = plan_removal(Whiteout("a"), upper, lambda d: _children(tree, d), lambda p: p in tree)
    assert sorted(plan) == ["a/old", "a/sub/old2"]


def test_plan_opaque_keeps_the_directory_itself() -> None:
    tree = {"o": "dir", "o/1": "file", "o/d": "dir", "o/d/2": "file"}
    plan = plan_removal(Whiteout("o", opaque=True), UpperSet([""]), lambda d: _children(tree, d),
                        lambda p: p in tree)
    assert sorted(plan) == ["o/1", "o/d"]


def test_plan_whiteout_of_missing_path_is_empty() -> None:
    plan = plan_removal(Whiteout("nope"), UpperSet([""]), lambda d: [], lambda p: False)
    assert plan == []


def test_plan_refuses_to_remove_the_root() -> None:
    with pytest.raises(LayerInvalid):
        plan_removal(Whiteout(""), UpperSet([""]), lambda d: [], lambda p: True)


NAMES = ["a", "b", "c"]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)


@st.composite
def scenario(draw):
    """A lower tree, paths written by the layer, and a whiteout."""
    tree: dict[str, str] = {}
    for p in draw(st.lists(paths, max_size=10)):
        parts = p.split("/")
        ok = True
        for i in range(1, len(parts)):
            anc = "/".join(parts[:i])
            if tree.get(anc, "dir") != "dir":
                ok = False
        if not ok:
            continue
        for i in range(1, len(parts)):
            tree["/".join(parts[:i])] = "dir"
        if p not in tree:
            tree[p] = draw(st.sampled_from(["file", "dir"]))
    written = [p for p in draw(st.lists(st.sampled_from(sorted(tree) or ["a"]), max_size=4)) if p in tree]
    target = draw(st.sampled_from(sorted(tree) or ["a"]))
    opaque = draw(st.booleans()) and tree.get(target) == "dir"
    return tree, written, Whiteout(target, opaque)


@settings(max_examples=300, deadline=None)
@given(scenario())
def test_plan_matches_the_spec_model(sc) -> None:
    """After removal: every path written by the layer survives (with its ancestors); every lower
    path under the whiteout that the layer did not write (nor lies above something it wrote) is gone;
    nothing outside the whiteout's scope is touched."""
    tree, written, wh = sc
    upper = UpperSet([""] + written)
    plan = plan_removal(wh, upper, lambda d: _children(tree, d) if tree.get(d, "dir") == "dir" else [],
                        lambda p: p in tree or p == "")
    after = dict(tree)
    for p in plan:
        _remove(after, p)
    for w in written:
        assert w in after, (tree, written, wh, plan)

    def in_scope(p: str) -> bool:
        if wh.opaque:
            return p.startswith(wh.path + "/") if wh.path else True
        return p == wh.path or p.startswith(wh.path + "/")

    for p in tree:
        if not in_scope(p):
            assert p in after, (p, plan)
        elif p not in upper:
            assert p not in after, (p, tree, written, wh, plan)

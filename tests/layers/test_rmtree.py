"""layers/rmtree: trees removed without recursion and without following a symlink."""

from __future__ import annotations

import os
import sys

import pytest

from ocikit.layers.rmtree import remove_at, remove_tree

from helpers.hostile_layers import bait, deep_chain
from helpers.layers import snapshot


def test_a_tree_deeper_than_the_recursion_limit(tmp_path) -> None:
    top = str(tmp_path / "deep")
    deep_chain(top, sys.getrecursionlimit() + 500)
    remove_tree(top)
    assert os.listdir(tmp_path) == []


def test_symlinks_are_removed_never_followed(tmp_path) -> None:
    outside = tmp_path / "outside"
    before = bait(str(outside))
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for i, where in enumerate((tree, tree / "a", tree / "a" / "b")):
        os.symlink(outside, where / f"dirlink{i}")
        os.symlink(outside / "file", where / f"filelink{i}")
        os.symlink("../../..", where / f"up{i}")
        (where / f"f{i}").write_bytes(b"x")
        os.mkfifo(where / f"fifo{i}")
    remove_tree(str(tree))
    assert sorted(os.listdir(tmp_path)) == ["outside"]
    assert snapshot(str(outside)) == before
    # a symlink given as the tree itself: the link goes, not what it points to
    os.symlink(outside, tmp_path / "link")
    remove_tree(str(tmp_path / "link"))
    assert sorted(os.listdir(tmp_path)) == ["outside"] and snapshot(str(outside)) == before


def test_wide_trees_files_and_missing_names(tmp_path) -> None:
    tree = tmp_path / "wide"
    for i in range(50):
        (tree / f"d{i}" / "e").mkdir(parents=True)
        (tree / f"d{i}" / "e" / "f").write_bytes(b"x")
        (tree / f"g{i}").write_bytes(b"y")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_at(fd, "wide")
        remove_at(fd, "missing")        # nothing there: nothing to do
        (tmp_path / "file").write_bytes(b"z")
        remove_at(fd, "file")
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == []


def test_a_tree_that_moves_under_the_removal_stops_it(tmp_path, monkeypatch) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"keep")
    real_open = os.open

    def moving_open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_open(path, flags, mode, dir_fd=dir_fd)
        if path == "b":           # while inside a/b, a moves away: '..' is no longer where we came from
            os.rename(tree / "a", elsewhere / "a")
        return fd

    monkeypatch.setattr(os, "open", moving_open)
    with pytest.raises(OSError, match="changed"):
        remove_tree(str(tree))
    monkeypatch.undo()
    assert (elsewhere / "keep").read_bytes() == b"keep"

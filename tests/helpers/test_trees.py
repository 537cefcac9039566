"""The tree helpers' own test: a snapshot notices every difference it claims to."""

from __future__ import annotations

import os

from helpers.trees import diff_snapshots, make_tree, snapshot


def test_snapshot_sees_every_difference(tmp_path):
    a = make_tree(str(tmp_path / "a"))
    base = snapshot(a)
    assert base["bin/tool"]["mode"] == "0o4755"
    assert ["bin/tool", "bin/tool-link", "usr/tool-hard"] in base["<hardlinks>"]
    os.chmod(f"{a}/etc/passwd", 0o600)
    assert diff_snapshots(base, snapshot(a)) == ["etc/passwd: " + str(base["etc/passwd"]) + " != " +
                                                 str(snapshot(a)["etc/passwd"])]
    os.setxattr(f"{a}/srv/empty", "user.x", b"1")
    assert "srv/empty" in " ".join(diff_snapshots(base, snapshot(a)))

"""The layer helpers' own test: comparing trees notices every kind of difference it claims to."""

from __future__ import annotations

import os

from helpers.layers import compare_trees


def test_compare_trees_notices_every_kind_of_difference(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        r.mkdir()
        (r / "f").write_bytes(b"same")
        (r / "g").write_bytes(b"same")
        os.symlink("f", r / "l")
        (r / "d").mkdir()
    assert compare_trees(str(a), str(b)) == []
    (b / "f").write_bytes(b"other")
    os.chmod(b / "g", 0o600)
    os.unlink(b / "l")
    os.symlink("g", b / "l")
    os.chown(b / "d", 1, 1) if os.geteuid() == 0 else None
    os.link(b / "g", b / "hard")
    (a / "hard").write_bytes(b"same")
    os.setxattr(a / "f", "user.k", b"v")
    text = "\n".join(compare_trees(str(a), str(b)))
    assert "f: content/target" in text
    assert "g: mode" in text
    assert "l: content/target 'f' != 'g'" in text
    assert "hard: hardlink-of" in text
    assert "f: xattrs" in text
    if os.geteuid() == 0:
        assert "d: uid" in text

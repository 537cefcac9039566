"""The job's state file: written when it changed, left alone by a re-run that changed nothing."""

from __future__ import annotations

import json
import os

from ocikit.core.digest import Digest
from ocikit.mirror.state import MirrorState, TagRecord

TARGET = "docker://127.0.0.1:5000/m"
D1 = Digest("sha256:" + "1" * 64)
D2 = Digest("sha256:" + "2" * 64)


def rec(digest: Digest = D1) -> TagRecord:
    return TagRecord("apps/a", "1.0", digest, digest, "docker://src/apps/a:1.0")


def test_unchanged_state_is_not_rewritten_and_a_change_is(tmp_path):
    path = str(tmp_path / "s.json")
    st = MirrorState.load(path, TARGET)
    st.record(rec())
    st.save()
    ino = os.stat(path).st_ino  # an atomic write replaces the file: a new inode

    again = MirrorState.load(path, TARGET)
    again.record(rec())  # what a no-op re-run records: what the file holds
    assert not again.dirty
    again.save()
    assert os.stat(path).st_ino == ino

    again.record(rec(D2))
    assert again.dirty
    again.save()
    assert os.stat(path).st_ino != ino
    assert json.load(open(path))["tags"][0]["digest"] == str(D2)
    assert MirrorState.load(path, TARGET).get("apps/a", "1.0") == rec(D2)


def test_forget_marks_the_state_changed_and_a_missing_file_is_written(tmp_path):
    path = str(tmp_path / "s.json")
    st = MirrorState.load(path, TARGET)
    st.save()  # nothing recorded, no file yet: written (an empty state)
    assert json.load(open(path))["tags"] == []
    st.record(rec())
    st.save()
    st = MirrorState.load(path, TARGET)
    st.forget("apps/a", "9.9")  # not there: nothing changes
    assert not st.dirty
    st.forget("apps/a", "1.0")
    assert st.dirty
    st.save()
    assert MirrorState.load(path, TARGET).tags == {}

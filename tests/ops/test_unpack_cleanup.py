"""A failed unpack removes what it wrote (unless asked to keep it), even trees deeper than the
recursion limit and trees full of symlinks pointing out; and fails quietly from a registry."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading

import pytest

from ocikit.errors import LayerInvalid, OcikitError
from ocikit.ops.unpack import MARKER, UnpackOptions, unpack

from helpers.hostile_layers import bait, deep_chain
from helpers.layers import D, F, H, S, image_from_tars, snapshot, tar_bytes

BAD = [F("a", b"a"), H("h", "missing")]          # a layer that fails: a hardlink to nothing


def _image(tmp_path, layers, name: str = "layout") -> str:
    layout = str(tmp_path / name)
    image_from_tars(layout, "t", [tar_bytes(x) for x in layers])
    return layout


def test_a_failed_unpack_removes_what_it_wrote(tmp_path) -> None:
    layout = _image(tmp_path, [[D("d/"), F("d/f", b"x" * 100_000)], BAD])
    with pytest.raises(LayerInvalid, match="missing") as e:
        unpack(f"oci:{layout}:t", str(tmp_path / "root"))
    assert sorted(os.listdir(tmp_path)) == ["layout"]
    assert "left in" not in str(e.value)


def test_keep_partial_keeps_it_marked(tmp_path) -> None:
    layout = _image(tmp_path, [[F("f", b"x")], BAD])
    with pytest.raises(LayerInvalid) as e:
        unpack(f"oci:{layout}:t", str(tmp_path / "root"), UnpackOptions(keep_partial=True))
    partial = tmp_path / "root.partial"
    assert f"left in {partial}" in str(e.value)
    marker = json.loads((partial / MARKER).read_text())
    assert marker["status"] == "incomplete" and "missing" in marker["error"]
    assert (partial / "target" / "f").read_bytes() == b"x" and not (tmp_path / "root").exists()
    # the next unpack replaces our own staging directory
    good = _image(tmp_path, [[F("g", b"g")]], "good")
    unpack(f"oci:{good}:t", str(tmp_path / "root"))
    assert os.listdir(tmp_path / "root") == ["g"] and not partial.exists()


def test_a_leftover_partial_deeper_than_the_recursion_limit_is_removed(tmp_path) -> None:
    partial = tmp_path / "root.partial"
    deep_chain(str(partial), sys.getrecursionlimit() + 200)
    (partial / MARKER).write_text(json.dumps({"status": "incomplete"}))
    layout = _image(tmp_path, [[F("f", b"x")]])
    unpack(f"oci:{layout}:t", str(tmp_path / "root"))
    assert os.listdir(tmp_path / "root") == ["f"] and not partial.exists()


def test_removal_never_follows_a_symlink_out(tmp_path) -> None:
    sentinel = tmp_path / "sentinel"
    before = bait(str(sentinel))
    layout = _image(tmp_path, [
        [S("abs", str(sentinel)), S("rel", "../../../sentinel"), D("d/"), S("d/up", "../.."),
         S("d/file", str(sentinel / "file")), F("d/own", b"x")],
        BAD])
    with pytest.raises(LayerInvalid):
        unpack(f"oci:{layout}:t", str(tmp_path / "root"))
    assert sorted(os.listdir(tmp_path)) == ["layout", "sentinel"]
    assert snapshot(str(sentinel)) == before


def test_a_partial_that_is_not_ours_is_left_alone(tmp_path) -> None:
    (tmp_path / "root.partial").mkdir()
    (tmp_path / "root.partial" / "mine").write_text("keep")
    layout = _image(tmp_path, [[F("f")]])
    with pytest.raises(OcikitError, match="not an ocikit staging directory"):
        unpack(f"oci:{layout}:t", str(tmp_path / "root"))
    assert (tmp_path / "root.partial" / "mine").read_text() == "keep"


# ---- from a registry ------------------------------------------------------------------------------


def _remote_failure_image(tmp_path, registry) -> str:
    from ocikit.ops.copy import copy

    rnd = os.urandom(1 << 20)
    big = [F(f"f{i}", rnd) for i in range(12)]
    # the first layer fails early while the next one is streaming from the registry
    layout = _image(tmp_path, [[F("a", b"a"), H("h", "missing")] + big, big, big])
    ref = f"docker://{registry.host}/fail/img:t"
    copy(f"oci:{layout}:t", ref)
    return ref


@pytest.mark.peer
def test_a_failed_remote_unpack_is_quiet(tmp_path, registry, ocikit) -> None:
    ref = _remote_failure_image(tmp_path, registry)
    unraisable: list[object] = []
    thread_errors: list[object] = []
    old_hook, old_thread_hook = sys.unraisablehook, threading.excepthook
    sys.unraisablehook, threading.excepthook = unraisable.append, thread_errors.append
    try:
        for i in range(2):
            with pytest.raises(LayerInvalid, match="missing"):
                unpack(ref, str(tmp_path / f"api{i}"))
            gc.collect()
    finally:
        sys.unraisablehook, threading.excepthook = old_hook, old_thread_hook
    assert unraisable == [] and thread_errors == []
    assert not [t for t in threading.enumerate() if t.name.startswith("ocikit-layer")]
    for i in range(2):
        p = ocikit("unpack", ref, str(tmp_path / f"cli{i}"), check=False)
        err = p.stderr.decode().strip()
        assert p.returncode == 1 and err.startswith("ocikit: error:") and "missing" in err
        assert len(err.splitlines()) == 1, err
        p = subprocess.run([sys.executable, "-X", "dev", "-c", "import sys; from ocikit.ops.unpack import unpack\n"
                            f"try: unpack({ref!r}, {str(tmp_path / f'dev{i}')!r})\n"
                            "except Exception as e: print(type(e).__name__)"], capture_output=True, timeout=120)
        assert p.stdout.decode().strip() == "LayerInvalid"
        assert "Event loop is closed" not in p.stderr.decode() and "Unclosed" not in p.stderr.decode(), \
            p.stderr.decode()[-2000:]
    assert sorted(os.listdir(tmp_path)) == ["layout", f"registry-{registry.host.split(':')[1]}"]

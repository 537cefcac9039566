"""A copy killed with kill -9 leaves its temp blob behind; the re-run takes it over and a
layout gc removes an abandoned one (issue 15, defect 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from ocikit.durable import TMP_PREFIX
from ocikit.testing import LayerSpec, write_image
from ocikit.transports.layout import OCILayout

from helpers.app_servers import slow_proxy
from helpers.cli import OCIKIT, run_ocikit
from helpers.servers import start_ocikit_serve


def _temps(path: str) -> list[str]:
    d = os.path.join(path, "blobs", "sha256")
    return sorted(n for n in os.listdir(d) if n.startswith(TMP_PREFIX)) if os.path.isdir(d) else []


def _kill_mid_blob(src: str, dst: str) -> list[str]:
    """Start ``ocikit copy src oci:dst``, kill -9 it once a temp blob has bytes; its temp files."""
    proc = subprocess.Popen([*OCIKIT, "copy", src, f"oci:{dst}:v1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            temps = _temps(dst)
            if any(os.path.getsize(os.path.join(dst, "blobs", "sha256", t)) > 0 for t in temps):
                break
            if proc.poll() is not None:
                pytest.fail("the copy ended before it could be killed mid-blob")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    return _temps(dst)


@pytest.fixture
def slow_source(tmp_path):
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_image(lay, "v1", layers=(LayerSpec(random_bytes=6_000_000),), seed=15)
    with start_ocikit_serve(str(tmp_path)) as srv:
        run_ocikit("copy", f"oci:{lay.path}:v1", f"docker://{srv.host}/slow/img:v1")
        with slow_proxy(srv.host, 0.05) as proxy:
            yield f"docker://{proxy}/slow/img:v1", f"docker://{srv.host}/slow/img:v1"


def test_a_killed_copy_leaves_a_temp_that_the_rerun_takes_over(slow_source, tmp_path):
    slow, fast = slow_source
    dst = str(tmp_path / "dst")
    left = _kill_mid_blob(slow, dst)
    assert left, "a killed copy leaves its temp blob"
    run_ocikit("copy", fast, f"oci:{dst}:v1")
    assert _temps(dst) == []
    assert OCILayout(dst).validate() == []


def test_layout_gc_removes_a_killed_copys_temp(slow_source, tmp_path):
    slow, _ = slow_source
    dst = str(tmp_path / "dst")
    left = _kill_mid_blob(slow, dst)
    assert left
    out = run_ocikit("layout", "gc", "--grace", "3600", dst, text=True)
    assert _temps(dst) == left, out.stdout  # younger than the grace: kept
    run_ocikit("layout", "gc", dst)
    assert _temps(dst) == []

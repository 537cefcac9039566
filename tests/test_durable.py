"""ocikit.durable: one rule for temp files, flushes, renames, locks and a full disk.

A full disk is made two ways: ``ENOSPC`` (or ``EDQUOT``) injected at the module's two
primitives (``write_fully``, ``sync_data``) in this process, and a real 2 MiB tmpfs that the
CLI and ``ocikit serve`` fill in subprocesses. Either way a layout write, a server upload, a
build and an artifact pull give :class:`DiskFull` (the CLI: one line, exit 1), leave no temp
file and no final name over a partial file, and leave ``index.json`` as it was.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import threading
import urllib.request
from typing import Iterator

import pytest

from ocikit import durable
from ocikit.core.digest import Digest, digest_file
from ocikit.core.errors import DiskFull
from ocikit.ops.artifacts import apull, apush
from ocikit.ops.build import BuildRequest, build
from ocikit.ops.copy import acopy
from ocikit.testing import LayerSpec, write_image
from ocikit.transports.layout import OCILayout

from helpers.mounts import mounted_tmpfs
from helpers.cli import run_ocikit
from helpers.servers import free_port, start_ocikit_serve

BIG = 3 << 20   # more than the 2 MiB tmpfs holds


def _full(err: int = errno.ENOSPC):  # type: ignore[no-untyped-def]
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(err, os.strerror(err))
    return fail


def temp_files(root: str) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names if n.startswith(durable.TMP_PREFIX)]


def assert_layout_whole(lay_path: str, index_before: bytes) -> None:
    """index.json as it was, the layout valid, and every blob file complete (its name is its digest)."""
    lay = OCILayout(lay_path)
    assert lay.read_index_raw() == index_before
    assert lay.validate() == []
    assert temp_files(lay_path) == []
    blobs = os.path.join(lay_path, "blobs", "sha256")
    for name in os.listdir(blobs):
        assert digest_file(os.path.join(blobs, name))[0] == f"sha256:{name}", name


def one_line_disk_full(p: subprocess.CompletedProcess) -> str:
    err = p.stderr.decode()
    assert p.returncode == 1, (p.returncode, err)
    assert err.count("\n") == 1 and err.startswith("ocikit: error: ") and "Traceback" not in err, err
    assert "no space left on device" in err, err
    return err


# ---- the rules, unit by unit ---------------------------------------------------------------------


def test_temp_names_are_hidden_beside_the_final_name(tmp_path) -> None:
    a, b = durable.temp_path(str(tmp_path), "index.json"), durable.temp_path(str(tmp_path))
    assert os.path.dirname(a) == str(tmp_path) and os.path.basename(a).startswith(".tmp-index.json-")
    assert os.path.basename(b).startswith(durable.TMP_PREFIX) and a != durable.temp_path(str(tmp_path), "index.json")


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path) -> None:
    path = str(tmp_path / "f")
    durable.atomic_write(path, b"old")
    with pytest.raises(RuntimeError, match="writer broke"):
        with durable.publishing(path) as t:
            t.write(b"new, half")
            raise RuntimeError("writer broke")
    assert open(path, "rb").read() == b"old" and temp_files(str(tmp_path)) == []
    durable.atomic_write(path, b"new", mode=0o600)
    assert open(path, "rb").read() == b"new" and os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("primitive", ["write_fully", "sync_data"])
@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_or_quota_is_DiskFull(tmp_path, monkeypatch, primitive, err) -> None:
    path = str(tmp_path / "sub" / "f")
    durable.atomic_write(path, b"old")
    monkeypatch.setattr(durable, primitive, _full(err))
    with pytest.raises(DiskFull, match="no space left on device writing .*sub/f") as e:
        durable.atomic_write(path, b"new" * 1000)
    assert e.value.status == 503 and e.value.to_registry_error()["detail"] == {"reason": "DISK_FULL"}
    assert open(path, "rb").read() == b"old" and temp_files(str(tmp_path)) == []


def test_other_errors_stay_what_they_are(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(durable, "write_fully", _full(errno.EIO))
    with pytest.raises(OSError, match="Input/output error") as e:
        durable.atomic_write(str(tmp_path / "f"), b"x")
    assert not isinstance(e.value, DiskFull) and os.listdir(tmp_path) == []


def test_lock_serialises_writers(tmp_path) -> None:
    order: list[str] = []
    inside = threading.Event()

    def other() -> None:
        with durable.lock(str(tmp_path)):
            order.append("other")

    with durable.lock(str(tmp_path)):
        t = threading.Thread(target=other)
        t.start()
        inside.wait(0.2)       # give the other writer every chance to get in (it must not)
        order.append("first")
    t.join(10)
    assert order == ["first", "other"]
    with durable.lock(str(tmp_path / "lockfile")):   # a lock file is made when missing
        pass
    assert os.path.isfile(tmp_path / "lockfile")


def test_flock_dir_shared_holders_together_exclusive_alone(tmp_path) -> None:
    import fcntl

    def can(operation: int) -> bool:
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    a, b = durable.flock_dir(str(tmp_path), shared=True), durable.flock_dir(str(tmp_path), shared=True)
    assert can(fcntl.LOCK_SH) and not can(fcntl.LOCK_EX)
    os.close(a)
    assert not can(fcntl.LOCK_EX)  # one shared holder left: closing one descriptor does not free the others
    os.close(b)
    ex = durable.flock_dir(str(tmp_path))
    assert not can(fcntl.LOCK_SH)
    os.close(ex)
    assert can(fcntl.LOCK_EX)
    with pytest.raises(FileNotFoundError):
        durable.flock_dir(str(tmp_path / "missing"))
    assert not os.path.exists(tmp_path / "missing")


def test_write_stream_hashes_writes_and_reports_a_background_flush_error(tmp_path, monkeypatch) -> None:
    from ocikit.core.digest import Digester

    monkeypatch.setattr(durable, "BATCH", 1 << 16)
    parts = [os.urandom(n) for n in (1, 70_000, 0, 200_000, 5)]

    async def chunks():  # type: ignore[no-untyped-def]
        for p in parts:
            yield p

    path = str(tmp_path / "f")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        d = Digester()
        assert asyncio.run(durable.write_stream(fd, chunks(), d, sync_every=1 << 16)) == sum(map(len, parts))
    finally:
        os.close(fd)
    assert open(path, "rb").read() == b"".join(parts) and d.digest() == Digest.of(b"".join(parts))
    monkeypatch.setattr(durable, "sync_data", _full())
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as e:
            asyncio.run(durable.write_stream(fd, chunks(), None, sync_every=1 << 16))
        assert durable.is_disk_full(e.value)
    finally:
        os.close(fd)


def test_write_from_thread_hashes_writes_reports_and_a_background_flush_error(tmp_path, monkeypatch) -> None:
    from ocikit.core.digest import Digester

    parts = [os.urandom(n) for n in (1, 70_000, 0, 200_000, 5)]
    threads: set[str] = set()

    def produce(sink) -> None:  # type: ignore[no-untyped-def]
        threads.add(threading.current_thread().name)
        for p in parts:
            if p:
                sink(memoryview(p))

    path = str(tmp_path / "f")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    ends: list[int] = []
    try:
        os.write(fd, b"head")
        d = Digester()
        end = asyncio.run(durable.write_from_thread(fd, produce, d, abort=lambda: None, offset=4,
                                                    sync_every=1 << 16,
                                                    written=lambda end, piece: ends.append(end)))
    finally:
        os.close(fd)
    whole = b"".join(parts)
    assert end == 4 + len(whole) and ends == [5, 70_005, 270_005, 270_010] and threads == {"ocikit-fill"}
    assert open(path, "rb").read() == b"head" + whole and d.digest() == Digest.of(whole)
    monkeypatch.setattr(durable, "sync_data", _full())
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        with pytest.raises(OSError) as e:
            asyncio.run(durable.write_from_thread(fd, produce, None, abort=lambda: None, sync_every=1 << 16))
        assert durable.is_disk_full(e.value)
    finally:
        os.close(fd)


def test_write_from_thread_cancelled_aborts_the_producer_and_waits_for_it(tmp_path) -> None:
    started, stop = threading.Event(), threading.Event()
    events: list[str] = []

    def produce(sink) -> None:  # type: ignore[no-untyped-def]
        sink(memoryview(b"x" * 1000))
        started.set()
        stop.wait(30)
        events.append("producer ended")
        raise ConnectionAbortedError("aborted")

    def abort() -> None:
        events.append("abort")
        stop.set()

    async def run() -> None:
        fd = os.open(str(tmp_path / "f"), os.O_WRONLY | os.O_CREAT)
        try:
            task = asyncio.create_task(durable.write_from_thread(fd, produce, None, abort=abort))
            assert await asyncio.to_thread(started.wait, 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert events == ["abort", "producer ended"]  # before the caller may close fd
        finally:
            os.close(fd)
    asyncio.run(run())


def test_write_from_thread_cancelled_twice_still_waits_for_a_running_flush(tmp_path, monkeypatch) -> None:
    """A cancellation that comes while a background flush runs, and another while it is waited
    for: the caller gets its CancelledError only once the flush is over (it may close fd then)."""
    flushing, release = threading.Event(), threading.Event()
    events: list[str] = []

    def slow_sync(fd: int) -> None:
        flushing.set()
        release.wait(30)
        events.append("flush ended")

    monkeypatch.setattr(durable, "sync_data", slow_sync)

    stop = threading.Event()

    def produce(sink) -> None:  # type: ignore[no-untyped-def]
        sink(memoryview(b"x" * 2048))  # past sync_every: a flush starts in the background
        stop.wait(30)  # until aborted: the producer ends at once, the flush goes on
        raise ConnectionAbortedError("aborted")

    async def run() -> None:
        fd = os.open(str(tmp_path / "f"), os.O_WRONLY | os.O_CREAT)
        try:
            task = asyncio.create_task(durable.write_from_thread(fd, produce, None, abort=stop.set,
                                                                 sync_every=1024))
            assert await asyncio.to_thread(flushing.wait, 30)
            task.cancel()
            await asyncio.sleep(0.1)
            task.cancel()  # while the first cancellation waits
            await asyncio.sleep(0.1)
            assert not task.done()
            release.set()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert events == ["flush ended"]
        finally:
            os.close(fd)
    asyncio.run(run())


# ---- the four writers, ENOSPC injected -------------------------------------------------------------


@pytest.fixture
def images(tmp_path) -> OCILayout:
    """A layout with ``small`` (1 KiB layer) and ``big`` (a 3 MiB random layer)."""
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_image(lay, "small", seed=1)
    write_image(lay, "big", seed=2, layers=[LayerSpec(random_bytes=BIG)])
    return lay


def _big_layer(lay: OCILayout) -> str:
    m = json.loads(lay.get_manifest_sync("big").raw)
    return m["layers"][0]["digest"].split(":", 1)[1]


PRIMITIVES = ["write_fully", "sync_data"]


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_layout_write_injected(tmp_path, monkeypatch, images, primitive) -> None:
    archive = str(tmp_path / "big.tar")   # an archive source: its blobs stream into the layout
    asyncio.run(acopy(f"oci:{images.path}:big", f"oci-archive:{archive}:big"))
    dst = str(tmp_path / "dst")
    asyncio.run(acopy(f"oci:{images.path}:small", f"oci:{dst}:small"))
    before = OCILayout(dst).read_index_raw()
    monkeypatch.setattr(durable, primitive, _full())
    with pytest.raises(DiskFull, match=f"no space left on device writing blob sha256:.* to oci:{dst}"):
        asyncio.run(acopy(f"oci-archive:{archive}:big", f"oci:{dst}:big"))
    monkeypatch.undo()
    assert_layout_whole(dst, before)


async def _serve_in_process(root: str, port: int):  # type: ignore[no-untyped-def]
    from aiohttp import web

    from ocikit.server.app import create_app
    from ocikit.server.serve_config import ServerConfig

    runner = web.AppRunner(create_app(ServerConfig(listen=f"127.0.0.1:{port}", root=root, fsync=True,
                                                   access_log=False)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _server_leftovers(root: str, hexdigest: str) -> list[str]:
    """Temp files, and any path outside upload spools that names the blob that did not fit."""
    bad = temp_files(root)
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel.split(os.sep)[0] == "uploads":
            continue
        bad += [os.path.join(d, n) for n in dirs + names if hexdigest in n]
    return bad


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_server_upload_injected(tmp_path, monkeypatch, images, primitive) -> None:
    root, port = str(tmp_path / "reg"), free_port()
    repo = f"docker://127.0.0.1:{port}/full/app"

    async def scenario() -> None:
        runner = await _serve_in_process(root, port)
        try:
            monkeypatch.setattr(durable, primitive, _full())
            with pytest.raises(DiskFull, match="no space left on device"):
                await acopy(f"oci:{images.path}:big", f"{repo}:big")
            monkeypatch.undo()
            # the server stayed up and takes the next push
            await acopy(f"oci:{images.path}:small", f"{repo}:small")
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert _server_leftovers(root, _big_layer(images)) == []


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_build_injected(tmp_path, monkeypatch, primitive) -> None:
    src = tmp_path / "tree"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(BIG))
    out = str(tmp_path / "out")
    build(BuildRequest(target=f"oci:{out}:old", layers=[str(tmp_path / "tree")]))
    before = OCILayout(out).read_index_raw()
    (src / "more.txt").write_text("a new layer")
    monkeypatch.setattr(durable, primitive, _full())
    with pytest.raises(DiskFull, match=f"no space left on device writing .*oci:{out}"):
        build(BuildRequest(target=f"oci:{out}:new", layers=[str(src)]))
    monkeypatch.undo()
    assert_layout_whole(out, before)


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_artifact_pull_injected(tmp_path, monkeypatch, primitive) -> None:
    f = tmp_path / "report.bin"
    f.write_bytes(os.urandom(BIG))
    ref = f"oci:{tmp_path / 'art'}:v1"
    asyncio.run(apush(ref, [str(f)], "application/x.test"))
    out = tmp_path / "pulled"
    monkeypatch.setattr(durable, primitive, _full())
    with pytest.raises(DiskFull, match="no space left on device writing .*report.bin"):
        asyncio.run(apull(ref, str(out)))
    monkeypatch.undo()
    assert os.listdir(out) == []


# ---- the four writers on a real, tiny tmpfs (the CLI and ocikit serve in subprocesses) --------------


@pytest.fixture
def tiny(tmp_path) -> Iterator[str]:
    """A 2 MiB tmpfs (root only; skipped where mounting is impossible)."""
    with mounted_tmpfs(str(tmp_path / "tiny"), "2m") as mnt:
        yield mnt


def test_layout_write_on_a_full_tmpfs(tmp_path, tiny, images) -> None:
    archive = str(tmp_path / "big.tar")
    run_ocikit("copy", f"oci:{images.path}:big", f"oci-archive:{archive}:big")
    dst = os.path.join(tiny, "dst")
    run_ocikit("copy", f"oci:{images.path}:small", f"oci:{dst}:small")
    before = OCILayout(dst).read_index_raw()
    err = one_line_disk_full(run_ocikit("copy", f"oci-archive:{archive}:big", f"oci:{dst}:big", check=False))
    assert f"oci:{dst}" in err
    assert_layout_whole(dst, before)
    # the archive's blobs link in from another filesystem: copied, and the disk fills there too
    err = one_line_disk_full(run_ocikit("copy", f"oci:{images.path}:big", f"oci:{dst}:big", check=False))
    assert_layout_whole(dst, before)


def test_server_upload_on_a_full_tmpfs(tmp_path, tiny, images) -> None:
    with start_ocikit_serve(str(tmp_path), root=os.path.join(tiny, "reg"), fsync=True) as srv:
        repo = f"docker://{srv.host}/full/app"
        one_line_disk_full(run_ocikit("copy", f"oci:{images.path}:big", f"{repo}:big", check=False))
        assert srv.proc.poll() is None
        with urllib.request.urlopen(f"{srv.url}/v2/", timeout=10) as r:
            assert r.status == 200
        run_ocikit("copy", f"oci:{images.path}:small", f"{repo}:small")   # still takes what fits
        assert _server_leftovers(srv.root, _big_layer(images)) == []


def test_build_on_a_full_tmpfs(tmp_path, tiny) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    small.mkdir()
    big.mkdir()
    (small / "a.txt").write_text("small")
    (big / "data.bin").write_bytes(os.urandom(BIG))
    out = os.path.join(tiny, "out")
    run_ocikit("build", "-o", f"oci:{out}:old", str(small))
    before = OCILayout(out).read_index_raw()
    one_line_disk_full(run_ocikit("build", "-o", f"oci:{out}:new", str(big), check=False))
    assert_layout_whole(out, before)


def test_artifact_pull_on_a_full_tmpfs(tmp_path, tiny) -> None:
    f = tmp_path / "report.bin"
    f.write_bytes(os.urandom(BIG))
    ref = f"oci:{tmp_path / 'art'}:v1"
    run_ocikit("artifact", "push", ref, str(f), "--artifact-type", "application/x.test")
    out = os.path.join(tiny, "pulled")
    err = one_line_disk_full(run_ocikit("artifact", "pull", ref, out, check=False))
    assert "report.bin" in err and os.listdir(out) == []


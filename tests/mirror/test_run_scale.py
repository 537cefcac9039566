"""A fleet-sized job: 1,000 small images sharing base layers, registry -> ocikit serve.

Killed with kill -9 at three random points of the transfer and re-run, the job finishes; no
blob a run verified (journaled) is uploaded again (counted in the target's access log); every
run's peak RSS stays under 300 MB; ``mirror verify`` passes; a no-op re-run skips every image.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from asyncio import run as arun

import pytest

from ocikit.memtune import peak_rss_kb
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage
from ocikit.server.storage.repo_store import RepositoryStore

from helpers.cli import OCIKIT, run_ocikit
from helpers.images import write_app
from helpers.servers import start_ocikit_serve, uploaded_blobs

pytestmark = pytest.mark.slow
N = 1000
PER_REPO = 10
RSS_LIMIT_KB = 300 * 1024


def ref(i: int) -> str:
    return f"apps/app{i // PER_REPO:03d}:v{i % PER_REPO}"


def populate(root: str) -> None:
    """N images written straight into a registry root (100 repositories of 10 tags each)."""
    async def go() -> None:
        storage = RegistryStorage(FilesystemDriver(root, fsync=False))
        for i in range(N):
            name, tag = ref(i).split(":")
            await write_app(RepositoryStore(storage, name), tag, i, extra_bytes=256)
    arun(go())


def journal_blobs(path: str) -> set[tuple[str, str]]:
    """(key, digest) of every complete blob record (a torn last line is not one)."""
    if not os.path.exists(path):
        return set()
    out = set()
    with open(path) as f:
        for line in f:
            if line.startswith('{"t":"blob"') and line.endswith("}\n"):
                rec = json.loads(line)
                out.add((rec["key"], rec["digest"]))
    return out


def start(args: list[str], out_path: str) -> subprocess.Popen:
    with open(out_path, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)




def test_thousand_images_killed_three_times_resume_and_verify(tmp_path):
    src_root = str(tmp_path / "src-root")
    populate(src_root)
    journal, state = str(tmp_path / "journal"), str(tmp_path / "state.json")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    # 2,200 placements in all: 2,002 blobs moved (1,000 configs, 1,000 own layers, 2 shared), 198 mounts
    points = sorted(rng.sample(range(100, 2000), 3))
    peaks = []
    with start_ocikit_serve(str(tmp_path), root=src_root) as src, start_ocikit_serve(str(tmp_path), quiet=False) as dst:
        cfg = tmp_path / "m.yaml"
        cfg.write_text("images:\n" + "".join(f"  - source: docker://{src.host}/{ref(i)}\n" for i in range(N)))
        args = [*OCIKIT, "--format", "json", "mirror", "--config", str(cfg), "--to", f"docker://{dst.host}/m",
                "--journal", journal, "--state", state]
        for n, point in enumerate(points):
            proc = start(args, str(tmp_path / f"killed-{n}.out"))
            deadline = time.monotonic() + 120
            while len(journal_blobs(journal)) < point:
                assert proc.poll() is None, open(tmp_path / f"killed-{n}.out").read()[-3000:]
                assert time.monotonic() < deadline, f"seed {seed}: no progress to {point}"
                time.sleep(0.05)
            peaks.append(peak_rss_kb(proc.pid))  # its own peak so far (a killed run writes no report)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        verified = journal_blobs(journal)
        assert len(verified) >= points[-1], f"seed {seed}"
        final = start(args, str(tmp_path / "final.out"))
        rc = final.wait()
        text = open(tmp_path / "final.out").read()
        assert rc == 0, text[-3000:]
        rep = json.loads(text)
        peaks.append(rep["peakRssKb"])
        assert rep["ok"] and rep["blobs"]["resent"] == 0, f"seed {seed}"
        assert not set(rep["blobs"]["movedDigests"]) & {d for _k, d in verified}, f"seed {seed}"
        assert sum(1 for i in rep["images"] if i["status"] in ("ok", "unchanged", "done-earlier")) == N
        run_ocikit("mirror", "verify", "--config", str(cfg), "--to", f"docker://{dst.host}/m", text=True)
        # a no-op re-run: every image unchanged, nothing planned
        again = start([*OCIKIT, "--format", "json", "mirror", "--config", str(cfg), "--to", f"docker://{dst.host}/m",
                       "--journal", journal, "--state", state], str(tmp_path / "again.out"))
        assert again.wait() == 0
        rep2 = json.loads(open(tmp_path / "again.out").read())
        assert rep2["unchanged"] == N and rep2["plan"]["uniqueBlobs"] == 0
        log = open(dst.log).read()
    # the target's own log: no blob was uploaded twice to the registry (a blob is stored once;
    # mounts into the other repositories are not uploads)
    puts = uploaded_blobs(log)
    assert len(puts) == 2002, (seed, len(puts))
    assert all(n == 1 for n in puts.values()), (seed, {d: n for d, n in puts.items() if n > 1})
    assert all(p is not None and 0 < p < RSS_LIMIT_KB for p in peaks), (seed, peaks)

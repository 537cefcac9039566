"""A bounded soak of ``ocikit serve`` (issue 15): several clients mixing pushes, pulls, deletes
and tag listings while ``ocikit registry gc`` runs beside them, for a fixed number of requests.

Afterwards every acknowledged (and not deleted) push pulls digest-exact, every stored blob
hashes to its name, and the server's RSS has not grown past a bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import subprocess
import sys

import aiohttp

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.model import Descriptor, build_manifest, canonical_json

from helpers.servers import start_ocikit_serve
from helpers.rawhttp import Client, PushedImage

CLIENTS = 4
OPERATIONS = 60  # per client
RSS_GROWTH_BOUND = 96 << 20


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _pull_exact(c: Client, img: PushedImage) -> None:
    async with c.s.get(c.url(f"/v2/{img.name}/manifests/{img.digest}"),
                       headers={"Accept": img.media_type}) as r:
        assert r.status == 200, (img.name, img.digest, r.status)
        assert await r.read() == img.raw
    for d, data in img.blobs.items():
        async with c.s.get(c.url(f"/v2/{img.name}/blobs/{d}")) as r:
            assert r.status == 200, (img.name, d, r.status)
            assert await r.read() == data


async def _push(c: Client, name: str, tag: str, base: bytes, size: int) -> PushedImage:
    """An image whose first layer is ``base``, shared by every client's images as fleets share bases."""
    datas = (base, os.urandom(size))
    layers = [Descriptor(mt.OCI_LAYER_GZIP, await c.post_blob(name, data), len(data)) for data in datas]
    config = canonical_json({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex(),
                             "rootfs": {"type": "layers", "diff_ids": [str(x.digest) for x in layers]}})
    cdesc = Descriptor(mt.OCI_CONFIG, await c.session_blob(name, config), len(config))
    m = build_manifest(cdesc, layers)
    r = await c.put_manifest(name, tag, m.raw, m.media_type)
    assert r.status == 201, (name, tag, r.status)
    blobs = {cdesc.digest: config, **{x.digest: data for x, data in zip(layers, datas)}}
    return PushedImage(name, tag, m.raw, m.digest, m.media_type, blobs)


async def _client(c: Client, n: int, rnd: random.Random, kept: list[PushedImage], deleted: list[PushedImage],
                  base: bytes) -> int:
    requests = 0
    for i in range(OPERATIONS):
        op = rnd.choices(["push", "pull", "delete", "tags"], weights=[4, 4, 1, 2])[0]
        if op == "push" or not kept:
            name = f"soak/c{n}/r{rnd.randrange(3)}"
            kept.append(await _push(c, name, f"t{i}", base, rnd.randrange(1, 100_000)))
            requests += 5
        elif op == "pull":
            await _pull_exact(c, rnd.choice(kept))
            requests += 3
        elif op == "delete":
            victim = kept.pop(rnd.randrange(len(kept)))
            async with c.s.delete(c.url(f"/v2/{victim.name}/manifests/{victim.digest}")) as r:
                assert r.status == 202, await r.text()
            deleted.append(victim)
            requests += 1
        else:
            status, body, _ = await c.get_json(f"/v2/soak/c{n}/r{rnd.randrange(3)}/tags/list")
            assert status in (200, 404)
            requests += 1
    return requests


def _gc(root: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ocikit", "registry", "gc", "--root", root, "--grace", "3s",
                           "--upload-grace", "3s"], capture_output=True, text=True, timeout=120)


async def test_soak_mixed_clients_with_gc(tmp_path):
    rnd = random.Random(1515)
    base = os.urandom(200_000)
    with start_ocikit_serve(str(tmp_path)) as srv:
        async with aiohttp.ClientSession() as s:
            warm = Client(srv.url, s)
            await warm.push_image("soak/warm", "w", layer_sizes=(100_000,))
        rss_before = _rss(srv.proc.pid)
        kept: list[list[PushedImage]] = [[] for _ in range(CLIENTS)]
        deleted: list[PushedImage] = []
        gc_runs: list[subprocess.CompletedProcess] = []

        async def gc_loop(stop: asyncio.Event) -> None:
            while not stop.is_set():
                gc_runs.append(await asyncio.to_thread(_gc, srv.root))
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass

        stop = asyncio.Event()
        gc_task = asyncio.create_task(gc_loop(stop))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS * 2)) as s:
            counts = await asyncio.gather(*(_client(Client(srv.url, s), n, random.Random(rnd.random()), kept[n],
                                                    deleted, base) for n in range(CLIENTS)))
            stop.set()
            await gc_task
            assert gc_runs and all(p.returncode == 0 for p in gc_runs), [p.stderr for p in gc_runs]
            assert sum(counts) >= CLIENTS * OPERATIONS
            # a final gc with everything settled, then every acknowledged push pulls digest-exact
            final = await asyncio.to_thread(_gc, srv.root)
            assert final.returncode == 0, final.stderr
            c = Client(srv.url, s)
            for img in (i for per in kept for i in per):
                await _pull_exact(c, img)
            for img in deleted:
                async with s.get(c.url(f"/v2/{img.name}/manifests/{img.digest}")) as r:
                    assert r.status == 404
        rss_after = _rss(srv.proc.pid)
    assert rss_after - rss_before < RSS_GROWTH_BOUND, (rss_before, rss_after)
    blobs_dir = os.path.join(srv.root, "blobs", "sha256")
    checked = 0
    for prefix in os.listdir(blobs_dir):
        for name in os.listdir(os.path.join(blobs_dir, prefix)):
            path = os.path.join(blobs_dir, prefix, name)
            if os.path.isdir(path):  # a layout with a data file under the digest's directory
                path = os.path.join(path, "data")
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            assert Digest(f"sha256:{h.hexdigest()}") == Digest(f"sha256:{name}"), path
            checked += 1
    assert checked > CLIENTS * 2

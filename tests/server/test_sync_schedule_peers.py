"""Scheduled sync inside ``ocikit serve`` from a docker-registry: exactly the matching tags, then nothing moves."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web

from ocikit.core import mediatypes as mt
from ocikit.server.sync_schedule import job_for, parse_sync, sync_loop
from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout

from helpers.app_servers import serve_app
from helpers.peers import require, sh
from helpers.schedules import Soon, until
from helpers.servers import docker_registry, start_ocikit_serve

pytestmark = pytest.mark.peer


def _sync_done_receiver(done: list[dict]) -> web.Application:
    """A webhook receiver appending each ``sync.done`` event's data to ``done``."""
    async def hook(request: web.Request) -> web.Response:
        event = await request.json()
        if event["type"] == "dev.ocikit.registry.sync.done":
            done.append(event["data"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app


def test_sync_regex_and_platform_subset_then_nothing_moves(tmp_path):
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    done: list[dict] = []
    app = _sync_done_receiver(done)
    with docker_registry(str(tmp_path)) as up, serve_app(app) as receiver:
        for tag in ("v1.0", "v1.1", "v2.0", "latest"):
            sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
               f"docker://{up.host}/library/multi:{tag}")
        cfg = (f"notifications:\n  - url: http://{receiver}/hook\n    events: [sync.done]\n"
               f"sync:\n  - name: upstream\n    interval: 1s\n    prefix: mirrored\n    tls-verify: false\n"
               f"    images:\n      - source: docker://{up.host}/library/multi\n"
               f"        include: ['^v1\\.']\n        platforms: [linux/amd64, linux/arm64]\n"
               f"        platform-mode: rewrite\n")
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            deadline = time.monotonic() + 120
            while len(done) < 2:
                assert time.monotonic() < deadline, f"fewer than two sync runs: {done}"
                time.sleep(0.1)
            first, second = done[0], done[1]
            assert first["ok"] and first["blobsMoved"] > 0, first
            assert second["ok"] and second["blobsMoved"] == 0 and second["bytesMoved"] == 0, second

            async def check() -> tuple[list[str], list[str]]:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/mirrored/library/multi/tags/list") as r:
                        tags = (await r.json())["tags"]
                    async with s.get(f"{srv.url}/v2/mirrored/library/multi/manifests/v1.0",
                                     headers={"Accept": mt.OCI_INDEX}) as r:
                        index = json.loads(await r.read())
                    return tags, sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                                        for m in index["manifests"])
            tags, platforms = asyncio.run(check())
            assert tags == ["v1.0", "v1.1"]
            assert platforms == ["linux/amd64", "linux/arm64"]


def test_only_signed_sync_brings_the_signed_tag_only(tmp_path):
    """``onlySigned`` with a cosign key: the signed tag arrives, the unsigned one is refused."""
    from helpers.cli import run_ocikit

    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    pf = tmp_path / "pass"
    pf.write_text("sync-signed\n")
    run_ocikit("generate-key", str(tmp_path / "k"), "--passphrase-file", str(pf))
    done: list[dict] = []
    app = _sync_done_receiver(done)
    with docker_registry(str(tmp_path)) as up, serve_app(app) as receiver:
        write_index(lay, "other", seed=9)  # "plain" is another image, left unsigned
        for src, tag in (("multi", "signed"), ("other", "plain")):
            sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:{src}",
               f"docker://{up.host}/library/app:{tag}")
        run_ocikit("sign", "--key", str(tmp_path / "k.key"), "--passphrase-file", str(pf), "--tls-verify=false",
                   f"docker://{up.host}/library/app:signed")
        cfg = (f"notifications:\n  - url: http://{receiver}/hook\n    events: [sync.done]\n"
               f"sync:\n  - name: signed\n    interval: 1h\n    prefix: m\n    tls-verify: false\n"
               f"    onlySigned: true\n    key: {tmp_path / 'k.pub'}\n"
               f"    images:\n      - source: docker://{up.host}/library/app\n        include: ['.*']\n")
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            deadline = time.monotonic() + 120
            while not done:
                assert time.monotonic() < deadline, "no sync run"
                time.sleep(0.1)

            async def tags() -> list[str]:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/m/library/app/tags/list") as r:
                        return [t for t in (await r.json())["tags"] if not t.startswith("sha256-")]
            assert asyncio.run(tags()) == ["signed"]
            assert not done[0]["ok"], done[0]  # the refused image is reported


def test_a_cron_sync_runs_at_its_times_into_the_server(tmp_path):
    """The cron path of ``sync_loop``: runs at the schedule's times, each a real mirror run into a
    real ``ocikit serve`` (``Soon`` comes due a fraction of a second ahead instead of at a minute)."""
    skopeo = require("skopeo")
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_index(lay, "multi")
    with docker_registry(str(tmp_path)) as up, start_ocikit_serve(str(tmp_path)) as srv:
        for tag in ("v1.0", "v2.0"):
            sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{tmp_path / 'src'}:multi",
               f"docker://{up.host}/library/multi:{tag}")
        (entry,) = parse_sync([{"name": "nightly", "schedule": "0 3 * * *", "prefix": "cron", "tls-verify": False,
                                "images": [{"source": f"docker://{up.host}/library/multi", "include": ["^v1\\."]}]}])
        soon = Soon.make(0.3)
        entry = replace(entry, schedule=soon)
        done: list[dict] = []

        async def runs() -> list[str]:
            ready = asyncio.Event()
            ready.set()
            loop = asyncio.create_task(sync_loop(entry, lambda: job_for(entry, srv.host, srv.root), ready,
                                                 lambda kind, data: done.append(data)))
            try:
                await until(lambda: len(done) >= 2, "two sync runs", limit=120)
            finally:
                loop.cancel()
            async with aiohttp.ClientSession() as s:
                async with s.get(f"{srv.url}/v2/cron/library/multi/tags/list") as r:
                    return (await r.json())["tags"]
        tags = asyncio.run(runs())
    assert soon.handed, "the runs did not come from the schedule"
    first, second = done[0], done[1]
    assert first["ok"] and first["sync"] == "nightly" and first["blobsMoved"] > 0, first
    assert second["ok"] and second["blobsMoved"] == 0, second
    assert tags == ["v1.0"]

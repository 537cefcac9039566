"""Webhook events from ``ocikit serve``: one CloudEvent per push and per delete; a dead endpoint costs nothing."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp import web

from helpers.app_servers import serve_app
from helpers.rawhttp import Client
from helpers.servers import free_port, start_ocikit_serve


def receiver() -> tuple[web.Application, list[dict]]:
    got: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.headers["Content-Type"] == "application/cloudevents+json"
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    return app, got


def wait_for(cond, timeout: float = 30.0) -> None:
    """Poll until ``cond()`` (events travel in the background); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_one_event_per_push_and_per_delete(tmp_path):
    app, got = receiver()
    with serve_app(app) as hook:
        cfg = f"notifications:\n  - url: http://{hook}/hook\n    events: [push, delete]\n"
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            async def work() -> list[str]:
                async with aiohttp.ClientSession() as s:
                    c = Client(srv.url, s)
                    pushed = [await c.push_image("ev/app", f"v{i}") for i in range(3)]
                    async with s.get(f"{srv.url}/v2/ev/app/manifests/v0") as r:  # a pull: not asked for
                        assert r.status == 200
                    async with s.delete(f"{srv.url}/v2/ev/app/manifests/{pushed[1].digest}") as r:
                        assert r.status == 202
                    return [str(p.digest) for p in pushed]
            digests = asyncio.run(work())
            wait_for(lambda: len(got) >= 4)
            time.sleep(0.3)  # nothing more may arrive
    assert [e["type"] for e in got] == ["dev.ocikit.registry.push"] * 3 + ["dev.ocikit.registry.delete"]
    assert [e["data"]["digest"] for e in got[:3]] == digests
    assert [e["data"]["tag"] for e in got[:3]] == ["v0", "v1", "v2"]
    assert got[0]["subject"] == "ev/app:v0" and got[0]["specversion"] == "1.0"
    assert got[3]["data"]["digest"] == digests[1]
    assert len({e["id"] for e in got}) == 4


def test_a_dead_endpoint_is_retried_dropped_and_counted(tmp_path):
    dead = free_port()
    cfg = f"notifications:\n  - url: http://127.0.0.1:{dead}/hook\n    retries: 1\n    events: [push]\n"
    with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
        async def push() -> None:
            async with aiohttp.ClientSession() as s:
                await Client(srv.url, s).push_image("ev/dead", "v1")  # answered 201 as always
        asyncio.run(push())

        def dropped() -> bool:
            async def metrics() -> str:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/metrics") as r:
                        return await r.text()
            return f'ocikit_events_total{{endpoint="http://127.0.0.1:{dead}/hook",outcome="dropped"}} 1' \
                in asyncio.run(metrics())
        wait_for(dropped)


def test_registry_gc_from_the_cli_sends_gc_done(tmp_path):
    from ocikit.server.storage.fs import FilesystemDriver
    from ocikit.server.storage.registry import RegistryStorage
    from ocikit.server.storage.repo_store import RepositoryStore
    from ocikit.testing.images import write_image_async

    from helpers.cli import invoke

    root = str(tmp_path / "root")

    async def fill() -> None:
        store = RepositoryStore(RegistryStorage(FilesystemDriver(root, fsync=False)), "app")
        for i in range(3):
            await write_image_async(store, f"t{i}", seed=i + 1)

    asyncio.run(fill())
    app, got = receiver()
    with serve_app(app) as hook:
        cfg = tmp_path / "server.yml"
        cfg.write_text(f"retention:\n  - repository: app\n    keep-last: 1\n"
                       f"notifications:\n  - url: http://{hook}/hook\n    events: [gc.done]\n")
        invoke("registry", "gc", "--root", root, "--retention", str(cfg), "--grace", "0", "--dry-run")
        assert got == []  # a dry run removes nothing and announces nothing
        invoke("registry", "gc", "--root", root, "--retention", str(cfg), "--grace", "0")
        assert len(got) == 1  # delivered before the command returned
    event = got[0]
    assert event["type"] == "dev.ocikit.registry.gc.done"
    assert event["data"]["kind"] == "gc" and event["data"]["dry_run"] is False
    assert sorted(event["data"]["retention"]["tags"]) == ["app:t0", "app:t1"]

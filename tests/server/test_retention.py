"""Retention rules over a real server storage: which tags and manifests stay, what goes."""

from __future__ import annotations

import asyncio
import json
import os
import time

import aiohttp
import pytest
import yaml
from aiohttp import web

from ocikit.core.digest import Digest
from ocikit.core.errors import UsageError
from ocikit.server.cache import retention_loop
from ocikit.server.cache_config import parse_cache
from ocikit.server.retention import apply_retention
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage, repo_key
from ocikit.server.storage.repo_store import RepositoryStore
from ocikit.testing.images import write_image_async, write_index_async

from helpers.app_servers import serve_app
from helpers.cli import invoke
from helpers.images import push_signature
from helpers.rawhttp import Client
from helpers.schedules import Soon, until
from helpers.servers import start_ocikit_serve


def _age(root: str, key: str, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(os.path.join(root, key), (t, t))


async def _fifty_tags(root: str) -> dict:
    """Repository ``app``: t00..t45 (t45 newest), ``multi`` (an index), ``v1``, ``v2``, ``child0``; signatures."""
    storage = RegistryStorage(FilesystemDriver(root, fsync=False))
    store = RepositoryStore(storage, "app")
    images = {}
    for i in range(46):
        images[f"t{i:02d}"] = await write_image_async(store, f"t{i:02d}", seed=i + 1)
        _age(root, repo_key("app", "_manifests", "tags", f"t{i:02d}"), 10_000 - i * 60)
    index = await write_index_async(store, "multi", seed=99)
    raw_index = (await storage.get_manifest("app", index.digest)).raw
    children = [c["digest"] for c in json.loads(raw_index)["manifests"]]
    child = await storage.get_manifest("app", Digest(children[0]))
    await storage.put_manifest("app", "child0", child.raw, child.media_type)
    for tag in ("v1", "v2"):
        images[tag] = await write_image_async(store, tag, seed=200 + len(tag) + int(tag[1]))
    for tag in ("multi", "child0", "v1", "v2"):
        _age(root, repo_key("app", "_manifests", "tags", tag), 90_000)
    kept_sig = await push_signature(store, images["t45"], payload=b"kept", fallback=False)
    gone_sig = await push_signature(store, images["t00"], payload=b"gone", fallback=False)
    index_sig = await push_signature(store, index, payload=b"index", fallback=False)
    return {"storage": storage, "images": images, "index": index, "children": children,
            "kept_sig": kept_sig, "gone_sig": gone_sig, "index_sig": index_sig}


RULES = """
retention:
  - repository: "app"
    keep-last: 5
    keep-tags: ["v[0-9]+", "multi"]
    untagged-for: 0s
"""


async def test_fifty_tags_keep_exactly_the_expected(tmp_path):
    root = str(tmp_path / "root")
    made = await _fifty_tags(root)
    storage: RegistryStorage = made["storage"]
    assert len(await storage.list_tags("app")) == 50
    rules = parse_cache(yaml.safe_load(RULES)).retention
    expected = {"t41", "t42", "t43", "t44", "t45", "v1", "v2", "multi"}

    dry = await apply_retention(storage, rules, dry_run=True)
    assert {t for _, t in dry.kept} == expected
    assert len(dry.tags) == 42
    assert len(await storage.list_tags("app")) == 50  # a dry run removes nothing

    report = await apply_retention(storage, rules)
    assert set(await storage.list_tags("app")) == expected
    assert {t for _, t in report.tags} == {t for _, t in dry.tags}
    left = set(map(str, await storage.list_manifests("app")))
    # children of the kept index (one lost its own tag), referrers of kept manifests: all still here
    assert set(made["children"]) <= left
    assert str(made["kept_sig"].digest) in left and str(made["index_sig"].digest) in left
    for tag in ("t41", "t45", "v1", "v2"):
        assert str(made["images"][tag].digest) in left
    # an untagged image and the referrer of a dropped one: gone
    assert str(made["images"]["t00"].digest) not in left
    assert str(made["gone_sig"].digest) not in left
    assert len(left) == 5 + 2 + 1 + 3 + 2  # kept images, v1/v2, the index, its children, two signatures


async def test_a_rule_deleting_every_tag_needs_allow_empty(tmp_path):
    storage = RegistryStorage(FilesystemDriver(str(tmp_path), fsync=False))
    store = RepositoryStore(storage, "other")
    for i in range(3):
        await write_image_async(store, f"x{i}", seed=i + 1)
    doc = yaml.safe_load('retention:\n  - {repository: "oth*", keep-tags: ["nothing"]}\n')
    report = await apply_retention(storage, parse_cache(doc).retention)
    assert report.refused == ["other"] and report.tags == []
    assert await storage.list_tags("other") == ["x0", "x1", "x2"]
    doc["retention"][0]["allowEmpty"] = True
    await apply_retention(storage, parse_cache(doc).retention)
    assert await storage.list_tags("other") == []


async def test_retention_on_a_cron_schedule_runs_at_its_times(tmp_path):
    """The cron path of the server's retention loop, over a real storage (``Soon`` comes due a
    fraction of a second ahead instead of at a minute boundary)."""
    storage = RegistryStorage(FilesystemDriver(str(tmp_path), fsync=False))
    store = RepositoryStore(storage, "pr/app")
    for i, tag in enumerate(("old", "mid", "new")):
        await write_image_async(store, tag, seed=i + 1)
        _age(str(tmp_path), repo_key("pr/app", "_manifests", "tags", tag), 300 - i * 100)
    cache = parse_cache(yaml.safe_load('retention:\n  schedule: "@daily"\n  rules:\n'
                                       '    - {repository: "pr/*", keep-last: 1}\n'))
    assert cache.retention_cron is not None and cache.retention_interval is None
    soon = Soon.make(0.2)
    cache.retention_cron = soon
    rounds: list[dict] = []
    loop = asyncio.create_task(retention_loop(storage, cache,
                                              lambda event, data: rounds.append({"event": event, **data})))
    try:
        await until(lambda: len(rounds) >= 2, "two retention rounds")
    finally:
        loop.cancel()
    assert soon.handed, "the rounds did not come from the schedule"
    assert rounds[0]["event"] == "gc.done" and set(rounds[0]["tags"]) == {"pr/app:old", "pr/app:mid"}
    assert rounds[1]["tags"] == []
    assert await storage.list_tags("pr/app") == ["new"]


def test_registry_gc_applies_retention_from_a_config(tmp_path):
    root = str(tmp_path / "root")
    asyncio.run(_fifty_tags(root))
    cfg = tmp_path / "server.yml"
    cfg.write_text(RULES)
    out = invoke("registry", "gc", "--root", root, "--retention", str(cfg), "--dry-run", "--grace", "0")
    assert "would remove tag app:t00" in out.stdout.decode() and "would remove tag app:t45" not in out.stdout.decode()
    out = invoke("registry", "gc", "--root", root, "--retention", str(cfg), "--grace", "0")
    assert "removed tag app:t40" in out.stdout.decode()
    storage = RegistryStorage(FilesystemDriver(root))
    assert len(asyncio.run(storage.list_tags("app"))) == 8


def test_scheduled_retention_in_the_server_keeps_pulled_tags(tmp_path):
    rounds: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        rounds.append((await request.json())["data"])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    with serve_app(app) as receiver:
        cfg = (f"notifications:\n  - url: http://{receiver}/hook\n    events: [gc.done]\n"
               "retention:\n  schedule: 1s\n  rules:\n    - repository: 'pr/*'\n      keep-pulled-within: 1h\n")
        with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
            async def push_and_pull() -> None:
                async with aiohttp.ClientSession() as s:
                    c = Client(srv.url, s)
                    for tag in ("a", "b", "c"):
                        await c.push_image("pr/app", tag)
                    async with s.get(f"{srv.url}/v2/pr/app/manifests/b") as r:
                        assert r.status == 200

            async def tags() -> list[str]:
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{srv.url}/v2/pr/app/tags/list") as r:
                        return (await r.json())["tags"]
            asyncio.run(push_and_pull())
            seen = len(rounds)
            deadline = time.monotonic() + 60
            while len(rounds) < seen + 2:  # a whole round after the pull was recorded
                assert time.monotonic() < deadline, "no scheduled retention round"
                time.sleep(0.05)
            assert asyncio.run(tags()) == ["b"]
    assert any(set(r["tags"]) == {"pr/app:a", "pr/app:c"} for r in rounds)

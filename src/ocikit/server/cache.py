"""Wires the cache-and-keeper sections into the application: pull-through, events, schedules.

Without ``proxy``, ``retention``, ``notifications`` and ``sync`` sections nothing is installed,
and the server behaves exactly as without this module.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import aiohttp
from aiohttp import web

from .cache_config import CacheConfig, parse_cache
from .serve_config import ServerConfig
from .context import Registry
from .events import Notifier
from .pullthrough import PULLTHROUGH, PullThrough
from .retention import PullRecorder, apply_retention
from .schedules import run_at_times, run_every
from .storage.registry import RegistryStorage
from .sync_schedule import job_for, parse_sync, sync_loop

log = logging.getLogger("ocikit.server.cache")

Emit = Callable[[str, dict[str, Any]], None]


class Observer:
    """Sees every answered request (after the handler): events, and pulls recorded for retention."""

    def __init__(self, emit: Emit | None, pulls: PullRecorder | None) -> None:
        self.emit = emit
        self.pulls = pulls
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, request: web.Request, kind: str, name: str | None, reference: str | None,
                 resp: web.StreamResponse) -> None:
        if kind != "manifest" or name is None or reference is None or resp.status >= 300:
            return
        is_digest = ":" in reference
        data = {"repository": name, "digest": resp.headers.get("Docker-Content-Digest"),
                "tag": None if is_digest else reference}
        if request.method == "PUT" and self.emit is not None:
            self.emit("push", {**data, "mediaType": request.headers.get("Content-Type")})
        elif request.method == "DELETE" and self.emit is not None:
            self.emit("delete", {"repository": name, "reference": reference,
                                 "digest": reference if is_digest else None, "tag": None if is_digest else reference})
        elif request.method == "GET":
            if self.emit is not None:
                self.emit("pull", {**data, "mediaType": resp.headers.get("Content-Type")})
            if self.pulls is not None and not is_digest:
                task = asyncio.create_task(self.pulls.pulled(name, reference))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


OBSERVER = web.AppKey("ocikit_observer", Observer)
NOTIFIER = web.AppKey("ocikit_notifier", Notifier)


def cache_metrics(app: web.Application) -> str:
    """Extra ``/metrics`` lines (webhook deliveries and drops, upstream blob fetches)."""
    out = ""
    notifier = app.get(NOTIFIER)
    if notifier is not None:
        out += notifier.render_metrics()
    pt = app.get(PULLTHROUGH)
    if pt is not None:
        out += ("# HELP ocikit_proxy_blob_fetches_total Blobs fetched from proxy upstreams.\n"
                "# TYPE ocikit_proxy_blob_fetches_total counter\n"
                f"ocikit_proxy_blob_fetches_total {pt.upstream_blob_gets}\n")
    return out


async def retention_loop(storage: RegistryStorage, cache: CacheConfig, emit: Emit | None) -> None:
    """Apply ``cache.retention`` to ``storage`` every ``retention_interval`` seconds (the first round after one
    interval), or at the times of ``retention_cron``."""

    async def round_once() -> None:
        try:
            report = await apply_retention(storage, cache.retention)
        except Exception:  # noqa: BLE001 - a failed round is logged; the next one runs anyway
            log.exception("scheduled retention failed")
            return
        log.info("retention: removed %d tags, %d manifests", len(report.tags), len(report.manifests))
        if emit is not None:
            emit("gc.done", {"kind": "retention", **report.to_dict()})

    if cache.retention_cron is not None:
        await run_at_times(cache.retention_cron, round_once, "retention")
    else:
        assert cache.retention_interval
        await run_every(cache.retention_interval, round_once, at_start=False)


async def _listening(config: ServerConfig, ready: asyncio.Event) -> None:
    """Set ``ready`` once this server answers ``/v2/`` (schedules that talk to it wait for it)."""
    host, port = config.host_port
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    scheme = "https" if config.tls_cert else "http"
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(f"{scheme}://{host}:{port}/v2/", ssl=False):
                    ready.set()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


def install_cache(app: web.Application, config: ServerConfig, registry: Registry) -> None:
    """Parse the sections (UsageError when one is wrong) and hook what they ask for into ``app``."""
    if not config.extra_sections:
        return
    cache = parse_cache(config.extra_sections)
    syncs = parse_sync(cache.sync)
    notifier = None
    if cache.notifications:
        notifier = app[NOTIFIER] = Notifier(cache.notifications, source=f"ocikit://{config.listen}",
                                            queue_size=cache.notification_queue)
    emit = notifier.emit if notifier is not None else None
    if cache.proxy:
        pt = PullThrough(cache.proxy, registry.storage, emit=emit)
        pt.refuse_loops(*config.host_port)
        app[PULLTHROUGH] = pt
    if emit is not None or cache.retention:
        app[OBSERVER] = Observer(emit, PullRecorder(registry.storage) if cache.retention else None)
    tasks: list[asyncio.Task[None]] = []

    async def start(_: web.Application) -> None:
        if notifier is not None:
            await notifier.start()
        if cache.retention and (cache.retention_interval or cache.retention_cron):
            tasks.append(asyncio.create_task(retention_loop(registry.storage, cache, emit)))
        if syncs:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(_listening(config, ready)))
            for entry in syncs:
                tasks.append(asyncio.create_task(
                    sync_loop(entry, lambda e=entry: job_for(e, config.listen, config.root), ready, emit)))

    async def stop(_: web.Application) -> None:
        for t in tasks:
            t.cancel()
        if PULLTHROUGH in app:
            await app[PULLTHROUGH].close()
        if notifier is not None:
            await notifier.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)

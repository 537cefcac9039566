"""Wires the cache-and-keeper sections into the application: pull-through, events, schedules.

Without ``proxy``, ``retention``, ``notifications`` and ``sync`` sections nothing is installed,
and the server behaves exactly as without this module.
"""

from __future__ import annotations

from aiohttp import web

from .cache_config import parse_cache
from .config import ServerConfig
from .context import Registry
from .pullthrough import PULLTHROUGH, PullThrough


def install_cache(app: web.Application, config: ServerConfig, registry: Registry) -> None:
    """Parse the sections (UsageError when one is wrong) and hook what they ask for into ``app``."""
    if not config.extra_sections:
        return
    cache = parse_cache(config.extra_sections)
    if cache.proxy:
        pt = PullThrough(cache.proxy, registry.storage)
        pt.refuse_loops(*config.host_port)
        app[PULLTHROUGH] = pt

        async def close_proxy(_: web.Application) -> None:
            await pt.close()

        app.on_cleanup.append(close_proxy)

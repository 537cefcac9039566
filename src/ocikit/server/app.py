"""The aiohttp application: one dispatcher for ``/v2/...``, the token realm, ``/metrics``.

Every answer carries ``Docker-Distribution-API-Version: registry/2.0``; every ocikit error
becomes the spec's JSON error body (:mod:`.errors`); access is checked before a handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from typing import Awaitable, Callable

from aiohttp import web

from ..core.errors import NotFound, OcikitError, Unsupported
from ..memtune import tune_malloc
from . import blobs, catalog, extensions, manifests, referrers_api, tags, uploads
from .access import Authenticator, Need
from .serve_config import ServerConfig
from .cache import OBSERVER, cache_metrics, install_cache
from .context import PRINCIPAL, REGISTRY, Registry
from .disconnects import client_gone, gone_response, quiet_dropped_clients
from .error_body import error_response, simple_error
from .metrics import Metrics
from .pullthrough import PULLTHROUGH
from .routes import Route, parse_route
from .storage.drivers import open_driver
from .storage.registry import RegistryStorage

log = logging.getLogger("ocikit.server")
access_log = logging.getLogger("ocikit.access")

Handler = Callable[[web.Request, str, str], Awaitable[web.StreamResponse]]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("manifest", "GET"): manifests.get_manifest,
    ("manifest", "HEAD"): manifests.get_manifest,
    ("manifest", "PUT"): manifests.put_manifest,
    ("manifest", "DELETE"): manifests.delete_manifest,
    ("blob", "GET"): blobs.get_blob,
    ("blob", "HEAD"): blobs.get_blob,
    ("blob", "DELETE"): blobs.delete_blob,
    ("tags", "GET"): tags.list_tags,
    ("tags", "HEAD"): tags.list_tags,
    ("referrers", "GET"): referrers_api.list_referrers,
    ("referrers", "HEAD"): referrers_api.list_referrers,
    ("catalog", "GET"): catalog.list_catalog,
    ("discover", "GET"): extensions.discover,
    ("tag-digests", "GET"): extensions.tag_digests,
}
ACTION = {"GET": "pull", "HEAD": "pull", "POST": "push", "PATCH": "push", "PUT": "push", "DELETE": "delete"}
API_HEADER = ("Docker-Distribution-API-Version", "registry/2.0")


def _realm_url(request: web.Request, reg: Registry) -> str:
    return reg.config.auth.token_realm or f"{request.scheme}://{request.host}/auth/token"


def _need(route: Route, method: str) -> Need:
    if route.kind == "base":
        return Need(None, None)
    if route.kind in ("catalog", "discover"):
        return Need(None, "catalog" if route.kind == "catalog" else None)
    if route.kind == "upload":  # cancelling one's own upload is part of pushing
        return Need(route.name, "pull" if method in ("GET", "HEAD") else "push")
    return Need(route.name, ACTION.get(method, "pull"))


async def dispatch(request: web.Request) -> web.StreamResponse:
    """Route, authorise, run the handler; errors become spec error responses."""
    reg = request.app[REGISTRY]
    started = time.perf_counter()
    kind = "unknown"
    reg.metrics.in_flight += 1
    try:
        route = parse_route(request.path)
        kind = route.kind
        need = _need(route, request.method)
        request[PRINCIPAL] = await reg.auth.authenticate(request.headers, _realm_url(request, reg), need)
        if route.kind == "base":
            if request.method not in ("GET", "HEAD"):
                raise Unsupported(f"{request.method} /v2/ is not supported")
            resp: web.StreamResponse = web.Response(body=b"{}", content_type="application/json")
        else:
            if reg.config.read_only and request.method not in ("GET", "HEAD"):
                raise Unsupported("the registry is in read-only mode")
            if request.method == "DELETE" and route.kind != "upload" and not reg.config.delete_enabled:
                raise Unsupported("deletes are disabled on this registry (ocikit serve --enable-delete)")
            proxied = await _pull_through(request, route)
            if proxied is not None:
                resp = proxied
            elif route.kind == "upload":
                resp = await uploads.upload_route(request, route.name or "", route.reference or "")
            else:
                handler = HANDLERS.get((route.kind, request.method))
                if handler is None:
                    raise Unsupported(f"{request.method} is not supported on this endpoint")
                resp = await handler(request, route.name or "", route.reference or "")
    except OcikitError as e:
        resp = error_response(e)
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug must not take the server down; log it, answer 500
        if isinstance(e, ConnectionError) and client_gone(request):
            log.debug("%s %s: the client went away (%s)", request.method, request.path, e)
            resp = gone_response()
        else:
            log.exception("%s %s failed", request.method, request.path)
            resp = simple_error(500, "UNKNOWN", "internal server error")
    finally:
        reg.metrics.in_flight -= 1
    resp.headers[API_HEADER[0]] = API_HEADER[1]
    observer = request.app.get(OBSERVER)
    if observer is not None and kind != "unknown":
        observer(request, kind, route.name, route.reference, resp)
    reg.metrics.observe(kind, request.method, resp.status, time.perf_counter() - started)
    return resp


async def _pull_through(request: web.Request, route: Route) -> web.StreamResponse | None:
    """The pull-through cache's answer for a read under a ``proxy:`` prefix (None: not proxied)."""
    pt = request.app.get(PULLTHROUGH)
    if pt is None or request.method not in ("GET", "HEAD") or route.kind not in ("manifest", "blob", "tags"):
        return None
    return await pt.handle(request, route.kind, route.name or "", route.reference or "")


async def token_endpoint(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRY]
    try:
        body = await reg.auth.issue_token(request.headers, request.query.getall("scope", []),
                                          request.query.get("service"), _realm_url(request, reg))
    except OcikitError as e:
        return error_response(e)
    return web.json_response(body)


async def metrics_endpoint(request: web.Request) -> web.StreamResponse:
    """Prometheus text; with auth on, only for a logged-in user (as ``GET /v2/``)."""
    reg = request.app[REGISTRY]
    try:
        await reg.auth.authenticate(request.headers, _realm_url(request, reg), Need(None, None))
    except OcikitError as e:
        return error_response(e)
    return web.Response(text=request.app[REGISTRY].metrics.render() + cache_metrics(request.app),
                        content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


async def not_found(request: web.Request) -> web.StreamResponse:
    return error_response(NotFound(f"no such endpoint: {request.path}"))


def build_registry(config: ServerConfig) -> Registry:
    driver = open_driver(config)
    storage = RegistryStorage(driver, accept_sparse_index=config.accept_sparse_index,
                              check_blobs=config.check_blobs)
    return Registry(storage, Authenticator(config.auth), config, Metrics())


def create_app(config: ServerConfig, registry: Registry | None = None) -> web.Application:
    """The registry as an aiohttp application (no sockets opened)."""
    app = web.Application(client_max_size=config.manifest_size + 1024)
    app[REGISTRY] = registry or build_registry(config)
    install_cache(app, config, app[REGISTRY])
    app.router.add_route("*", "/v2", dispatch)
    app.router.add_route("*", "/v2/{tail:.*}", dispatch)
    app.router.add_get("/auth/token", token_endpoint)
    app.router.add_get("/metrics", metrics_endpoint)
    if config.ui:
        from .ui import setup_ui
        setup_ui(app, app[REGISTRY])
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def ssl_context(config: ServerConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


READ_BUFSIZE = 2 * 1024 * 1024
"""Request bytes aiohttp buffers per connection before it stops reading the socket (default 64 KiB):
room for an upload to keep flowing while the hashing worker or the scheduler holds us up."""
ACCESS_FORMAT = '%a "%r" %s %b %Tfs "%{User-Agent}i"'


async def serve(config: ServerConfig, *, on_ready: Callable[[Registry, str], Awaitable[None]] | None = None,
                stop: asyncio.Event | None = None,
                before_listen: Callable[[Registry], Awaitable[None]] | None = None) -> None:
    """Listen until SIGTERM/SIGINT (or ``stop``), then finish requests in flight and exit.

    ``before_listen`` runs before the port opens (seeding content, so no client sees it half
    written); ``on_ready`` runs once the server is listening.
    """
    tune_malloc()
    quiet_dropped_clients()
    registry = build_registry(config)
    try:
        await registry.storage.driver.check()  # wrong credentials, no bucket: one line, before listening
    except BaseException:
        await registry.storage.driver.close()
        raise
    if before_listen is not None:
        await before_listen(registry)
    app = create_app(config, registry)
    runner = web.AppRunner(app, access_log=access_log if config.access_log else None,
                           access_log_format=ACCESS_FORMAT, shutdown_timeout=config.shutdown_timeout,
                           handle_signals=False, read_bufsize=READ_BUFSIZE)
    await runner.setup()
    host, port = config.host_port
    tls = ssl_context(config)
    site = web.TCPSite(runner, host, port, ssl_context=tls, backlog=1024, reuse_address=True)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread
            pass
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    log.info("ocikit serve: listening on %s, storage %s", url, config.storage_description)
    try:
        if on_ready is not None:
            await on_ready(registry, f"{host}:{port}")
        await stop.wait()
    finally:
        log.info("ocikit serve: shutting down (finishing requests in flight)")
        await site.stop()  # no new connections
        # aiohttp's own graceful close drops request bodies still arriving, so wait for uploads
        # in flight to finish first (bounded by the shutdown timeout)
        deadline = time.monotonic() + config.shutdown_timeout
        while registry.metrics.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await runner.cleanup()
        await registry.storage.driver.close()

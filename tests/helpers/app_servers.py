"""Small servers for tests, each on 127.0.0.1 on a free port, in a thread of the test process.

- :func:`serve_app` runs any aiohttp app;
- :func:`token_server` issues JWTs that docker-registry's ``auth: token:`` accepts;
- :func:`cutting_proxy` forwards to a registry and cuts one blob response mid-way;
- :func:`lying_proxy` forwards to a registry and flips bytes of one blob;
- :func:`gated_proxy`, :func:`staged_proxy` hold one blob at given offsets until released;
- :func:`chunked_proxy` forwards to a registry and answers blob GETs without a Content-Length.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import ssl
import subprocess
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from aiohttp import ClientSession, web

from .servers import free_port


@contextlib.contextmanager
def serve_app(app: web.Application, ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 in a background thread (https with ``ssl_context``); yields
    ``127.0.0.1:PORT``; stops it on exit."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context)
        await site.start()
        ready.set()
        await stop.wait()
        await runner.cleanup()

    t = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("test server did not start")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        t.join(10)
        loop.close()


# ---- bearer tokens -----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(spki_der: bytes) -> str:
    """docker's libtrust key ID: base32 of the first 240 bits of sha256(SPKI DER), in groups of 4."""
    b32 = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


class TokenIssuer:
    """An RSA key and self-signed certificate (made with the openssl CLI) that sign RS256 JWTs."""

    def __init__(self, workdir: str, issuer: str = "ocikit-test-issuer") -> None:
        self.issuer = issuer
        self.key = os.path.join(workdir, "token.key")
        self.cert = os.path.join(workdir, "token.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                        "-out", self.cert, "-days", "2", "-subj", "/CN=ocikit-test-token"],
                       check=True, capture_output=True)
        pub = subprocess.run(["openssl", "x509", "-in", self.cert, "-pubkey", "-noout"], check=True,
                             capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                             capture_output=True).stdout
        self.kid = libtrust_key_id(der)

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return f"{signing_input}.{_b64url(sig)}"


@contextlib.contextmanager
def token_server(issuer: TokenIssuer, users: dict[str, str], *, service: str = "test-registry",
                 expires_in: int = 300) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A token endpoint (``/token``): basic auth against ``users``; grants what the scopes ask.

    Yields (``host:port``, the log of requests: user, scopes).
    """
    log: list[dict[str, Any]] = []

    async def token(request: web.Request) -> web.Response:
        user = None
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if users.get(u) != p:
                log.append({"user": u, "refused": True})
                return web.json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                         status=401)
            user = u
        scopes = request.query.getall("scope", [])
        access = []
        for s in scopes:
            typ, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            acts = [a for a in actions.split(",") if a] if user else [a for a in actions.split(",") if a == "pull"]
            access.append({"type": typ, "name": name, "actions": acts})
        log.append({"user": user, "scopes": scopes, "authorization": auth})
        now = int(time.time())
        claims = {"iss": issuer.issuer, "sub": user or "", "aud": request.query.get("service", service),
                  "exp": now + expires_in, "nbf": now - 10, "iat": now - 10, "jti": os.urandom(8).hex(),
                  "access": access}
        return web.json_response({"token": issuer.sign(claims), "expires_in": expires_in})

    app = web.Application()
    app.router.add_get("/token", token)
    with serve_app(app) as host:
        yield host, log


# ---- faulty proxies ----------------------------------------------------------------------------


def _proxy_app(upstream: str, mangle: Callable[[web.Request, int], Any], delay: float = 0.0,
               seen: Callable[[web.Request], None] | None = None,
               cut: Callable[[web.Request, bytes], bool] | None = None,
               chunked: bool = False) -> web.Application:
    """A reverse proxy to ``upstream``; ``mangle(request, blob_size)`` picks how to serve blob GETs;
    ``seen(request)`` is told of every request; ``cut(request, body)`` True drops the connection
    instead of forwarding the request; ``chunked``: blob GETs are answered without a
    Content-Length (chunked transfer encoding)."""
    state: dict[str, Any] = {}

    async def startup(app: web.Application) -> None:
        state["session"] = ClientSession(auto_decompress=False)

    async def cleanup(app: web.Application) -> None:
        await state["session"].close()

    async def handle(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen(request)
        sess: ClientSession = state["session"]
        body = await request.read()
        if cut is not None and cut(request, body):
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=499)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with sess.request(request.method, f"http://{upstream}{request.rel_url}", headers=headers,
                                data=body or None, allow_redirects=False) as up:
            out_headers = {k: v for k, v in up.headers.items()
                           if k.lower() not in ("transfer-encoding", "content-encoding", "connection")}
            loc = out_headers.get("Location")
            if loc and upstream in loc:
                out_headers["Location"] = loc.replace(upstream, request.host)
            blob_get = request.method == "GET" and "/blobs/" in request.path
            action = mangle(request, up.status) if blob_get else None
            if chunked and blob_get:
                out_headers.pop("Content-Length", None)
            resp = web.StreamResponse(status=up.status, headers=out_headers)
            await resp.prepare(request)
            sent = 0
            async for chunk in up.content.iter_chunked(256 * 1024):
                if action is not None:
                    chunk = action(sent, chunk)
                    if chunk is None:  # cut the connection here
                        assert request.transport is not None
                        request.transport.close()
                        return resp
                sent += len(chunk)
                await resp.write(chunk)
                if delay and "/blobs/" in request.path:
                    await asyncio.sleep(delay)
            await resp.write_eof()
            return resp

    app = web.Application(client_max_size=1 << 30)
    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@contextlib.contextmanager
def cutting_proxy(upstream: str, digest: str, cut_after: int, times: int = 1) -> Iterator[tuple[str, dict[str, int]]]:
    """Proxy that drops the connection after ``cut_after`` bytes of GET blob ``digest``, ``times`` times."""
    stats = {"cuts": 0, "ranged": 0}

    def mangle(request: web.Request, status: int) -> Any:
        if digest not in request.path:
            return None
        if "Range" in request.headers:
            stats["ranged"] += 1
        if stats["cuts"] >= times or status not in (200, 206):
            return None

        def action(sent: int, chunk: bytes) -> bytes | None:
            if sent + len(chunk) > cut_after:
                stats["cuts"] += 1
                return None
            return chunk
        return action

    with serve_app(_proxy_app(upstream, mangle)) as host:
        yield host, stats


@contextlib.contextmanager
def recording_proxy(upstream: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Proxy that passes everything through and records (method, path) of every request."""
    seen: list[tuple[str, str]] = []
    with serve_app(_proxy_app(upstream, lambda request, status: None,
                              seen=lambda request: seen.append((request.method, request.path)))) as host:
        yield host, seen


@contextlib.contextmanager
def chunked_proxy(upstream: str) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """Proxy that answers blob GETs with chunked transfer encoding (no Content-Length) and records
    (method, path) of every request."""
    seen: list[tuple[str, str]] = []
    with serve_app(_proxy_app(upstream, lambda request, status: None, chunked=True,
                              seen=lambda request: seen.append((request.method, request.path)))) as host:
        yield host, seen


@contextlib.contextmanager
def push_cutting_proxy(upstream: str, cut_at: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """Proxy that drops, once, the blob-upload PATCH whose bytes would take the upload past
    ``cut_at`` (not forwarded: the registry keeps what came before); ``stats["patches"]`` lists
    every PATCH's Content-Range as it arrived."""
    stats: dict[str, Any] = {"cuts": 0, "patches": []}

    def decide(request: web.Request, body: bytes) -> bool:
        if request.method != "PATCH" or "/blobs/uploads/" not in request.path:
            return False
        rng = request.headers.get("Content-Range", "")
        stats["patches"].append(rng)
        start = int(rng.split("-")[0]) if rng else 0
        if stats["cuts"] == 0 and start + len(body) > cut_at:
            stats["cuts"] += 1
            return True
        return False

    with serve_app(_proxy_app(upstream, lambda request, status: None, cut=decide)) as host:
        yield host, stats


@contextlib.contextmanager
def slow_proxy(upstream: str, delay: float) -> Iterator[str]:
    """Proxy that sends blob bodies in 256 KiB pieces with ``delay`` seconds between them."""
    with serve_app(_proxy_app(upstream, lambda request, status: None, delay)) as host:
        yield host


@contextlib.contextmanager
def lying_proxy(upstream: str, digest: str) -> Iterator[str]:
    """Proxy that serves blob ``digest`` with its first byte changed (same length, wrong content)."""

    def mangle(request: web.Request, status: int) -> Any:
        if digest not in request.path or status not in (200, 206):
            return None

        def action(sent: int, chunk: bytes) -> bytes:
            if sent == 0 and chunk:
                return bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            return chunk
        return action

    with serve_app(_proxy_app(upstream, mangle)) as host:
        yield host


@contextlib.contextmanager
def staged_proxy(upstream: str, digest: str, stops: Sequence[int]) -> Iterator[tuple[str, list[threading.Event]]]:
    """Proxy that holds blob ``digest`` once it passed on each of ``stops`` bytes (ascending), until
    the matching event of the yielded list is set (at most 120 s each: a test that forgets never hangs)."""
    gates = [threading.Event() for _ in stops]

    def mangle(request: web.Request, status: int) -> Any:
        if digest not in request.path or status not in (200, 206):
            return None

        def action(sent: int, chunk: bytes) -> bytes:
            for stop, gate in zip(stops, gates):
                if sent >= stop:
                    gate.wait(120)
            return chunk
        return action

    with serve_app(_proxy_app(upstream, mangle)) as host:
        yield host, gates


@contextlib.contextmanager
def gated_proxy(upstream: str, digest: str, after: int) -> Iterator[tuple[str, threading.Event]]:
    """Proxy that passes on the first ``after`` bytes of blob ``digest``, then holds the rest
    until the yielded event is set (at most 120 s: a test that forgets never hangs)."""
    with staged_proxy(upstream, digest, [after]) as (host, gates):
        yield host, gates[0]


@contextlib.contextmanager
def counting_proxy(upstream: str) -> Iterator[tuple[str, dict[str, int]]]:
    """Proxy that counts the blob GETs it passes on, by digest (``counts[digest]``)."""
    counts: dict[str, int] = {}

    def mangle(request: web.Request, status: int) -> Any:
        digest = request.path.rsplit("/", 1)[-1]
        counts[digest] = counts.get(digest, 0) + 1
        return None

    with serve_app(_proxy_app(upstream, mangle)) as host:
        yield host, counts


@contextlib.contextmanager
def manifest_counting_proxy(upstream: str) -> Iterator[tuple[str, dict[str, int]]]:
    """Proxy that counts manifest requests by method and reference (``counts["GET v1"]``)."""
    counts: dict[str, int] = {}

    def seen(request: web.Request) -> None:
        if "/manifests/" in request.path:
            key = f"{request.method} {request.path.rsplit('/', 1)[-1]}"
            counts[key] = counts.get(key, 0) + 1

    with serve_app(_proxy_app(upstream, lambda request, status: None, seen=seen)) as host:
        yield host, counts

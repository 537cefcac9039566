"""ThreadedGet: a blob's body received by a worker thread, against Debian's docker-registry and faulty proxies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
import threading
from typing import Iterator

import bcrypt
import pytest
from aiohttp import web

from ocikit.core.errors import TransportError
from ocikit.transports.registry import RegistryClient
from ocikit.transports.registry.threadget import PIECE, NotStarted, ThreadedGet

from helpers.app_servers import counting_proxy, cutting_proxy, gated_proxy, serve_app
from helpers.blobs import push_big_blob
from helpers.servers import docker_registry, free_port

pytestmark = pytest.mark.peer

SIZE = (3 << 20) + 12345
"""Not a whole number of pieces: the last one is short."""
REPO = "thread/get"


@pytest.fixture(scope="module")
def blob(reg, tmp_path_factory) -> str:
    """A random blob of :data:`SIZE` bytes in the registry's ``thread/get``; its digest."""
    path = str(tmp_path_factory.mktemp("threadget") / "blob")
    digest = asyncio.run(push_big_blob(reg.host, path, SIZE, repo=REPO))
    os.unlink(path)
    return digest


class Collected:
    """A sink that hashes what it is handed and notes the size of each piece."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.pieces: list[int] = []
        self.first = threading.Event()

    def __call__(self, piece: memoryview) -> None:
        self.h.update(piece)
        self.pieces.append(len(piece))
        self.first.set()

    @property
    def digest(self) -> str:
        return f"sha256:{self.h.hexdigest()}"


def get(host: str, digest: str, size: int = SIZE, *, resumes: int = 2, headers: dict[str, str] | None = None,
        timeout: float = 60.0) -> ThreadedGet:
    return ThreadedGet(f"http://{host}/v2/{REPO}/blobs/{digest}", headers or {}, size, ssl_context=None,
                       timeout=timeout, resumes=resumes, what=f"blob {digest}")


def test_a_whole_blob_in_pieces_of_at_most_one_piece_one_request(reg, blob):
    with counting_proxy(reg.host) as (proxy, counts):
        async def prepare() -> ThreadedGet:
            client = RegistryClient(proxy)
            try:
                return await client.prepare_get(f"/v2/{REPO}/blobs/{blob}", SIZE, what=f"blob {blob}")
            finally:
                await client.close()
        g = asyncio.run(prepare())
        sink = Collected()
        g.run(sink)
    assert sink.digest == blob
    assert sum(sink.pieces) == SIZE and max(sink.pieces) <= PIECE and sink.pieces[-1] < PIECE
    assert counts[blob] == 1 and g.requests == 1


def test_a_body_cut_twice_is_resumed_with_range(reg, blob):
    with cutting_proxy(reg.host, blob, cut_after=(1 << 20) + 300_000, times=2) as (proxy, stats):
        g = get(proxy, blob, resumes=2)
        sink = Collected()
        g.run(sink)
    assert sink.digest == blob and sum(sink.pieces) == SIZE
    assert stats["cuts"] == 2 and stats["ranged"] == 2 and g.requests == 3


def test_cut_more_often_than_resumes_allow_is_a_transport_error(reg, blob):
    with cutting_proxy(reg.host, blob, cut_after=500_000, times=10) as (proxy, stats):
        g = get(proxy, blob, resumes=2)
        with pytest.raises(TransportError) as e:
            g.run(Collected())
    msg = str(e.value)
    assert "\n" not in msg and "connection lost at byte" in msg and blob in msg
    assert stats["cuts"] == 3 and stats["ranged"] == 2


def _not_started(g: ThreadedGet) -> str:
    sink = Collected()
    with pytest.raises(NotStarted) as e:
        g.run(sink)
    assert sink.pieces == []
    return str(e.value)


def test_not_started_unknown_digest(reg, blob):
    assert "HTTP 404" in _not_started(get(reg.host, f"sha256:{'0' * 64}"))


def test_not_started_a_size_other_than_the_blobs(reg, blob):
    msg = _not_started(get(reg.host, blob, SIZE + 1))
    assert f"Content-Length {SIZE}" in msg and f"expected {SIZE + 1} bytes" in msg


def test_not_started_nothing_listening(blob):
    _not_started(get(f"127.0.0.1:{free_port()}", blob))


def test_not_started_a_challenge(tmp_path, blob):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"alice:{bcrypt.hashpw(b'wonderland', bcrypt.gensalt(4)).decode()}\n")
    with docker_registry(str(tmp_path), htpasswd=str(htpasswd)) as locked:
        assert "HTTP 401" in _not_started(get(locked.host, blob))


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom((2 << 20) + 777)


@contextlib.contextmanager
def redirecting(payload: bytes, *, same_origin: bool) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A registry stand-in whose blob GET answers 307 to ``/bytes`` on itself or on a second server,
    which serves ``payload``; yields its ``host:port`` and the headers of every request, in order."""
    seen: list[dict[str, str]] = []

    async def serve(request: web.Request) -> web.Response:
        seen.append({"at": request.host, "path": request.path, **request.headers})
        return web.Response(body=payload, content_type="application/octet-stream")

    def app_with_bytes() -> web.Application:
        app = web.Application()
        app.router.add_get("/bytes", serve)
        return app

    with contextlib.ExitStack() as stack:
        first = app_with_bytes()
        target = "/bytes" if same_origin else f"http://{stack.enter_context(serve_app(app_with_bytes()))}/bytes"

        async def redirect(request: web.Request) -> web.Response:
            seen.append({"at": request.host, "path": request.path, **request.headers})
            return web.Response(status=307, headers={"Location": target})

        first.router.add_get("/v2/{tail:.*}", redirect)
        yield stack.enter_context(serve_app(first)), seen


@pytest.mark.parametrize("same_origin", [False, True], ids=["other-origin", "same-origin"])
def test_a_redirect_is_followed_authorization_stays_with_the_origin(payload, same_origin):
    digest = f"sha256:{hashlib.sha256(payload).hexdigest()}"
    with redirecting(payload, same_origin=same_origin) as (host, seen):
        g = get(host, digest, len(payload), headers={"Authorization": "Bearer s3cret"})
        sink = Collected()
        g.run(sink)
    assert sink.digest == digest and g.requests == 2
    assert [r["path"] for r in seen] == [f"/v2/{REPO}/blobs/{digest}", "/bytes"]
    assert seen[0]["Authorization"] == "Bearer s3cret"
    assert (seen[1]["at"] == host) is same_origin
    assert seen[1].get("Authorization") == ("Bearer s3cret" if same_origin else None)


def _abort_while_stalled(g: ThreadedGet) -> BaseException | None:
    """Run ``g`` in a thread; once its first piece came (the body then stalls), abort it from here;
    what ``run`` raised."""
    sink = Collected()
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            g.run(sink)
            raised.append(None)
        except BaseException as e:  # noqa: BLE001 - examined by the test
            raised.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert sink.first.wait(30), "no piece came"
    g.abort()
    t.join(30)
    assert not t.is_alive(), "abort() did not stop run()"
    return raised[0]


def test_abort_stops_a_stalled_body(reg, blob):
    with gated_proxy(reg.host, blob, 1 << 20) as (proxy, gate):
        try:
            assert isinstance(_abort_while_stalled(get(proxy, blob, timeout=100)), ConnectionAbortedError)
        finally:
            gate.set()


def _stalling_app(payload: bytes, gate: threading.Event) -> web.Application:
    """Answers any GET under /v2/ with ``payload``'s length and ``Connection: close``, sends its first
    MiB, then nothing until ``gate`` is set (http.client lets go of the socket of such an answer)."""
    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(len(payload))})
        resp.force_close()
        await resp.prepare(request)
        await resp.write(payload[:1 << 20])
        while not gate.is_set():
            await asyncio.sleep(0.05)
        return resp

    app = web.Application()
    app.router.add_get("/v2/{tail:.*}", stall)
    return app


@pytest.fixture(scope="module")
def tls(tls_cert) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for the self-signed 127.0.0.1 certificate."""
    crt, key = tls_cert
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(crt, key)
    return server, ssl.create_default_context(cafile=crt)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_abort_stops_a_stalled_body_the_server_closes_after(payload, tls, scheme):
    gate = threading.Event()
    with serve_app(_stalling_app(payload, gate), tls[0] if scheme == "https" else None) as host:
        try:
            g = ThreadedGet(f"{scheme}://{host}/v2/{REPO}/blobs/x", {}, len(payload),
                            ssl_context=tls[1] if scheme == "https" else None, timeout=100, resumes=2, what="blob")
            assert isinstance(_abort_while_stalled(g), ConnectionAbortedError)
        finally:
            gate.set()


def test_https_a_whole_body_and_a_certificate_not_trusted(payload, tls):
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=payload)

    app = web.Application()
    app.router.add_get("/v2/{tail:.*}", serve)
    digest = f"sha256:{hashlib.sha256(payload).hexdigest()}"
    with serve_app(app, tls[0]) as host:
        url = f"https://{host}/v2/{REPO}/blobs/{digest}"
        sink = Collected()
        ThreadedGet(url, {}, len(payload), ssl_context=tls[1], timeout=60, resumes=2, what="blob").run(sink)
        assert sink.digest == digest
        untrusted = ThreadedGet(url, {}, len(payload), ssl_context=ssl.create_default_context(), timeout=60,
                                resumes=2, what="blob")
        assert "CERTIFICATE_VERIFY_FAILED" in _not_started(untrusted)


def test_a_resume_answered_with_the_whole_body_passes_over_what_came(payload):
    """A server that ignores ``Range``: the first answer is cut after 1 MiB, the resume gets the
    whole body again (200), and the bytes already handed on are not handed on twice."""
    digest = f"sha256:{hashlib.sha256(payload).hexdigest()}"
    asked: list[str | None] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        asked.append(request.headers.get("Range"))
        resp = web.StreamResponse(headers={"Content-Length": str(len(payload))})
        await resp.prepare(request)
        if len(asked) == 1:
            await resp.write(payload[:1 << 20])
            assert request.transport is not None
            request.transport.close()  # cut mid-body
            return resp
        await resp.write(payload)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/v2/{tail:.*}", serve)
    with serve_app(app) as host:
        g = get(host, digest, len(payload))
        sink = Collected()
        g.run(sink)
    assert sink.digest == digest and sum(sink.pieces) == len(payload)
    assert asked[0] is None and asked[1] is not None and asked[1].startswith("bytes=") and len(asked) == 2

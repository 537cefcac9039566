"""Pull-through cache: repositories under a ``proxy:`` prefix are filled from an upstream on demand.

``LOCAL/hub/library/httpd:2.4.48`` with ``{prefix: hub, upstream: docker://HOST}`` is
``HOST/library/httpd:2.4.48``, cached in this registry under its local name. A manifest asked
by digest is fetched once and kept; a tag is re-checked upstream (a ``HEAD``) once it is older
than the entry's ``tag-ttl``. A blob is fetched once however many clients ask at the same time
(:mod:`.blobfetch`) and streamed to them while it is stored. With the upstream unreachable,
what is cached is still served: tags answer from the cache, marked ``Ocikit-Cache: stale``.
Proxied answers say where they came from in ``Ocikit-Cache``: manifests ``hit``, ``fetched``,
``stale`` or ``local``, tag lists ``merged`` or ``stale``, a blob fetched for this request
``fetched`` (a blob already stored is the registry's usual answer, without the header).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from typing import Any, Callable

from aiohttp import web

from ..content import Options
from ..core.digest import Digest
from ..core.errors import (
    BlobUnknown,
    Denied,
    ManifestUnknown,
    NameUnknown,
    RegistryError,
    TransportError,
    Unauthorized,
    UsageError,
)
from ..model import Descriptor, ImageManifest, parse_manifest
from ..transports.registry.auth import repository_scope
from ..transports.registry.client import RegistryClient
from ..transports.registry.credentials import find_credentials
from ..transports.registry.retry import RetryPolicy
from ..transports.registry.store import RegistryStore
from ..transports.registry.threadget import ThreadedGet
from .blobfetch import BlobFetch
from .cache_config import ProxyEntry, points_at_self
from .routes import is_tag, parse_reference
from .storage.registry import RegistryStorage, blob_key, repo_key

log = logging.getLogger("ocikit.server.proxy")

DOWN_BACKOFF = 5.0
"""Seconds an upstream that failed is not asked again (cached content is served meanwhile)."""
KNOWN_SIZES = 100_000
"""Blob sizes remembered from fetched manifests (saves a HEAD upstream before a blob fetch)."""

EventSink = Callable[[str, dict[str, Any]], None]


class Upstream:
    """One ``proxy:`` entry: its client (pool, auth, retries) and its repositories."""

    def __init__(self, entry: ProxyEntry) -> None:
        self.entry = entry
        creds = find_credentials(entry.host, authfile=entry.auth_file)
        self.client = RegistryClient(entry.host, creds=creds, tls_verify=entry.tls_verify,
                                     cert_dir=entry.cert_dir, retry=RetryPolicy(times=entry.retries))
        self._stores: dict[str, RegistryStore] = {}
        self.down_until = 0.0

    def store(self, repository: str) -> RegistryStore:
        s = self._stores.get(repository)
        if s is None:
            s = self._stores[repository] = RegistryStore(self.client, repository, own_client=False)
        return s

    def check_up(self) -> None:
        if time.monotonic() < self.down_until:
            raise TransportError(f"upstream {self.entry.host} is unreachable (retrying in a few seconds)")

    def mark_down(self, error: BaseException) -> None:
        self.down_until = time.monotonic() + DOWN_BACKOFF
        log.warning("upstream %s unreachable, serving from the cache: %s", self.entry.host, error)


class PullThrough:
    """Every ``proxy:`` entry of a server, over its storage."""

    def __init__(self, entries: list[ProxyEntry], storage: RegistryStorage, *,
                 emit: EventSink | None = None) -> None:
        self.upstreams = [Upstream(e) for e in entries]
        self.storage = storage
        self.emit = emit
        self.fetches: dict[Digest, asyncio.Future[BlobFetch]] = {}
        self._manifest_flights: dict[tuple[str, str, str | None], asyncio.Future[None]] = {}
        self.sizes: collections.OrderedDict[Digest, int] = collections.OrderedDict()
        self.upstream_blob_gets = 0
        """Blob fetches started upstream (a metric; single-flight keeps it at one per blob)."""

    def refuse_loops(self, listen_host: str, listen_port: int) -> None:
        """A proxy entry whose upstream is this very server: UsageError (it would ask itself forever)."""
        for up in self.upstreams:
            if points_at_self(up.entry, listen_host, listen_port):
                raise UsageError(f"config: proxy prefix {up.entry.prefix!r}: upstream {up.entry.host} "
                                 "is this server itself")

    def match(self, name: str) -> tuple[Upstream, str] | None:
        for up in self.upstreams:
            repo = up.entry.upstream_repository(name)
            if repo is not None:
                return up, repo
        return None

    async def close(self) -> None:
        for f in list(self.fetches.values()):
            if f.done() and not f.cancelled() and not f.exception():
                f.result().task.cancel()
        for up in self.upstreams:
            await up.client.close()

    async def handle(self, request: web.Request, kind: str, name: str, ref: str) -> web.StreamResponse | None:
        """The proxied answer to a GET/HEAD, or ``None`` when the registry answers it as usual."""
        m = self.match(name)
        if m is None:
            return None
        up, repo = m
        if kind == "manifest":
            return await self._manifest(up, repo, name, ref)
        if kind == "blob":
            return await self._blob(request, up, repo, name, Digest(ref))
        if kind == "tags":
            return await self._tags(up, repo, name)
        return None

    # ---- manifests -------------------------------------------------------------------------------

    def _remember_sizes(self, raw: bytes, media_type: str) -> None:
        try:
            m = parse_manifest(raw, media_type)
        except Exception:  # noqa: BLE001 - stored as the upstream sent it; sizes are only a hint
            return
        if isinstance(m, ImageManifest):
            for d in (m.config, *m.layers):
                self.sizes[d.digest] = d.size
                self.sizes.move_to_end(d.digest)
        while len(self.sizes) > KNOWN_SIZES:
            self.sizes.popitem(last=False)

    async def _fetch_manifest(self, up: Upstream, repo: str, name: str, ref: str, tag: str | None) -> None:
        """Fetch ``ref`` (a digest: verified against it; or the tag itself) and store it, tagged ``tag``.

        Concurrent requests for the same manifest share one upstream GET (registries count them)."""
        key = (name, ref, tag)
        flight = self._manifest_flights.get(key)
        if flight is None:
            flight = self._manifest_flights[key] = asyncio.ensure_future(self._fetch_manifest_once(up, repo, name,
                                                                                                   ref, tag))
            flight.add_done_callback(self._landed)
        await asyncio.shield(flight)

    def _landed(self, flight: "asyncio.Future[None]") -> None:
        for k, f in list(self._manifest_flights.items()):
            if f is flight:
                del self._manifest_flights[k]
        if not flight.cancelled():
            flight.exception()  # retrieved here; every waiter gets it too

    async def _fetch_manifest_once(self, up: Upstream, repo: str, name: str, ref: str, tag: str | None) -> None:
        rm = await up.store(repo).get_manifest(ref)
        digest = rm.digest
        await self.storage.put_manifest(name, tag if tag is not None else digest, rm.raw, rm.media_type,
                                        check=False)
        self._remember_sizes(rm.raw, rm.media_type)
        if self.emit is not None:
            self.emit("proxy.fetch", {"repository": name, "digest": str(digest), "mediaType": rm.media_type,
                                      "size": len(rm.raw), "tag": tag, "upstream": up.entry.host})

    async def _tag_age(self, name: str, tag: str) -> float:
        mtime = await self.storage.driver.mtime(repo_key(name, "_manifests", "tags", tag))
        return time.time() - mtime if mtime is not None else float("inf")

    async def _manifest(self, up: Upstream, repo: str, name: str, ref: str) -> web.StreamResponse:
        reference = parse_reference(ref)
        state = "hit"
        if isinstance(reference, Digest):
            if not await self.storage.has_manifest(name, reference):
                up.check_up()
                await self._guard(up, self._fetch_manifest(up, repo, name, str(reference), None))
                state = "fetched"
        else:
            if not is_tag(reference):
                raise ManifestUnknown(f"manifest unknown: invalid tag {ref[:140]!r}")
            local = await self.storage.resolve_tag(name, reference)
            if local is None or await self._tag_age(name, reference) >= up.entry.tag_ttl:
                try:
                    up.check_up()
                    if local is None:  # nothing to compare with: one GET by tag
                        await self._guard(up, self._fetch_manifest(up, repo, name, reference, reference))
                        state = "fetched"
                    else:  # a HEAD says whether the tag moved
                        desc = await self._guard(up, up.store(repo).resolve(reference))
                        if desc.digest == local and await self.storage.has_manifest(name, local):
                            await self.storage.driver.touch(repo_key(name, "_manifests", "tags", reference))
                        else:
                            await self._guard(up, self._fetch_manifest(up, repo, name, str(desc.digest),
                                                                       reference))
                            state = "fetched"
                except ManifestUnknown:
                    if local is None:
                        raise
                    state = "local"  # a tag pushed here, or gone upstream: this registry's own answer
                except TransportError:
                    if local is None:
                        raise
                    state = "stale"
                    log.warning("%s:%s: upstream %s unreachable, serving the cached tag (stale)",
                                name, reference, up.entry.host)
        stored = await self.storage.get_manifest(name, reference)
        return web.Response(body=stored.raw, headers={"Content-Type": stored.media_type,
                                                      "Docker-Content-Digest": str(stored.digest),
                                                      "ETag": f'"{stored.digest}"', "Ocikit-Cache": state})

    async def _guard(self, up: Upstream, call: Any) -> Any:
        """Await ``call``; a transport failure marks the upstream down for a little while; the
        upstream refusing our credentials is a bad gateway (502), never a challenge to the client."""
        try:
            return await call
        except (Unauthorized, Denied) as e:  # the proxy's credentials, not the client's: a bad gateway
            raise RegistryError(f"upstream {up.entry.host} refused this registry's credentials: {e}") from None
        except TransportError as e:
            up.mark_down(e)
            raise

    # ---- blobs -----------------------------------------------------------------------------------

    async def _upstream_size(self, up: Upstream, repo: str, digest: Digest) -> int:
        size = self.sizes.get(digest)
        if size is not None:
            return size
        up.check_up()
        store = up.store(repo)
        async with up.client.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes=(repository_scope(repo, "pull"),),
                                     what=f"{store.location}: blob {digest}", not_found=BlobUnknown) as resp:
            length = resp.headers.get("Content-Length", "")
        if not length.isdigit():
            raise TransportError(f"{store.location}: blob {digest}: no Content-Length in the upstream's answer")
        return int(length)

    async def _blob(self, request: web.Request, up: Upstream, repo: str, name: str,
                    digest: Digest) -> web.StreamResponse | None:
        s = self.storage
        if await s.blob_size(name, digest) is not None:
            return None
        if await s.driver.size(blob_key(digest)) is not None:
            await s.link_blob(name, digest)  # stored for another repository already
            return None
        headers = {"Docker-Content-Digest": str(digest), "Content-Type": "application/octet-stream",
                   "Ocikit-Cache": "fetched"}
        fetch = await self._fetch_for(up, repo, name, digest)
        # a HEAD waits for the blob: "it is here" must stay true for a push that relies on it
        if not fetch.joinable or request.method == "HEAD":
            fetch.hurry()
            await fetch.wait()
            if await s.blob_size(name, digest) is None:
                await s.link_blob(name, digest)
            return None
        resp = await fetch.stream(request, headers)
        if fetch.done.done() and not fetch.done.cancelled() and fetch.done.exception() is None \
                and await s.blob_size(name, digest) is None:
            await s.link_blob(name, digest)  # another repository's client started the fetch
        return resp

    async def _fetch_for(self, up: Upstream, repo: str, name: str, digest: Digest) -> BlobFetch:
        """The fetch of ``digest`` in flight, started when there is none (one per digest, ever at once)."""
        starting = self.fetches.get(digest)
        if starting is None:
            starting = self.fetches[digest] = asyncio.get_running_loop().create_future()
            try:
                size = await self._guard(up, self._upstream_size(up, repo, digest))
                starting.set_result(self._start(up, repo, name, digest, size))
            except BaseException as e:
                self.fetches.pop(digest, None)
                if isinstance(e, Exception):
                    starting.set_exception(e)
                    starting.exception()  # retrieved: the waiters get it too
                else:
                    starting.cancel()
                raise
        return await asyncio.shield(starting)

    def _start(self, up: Upstream, repo: str, name: str, digest: Digest, size: int) -> BlobFetch:
        store = up.store(repo)
        desc = Descriptor("application/octet-stream", digest, size)
        self.upstream_blob_gets += 1
        what = f"{store.location}: blob {digest}"

        async def prepare() -> ThreadedGet:
            return await up.client.prepare_get(f"/v2/{repo}/blobs/{digest}", size,
                                               scopes=(repository_scope(repo, "pull"),), what=what)

        fetch = BlobFetch(self.storage, name, digest, size,
                          lambda: store.blob_chunks(desc, Options(verified_downstream=True)),
                          what=what, prepare=prepare)

        def finished(_: Any) -> None:
            self.fetches.pop(digest, None)
            if self.emit is not None and not fetch.done.cancelled() and fetch.done.exception() is None:
                self.emit("proxy.fetch", {"repository": name, "digest": str(digest), "size": size,
                                          "mediaType": desc.media_type, "upstream": up.entry.host})

        fetch.done.add_done_callback(finished)
        return fetch

    # ---- tags ------------------------------------------------------------------------------------

    async def _tags(self, up: Upstream, repo: str, name: str) -> web.StreamResponse:
        local = await self.storage.list_tags(name)
        state = "merged"
        try:
            up.check_up()
            remote: list[str] | None = await self._guard(up, up.store(repo).list_tags())
        except NameUnknown:
            remote = None
        except TransportError:
            remote, state = None, "stale"
            log.warning("%s: upstream %s unreachable, listing cached tags (stale)", name, up.entry.host)
        if local is None and remote is None:
            raise NameUnknown(f"repository name not known to registry: {name}", detail={"name": name})
        tags = sorted(set(local or []) | set(remote or []))
        return web.Response(body=json.dumps({"name": name, "tags": tags}).encode(), content_type="application/json",
                            headers={"Ocikit-Cache": state})


PULLTHROUGH = web.AppKey("ocikit_pullthrough", PullThrough)

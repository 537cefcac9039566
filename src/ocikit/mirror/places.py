"""Where a mirror reads from and writes to: repositories opened lazily, one Store each.

A target is a registry prefix (``docker://HOST[:PORT]/PREFIX``), a tree of OCI layouts
(``oci:DIR``, one layout per repository) or a disk bundle (``dir:BUNDLE``, see
:mod:`ocikit.mirror.bundle`). Every target answers ``store_for(path)`` and ``key_for(path)``:
images whose blobs land in the same place share a key, which is how blobs are deduplicated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

from ..content import Store
from ..core.digest import Digest
from ..core.errors import InvalidReference, UsageError
from ..ops.copy_plan import CopyPlan
from ..core.reference import validate_host, validate_repository_name
from ..transports import OpenOptions
from ..transports.layout import OCILayout
from .mirror_config import join_prefix
from .plan_types import ImageJob, registry_of


class Target(Protocol):
    """Where mirrored images land. Every member is declared; the mirror looks nothing up by name.

    Planning consults ``assumed_present``, then (unless told not to) asks ``store_for(path)``
    which blobs it has; execution writes blobs through ``store_for`` and each image's
    manifests through ``image_store``, and records a referrer found through the API where
    ``records_referrers``.
    """

    location: str
    registry: str
    """A name for per-registry limits (``host:port``, ``local``)."""
    records_referrers: bool
    """A referrer found through a registry's API is recorded at the target (the ``<alg>-<hex>``
    tag schema where the target lacks the API). False: the target keeps referrers its own way
    (a bundle: index.json entries annotated with their subject)."""
    assumed_present: frozenset[Digest]
    """Blobs taken to be at the target without asking (a bundle written ``--since`` an earlier one)."""

    def store_for(self, path: str) -> Store:
        """The Store of the repository at ``path`` (blobs go here)."""
        ...

    def image_store(self, job: ImageJob, plan: CopyPlan | None) -> Store:
        """The Store an image's manifests are written through (a bundle annotates its root entry)."""
        ...

    def key_for(self, path: str) -> str:
        """Paths whose blobs land in the same place share a key (blobs are deduplicated by key)."""
        ...

    def display(self, path: str, tag: str | None) -> str: ...

    async def close(self) -> None: ...


class StoreCache:
    """Stores opened once per key and closed together; registry repositories share one client per host
    (one ping, one TLS context, one connection pool, one token cache for the whole job)."""

    def __init__(self) -> None:
        self.stores: dict[str, Store] = {}
        self.clients: dict[str, Any] = {}

    def client(self, host: str, options: OpenOptions) -> Any:
        """The one :class:`~ocikit.transports.registry.RegistryClient` of ``host``."""
        from ..transports.registry import client_for
        client = self.clients.get(host)
        if client is None:
            client = self.clients[host] = client_for(host, options)
        return client

    def repository(self, host: str, repo: str, options: OpenOptions, *, write: bool) -> Store:
        from ..core.reference import validate_repository_name as _check
        from ..transports.registry import RegistryStore

        def opener() -> Store:
            _check(repo)
            return RegistryStore(self.client(host, options), repo, own_client=False, write=write)
        return self.get(f"docker://{host}/{repo}", opener)

    def upload_resumes(self) -> tuple[int, int]:
        """Uploads resumed at the registry's offset after a break, and the bytes they sent again."""
        from ..transports.registry import RegistryStore
        stores = [s for s in self.stores.values() if isinstance(s, RegistryStore)]
        return sum(s.upload_resumes for s in stores), sum(s.upload_bytes_resent for s in stores)

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Requests sent so far, per registry host and HTTP method."""
        return {h: dict(sorted(c.requests.items())) for h, c in sorted(self.clients.items())}

    def get(self, key: str, opener: "callable") -> Store:  # type: ignore[valid-type]
        s = self.stores.get(key)
        if s is None:
            s = self.stores[key] = opener()
        return s

    async def close(self) -> None:
        stores, self.stores = list(self.stores.values()), {}
        for s in stores:
            with contextlib.suppress(Exception):
                await s.close()
        clients, self.clients = list(self.clients.values()), {}
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()


class RegistryTarget:
    """``docker://HOST[:PORT]/PREFIX``: image ``SRCHOST/path/name:tag`` lands at ``HOST:PORT/PREFIX/path/name:tag``."""

    def __init__(self, host: str, prefix: str, options: OpenOptions | None = None) -> None:
        self.host = validate_host(host)
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_repository_name(self.prefix)
        self.options = options or OpenOptions()
        self.cache = StoreCache()
        self.registry = host
        self.location = f"docker://{host}/{self.prefix}" if self.prefix else f"docker://{host}"
        self.records_referrers = True
        self.assumed_present: frozenset[Digest] = frozenset()

    def repository(self, path: str) -> str:
        return join_prefix(self.prefix, path)

    def store_for(self, path: str) -> Store:
        return self.cache.repository(self.host, self.repository(path), self.options, write=True)

    def image_store(self, job: ImageJob, plan: CopyPlan | None) -> Store:
        return self.store_for(job.path)

    def client(self) -> Any:
        """The registry client every repository of this target shares."""
        return self.cache.client(self.host, self.options)

    def key_for(self, path: str) -> str:
        return f"{self.host}/{self.repository(path)}"

    def display(self, path: str, tag: str | None) -> str:
        return f"{self.host}/{self.repository(path)}" + (f":{tag}" if tag else "")

    async def close(self) -> None:
        await self.cache.close()


class LayoutTreeTarget:
    """``oci:DIR``: one OCI layout per repository, at ``DIR/PREFIX/path/name``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.cache = StoreCache()
        self.registry = "local"
        self.location = f"oci:{self.root}"
        self.records_referrers = True
        self.assumed_present: frozenset[Digest] = frozenset()

    def _dir(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/"))

    def store_for(self, path: str) -> Store:
        return self.cache.get(path, lambda: OCILayout(self._dir(path), create=True))

    def image_store(self, job: ImageJob, plan: CopyPlan | None) -> Store:
        return self.store_for(job.path)

    def key_for(self, path: str) -> str:
        return f"oci:{self._dir(path)}"

    def display(self, path: str, tag: str | None) -> str:
        return f"oci:{self._dir(path)}" + (f":{tag}" if tag else "")

    async def close(self) -> None:
        await self.cache.close()


@dataclass
class SourceSet:
    """Source repositories opened lazily: ``docker://host/repo`` or ``oci:PATH`` keys."""

    options: OpenOptions = field(default_factory=OpenOptions)
    cache: StoreCache = field(default_factory=StoreCache)
    fixed: dict[str, Store] = field(default_factory=dict)

    def store_for(self, key: str) -> Store:
        if key in self.fixed:
            return self.fixed[key]
        if key.startswith("docker://"):
            host, _, repo = key[len("docker://"):].partition("/")
            return self.cache.repository(host, repo, self.options, write=False)
        if key.startswith("oci:"):
            return self.cache.get(key, lambda: OCILayout(key[4:]))
        raise UsageError(f"unknown source {key!r}")

    async def close(self) -> None:
        await self.cache.close()


class Limits:
    """At most ``per_registry`` transfers per registry at once, and ``total`` overall.

    ``light`` requests (mounts, manifests, HEADs) have their own lane of ``LIGHT_FACTOR *
    per_registry`` per registry, so they do not queue behind large blob transfers (a no-op
    re-run of 1,000 images is 2,000 HEADs: latency-bound, not bandwidth-bound).
    """

    LIGHT_FACTOR = 4

    def __init__(self, total: int, per_registry: int) -> None:
        self.total = asyncio.Semaphore(max(1, total))
        self.per_registry = max(1, per_registry)
        self.sems: dict[str, asyncio.Semaphore] = {}

    def _sem(self, name: str) -> asyncio.Semaphore:
        s = self.sems.get(name)
        if s is None:
            n = self.per_registry * (self.LIGHT_FACTOR if name.startswith("light:") else 1)
            s = self.sems[name] = asyncio.Semaphore(n)
        return s

    @contextlib.asynccontextmanager
    async def hold(self, *registries: str, light: bool = False) -> AsyncIterator[None]:
        names = sorted(set(registries))  # one order everywhere: no deadlock
        if light and len(names) == 1:  # a re-run's thousands of HEADs: one semaphore, no exit stack
            async with self._sem(f"light:{names[0]}"):
                yield
            return
        async with contextlib.AsyncExitStack() as stack:
            if not light:
                await stack.enter_async_context(self.total)
            for n in names:
                await stack.enter_async_context(self._sem(f"light:{n}" if light else n))
            yield


def parse_target(text: str, options: OpenOptions | None = None) -> "Target":
    """``docker://HOST[:PORT]/PREFIX``, ``oci:DIR`` or ``dir:BUNDLE`` (see :mod:`ocikit.mirror.bundle`)."""
    if text.startswith("docker://"):
        rest = text[len("docker://"):].rstrip("/")
        host, _, prefix = rest.partition("/")
        if not host:
            raise UsageError(f"invalid mirror target {text!r}: no registry host")
        if "@" in prefix or (":" in prefix.rsplit("/", 1)[-1]):
            raise UsageError(f"invalid mirror target {text!r}: a target is HOST[:PORT]/PREFIX, without tag or digest")
        try:
            return RegistryTarget(host, prefix, options)
        except InvalidReference as e:
            raise UsageError(f"invalid mirror target {text!r}: {e}") from None
    if text.startswith("oci:") and len(text) > 4:
        return LayoutTreeTarget(text[4:])
    if text.startswith("dir:") and len(text) > 4:
        from .bundle import BundleTarget
        return BundleTarget(text[4:])
    raise UsageError(f"invalid mirror target {text!r}: expected docker://HOST[:PORT]/PREFIX, oci:DIR or dir:BUNDLE")


__all__ = ["Limits", "LayoutTreeTarget", "RegistryTarget", "SourceSet", "StoreCache", "Target", "parse_target",
           "registry_of"]

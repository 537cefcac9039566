"""Running ``registry gc`` over any driver: one collection at a time, then the leftovers of crashes.

On a bucket shared by replicas the exclusion is a *lease object* (``gc.lease``) in the bucket:
created with ``If-None-Match: *``, renewed with ``If-Match: <etag>`` every third of its time to
live, taken over only once it has expired, deleted at the end. A gc that cannot renew its lease
stops before its next deletion, so two collections never sweep at once even across machines.
After the mark and sweep, multipart uploads a killed replica left behind are aborted once they
are older than the upload grace.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .gc import GcReport, collect_garbage
from .storage.drivers import open_driver
from .storage.registry import RegistryStorage

if TYPE_CHECKING:  # pragma: no cover
    from .config import ServerConfig
    from .storage.s3 import S3Driver

LEASE_KEY = "gc.lease"
LEASE_TTL = 60.0


class LeaseLost(UsageError):
    """Another gc took the lease (ours expired unrenewed): this one stops."""


class Lease:
    """The ``gc.lease`` object of a bucket, held while a collection runs."""

    def __init__(self, driver: "S3Driver", ttl: float = LEASE_TTL) -> None:
        self.driver = driver
        self.ttl = ttl
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{time.time():.3f}"
        self.etag: str | None = None
        self.lost = False
        self._renewer: asyncio.Task[None] | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.ttl}).encode()

    async def acquire(self) -> None:
        if await self.driver.create_if_absent(LEASE_KEY, self._body()):
            got = await self.driver.get_with_etag(LEASE_KEY)
            self.etag = got[1] if got else None
        else:
            got = await self.driver.get_with_etag(LEASE_KEY)
            if got is not None:
                held = json.loads(got[0])
                if float(held.get("expires", 0)) > time.time():
                    raise UsageError(f"another gc holds the lease of {self.driver.describe()} "
                                     f"({held.get('owner')}, until {time.ctime(float(held['expires']))})")
                self.etag = await self.driver.replace_if(LEASE_KEY, self._body(), got[1])
            if self.etag is None:
                raise UsageError(f"another gc took the lease of {self.driver.describe()} first")
        self._renewer = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            assert self.etag is not None
            try:
                etag = await self.driver.replace_if(LEASE_KEY, self._body(), self.etag)
            except Exception:  # noqa: BLE001 - unrenewed is lost: stop deleting rather than guess
                etag = None
            if etag is None:
                self.lost = True
                return
            self.etag = etag

    def check(self) -> None:
        """Raise :class:`LeaseLost` when the lease could not be renewed (the driver calls it before each deletion)."""
        if self.lost:
            raise LeaseLost(f"gc lease of {self.driver.describe()} lost; stopping")

    async def release(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        if not self.lost and self.etag is not None:
            got = await self.driver.get_with_etag(LEASE_KEY)
            if got is not None and got[1] == self.etag:
                await self.driver.delete(LEASE_KEY)


async def collect_with_lease(config: "ServerConfig", **kw: Any) -> GcReport:
    """Mark and sweep the storage ``config`` names, holding its lease when it is a bucket."""
    driver = open_driver(config)
    try:
        await driver.check()
        storage = RegistryStorage(driver)
        lease: Lease | None = None
        if config.s3 is not None:
            from .storage.s3 import S3Driver
            assert isinstance(driver, S3Driver)
            lease = Lease(driver)
            await lease.acquire()
            driver.guard = lease.check
        try:
            report = await collect_garbage(storage, **kw)
            if lease is not None:
                lease.check()
            if not kw.get("dry_run"):
                before = time.time() - float(kw.get("upload_grace", 24 * 3600.0))
                report.uploads.extend(f"multipart {k}" for k in await driver.purge_incomplete(before))
        finally:
            if lease is not None:
                await lease.release()
        return report
    finally:
        await driver.close()

"""The layout directory itself: where it is, its lock, and where a blob lives (and reading one back).

The base of :class:`~ocikit.transports.layout.OCILayout`; the modules that write, link,
collect and validate blobs take a layout typed as this (or as its ``IndexFile`` child), so
none of them imports the Store that uses them.
"""

from __future__ import annotations

import contextlib
import os

from ...digest import Digest, Verifier
from ...durable import lock
from ...errors import BlobUnknown, ManifestInvalid, ManifestUnknown
from ...model.manifest import MAX_MANIFEST_SIZE


class LayoutDir:
    """An OCI layout's directory: ``path``, whether writes are flushed (``sync``), its lock."""

    path: str
    sync: bool

    @property
    def location(self) -> str:
        return f"oci:{self.path}"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock on the layout (flock on its directory), for index.json updates and gc."""
        return lock(self.path)

    def blob_path(self, digest: str) -> str:
        d = Digest(digest)
        return os.path.join(self.path, "blobs", d.algorithm, d.encoded)

    def _read_verified(self, digest: Digest, size: int | None = None, *, what: str = "manifest") -> bytes:
        limit = MAX_MANIFEST_SIZE if what == "manifest" else None
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read(limit + 1) if limit is not None else f.read()
        except FileNotFoundError:
            raise (ManifestUnknown if what == "manifest" else BlobUnknown)(
                f"{self.location}: {what} {digest} is missing from blobs/") from None
        if limit is not None and len(data) > limit:
            raise ManifestInvalid(f"{self.location}: {what} {digest} is larger than the {limit}-byte limit")
        v = Verifier(digest, size, what=f"{self.location}: {what}")
        v.update(data)
        v.verify()
        return data

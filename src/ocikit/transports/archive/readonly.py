"""The write half of the Store protocol for archives opened for reading: it refuses."""

from __future__ import annotations

from typing import AsyncIterator

from ...content import DEFAULT_OPTIONS, Options
from ...core.digest import Digest
from ...core.errors import Unsupported
from ...model import Descriptor


class ReadOnly:
    """Mixin: ``put_blob``/``put_manifest`` raise :class:`Unsupported` naming ``self.location``."""

    location: str

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes],
                       opts: Options = DEFAULT_OPTIONS) -> None:
        raise Unsupported(f"{self.location}: opened for reading")

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        raise Unsupported(f"{self.location}: opened for reading")

"""Holding a Store for the length of an operation: close it on success, abort it on failure.

An archive target writes its file on ``close``; on failure ``abort`` (where a store is an ``Aborter``)
discards what was staged, so nothing half-written looks complete.
"""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from ..content import Aborter, Store


async def finish(store: Store, ok: bool) -> None:
    """``close`` after success; after a failure :meth:`~ocikit.content.Aborter.abort` where the
    store is an :class:`~ocikit.content.Aborter`, else ``close``."""
    if not ok and isinstance(store, Aborter):
        await store.abort()
    else:
        await store.close()


@contextlib.asynccontextmanager
async def holding(store: Store) -> AsyncIterator[Store]:
    """``async with holding(open_store(...)) as s:`` — finished as :func:`finish` says."""
    ok = False
    try:
        yield store
        ok = True
    finally:
        await finish(store, ok)


__all__ = ["finish", "holding"]

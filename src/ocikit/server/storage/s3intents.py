"""gc and writers on a bucket shake hands in the bucket itself: S3 has no lock to take.

A gc that would delete a key (a blob, a repository link, a manifest revision older than its
grace) first writes an *intent* object, ``gc.deleting/<key>``, then reads the key's age, deletes
it if it is still old, and withdraws the intent (:func:`delete_if_older`). A writer that refreshes
a key (``S3Driver.touch``: a copy onto itself) then looks for an intent for that key; finding one,
it waits for it to go and reports whether the key survived (:func:`outlasted_gc`), so the push
writes it again, uploads it again or refuses the manifest. Both sides write before they read:
with S3's strong read-after-write consistency at least one sees the other. A refresh that came
before the gc read the age makes the key fresh; one that came after sees the intent.

``LastModified`` has whole seconds, so the gc takes its cutoff a second earlier; an intent older
than :data:`STALE_INTENT` is taken for one a killed gc left behind. The cost: one ``HEAD`` per
refresh, a ``PUT`` and a ``DELETE`` per key a gc deletes.
"""

from __future__ import annotations

import asyncio
import time

from .base import StorageDriver

INTENTS = "gc.deleting/"
"""Where a gc announces, one object per key, that it is about to delete that key."""
MTIME_RESOLUTION = 1.0
"""Seconds: S3 keeps ``LastModified`` to the second, so a key touched 0.9 s ago may read as 1.9 s old."""
STALE_INTENT = 30.0
"""Seconds after which an intent is taken for one a killed gc left behind."""


async def delete_if_older(driver: StorageDriver, key: str, cutoff: float) -> bool:
    """Delete ``key`` if it was last modified before ``cutoff`` (less a second), announced by an
    intent for the time of the decision; ``True`` if deleted."""
    intent = INTENTS + key
    await driver.put(intent, b"")
    try:
        mtime = await driver.mtime(key)
        return mtime is not None and mtime < cutoff - MTIME_RESOLUTION and await driver.delete(key)
    finally:
        await driver.delete(intent)


async def outlasted_gc(driver: StorageDriver, key: str) -> bool:
    """After ``key`` was refreshed: whether it is still there once no gc is deciding on it."""
    seen = False
    while (at := await driver.mtime(INTENTS + key)) is not None and time.time() - at < STALE_INTENT:
        seen = True
        await asyncio.sleep(0.05)
    return not seen or await driver.mtime(key) is not None


__all__ = ["INTENTS", "MTIME_RESOLUTION", "STALE_INTENT", "delete_if_older", "outlasted_gc"]

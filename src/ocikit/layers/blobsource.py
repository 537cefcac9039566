"""Where a layer's bytes come from: a file, or a Store's async ``blob_chunks`` driven from a thread.

A :class:`~ocikit.layers.decompress.Decompressor` reads its blob in a thread of its own through a
*source*: a function returning an iterator of byte chunks. A file is read with plain ``read``
calls; a Store's async iterator is driven on the event loop that owns the Store (or on a
private loop when there is none), and closed on that loop when the reader stops early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator

from ..content import Options, Store
from ..model import Descriptor
from .decompress import FIRST_OUT_CHUNK, READ_CHUNK

if TYPE_CHECKING:
    import asyncio


CLOSE_TIMEOUT = 30.0
"""Seconds a reader that stops early waits for the Store's stream to close on its loop."""


def file_source(path: str) -> Callable[[], Iterator[bytes]]:
    """The chunks of a file: a short first read (see :data:`~.decompress.FIRST_OUT_CHUNK`), then
    :data:`~.decompress.READ_CHUNK` at a time."""
    def gen() -> Iterator[bytes]:
        with open(path, "rb", buffering=0) as f:
            n = FIRST_OUT_CHUNK      # a short first read, as for the first output (see there)
            while True:
                b = f.read(n)
                if not b:
                    return
                yield b
                n = READ_CHUNK
    return gen


def store_source(store: Store, desc: Descriptor, opts: Options,
                 loop: asyncio.AbstractEventLoop | None) -> Callable[[], Iterator[bytes]]:
    """The chunks of ``store.blob_chunks(desc)``, driven on ``loop`` (the running loop that owns the
    store, from another thread) or, without one, on a private loop of the reading thread.

    However the reading ends (the end of the blob, an error, a reader closed early), the async
    stream is closed on its loop before the reading thread goes on, so its connection is released
    while that loop still runs: left to the garbage collector, it would be closed after the
    loop, with "Event loop is closed" errors printed at exit."""
    def gen() -> Iterator[bytes]:
        import asyncio

        agen: AsyncIterator[bytes] = store.blob_chunks(desc, opts)
        if loop is not None:
            try:
                while True:
                    fut = asyncio.run_coroutine_threadsafe(agen.__anext__(), loop)  # type: ignore[arg-type]
                    try:
                        yield fut.result()
                    except StopAsyncIteration:
                        return
            finally:
                if not loop.is_closed():
                    try:
                        asyncio.run_coroutine_threadsafe(agen.aclose(), loop).result(  # type: ignore[attr-defined]
                            CLOSE_TIMEOUT)
                    except Exception:  # noqa: BLE001 - closing is best effort; the read's outcome stands
                        pass
        else:
            own = asyncio.new_event_loop()
            try:
                while True:
                    try:
                        yield own.run_until_complete(agen.__anext__())  # type: ignore[arg-type]
                    except StopAsyncIteration:
                        return
            finally:
                own.run_until_complete(agen.aclose())  # type: ignore[attr-defined]
                own.close()
    return gen


__all__ = ["CLOSE_TIMEOUT", "file_source", "store_source"]

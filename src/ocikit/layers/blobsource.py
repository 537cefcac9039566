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


def file_source(path: str) -> Callable[[], Iterator[bytes]]:
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
                asyncio.run_coroutine_threadsafe(agen.aclose(), loop)  # type: ignore[attr-defined]
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


__all__ = ["file_source", "store_source"]

"""Blocking work in a thread of its own, awaited from the event loop, stopped when the awaiting task is.

For work that lasts as long as a transfer (receiving a blob, relaying it): it must not hold one of
the default executor's few threads for that long, and a cancelled request must stop it — the work
is asked to stop (``abort``), and waited for, before the cancellation goes on, so whatever it uses
(a file descriptor, a socket) can be closed right after.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable, TypeVar

T = TypeVar("T")


async def run_in_own_thread(work: Callable[[], T], *, abort: Callable[[], None], name: str) -> T:
    """Run ``work()`` in a new daemon thread and return (or raise) what it did; on cancellation,
    call ``abort()`` (from the event loop), wait for ``work`` to end (however often the task is
    cancelled meanwhile), then re-raise."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if not done.done():
            if ok:
                done.set_result(value)  # type: ignore[arg-type]
            else:
                done.set_exception(value)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result: object = work()
            ok = True
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            result, ok = e, False
        try:
            loop.call_soon_threadsafe(settle, ok, result)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        abort()
        await wait_out(done)
        raise


async def wait_out(fut: "asyncio.Future[object]") -> None:
    """Wait until ``fut`` is done, however often the awaiting task is cancelled meanwhile (each
    wait is shielded, so ``fut`` itself is never cancelled); its outcome is not raised."""
    while not fut.done():
        try:
            await asyncio.shield(fut)
        except BaseException:  # noqa: BLE001 - a cancellation, or fut's own error: the caller's concern
            pass


__all__ = ["run_in_own_thread", "wait_out"]

"""run_in_own_thread: blocking work in a thread of its own, awaited, stopped with the awaiting task."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ocikit.core.ownthread import run_in_own_thread


def _never() -> None:
    raise AssertionError("abort called without a cancellation")


async def test_the_result_comes_back_from_a_thread_of_its_own():
    here = threading.get_ident()

    def work() -> tuple[int, str, bool]:
        t = threading.current_thread()
        return 42, t.name, threading.get_ident() != here and t.daemon

    assert await run_in_own_thread(work, abort=_never, name="ocikit-test-work") == (42, "ocikit-test-work", True)


async def test_an_exception_passes_through():
    def work() -> None:
        raise ValueError("no good")

    with pytest.raises(ValueError, match="no good"):
        await run_in_own_thread(work, abort=_never, name="ocikit-test-fail")


async def test_cancelling_aborts_and_waits_for_the_work_before_the_cancellation_goes_on():
    started, stop = threading.Event(), threading.Event()
    events: list[str] = []
    loop_thread = threading.get_ident()

    def work() -> None:
        started.set()
        if not stop.wait(30):
            events.append("never aborted")
            return
        time.sleep(0.3)  # cleaning up after the abort takes a while: the caller must wait for it
        events.append("work ended")
        raise ConnectionAbortedError("stopped")  # what the work raises is not what the caller sees

    def abort() -> None:
        events.append("abort in the loop's thread" if threading.get_ident() == loop_thread else "abort elsewhere")
        stop.set()

    task = asyncio.create_task(run_in_own_thread(work, abort=abort, name="ocikit-test-cancel"))
    assert await asyncio.to_thread(started.wait, 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["abort in the loop's thread", "work ended"]


async def test_work_that_ends_before_the_cancellation_is_not_aborted():
    def work() -> int:
        return 7

    task = asyncio.create_task(run_in_own_thread(work, abort=_never, name="ocikit-test-quick"))
    assert await task == 7
    task.cancel()  # too late: nothing to stop
    assert await task == 7


async def test_a_second_cancellation_still_waits_for_the_work():
    """The caller closes what the work uses once the cancellation reaches it (a spool's descriptor,
    a socket): a second cancel (a shutdown cancelling every task) must not let it through sooner."""
    started, stop = threading.Event(), threading.Event()
    events: list[str] = []

    def work() -> None:
        started.set()
        stop.wait(30)
        time.sleep(0.3)
        events.append("work ended")

    def abort() -> None:
        events.append("abort")
        stop.set()

    task = asyncio.create_task(run_in_own_thread(work, abort=abort, name="ocikit-test-twice"))
    assert await asyncio.to_thread(started.wait, 30)
    task.cancel()
    while not events:  # the first cancellation reaches it: it aborts and waits for the work
        await asyncio.sleep(0)
    assert events == ["abort"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events == ["abort", "work ended"]

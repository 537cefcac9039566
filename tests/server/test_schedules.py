"""The background loops of ``ocikit serve``: on an interval, or at the times of a cron schedule.

The cron loop is driven by ``helpers.schedules.Soon``, a real ``CronSchedule`` whose
``next_after`` answers a moment a fraction of a second ahead, so the loop's own clock reading,
sleeping, starting and skipping run as in the server, without waiting for a minute boundary.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import pytest

from ocikit.server.schedules import run_at_times, run_every

from helpers.schedules import Soon, until


async def test_cron_runs_start_at_their_times_and_not_at_start():
    sched = Soon.make(0.2)
    started: list[datetime] = []

    async def job() -> None:
        started.append(datetime.now(timezone.utc))

    task = asyncio.create_task(run_at_times(sched, job, "test"))
    try:
        await until(lambda: len(started) >= 3, "three runs")
    finally:
        task.cancel()
    # each run starts at or after a time the schedule named, and the first one waited for its time
    assert sched.handed[0] <= started[0]
    for run in started:
        assert any(due <= run for due in sched.handed)
    # each time asked for is strictly after the one before: no time is run twice
    assert all(a < b for a, b in zip(sched.handed, sched.handed[1:]))


async def test_a_run_still_going_skips_the_next_time_and_says_so(caplog):
    sched = Soon.make(0.05)
    running = 0
    most = 0
    runs = 0
    release = asyncio.Event()

    async def job() -> None:
        nonlocal running, most, runs
        runs += 1
        running += 1
        most = max(most, running)
        try:
            if runs == 1:
                await release.wait()
        finally:
            running -= 1

    caplog.set_level(logging.WARNING, logger="ocikit.server.schedules")
    task = asyncio.create_task(run_at_times(sched, job, "sync nightly"))
    try:
        skipped = lambda: [r for r in caplog.records if "is skipped: the one before is still going" in r.message]
        await until(lambda: len(skipped()) >= 2, "two skipped times")
        assert runs == 1
        assert skipped()[0].getMessage().startswith("sync nightly: the run due at ")
        release.set()
        await until(lambda: runs >= 3, "runs after the long one ended")
    finally:
        task.cancel()
    assert most == 1


async def test_a_failing_run_is_logged_and_the_next_time_runs(caplog):
    sched = Soon.make(0.05)
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    caplog.set_level(logging.ERROR, logger="ocikit.server.schedules")
    task = asyncio.create_task(run_at_times(sched, job, "retention"))
    try:
        await until(lambda: runs >= 2, "a run after a failed one")
    finally:
        task.cancel()
    assert any(r.getMessage() == "retention: the run failed" and r.exc_info for r in caplog.records)


async def test_stopping_the_loop_cancels_the_run_in_flight():
    sched = Soon.make(0.05)
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(run_at_times(sched, job, "t"))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(cancelled.wait(), 5)


@pytest.mark.parametrize("at_start", [True, False])
async def test_interval_runs_first_at_start_or_after_one_interval(at_start):
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1

    task = asyncio.create_task(run_every(3600, job, at_start=at_start))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    assert runs == (1 if at_start else 0)


async def test_interval_counts_from_the_end_of_each_run():
    """Runs never overlap: the next one starts only after the one before returned."""
    running = most = runs = 0

    async def job() -> None:
        nonlocal running, most, runs
        runs += 1
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)  # longer than the interval
        running -= 1

    task = asyncio.create_task(run_every(0.01, job, at_start=True))
    try:
        await until(lambda: runs >= 4, "four runs")
    finally:
        task.cancel()
    assert most == 1

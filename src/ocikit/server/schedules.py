"""When the server's background jobs run: on an interval, or at the times of a cron expression.

Two loops, each given the job as an ``async`` callable that handles (and logs) its own errors:

- :func:`run_every` — every ``interval`` seconds *after each run ends* (so runs never overlap),
  the first one at once or after one interval;
- :func:`run_at_times` — at each time :meth:`CronSchedule.next_after` names (UTC), never at
  start. A run still going when the next time comes is not doubled: that time is skipped, and
  logged. The wall clock is read again at least once a minute while waiting, so a clock that
  is stepped (NTP, a suspended machine) moves the wait with it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Awaitable, Callable

from ..core.cron import CronSchedule

log = logging.getLogger("ocikit.server.schedules")

Job = Callable[[], Awaitable[None]]

MAX_NAP = 60.0
"""The longest single sleep while waiting for a cron time (seconds): the clock is re-read after it."""


async def run_every(interval: float, job: Job, *, at_start: bool) -> None:
    """Run ``job`` (at once when ``at_start``, else after ``interval``), then ``interval`` after each run ends."""
    if not at_start:
        await asyncio.sleep(interval)
    while True:
        await job()
        await asyncio.sleep(interval)


async def run_at_times(schedule: CronSchedule, job: Job, what: str) -> None:
    """Start ``job`` at each time of ``schedule``, one run at a time; ``what`` names it in the log."""
    running: asyncio.Task[None] | None = None
    due = datetime.now(timezone.utc)
    try:
        while True:
            due = schedule.next_after(max(due, datetime.now(timezone.utc)))
            await _sleep_until(due)
            if running is not None and not running.done():
                log.warning("%s: the run due at %s is skipped: the one before is still going",
                            what, due.isoformat(timespec="seconds"))
                continue
            log.debug("%s: run due at %s", what, due.isoformat(timespec="seconds"))
            running = asyncio.create_task(job())
            running.add_done_callback(lambda t: _log_failure(t, what))
    finally:
        if running is not None:
            running.cancel()


async def _sleep_until(due: datetime) -> None:
    while (left := (due - datetime.now(timezone.utc)).total_seconds()) > 0:
        await asyncio.sleep(min(left, MAX_NAP))


def _log_failure(task: asyncio.Task[None], what: str) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s: the run failed", what, exc_info=task.exception())

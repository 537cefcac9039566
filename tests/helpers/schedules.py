"""A real :class:`~ocikit.core.cron.CronSchedule` that comes due a fraction of a second ahead, and
:func:`until`, which waits for what a background loop should do.

The server's cron loops (``ocikit.server.schedules.run_at_times``) read the clock, ask the
schedule for its next time, sleep until then and start the run; with :class:`Soon` all of that
runs as in the server, without waiting for a minute boundary.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable

from ocikit.core.cron import CronSchedule


@dataclass(frozen=True)
class Soon(CronSchedule):
    """Due ``gap`` seconds after any moment; records every time it handed out in ``handed``."""

    gap: float = 0.2
    handed: list[datetime] = field(default_factory=list)

    def next_after(self, after: datetime) -> datetime:
        due = after + timedelta(seconds=self.gap)
        self.handed.append(due)
        return due

    @classmethod
    def make(cls, gap: float) -> Soon:
        return replace(cls.parse("* * * * *"), gap=gap)


async def until(condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Yield to the event loop until ``condition()``; ``limit`` seconds only so a broken loop fails the
    test (it is a bound, not a timing being tested)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        assert loop.time() < end, f"never happened: {what}"
        await asyncio.sleep(0.01)

"""Events to webhooks: ``notifications:`` endpoints receive CloudEvents (structured JSON mode).

Kinds: ``push`` and ``delete`` (of a manifest or tag), ``pull`` (a manifest GET), ``proxy.fetch``
(the pull-through cache fetched a manifest or blob upstream), ``sync.done``, ``gc.done``. Each
event is a CloudEvents 1.0 document POSTed as ``application/cloudevents+json``::

    {"specversion": "1.0", "id": "...", "source": "ocikit://127.0.0.1:5000",
     "type": "dev.ocikit.registry.push", "time": "2026-01-01T00:00:00Z",
     "subject": "team/app:v1", "datacontenttype": "application/json",
     "data": {"repository": "team/app", "tag": "v1", "digest": "sha256:...", "mediaType": "..."}}

Every endpoint has its own bounded queue and worker, so a request only ever puts an event in
a queue (never waits), and a slow or dead endpoint delays no other. A full queue drops the
event; a delivery that still fails after the endpoint's ``retries`` (backoff doubling from
0.2 s) is dropped; both are counted (``/metrics``) and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import aiohttp

from .cache_config import Endpoint

log = logging.getLogger("ocikit.server.events")

TYPE_PREFIX = "dev.ocikit.registry."


def cloud_event(kind: str, source: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvents 1.0 document for an event of ``kind``."""
    subject = data.get("repository")
    if subject and data.get("tag"):
        subject = f"{subject}:{data['tag']}"
    elif subject and data.get("digest"):
        subject = f"{subject}@{data['digest']}"
    doc = {"specversion": "1.0", "id": uuid.uuid4().hex, "source": source, "type": TYPE_PREFIX + kind,
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "datacontenttype": "application/json",
           "data": data}
    if subject:
        doc["subject"] = subject
    return doc


class _Sender:
    """One endpoint: its queue, its worker, its counters."""

    def __init__(self, endpoint: Endpoint, size: int) -> None:
        self.endpoint = endpoint
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(size)
        self.delivered = 0
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event %s for %s dropped: queue full (%d dropped so far)", event["type"],
                        self.endpoint.url, self.dropped)

    async def run(self, session: aiohttp.ClientSession) -> None:
        ep = self.endpoint
        headers = {"Content-Type": "application/cloudevents+json", **dict(ep.headers)}
        while True:
            event = await self.queue.get()
            body = json.dumps(event).encode()
            for attempt in range(ep.retries + 1):
                try:
                    async with session.post(ep.url, data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=ep.timeout)) as resp:
                        if resp.status < 300:
                            self.delivered += 1
                            break
                        problem = f"HTTP {resp.status}"
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                    problem = str(e) or type(e).__name__
                if attempt < ep.retries:
                    await asyncio.sleep(min(0.2 * 2 ** attempt, 10.0))
            else:
                self.dropped += 1
                log.warning("event %s for %s dropped after %d tries: %s (%d dropped so far)", event["type"],
                            ep.url, ep.retries + 1, problem, self.dropped)
            self.queue.task_done()


class Notifier:
    """Fans events out to every endpoint that asked for their kind."""

    def __init__(self, endpoints: list[Endpoint], *, source: str, queue_size: int = 1000) -> None:
        self.source = source
        self.senders = [_Sender(e, queue_size) for e in endpoints]
        self._session: aiohttp.ClientSession | None = None

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        """Queue an event (never blocks; dropped and counted when a queue is full)."""
        wanted = [s for s in self.senders if kind in s.endpoint.events]
        if not wanted:
            return
        event = cloud_event(kind, self.source, data)
        for s in wanted:
            s.offer(event)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        for s in self.senders:
            s.task = asyncio.create_task(s.run(self._session))

    async def close(self, drain: float = 2.0) -> None:
        """Give queued events up to ``drain`` seconds to go out, then stop."""
        deadline = time.monotonic() + drain
        while any(not s.queue.empty() for s in self.senders) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for s in self.senders:
            if s.task is not None:
                s.task.cancel()
        if self._session is not None:
            await self._session.close()

    def render_metrics(self) -> str:
        """Prometheus lines: events delivered and dropped, per endpoint."""
        lines = ["# HELP ocikit_events_total Webhook events by endpoint and outcome.",
                 "# TYPE ocikit_events_total counter"]
        for s in self.senders:
            url = s.endpoint.url.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'ocikit_events_total{{endpoint="{url}",outcome="delivered"}} {s.delivered}')
            lines.append(f'ocikit_events_total{{endpoint="{url}",outcome="dropped"}} {s.dropped}')
        return "\n".join(lines) + "\n"


async def send_now(endpoints: list[Endpoint], source: str, kind: str, data: dict[str, Any],
                   drain: float = 10.0) -> None:
    """Send one event from a short-lived command (``ocikit registry gc``): queued, delivered with
    the usual retries for up to ``drain`` seconds, then given up (a receiver that is down never
    fails the command)."""
    notifier = Notifier(endpoints, source=source)
    await notifier.start()
    notifier.emit(kind, data)
    await notifier.close(drain=drain)

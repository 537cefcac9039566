"""Clients that go away mid-answer: an everyday event for a server, never an error in its log.

A client that drops a download (reset, TLS close, a pull cancelled) makes the next write of
its answer fail with a ``ConnectionError``; :func:`client_gone` tells that case apart from a
connection error of the server's own (an upstream), so the dispatcher logs it at debug level.
asyncio itself warns for each write made after the peer went away ("SSL connection is closed",
"socket.send() raised exception."), which a streaming answer can do many times before it
learns of the loss: :func:`quiet_dropped_clients` demotes those two records to debug.
"""

from __future__ import annotations

import logging

from aiohttp import web

GONE_STATUS = 499
"""The status the access log and metrics show for an answer its client did not wait for (nginx's)."""
ASYNCIO_DROPPED_WRITES = frozenset({"SSL connection is closed", "socket.send() raised exception."})
"""asyncio's warnings for writes to a connection the peer closed."""


def client_gone(request: web.Request) -> bool:
    """Whether the client of ``request`` has gone away (its connection is lost or closing)."""
    transport = request.transport
    return transport is None or transport.is_closing()


def gone_response() -> web.Response:
    """What the dispatcher returns for a client that went away: nobody reads it (aiohttp's attempt
    to send it fails quietly); it names the event in the access log and the metrics."""
    return web.Response(status=GONE_STATUS, reason="Client Closed Request")


class _DroppedWrites(logging.Filter):
    """Passes asyncio's write-after-loss warnings only when the ``asyncio`` logger shows debug."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in ASYNCIO_DROPPED_WRITES:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = _DroppedWrites()


def quiet_dropped_clients() -> None:
    """Demote asyncio's warnings about writes to a dropped client to debug (idempotent)."""
    logger = logging.getLogger("asyncio")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)

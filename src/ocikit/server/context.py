"""What every handler needs: storage, access control, configuration, metrics; request helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..core.errors import BlobUploadInvalid, UsageError
from ..core.uint import parse_uint
from .access import Authenticator, Principal
from .serve_config import ServerConfig
from .metrics import Metrics
from .storage.registry import RegistryStorage


@dataclass
class Registry:
    storage: RegistryStorage
    auth: Authenticator
    config: ServerConfig
    metrics: Metrics


REGISTRY = web.AppKey("ocikit_registry", Registry)
PRINCIPAL = web.RequestKey("ocikit_principal", Principal)
"""Who made the request (set by the dispatcher once authenticated)."""


def registry(request: web.Request) -> Registry:
    return request.app[REGISTRY]


def principal(request: web.Request) -> Principal:
    p = request.get(PRINCIPAL)
    return p if isinstance(p, Principal) else Principal(None)


async def body_chunks(request: web.Request, metrics: Metrics | None = None) -> AsyncIterator[bytes]:
    """The request body as it arrives; a broken body (short, bad chunking) is BLOB_UPLOAD_INVALID.

    ``readchunk`` hands over aiohttp's buffered pieces one by one (``iter_any`` would join all
    pieces buffered at the moment into a new bytes object: one more copy of every byte).
    """
    content = request.content
    try:
        while True:
            chunk, end_of_http_chunk = await content.readchunk()
            if not chunk:
                if end_of_http_chunk:
                    continue  # an empty piece at a chunk boundary of Transfer-Encoding: chunked
                return
            if metrics is not None:
                metrics.bytes_received += len(chunk)
            yield chunk
    except (HttpProcessingError, ConnectionError) as e:
        raise BlobUploadInvalid(f"request body: {e}") from None


def content_length(request: web.Request) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None:
        return None
    n = parse_uint(value)
    if n is None:
        raise BlobUploadInvalid(f"invalid Content-Length {value[:40]!r}")
    return n


def has_body(request: web.Request) -> bool:
    cl = request.headers.get("Content-Length")
    if cl is not None:
        return cl.strip() not in ("", "0")
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def query_int(request: web.Request, key: str) -> int | None:
    value = request.query.get(key)
    if value is None or value == "":
        return None
    n = parse_uint(value)
    if n is None:
        raise UsageError(f"query parameter {key}={value[:40]!r}: expected a non-negative integer")
    return n

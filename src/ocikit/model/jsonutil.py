"""Decoding JSON documents strictly and encoding ocikit's own documents deterministically."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from ..core.errors import ManifestInvalid

_decoder = msgspec.json.Decoder()


def decode_object(raw: bytes, what: str, error: type[ManifestInvalid] = ManifestInvalid) -> dict[str, Any]:
    """Decode bytes that must hold one JSON object; a clear error otherwise."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise error(f"{what}: expected bytes, got {type(raw).__name__}")
    if not raw:
        raise error(f"{what}: empty document")
    try:
        obj = _decoder.decode(raw)
    except msgspec.DecodeError as e:
        raise error(f"{what}: not valid JSON: {e}") from None
    except RecursionError:
        raise error(f"{what}: not valid JSON: nested too deeply") from None
    except UnicodeDecodeError as e:
        raise error(f"{what}: not valid JSON: not UTF-8 at byte {e.start}") from None
    if not isinstance(obj, dict):
        raise error(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def canonical_json(obj: Any) -> bytes:
    """Deterministic encoding for content ocikit creates: compact, keys in insertion order.

    Callers build their dicts in a fixed order, so the same content gives the same bytes.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

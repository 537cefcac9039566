"""Progress as a stream of small events; silent unless someone subscribes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .core.digest import Digest


@dataclass(frozen=True)
class BlobStarted:
    digest: Digest
    size: int
    media_type: str


@dataclass(frozen=True)
class BlobAdvanced:
    digest: Digest
    nbytes: int


@dataclass(frozen=True)
class BlobDone:
    digest: Digest
    size: int
    how: str
    """``copied``, ``skipped`` (already there), ``linked`` or ``mounted``."""


@dataclass(frozen=True)
class ManifestWritten:
    digest: Digest
    media_type: str
    tag: str | None


@dataclass(frozen=True)
class Message:
    text: str


ProgressSink = Callable[[Any], None]


def emit(sink: ProgressSink | None, event: Any) -> None:
    if sink is not None:
        sink(event)

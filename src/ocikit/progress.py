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
class JobProgress:
    """A whole job's progress (a mirror): images and bytes done of the totals, seconds since it began."""

    images_done: int
    images_total: int
    bytes_done: int
    bytes_total: int
    elapsed: float

    def eta(self) -> float | None:
        """Seconds left at the rate so far (bytes when there are bytes to move, else images); None before any."""
        done, total = (self.bytes_done, self.bytes_total) if self.bytes_total else (self.images_done,
                                                                                   self.images_total)
        if done <= 0 or self.elapsed <= 0:
            return None
        return max(0.0, (total - done) * self.elapsed / done)


@dataclass(frozen=True)
class Message:
    text: str


ProgressSink = Callable[[Any], None]


def emit(sink: ProgressSink | None, event: Any) -> None:
    if sink is not None:
        sink(event)

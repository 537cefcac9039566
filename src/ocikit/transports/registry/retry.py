"""When and how long to wait before retrying a registry request (pure; the client sleeps)."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from ...core.uint import parse_uint

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``times`` retries after the first try; exponential backoff with full jitter, capped.

    A ``Retry-After`` the server sends is honoured (capped at ``max_retry_after``).
    """

    times: int = 3
    base: float = 0.2
    cap: float = 10.0
    max_retry_after: float = 60.0

    def should_retry_status(self, status: int, attempt: int) -> bool:
        return attempt < self.times and status in RETRYABLE_STATUS

    def should_retry_error(self, attempt: int) -> bool:
        return attempt < self.times


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    v = value.strip()
    seconds = parse_uint(v)
    if seconds is not None:
        return float(seconds)
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if dt is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, dt.timestamp() - now)


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None = None,
                  rng: random.Random | None = None) -> float:
    """How long to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
    if retry_after is not None:
        return min(max(0.0, retry_after), policy.max_retry_after)
    ceiling = min(policy.cap, policy.base * (2 ** attempt))
    r = (rng or random).random()
    return ceiling / 2 + r * ceiling / 2


__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "backoff_delay", "parse_retry_after"]

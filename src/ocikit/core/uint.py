"""Unsigned decimal numbers from outside input: HTTP headers, query strings, config values.

``str.isdigit()`` accepts ``²`` and other digits ``int()`` refuses, and ``int()`` refuses
strings of more than 4,300 digits; both once turned a bad header into a traceback. Every
number ocikit takes from a peer goes through :func:`parse_uint` instead: ASCII ``0-9`` only,
at most 19 digits, at most ``max_value``, and ``None`` (never an exception) for anything else.
"""

from __future__ import annotations

MAX_DIGITS = 19
INT63 = (1 << 63) - 1


def parse_uint(text: str | None, *, max_value: int = INT63) -> int | None:
    """The value of ``text`` (surrounding blanks allowed) as a non-negative integer, or None."""
    if text is None:
        return None
    t = text.strip()
    if not t or len(t) > MAX_DIGITS or not t.isascii() or not t.isdigit():
        return None
    value = int(t)
    return value if value <= max_value else None


__all__ = ["parse_uint", "MAX_DIGITS"]

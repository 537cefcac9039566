"""Rootless ownership: the ``user.rootlesscontainers`` xattr umoci and PRoot record owners in.

An unpack that may not ``chown`` records an owner other than root in this xattr, a protobuf
``Resource{uint32 uid = 1; uint32 gid = 2}``. Pure encoding and decoding.
"""

from __future__ import annotations

from ..errors import LayerInvalid

ROOTLESS_XATTR = "user.rootlesscontainers"
NOOP_ID = 0xFFFFFFFF
"""The id that means "no change" (what 0, root, is written as)."""


def rootless_payload(uid: int, gid: int) -> bytes:
    """The ``user.rootlesscontainers`` protobuf (``Resource{uint32 uid = 1; uint32 gid = 2}``)
    umoci writes for an owner other than root; 0 is written as the no-op id 2^32-1. An id outside
    0..2^32-1 is :class:`~ocikit.errors.LayerInvalid` (a uint32 cannot hold it)."""
    for n in (uid, gid):
        if not 0 <= n <= NOOP_ID:
            raise LayerInvalid(f"owner id {n} out of range (0..{NOOP_ID})")

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)
    return (b"\x08" + varint(uid if uid else NOOP_ID)) + (b"\x10" + varint(gid if gid else NOOP_ID))


def parse_rootless_payload(data: bytes) -> tuple[int, int]:
    """(uid, gid) from a ``user.rootlesscontainers`` value (no-op ids read as 0; a truncated value
    is :class:`~ocikit.errors.LayerInvalid`)."""
    uid = gid = NOOP_ID
    pos = 0
    while pos < len(data):
        key = data[pos]
        pos += 1
        n = shift = 0
        while True:
            if pos >= len(data):
                raise LayerInvalid(f"{ROOTLESS_XATTR}: truncated value {bytes(data[:64])!r}")
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if key == 0x08:
            uid = n
        elif key == 0x10:
            gid = n
    return (0 if uid == NOOP_ID else uid), (0 if gid == NOOP_ID else gid)


__all__ = ["NOOP_ID", "ROOTLESS_XATTR", "parse_rootless_payload", "rootless_payload"]

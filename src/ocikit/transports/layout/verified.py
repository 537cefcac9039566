"""Verified-at-ingest records: an xattr on a blob file ocikit wrote and verified itself.

A hardlinked blob is the same inode, so linking a recorded blob into another layout needs no
re-hash (as containerd trusts what it verified at ingest, and git its stat cache).
"""

from __future__ import annotations

import os
import sys
import time

from ...digest import Digest

VERIFIED_XATTR = "user.ocikit.verified"
"""On a blob file ocikit wrote itself and verified while writing: ``"DIGEST SIZE MTIME_NS"``.

A hardlink of that file (another layout's blob) is the same inode, so it carries the record.
:meth:`OCILayout.link_blob_from <ocikit.transports.layout.OCILayout.link_blob_from>` trusts a source blob whose record names the digest it is
linked as and still matches the file's size and mtime (as containerd trusts what it verified
at ingest, and git its stat cache); any other source blob is hashed before it is linked.
Files ocikit did not write (another tool's layout) are never given a record: copying from
them changes nothing in the source. ``ocikit layout validate`` ignores records and hashes all.
"""


_CLOCK_REALTIME_COARSE = 5   # Linux's clock id; the clock file times are stamped from


def _coarse_now_ns() -> int:
    if sys.platform.startswith("linux"):
        try:
            return time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        except OSError:
            pass
    return time.time_ns() - 100_000_000   # elsewhere: a margin wider than any file-time tick


def record_verified(fd: int, digest: Digest) -> None:
    """Mark a just-written, verified, flushed blob file (best effort: no xattrs, no record).

    File times come from the kernel's coarse clock: a write in the same tick as ours would
    leave the mtime unchanged. So a record is written only once that clock has moved past the
    file's mtime; any later change then shows as a newer mtime. (A small blob written within
    one tick gets no record and is simply hashed when linked.)
    """
    try:
        st = os.fstat(fd)
        if _coarse_now_ns() <= st.st_mtime_ns:
            return
        os.setxattr(fd, VERIFIED_XATTR, f"{digest} {st.st_size} {st.st_mtime_ns}".encode())
    except (OSError, AttributeError):
        pass


def has_verified_record(path: str, st: os.stat_result, digest: Digest) -> bool:
    try:
        value = os.getxattr(path, VERIFIED_XATTR)
    except (OSError, AttributeError):
        return False
    return value == f"{digest} {st.st_size} {st.st_mtime_ns}".encode()

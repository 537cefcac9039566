"""glibc allocator settings for processes that stream large blobs (the server and the CLI).

Every piece of a blob received from a socket is a new bytes object of a few hundred KiB, and
chunks are joined into a few MiB; with glibc's defaults these come from fresh mmaps, or from a
heap top that is trimmed as soon as a batch is freed, so each byte also costs a page fault and
a page clear (~10% of the server's CPU on a push, measured with perf). Larger thresholds keep
that memory in the process for reuse: up to :data:`MALLOC_TRIM_THRESHOLD` of freed heap may
stay resident. A no-op off glibc.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD = 32 << 20
MALLOC_TRIM_THRESHOLD = 128 << 20


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; True when glibc took both."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD))


def peak_rss_kb(pid: int | str = "self") -> int | None:
    """A process's peak resident set (``VmHWM`` of /proc/PID/status, kB): its own, unlike a child's
    ``ru_maxrss``, which starts from its parent's at fork. None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


__all__ = ["peak_rss_kb", "tune_malloc"]

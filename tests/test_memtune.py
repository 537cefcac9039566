"""glibc allocator tuning: after :func:`ocikit.memtune.tune_malloc`, blob-sized buffers come from
the heap (not fresh mmaps) and freed ones stay for reuse (the heap is not trimmed at once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ocikit.memtune import MALLOC_MMAP_THRESHOLD

# Runs in a fresh interpreter: the test process itself may have been tuned already (the CLI's
# in-process runs tune it). mallinfo2 (glibc >= 2.33) says where the buffer's memory came from.
PROBE = """
import ctypes, json, sys
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                              "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    from ocikit.memtune import tune_malloc
    assert tune_malloc()
size = int(sys.argv[2])
before = libc.mallinfo2()
buf = bytearray(size)
during = libc.mallinfo2()
del buf
after = libc.mallinfo2()
print(json.dumps({"mmapped": during.hblkhd - before.hblkhd, "heap_grew": during.arena - before.arena,
                  "heap_kept": after.arena - before.arena}))
"""

SIZE = MALLOC_MMAP_THRESHOLD // 2  # a few MiB, like the joined chunks of a blob


def probe(mode: str) -> dict[str, int]:
    p = subprocess.run([sys.executable, "-c", PROBE, mode, str(SIZE)], capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


@pytest.fixture(scope="module", autouse=True)
def glibc() -> None:
    if not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("tune_malloc is a no-op off glibc")


def test_untuned_glibc_maps_a_large_buffer_and_returns_it():
    """The control: without tuning, glibc serves the buffer from a fresh mmap (so the tuned run
    below shows a difference tune_malloc makes, not how glibc always behaves)."""
    got = probe("default")
    assert got["mmapped"] >= SIZE and got["heap_kept"] < SIZE, got


def test_tuned_buffers_come_from_the_heap_and_stay_for_reuse():
    got = probe("tuned")
    assert got["mmapped"] < SIZE, got      # not a fresh mmap (a page fault and a clear per page)
    assert got["heap_grew"] >= SIZE, got   # the heap served it
    assert got["heap_kept"] >= SIZE, got   # and, freed, it stays below the trim threshold for the next one


def test_peak_rss_is_the_process_own_high_water_mark():
    from ocikit.memtune import peak_rss_kb
    before = peak_rss_kb()
    assert before is not None and before > 0
    big = bytearray(64 << 20)  # touched: 64 MiB resident
    for i in range(0, len(big), 4096):
        big[i] = 1
    assert peak_rss_kb() >= before and peak_rss_kb() >= (64 << 10)
    del big
    # a child's own peak, not ours (a fresh interpreter is far below this process's 64 MiB+)
    child = subprocess.run([sys.executable, "-c", "from ocikit.memtune import peak_rss_kb; print(peak_rss_kb())"],
                           capture_output=True, text=True, check=True)
    assert 0 < int(child.stdout) < peak_rss_kb()
    assert peak_rss_kb(2 ** 22 + 12345) is None  # no such process

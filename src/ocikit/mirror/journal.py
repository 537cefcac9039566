"""The job journal: what a mirror run has verifiably done, so a killed run continues.

An append-only file of JSON lines, each written to the file (so it survives a kill -9 of the
process) before the run counts the step as done, and fsync'd in groups (at most every
:data:`SYNC_INTERVAL` seconds, and at the end: a power loss forgets at most the last moment's
steps, which a re-run then redoes; a record never claims more than the target confirmed): ``job`` (the job's identity), ``pin`` (a tag resolved to a digest, so a re-run
copies the same image even if the tag moved), ``blob`` (a blob the target confirmed at a
key) and ``image`` (an image whose manifests and tag are written). A torn last line (the
process killed mid-write) is ignored.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..core.digest import Digest, DigestInvalid
from ..durable import append_line, disk_full_guard, sync_data
from ..core.errors import UsageError


SYNC_INTERVAL = 0.5
"""Seconds between the journal's fsyncs (group commit): one per record cost a disk flush per blob."""


def default_journal_path(job_id: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ocikit", "mirror", f"{job_id[:32]}.journal")


@dataclass
class Journal:
    """An open journal. ``blobs``/``images``/``pins`` hold what earlier runs (and this one) recorded."""

    path: str | None
    job_id: str
    blobs: set[tuple[str, Digest]] = field(default_factory=set)
    images: dict[str, Digest] = field(default_factory=dict)
    pins: dict[tuple[str, str], Digest] = field(default_factory=dict)
    prior_blobs: frozenset[tuple[str, Digest]] = frozenset()
    """Blobs recorded by earlier runs (a re-send of one of these would be counted)."""
    runs: int = 0
    _f: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _synced: float = 0.0

    @classmethod
    def open(cls, path: str | None, job_id: str) -> "Journal":
        """Load (or start) the journal at ``path``; None keeps it in memory only."""
        j = cls(path, job_id)
        if path is None:
            return j
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if os.path.exists(path):
            j._load()
        j._f = open(path, "a", encoding="utf-8")
        j.runs += 1
        j._write({"t": "job", "job": job_id, "run": j.runs, "at": time.time()})
        j.prior_blobs = frozenset(j.blobs)
        return j

    def _load(self) -> None:
        assert self.path is not None
        with open(self.path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                if n >= len(lines) - 2:
                    continue  # the torn last record of a killed run
                raise UsageError(f"{self.path}:{n + 1}: not a mirror journal line") from None
            t = rec.get("t")
            try:
                if t == "job":
                    if rec.get("job") != self.job_id:
                        raise UsageError(f"{self.path} is the journal of another mirror job "
                                         f"({str(rec.get('job'))[:12]}, this one is {self.job_id[:12]}); "
                                         "pass another --journal or remove it")
                    self.runs = max(self.runs, int(rec.get("run", 0)))
                elif t == "blob":
                    self.blobs.add((rec["key"], Digest(rec["digest"])))
                elif t == "image":
                    self.images[rec["dest"]] = Digest(rec["digest"])
                elif t == "pin":
                    self.pins[(rec["source"], rec["selector"])] = Digest(rec["digest"])
            except (KeyError, DigestInvalid, TypeError):
                raise UsageError(f"{self.path}:{n + 1}: malformed journal record") from None

    def _write(self, rec: dict[str, Any]) -> None:
        if self._f is None:
            return
        line = json.dumps(rec, separators=(",", ":")) + "\n"
        with self._lock:
            what = self.path or "the mirror journal"
            now = time.monotonic()
            if now - self._synced >= SYNC_INTERVAL:
                append_line(self._f, line, what)  # written, flushed and synced
                self._synced = now
            else:
                with disk_full_guard(what):  # written and flushed: the next group's sync covers it
                    self._f.write(line)
                    self._f.flush()

    def blob_done(self, key: str, digest: Digest, size: int) -> None:
        if (key, digest) in self.blobs:
            return
        self.blobs.add((key, digest))
        self._write({"t": "blob", "key": key, "digest": str(digest), "size": size})

    def image_done(self, dest: str, digest: Digest) -> None:
        self.images[dest] = digest
        self._write({"t": "image", "dest": dest, "digest": str(digest)})

    def pin(self, source_key: str, selector: str, digest: Digest) -> None:
        if self.pins.get((source_key, selector)) == digest:
            return
        self.pins[(source_key, selector)] = digest
        self._write({"t": "pin", "source": source_key, "selector": selector, "digest": str(digest)})

    def finish(self, ok: bool) -> None:
        """Close; a run that finished without failures removes its journal (nothing left to resume)."""
        if self._f is not None:
            self._f.flush()
            sync_data(self._f.fileno())
            self._f.close()
            self._f = None
            if ok and self.path and os.path.exists(self.path):
                os.unlink(self.path)


__all__ = ["Journal", "default_journal_path"]

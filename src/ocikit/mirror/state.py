"""The job's state: which tags this job put at the target, at which digest, from which source digest.

Unlike the journal (removed when a run finishes), the state outlives runs. A re-run reads it
to recognise an image that changed neither at the source nor at the target (for a rewritten
index, whose target digest differs from the source's), and ``--prune`` reads it to remove
only tags this job created. One JSON file per (origin, target) pair, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..core.digest import Digest, DigestInvalid
from ..core.errors import UsageError
from ..transports.layout import atomic_write

STATE_VERSION = 1


def default_state_path(origin: str, target: str) -> str:
    """Where the state of the job ``origin`` (a config or bundle path) -> ``target`` lives."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    name = hashlib.sha256(json.dumps([os.path.abspath(origin), target]).encode()).hexdigest()[:32]
    return os.path.join(base, "ocikit", "mirror", f"{name}.state.json")


@dataclass(frozen=True)
class TagRecord:
    """A tag the job wrote: the target's digest, the source digest it came from, and the job's path."""

    path: str
    tag: str
    digest: Digest
    source_digest: Digest
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "tag": self.tag, "digest": str(self.digest),
                "sourceDigest": str(self.source_digest), "source": self.source}


@dataclass
class MirrorState:
    """The tags a job wrote, keyed by ``path:tag`` (the target-relative destination)."""

    path: str | None
    target: str
    tags: dict[str, TagRecord] = field(default_factory=dict)
    dirty: bool = False
    """Something was recorded or forgotten since the load: ``save`` writes only then (a no-op
    re-run records what the file holds already and writes nothing)."""

    @staticmethod
    def key(path: str, tag: str) -> str:
        return f"{path}:{tag}"

    @classmethod
    def load(cls, path: str | None, target: str) -> "MirrorState":
        """The state at ``path`` (empty when there is none yet; None keeps it in memory only)."""
        st = cls(path, target)
        if path is None or not os.path.exists(path):
            return st
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if doc.get("target") != target:
                raise UsageError(f"{path} is the state of a mirror to {doc.get('target')}, not {target}; "
                                 "pass another --state")
            for r in doc.get("tags", []):
                rec = TagRecord(r["path"], r["tag"], Digest(r["digest"]), Digest(r["sourceDigest"]), r["source"])
                st.tags[cls.key(rec.path, rec.tag)] = rec
        except (ValueError, KeyError, TypeError, AttributeError, DigestInvalid):
            raise UsageError(f"{path}: not a mirror state file") from None
        return st

    def get(self, path: str, tag: str) -> TagRecord | None:
        return self.tags.get(self.key(path, tag))

    def record(self, rec: TagRecord) -> None:
        key = self.key(rec.path, rec.tag)
        if self.tags.get(key) != rec:
            self.tags[key] = rec
            self.dirty = True

    def forget(self, path: str, tag: str) -> None:
        if self.tags.pop(self.key(path, tag), None) is not None:
            self.dirty = True

    def save(self) -> None:
        """Write the state atomically, when it changed (or its file is missing)."""
        if self.path is None or (not self.dirty and os.path.exists(self.path)):
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        doc = {"version": STATE_VERSION, "target": self.target,
               "tags": [self.tags[k].to_dict() for k in sorted(self.tags)]}
        atomic_write(self.path, json.dumps(doc, indent=1).encode())
        self.dirty = False


__all__ = ["MirrorState", "STATE_VERSION", "TagRecord", "default_state_path"]

"""Garbage collection of a layout: what index.json reaches, and removing the rest.

``reachable`` walks from ``index.json`` through indexes, manifests, configs, layers and
subjects; ``collect`` removes every other blob, and writers' temp files once stale, under the
layout's lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from ...digest import Digest
from ... import durable
from ...durable import TMP_PREFIX
from ...errors import LayoutInvalid, ManifestUnknown, ManifestUnreadable
from ...model import Descriptor
from ...model.manifest import MAX_MANIFEST_SIZE
from ...model.walk import walk
from .indexfile import IndexFile


@dataclass
class GcResult:
    removed: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    kept: int = 0


def reachable(layout: IndexFile) -> set[Digest]:
    """Every blob digest reachable from index.json (manifests, configs, layers, subjects).

    One walk (:func:`ocikit.model.walk.walk`): a manifest that cannot be read raises
    :class:`LayoutInvalid` (walking on without it would make its blobs look like garbage);
    a missing one has nothing below it to keep. JSON documents of media types ocikit does
    not know are searched for descriptors, so their blobs are kept too.
    """
    def fetch(desc: Descriptor) -> bytes:
        try:
            with open(layout.blob_path(desc.digest), "rb") as f:
                return f.read(MAX_MANIFEST_SIZE + 1)
        except FileNotFoundError:
            raise ManifestUnknown(f"{layout.location}: manifest {desc.digest} is missing from blobs/") from None

    try:
        graph = walk(layout.entries(), fetch, scan_unknown_json=True, where=layout.location)
    except ManifestUnreadable as e:
        raise LayoutInvalid(f"{layout.location}: cannot walk manifest {e.digest}: {e.cause}") from e
    return graph.digests()


def collect(layout: IndexFile, *, dry_run: bool = False, grace_seconds: float = 0.0) -> GcResult:
    """Remove blobs nothing reachable points at, and stale temp files.

    Blobs whose inode changed within ``grace_seconds`` are kept (a writer may be about to
    tag them); a temp file is removed once no writer holds it (:func:`ocikit.durable.abandoned`:
    its writer died, as a killed copy's does) and it is older than ``grace_seconds``.
    """
    res = GcResult()
    now = time.time()
    with layout.lock():
        keep = reachable(layout)
        blobs = os.path.join(layout.path, "blobs")
        for alg in sorted(os.listdir(blobs)) if os.path.isdir(blobs) else []:
            adir = os.path.join(blobs, alg)
            if not os.path.isdir(adir):
                continue
            for name in sorted(os.listdir(adir)):
                p = os.path.join(adir, name)
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue  # a writer renamed its temp file meanwhile
                if name.startswith(TMP_PREFIX):
                    # a writer's temp file: removed once its writer is gone (no lock held: a
                    # killed copy) and it is older than the grace period
                    if durable.abandoned(p, grace_seconds, remove=not dry_run):
                        res.removed.append(p)
                        res.bytes_freed += st.st_size
                    continue
                elif now - st.st_ctime < grace_seconds:
                    continue
                elif f"{alg}:{name}" in keep:
                    res.kept += 1
                    continue
                else:
                    res.removed.append(f"{alg}:{name}")
                res.bytes_freed += st.st_size
                if not dry_run:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(p)
    return res

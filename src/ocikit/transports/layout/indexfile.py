"""``oci-layout`` and ``index.json``: reading them, checking them, and editing the index.

``index.json`` is rewritten whole (:func:`ocikit.durable.atomic_write`) under an exclusive
``flock`` on the layout directory (:meth:`OCILayout.lock`), so concurrent writers in several
processes lose no entry; before it is replaced, the blob directories are flushed once, so
every blob renamed in before is durable before ``index.json`` names it. Tags are
``org.opencontainers.image.ref.name`` annotations on its entries.
"""

from __future__ import annotations

import os
from typing import Any

from ... import mediatypes as mt
from ...durable import atomic_write, fsync_dir
from ...errors import LayoutInvalid, ManifestInvalid, ManifestUnknown, OcikitError
from ...model import ANNOTATION_REF_NAME, Descriptor, ImageIndex, canonical_json, parse_manifest
from ...model.jsonutil import decode_object
from .layoutdir import LayoutDir

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"


def check_layout_file(raw: bytes, where: str, error: type[OcikitError]) -> None:
    """Check the bytes of an ``oci-layout`` file; problems raise ``error`` (layout or archive)."""
    try:
        doc = decode_object(raw, f"{where}/{LAYOUT_FILE}", ManifestInvalid)
    except ManifestInvalid as e:
        raise error(str(e)) from None
    v = doc.get("imageLayoutVersion")
    if not isinstance(v, str) or not v.startswith("1."):
        raise error(f"{where}/{LAYOUT_FILE}: unsupported imageLayoutVersion {v!r}")


def parse_index_file(raw: bytes, where: str, error: type[OcikitError]) -> ImageIndex:
    """Parse the bytes of an ``index.json`` as an image index; problems raise ``error``."""
    try:
        m = parse_manifest(raw, mt.OCI_INDEX, what=f"{where}/{INDEX_FILE}")
    except ManifestInvalid as e:
        raise error(str(e)) from None
    if not isinstance(m, ImageIndex):
        raise error(f"{where}/{INDEX_FILE}: not an image index")
    return m


class IndexFile(LayoutDir):
    """The ``index.json`` half of :class:`~ocikit.transports.layout.OCILayout` (its base class)."""


    def read_index_raw(self) -> bytes:
        try:
            with open(os.path.join(self.path, INDEX_FILE), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise LayoutInvalid(f"{self.path}: no {INDEX_FILE}") from None

    def index(self) -> ImageIndex:
        """``index.json`` parsed (it has no digest that matters, but is checked as an index)."""
        return parse_index_file(self.read_index_raw(), self.path, LayoutInvalid)

    def entries(self) -> list[Descriptor]:
        return list(self.index().manifests)

    def tags(self) -> list[str]:
        """The tags (``ref.name`` annotations) in index.json order, each once."""
        return list(dict.fromkeys(d.ref_name for d in self.entries() if d.ref_name))

    def _update_index(self, mutate: Any) -> None:
        """Read-modify-write index.json under the lock. ``mutate(list_of_entry_dicts)`` edits in place."""
        with self.lock():
            raw = self.read_index_raw()
            try:
                doc = decode_object(raw, f"{self.path}/{INDEX_FILE}", ManifestInvalid)
            except ManifestInvalid as e:
                raise LayoutInvalid(str(e)) from None
            entries = list(doc.get("manifests") or [])
            mutate(entries)
            if entries == doc.get("manifests"):
                return  # nothing changed: leave index.json (and its mtime) alone
            if self.sync:
                self._sync_blob_dirs()  # blobs renamed in before must be durable before index.json names them
            doc["manifests"] = entries
            doc.setdefault("schemaVersion", 2)
            atomic_write(os.path.join(self.path, INDEX_FILE), canonical_json(doc), sync=self.sync)

    def _sync_blob_dirs(self) -> None:
        blobs = os.path.join(self.path, "blobs")
        for alg in os.listdir(blobs) if os.path.isdir(blobs) else []:
            if os.path.isdir(os.path.join(blobs, alg)):
                fsync_dir(os.path.join(blobs, alg))

    def add_entry(self, desc: Descriptor, tag: str | None) -> None:
        """Point ``tag`` (or, with no tag, an untagged entry) at ``desc`` in index.json."""
        entry = desc.with_annotations({**(desc.annotations or {}), **({ANNOTATION_REF_NAME: tag} if tag else {})})
        d = entry.to_dict()

        def mutate(entries: list[dict[str, Any]]) -> None:
            if tag:
                # the tag's first entry is replaced where it stands; any others naming it go
                at = [i for i, e in enumerate(entries) if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag]
                if at:
                    entries[at[0]] = d
                    for i in reversed(at[1:]):
                        del entries[i]
                    return
            elif any(e.get("digest") == desc.digest and not (e.get("annotations") or {}).get(ANNOTATION_REF_NAME)
                     for e in entries):
                return
            entries.append(d)

        self._update_index(mutate)

    def untag(self, tag: str) -> Descriptor:
        found: list[Descriptor] = []

        def mutate(entries: list[dict[str, Any]]) -> None:
            keep = []
            for e in entries:
                if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) == tag:
                    found.append(Descriptor.from_dict(e, "manifests[]"))
                else:
                    keep.append(e)
            entries[:] = keep

        self._update_index(mutate)
        if not found:
            raise ManifestUnknown(f"{self.location}: no tag {tag!r}")
        return found[0]

    def remove_digest(self, digest: str) -> int:
        n = [0]

        def mutate(entries: list[dict[str, Any]]) -> None:
            keep = [e for e in entries if e.get("digest") != digest]
            n[0] = len(entries) - len(keep)
            entries[:] = keep

        self._update_index(mutate)
        return n[0]

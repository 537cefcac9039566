"""Checking a layout against the image-layout spec (``ocikit layout validate``).

Every blob reachable from ``index.json`` is checked for presence, size and (by default)
digest; manifests, indexes and configs are parsed. Verified-at-ingest records are ignored.
"""

from __future__ import annotations

import os

from ... import mediatypes as mt
from ...digest import Digest, digest_file
from ...errors import LayoutInvalid, ManifestInvalid
from ...model import Descriptor, ImageIndex, ImageManifest, parse_config, parse_manifest
from ...model.manifest import MAX_MANIFEST_SIZE
from .indexfile import IndexFile



def validate(layout: IndexFile, *, hash_blobs: bool = True) -> list[str]:
    """Problems found in the layout (empty when it is valid)."""
    problems: list[str] = []
    try:
        entries = layout.entries()
    except LayoutInvalid as e:
        return [str(e)]
    by_tag: dict[str, set[Digest]] = {}
    for e in entries:
        if e.ref_name:
            by_tag.setdefault(e.ref_name, set()).add(e.digest)
    for tag, digests in by_tag.items():
        if len(digests) > 1:
            problems.append(f"index.json: tag {tag!r} names {len(digests)} different manifests: "
                            + ", ".join(sorted(digests)))
    seen: set[Digest] = set()
    stack: list[tuple[Descriptor, str]] = [(e, f"index.json manifests[{i}]") for i, e in enumerate(entries)]
    while stack:
        desc, where = stack.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        path = layout.blob_path(desc.digest)
        if not os.path.exists(path):
            problems.append(f"{where}: blob {desc.digest} ({desc.media_type}) is missing")
            continue
        size = os.path.getsize(path)
        if size != desc.size:
            problems.append(f"{where}: blob {desc.digest} is {size} bytes, descriptor says {desc.size}")
            continue
        if hash_blobs or mt.is_manifest(desc.media_type):
            actual, _ = digest_file(path, desc.digest.algorithm)
            if actual != desc.digest:
                problems.append(f"{where}: blob {desc.digest} has digest {actual}")
                continue
        if desc.media_type in mt.CONFIG_TYPES and size <= MAX_MANIFEST_SIZE:
            with open(path, "rb") as f:
                try:
                    parse_config(f.read(), what=f"config {desc.digest}")
                except ManifestInvalid as e:
                    problems.append(f"{where}: {e}")
        if not mt.is_manifest(desc.media_type):
            continue
        if size > MAX_MANIFEST_SIZE:
            problems.append(f"{where}: manifest {desc.digest} is larger than the {MAX_MANIFEST_SIZE}-byte limit")
            continue
        try:
            with open(path, "rb") as f:
                m = parse_manifest(f.read(), None, what=f"manifest {desc.digest}")
        except ManifestInvalid as e:
            problems.append(f"{where}: {e}")
            continue
        if m.media_type != desc.media_type:
            problems.append(f"{where}: descriptor says {desc.media_type}, the manifest is {m.media_type}")
        if isinstance(m, ImageIndex):
            stack.extend((c, f"{desc.digest.short} manifests[{i}]") for i, c in enumerate(m.manifests))
        else:
            assert isinstance(m, ImageManifest)
            stack.append((m.config, f"{desc.digest.short} config"))
            for i, layer in enumerate(m.layers):
                if layer.urls and layer.media_type in mt.NONDISTRIBUTABLE_TYPES \
                        and not os.path.exists(layout.blob_path(layer.digest)):
                    continue
                stack.append((layer, f"{desc.digest.short} layers[{i}]"))
            if mt.is_docker(m.media_type) != mt.is_docker(m.config.media_type) \
                    and m.config.media_type in mt.CONFIG_TYPES:
                problems.append(f"{where}: {m.media_type} with a {m.config.media_type} config")
    return problems

"""The edges of the image graph: what one manifest, index or artifact manifest points at.

:func:`links` is the one place that knows the shape of every node ocikit walks:

- an image manifest (OCI or Docker v2s2): its ``config``, then its ``layers``;
- an index (OCI, or a Docker v2s2 manifest list): its ``manifests``;
- an OCI 1.1 release-candidate artifact manifest: its ``blobs``;
- any of them: its ``subject`` (the manifest it refers to), last.

Each edge is a :class:`Link`: the descriptor, its role and the JSON path it sits at, so a
walker can say which parent pointed at a node it could not read. Bytes that are not such a
document, or a media type that names something else, raise a typed
:class:`~ocikit.errors.ManifestInvalid` (:class:`~ocikit.errors.UnsupportedMediaType` for
an unknown type); nothing else escapes. :func:`embedded_links` is the best-effort search of
a JSON document of an unknown type for descriptor-shaped objects (layout gc keeps their
blobs). Pure functions over bytes: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import mediatypes as mt
from ..digest import Digest, is_digest
from ..errors import ManifestInvalid, OcikitError, UnsupportedMediaType
from .descriptor import Checker, Descriptor
from .jsonutil import decode_object
from .manifest import MAX_MANIFEST_SIZE, ImageIndex, parse_manifest

ROOT = "root"
"""A walk's starting point (an ``index.json`` entry, a tag, a manifest of a repository)."""
MANIFEST = "manifest"
"""An entry of an index's ``manifests``."""
CONFIG = "config"
LAYER = "layer"
BLOB = "blob"
"""An entry of an artifact manifest's ``blobs``."""
SUBJECT = "subject"
"""The manifest a referrer (signature, SBOM, ...) refers to."""
EMBEDDED = "embedded"
"""A descriptor found inside a JSON document of an unknown type (best effort)."""

CONTENT_ROLES = frozenset({CONFIG, LAYER, BLOB})
"""Roles whose target is content of its parent, not another node: a manifest needs them."""

NODE_TYPES = mt.MANIFEST_TYPES | {mt.OCI_ARTIFACT_MANIFEST}
"""Media types whose documents have edges of their own."""


@dataclass(frozen=True)
class Link:
    """One edge of the graph: ``descriptor`` at JSON path ``path`` of its parent, in ``role``."""

    role: str
    descriptor: Descriptor
    path: str

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def foreign(self) -> bool:
        """A non-distributable layer with URLs: it lives where its URLs say, not beside the manifest."""
        d = self.descriptor
        return bool(d.urls) and d.media_type in mt.NONDISTRIBUTABLE_TYPES

    @property
    def required(self) -> bool:
        """Must the target be present wherever the parent is (a config, a layer, a blob)?"""
        return self.role in CONTENT_ROLES and not self.foreign


def is_node_type(media_type: str | None) -> bool:
    """Does a descriptor of this media type point at a document with edges of its own?"""
    return media_type in NODE_TYPES


def links(raw: bytes, media_type: str | None = None, *, what: str = "manifest") -> list[Link]:
    """The edges of a manifest, index or artifact manifest, in document order, subject last.

    ``media_type`` is what the pointer (or the store) says the document is; ``None`` or ``""``
    lets the document's own ``mediaType`` (or its shape) decide. Docker schema 1, a media type
    of something that is not a node, and bytes that do not parse raise typed errors.
    """
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    hint = (media_type or "").split(";")[0].strip() or None
    if hint is not None and hint not in NODE_TYPES and hint not in mt.SCHEMA1_TYPES:
        raise UnsupportedMediaType(f"{what}: {hint!r} is not a manifest, index or artifact manifest media type")
    if hint == mt.OCI_ARTIFACT_MANIFEST or (hint is None and _declares_artifact(raw)):
        return _artifact_links(raw, what)
    m = parse_manifest(raw, hint, what=what)
    out: list[Link]
    if isinstance(m, ImageIndex):
        out = [Link(MANIFEST, d, f"manifests[{i}]") for i, d in enumerate(m.manifests)]
    else:
        out = [Link(CONFIG, m.config, "config")]
        out.extend(Link(LAYER, d, f"layers[{i}]") for i, d in enumerate(m.layers))
    if m.subject is not None:
        out.append(Link(SUBJECT, m.subject, "subject"))
    return out


def children(raw: bytes, media_type: str | None = None, *, what: str = "manifest") -> list[Descriptor]:
    """Every descriptor a manifest/index points at: config, layers, child manifests, subject."""
    return [link.descriptor for link in links(raw, media_type, what=what)]


def _declares_artifact(raw: bytes) -> bool:
    return b"vnd.oci.artifact.manifest" in raw[:MAX_MANIFEST_SIZE] and \
        decode_object(raw, "manifest").get("mediaType") == mt.OCI_ARTIFACT_MANIFEST


def _artifact_links(raw: bytes, what: str) -> list[Link]:
    if len(raw) > MAX_MANIFEST_SIZE:
        raise ManifestInvalid(f"{what}: {len(raw)} bytes, larger than the {MAX_MANIFEST_SIZE}-byte limit")
    doc = decode_object(raw, what)
    c = Checker(what)
    declared = doc.get("mediaType")
    if declared != mt.OCI_ARTIFACT_MANIFEST:
        raise c.fail("mediaType", f"expected {mt.OCI_ARTIFACT_MANIFEST!r}, got {declared!r}")
    out: list[Link] = []
    if doc.get("blobs") is not None:
        out = [Link(BLOB, Descriptor.from_dict(b, f"blobs[{i}]", c), f"blobs[{i}]")
               for i, b in enumerate(c.array(doc["blobs"], "blobs"))]
    if doc.get("subject") is not None:
        out.append(Link(SUBJECT, Descriptor.from_dict(doc["subject"], "subject", c), "subject"))
    return out


def embedded_links(raw: bytes) -> list[Link]:
    """Descriptor-shaped objects anywhere in a JSON document of an unknown type (best effort: never raises)."""
    try:
        doc = decode_object(raw, "document")
    except ManifestInvalid:
        return []
    found: list[Link] = []
    todo: list[Any] = [doc]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            if isinstance(v.get("mediaType"), str) and isinstance(v.get("digest"), str) and is_digest(v["digest"]):
                try:
                    found.append(Link(EMBEDDED, Descriptor.from_dict(v), "embedded"))
                except OcikitError:
                    pass
            todo.extend(v.values())
        elif isinstance(v, list):
            todo.extend(v)
    return found


__all__ = ["BLOB", "CONFIG", "CONTENT_ROLES", "EMBEDDED", "LAYER", "Link", "MANIFEST", "NODE_TYPES", "ROOT",
           "SUBJECT", "children", "embedded_links", "is_node_type", "links"]

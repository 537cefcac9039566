"""Image manifests and indexes (OCI and Docker v2s2): a parsed view that keeps its raw bytes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Mapping, Sequence, Union

from ..core import mediatypes as mt
from ..core.digest import Digest
from ..core.errors import ManifestInvalid, Schema1Unsupported, UnsupportedMediaType, UsageError
from ..core.platforms import Platform
from .descriptor import Checker, Descriptor
from .jsonutil import canonical_json, decode_object

MAX_MANIFEST_SIZE = 4 * 1024 * 1024


class _RawDocument:
    """What manifests and indexes share: exact bytes, and everything derived from them."""

    raw: bytes
    media_type: str

    @cached_property
    def digest(self) -> Digest:
        """The digest of the exact bytes (computed once)."""
        return Digest.of(self.raw)

    @property
    def size(self) -> int:
        return len(self.raw)

    def descriptor(self, **kw: Any) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size, **kw)

    @property
    def json(self) -> dict[str, Any]:
        return decode_object(self.raw, "manifest")


@dataclass(frozen=True)
class ImageManifest(_RawDocument):
    """An image manifest (OCI or Docker v2s2). ``raw`` is exactly the bytes it was read from."""

    raw: bytes
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    annotations: Mapping[str, str] | None = None
    artifact_type: str | None = None
    declared_media_type: str | None = None
    """The ``mediaType`` field as written (None when the document omits it)."""

    is_index: ClassVar[bool] = False

    def children(self) -> list[Descriptor]:
        """Every blob this manifest points at: config, then layers."""
        return [self.config, *self.layers]


@dataclass(frozen=True)
class ImageIndex(_RawDocument):
    """An OCI image index or Docker manifest list, with its raw bytes."""

    raw: bytes
    media_type: str
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None = None
    annotations: Mapping[str, str] | None = None
    artifact_type: str | None = None
    declared_media_type: str | None = None

    is_index: ClassVar[bool] = True

    def children(self) -> list[Descriptor]:
        return list(self.manifests)

    def platforms(self) -> list[Platform | None]:
        return [d.platform for d in self.manifests]


Manifest = Union[ImageManifest, ImageIndex]


def detect_media_type(doc: Mapping[str, Any], hint: str | None, what: str = "manifest") -> str:
    """The media type of a manifest document: its ``mediaType`` field, else the hint, else guessed.

    Schema 1 is recognised and refused; a field that disagrees with the hint is an error.
    """
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid(f"{what}: mediaType: expected a string")
    hint = (hint or "").split(";")[0].strip() or None
    if doc.get("schemaVersion") == 1 or declared in mt.SCHEMA1_TYPES or hint in mt.SCHEMA1_TYPES:
        raise Schema1Unsupported(
            f"{what}: Docker schema 1 manifests are not supported (deprecated since 2017); "
            "convert the image with a current registry or builder")
    if declared and hint and declared != hint and hint in mt.MANIFEST_TYPES:
        raise ManifestInvalid(f"{what}: mediaType {declared!r} disagrees with the content type {hint!r}")
    media_type = declared or (hint if hint in mt.MANIFEST_TYPES else None)
    if media_type is None:
        if "manifests" in doc and "layers" not in doc:
            media_type = mt.OCI_INDEX
        elif "config" in doc or "layers" in doc:
            media_type = mt.OCI_MANIFEST
        else:
            raise ManifestInvalid(f"{what}: no mediaType, and neither 'manifests' nor 'layers'")
    if media_type not in mt.MANIFEST_TYPES:
        raise UnsupportedMediaType(f"{what}: unsupported manifest media type {media_type!r}")
    return media_type


def parse_manifest(raw: bytes, media_type: str | None = None, *, what: str = "manifest") -> Manifest:
    """Parse and check manifest bytes. ``media_type`` is a hint (a Content-Type, a descriptor's type)."""
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if len(raw) > MAX_MANIFEST_SIZE:
        raise ManifestInvalid(f"{what}: {len(raw)} bytes, larger than the {MAX_MANIFEST_SIZE}-byte limit")
    doc = decode_object(raw, what)
    mtype = detect_media_type(doc, media_type, what)
    c = Checker(what)
    sv = c.req(doc, "schemaVersion", "")
    if c.integer(sv, "schemaVersion") != 2:
        raise c.fail("schemaVersion", f"must be 2, got {sv}")
    subject = Descriptor.from_dict(doc["subject"], "subject", c) if doc.get("subject") is not None else None
    annotations = c.annotations(doc, "annotations", "")
    artifact_type = c.opt_string(doc, "artifactType", "")
    if artifact_type:
        c.media_type(artifact_type, "artifactType")
    declared = doc.get("mediaType")
    if mtype in mt.INDEX_TYPES:
        if "layers" in doc or "config" in doc:
            raise c.fail("manifests", f"an index ({mtype}) must not have 'layers' or 'config'")
        items = c.array(c.req(doc, "manifests", ""), "manifests")
        manifests = tuple(Descriptor.from_dict(m, f"manifests[{i}]", c) for i, m in enumerate(items))
        if mtype == mt.DOCKER_MANIFEST_LIST:
            for i, m in enumerate(manifests):
                if m.platform is None:
                    raise c.fail(f"manifests[{i}].platform", "required in a Docker manifest list")
        return ImageIndex(raw, mtype, manifests, subject, annotations, artifact_type or None, declared)
    if "manifests" in doc:
        raise c.fail("manifests", f"an image manifest ({mtype}) must not have 'manifests'")
    config = Descriptor.from_dict(c.req(doc, "config", ""), "config", c)
    layers_v = doc.get("layers")
    if layers_v is None and mtype == mt.OCI_MANIFEST and artifact_type:
        layers_v = []
    layers = tuple(Descriptor.from_dict(x, f"layers[{i}]", c)
                   for i, x in enumerate(c.array(c.req(doc, "layers", "") if layers_v is None else layers_v, "layers")))
    return ImageManifest(raw, mtype, config, layers, subject, annotations, artifact_type or None, declared)


def parse_index(raw: bytes, media_type: str | None = None, *, what: str = "index") -> ImageIndex:
    m = parse_manifest(raw, media_type, what=what)
    if not isinstance(m, ImageIndex):
        raise ManifestInvalid(f"{what}: expected an index, got {m.media_type}")
    return m


# ---- creating content --------------------------------------------------------------------


def build_manifest(config: Descriptor, layers: Sequence[Descriptor], *, media_type: str = mt.OCI_MANIFEST,
                   annotations: Mapping[str, str] | None = None, subject: Descriptor | None = None,
                   artifact_type: str | None = None) -> ImageManifest:
    """Encode a new image manifest deterministically."""
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["config"] = config.to_dict()
    doc["layers"] = [x.to_dict() for x in layers]
    if subject is not None:
        doc["subject"] = subject.to_dict()
    if annotations:
        doc["annotations"] = dict(annotations)
    m = parse_manifest(canonical_json(doc), media_type)
    assert isinstance(m, ImageManifest)
    return m


def build_index(manifests: Sequence[Descriptor], *, media_type: str = mt.OCI_INDEX,
                annotations: Mapping[str, str] | None = None, subject: Descriptor | None = None,
                artifact_type: str | None = None, extra: Mapping[str, Any] | None = None) -> ImageIndex:
    """Encode a new index deterministically. ``extra`` keeps unknown top-level fields of a source."""
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type:
        doc["artifactType"] = artifact_type
    doc["manifests"] = [m.to_dict() for m in manifests]
    if subject is not None:
        doc["subject"] = subject.to_dict()
    if annotations:
        doc["annotations"] = dict(annotations)
    for k, v in (extra or {}).items():
        doc.setdefault(k, v)
    return parse_index(canonical_json(doc), media_type)


def filter_index(index: ImageIndex, keep: Sequence[int]) -> ImageIndex:
    """A new index holding only the entries at positions ``keep``, every other field kept."""
    doc = decode_object(index.raw, "index")
    entries = doc.get("manifests") or []
    bad = [i for i in keep if not 0 <= i < len(entries)]
    if bad:
        raise UsageError(f"index {index.digest} has {len(entries)} entries; no entry {bad[0]}")
    doc["manifests"] = [entries[i] for i in keep]
    if "mediaType" not in doc:
        doc = {"schemaVersion": doc.get("schemaVersion", 2), "mediaType": index.media_type,
               **{k: v for k, v in doc.items() if k != "schemaVersion"}}
    return parse_index(canonical_json(doc), index.media_type)

"""OCI 1.1 artifacts: push files as an artifact manifest (optionally referring to a subject), pull them back.

An artifact is an OCI image manifest with an ``artifactType``, the spec's empty config
(``application/vnd.oci.empty.v1+json``, the two bytes ``{}``) and one layer per file, each
titled ``org.opencontainers.image.title``. With a subject it is a referrer of that manifest,
kept discoverable by :mod:`ocikit.ops.referrers` (API, tag schema or layout scan).
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Mapping, Sequence

from .. import durable
from ..core import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Options, Store
from ..core.digest import CHUNK, Digest, Verifier, digest_file
from ..core.errors import LayerInvalid, ManifestInvalid, UsageError
from ..model import Descriptor, ImageManifest, build_manifest
from ..core.transportref import TransportReference, parse_transport_reference
from .copy import fetch_manifest
from .referrers import record_referrer
from .stores import holding

if TYPE_CHECKING:
    from ..transports import OpenOptions

ANNOTATION_TITLE = "org.opencontainers.image.title"
DEFAULT_FILE_TYPE = "application/vnd.oci.image.layer.v1.tar"
"""The layer media type of a file given without ``:TYPE`` (what oras uses)."""

EMPTY_DESCRIPTOR = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), len(mt.EMPTY_JSON), data="e30=")
"""The spec's empty descriptor: ``{}`` with its bytes inlined as ``data``."""


@dataclass(frozen=True)
class ArtifactFile:
    """A file to push: its path on disk, the layer media type and the title it is pulled back as."""

    path: str
    media_type: str = DEFAULT_FILE_TYPE
    title: str | None = None

    @property
    def name(self) -> str:
        return self.title or os.path.basename(self.path)


_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
"""RFC 6838's ``type/subtype`` (no parameters)."""


def parse_file_arg(text: str) -> ArtifactFile:
    """``PATH`` or ``PATH:MEDIATYPE``, as oras reads it: the last ``:`` not escaped by a backslash
    splits, so a path with a colon ends with ``:`` (the default media type) or writes it ``\\:``
    (``\\\\`` is a backslash); an empty media type is the default. The title is the file's base name."""
    i = len(text)
    while True:
        i = text.rfind(":", 0, i)
        if i < 0 or not _escaped(text, i):
            break
    path, media_type = (text, "") if i < 0 else (text[:i], text[i + 1:])
    path = re.sub(r"\\([\\:])", r"\1", path)
    if not path:
        raise UsageError(f"{text}: empty file path (FILE or FILE:MEDIATYPE)")
    if media_type and not _MEDIA_TYPE.fullmatch(media_type):
        raise UsageError(f"{text}: {media_type!r} is not a media type (TYPE/SUBTYPE); a ':' in a file "
                         "name is written '\\:', or end with ':' for the default type")
    return ArtifactFile(path, media_type or DEFAULT_FILE_TYPE)


def _escaped(text: str, i: int) -> bool:
    """Whether the character at ``i`` follows an odd number of backslashes."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


@dataclass
class PushedArtifact:
    location: str
    digest: Digest
    size: int
    media_type: str
    artifact_type: str
    tag: str | None
    subject: Digest | None = None
    referrers_via: str | None = None
    """How the referrer is discoverable: ``api``, ``tag-schema`` or ``layout``."""
    layers: list[Descriptor] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"location": self.location, "digest": str(self.digest), "size": self.size,
                "mediaType": self.media_type, "artifactType": self.artifact_type, "tag": self.tag,
                "subject": str(self.subject) if self.subject else None, "referrersVia": self.referrers_via,
                "layers": [x.to_dict() for x in self.layers]}


async def _file_chunks(path: str, v: Verifier) -> AsyncIterator[bytes]:
    """Stream a file, hashing as it goes, so a file changed since it was digested is refused."""
    with open(path, "rb") as f:
        while True:
            chunk = await asyncio.to_thread(f.read, CHUNK)
            if not chunk:
                break
            v.update(chunk)
            yield chunk
    v.verify()


async def _put_file(store: Store, f: ArtifactFile, opts: Options) -> Descriptor:
    digest, size = await asyncio.to_thread(digest_file, f.path)
    desc = Descriptor(f.media_type, digest, size, annotations={ANNOTATION_TITLE: f.name})
    if not await store.has_blob(desc, opts):
        await store.put_blob(desc, _file_chunks(f.path, Verifier(digest, size, what=f.path)), opts)
    return desc


async def _put_bytes(store: Store, desc: Descriptor, data: bytes, opts: Options) -> None:
    if await store.has_blob(desc, opts):
        return

    async def one() -> AsyncIterator[bytes]:
        yield data

    await store.put_blob(desc, one(), opts)


async def push_artifact(store: Store, tag: str | None, files: Sequence[ArtifactFile], artifact_type: str, *,
                        subject: str | None = None, annotations: Mapping[str, str] | None = None,
                        opts: Options = DEFAULT_OPTIONS) -> PushedArtifact:
    """Push ``files`` as an artifact into ``store`` (tagged ``tag`` if given).

    ``subject`` is a tag or digest in the same store; the artifact then refers to it and is
    recorded so referrers discovery finds it. Files are streamed, never read whole.
    """
    if not artifact_type:
        raise UsageError("an artifact needs --artifact-type")
    names = [f.name for f in files]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise UsageError(f"two files would be pulled back as the same name: {', '.join(sorted(dup))}")
    for f in files:
        if not os.path.isfile(f.path):
            raise UsageError(f"{f.path}: {'not a regular file' if os.path.exists(f.path) else 'no such file'}")
    subject_desc: Descriptor | None = None
    if subject is not None:
        sd = await store.resolve(subject, opts)
        node = await fetch_manifest(store, sd, opts)  # verified; gives the exact media type and size
        subject_desc = Descriptor(node.manifest.media_type, node.desc.digest, node.desc.size)
    await _put_bytes(store, Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2), mt.EMPTY_JSON, opts)
    layers = [await _put_file(store, f, opts) for f in files] or [EMPTY_DESCRIPTOR]
    m = build_manifest(EMPTY_DESCRIPTOR, layers, media_type=mt.OCI_MANIFEST, annotations=annotations,
                       subject=subject_desc, artifact_type=artifact_type)
    digest = await store.put_manifest(m.raw, m.media_type, tag, opts, root=True)
    if digest != m.digest:
        raise ManifestInvalid(f"{store.location} stored the artifact as {digest}, expected {m.digest}")
    via = None
    if subject_desc is not None:
        from .referrers import referrer_descriptor
        via = await record_referrer(store, referrer_descriptor(m), subject_desc.digest, opts)
    return PushedArtifact(store.location, m.digest, m.size, m.media_type, artifact_type, tag,
                          subject_desc.digest if subject_desc else None, via, list(layers))


def _safe_name(title: str, digest: Digest) -> str:
    name = title or digest.encoded
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise LayerInvalid(f"layer {digest}: title {title!r} is not a plain file name; refusing to write it")
    return name


@dataclass
class PulledArtifact:
    digest: Digest
    artifact_type: str | None
    files: list[tuple[str, Descriptor]]

    def to_dict(self) -> dict[str, object]:
        return {"digest": str(self.digest), "artifactType": self.artifact_type,
                "files": [{"path": p, "digest": str(d.digest), "size": d.size, "mediaType": d.media_type}
                          for p, d in self.files]}


async def _write_blob(store: Store, desc: Descriptor, final: str, opts: Options) -> None:
    """Stream a layer to ``final``, verified, by :mod:`ocikit.durable`'s temp-file-then-rename path."""
    v = Verifier(desc.digest, desc.size, what=f"layer {desc.digest}")
    with durable.publishing(final) as t:
        await durable.write_stream(t.fd, store.blob_chunks(desc, opts), v, sync_every=durable.SYNC_EVERY)
        v.verify()
        await asyncio.to_thread(t.sync)


async def pull_artifact(store: Store, selector: str | None, directory: str,
                        opts: Options = DEFAULT_OPTIONS) -> PulledArtifact:
    """Write each layer of the artifact at ``selector`` into ``directory`` under its title.

    Every file is verified while streaming and appears only once complete. Layers without a
    title are written under their digest's hex; a title that is not a plain file name is refused.
    """
    desc = await store.resolve(selector, opts)
    node = await fetch_manifest(store, desc, opts)
    m = node.manifest
    if not isinstance(m, ImageManifest):
        raise ManifestInvalid(f"{store.location}: {desc.digest} is an index, not an artifact manifest; "
                              "pull one of its manifests by digest")
    layers = [x for x in m.layers if x.media_type != mt.OCI_EMPTY]
    names = [(_safe_name((x.annotations or {}).get(ANNOTATION_TITLE, ""), x.digest), x) for x in layers]
    os.makedirs(directory, exist_ok=True)
    out: list[tuple[str, Descriptor]] = []
    for name, x in names:
        path = os.path.join(directory, name)
        await _write_blob(store, x, path, opts)
        out.append((path, x))
    artifact_type = m.artifact_type or (m.config.media_type if m.config.media_type != mt.OCI_EMPTY else None)
    return PulledArtifact(desc.digest, artifact_type, out)


def explicit_tag(text: str, tref: TransportReference) -> str | None:
    """The tag a reference names *explicitly* (``docker://r/x`` alone names none, unlike a copy target)."""
    if tref.transport == "docker":
        assert tref.image is not None
        if tref.image.digest:
            return None
        rest = text.split("://", 1)[1]
        last = rest.rsplit("/", 1)[-1]
        return tref.image.tag if ":" in last else None
    return tref.reference


async def apush(reference: str, files: Sequence[str], artifact_type: str, *, subject: str | None = None,
                annotations: Mapping[str, str] | None = None, options: "OpenOptions | None" = None) -> PushedArtifact:
    """``ocikit artifact push``: REF's tag (if it names one) is applied; ``subject`` is a tag, digest or
    reference in the same repository or layout."""
    from ..transports import open_store

    tref = parse_transport_reference(reference, default_transport="docker")
    tag = explicit_tag(reference, tref)
    subject_sel = _subject_selector(subject, tref) if subject else None
    if tag is None and subject_sel is None and tref.transport == "docker":
        raise UsageError(f"{reference}: name a tag, or give --subject (an untagged artifact needs a subject "
                         "to be found again)")
    async with holding(open_store(tref, write=True, options=options)) as store:
        return await push_artifact(store, tag, [parse_file_arg(f) for f in files], artifact_type,
                                   subject=subject_sel, annotations=annotations)


def _subject_selector(subject: str, tref: TransportReference) -> str:
    """A subject given as a tag/digest, or as a full reference that must be in the same place."""
    transport, sep, _ = subject.partition(":")
    if "://" in subject or (sep and transport in ("oci", "oci-archive", "docker-archive")):
        sref = parse_transport_reference(subject)
        same = (sref.transport == tref.transport and
                (sref.image.name == tref.image.name if sref.image and tref.image
                 else os.path.abspath(sref.path) == os.path.abspath(tref.path)))
        if not same:
            raise UsageError(f"--subject {subject} must be in the same repository/layout as the artifact")
        sel = sref.selector
        if sel is None:
            raise UsageError(f"--subject {subject}: name a tag or digest")
        return sel
    return subject


async def apull(reference: str, directory: str, *, options: "OpenOptions | None" = None) -> PulledArtifact:
    from ..transports import open_store

    tref = parse_transport_reference(reference, default_transport="docker")
    store = open_store(tref, options=options)
    try:
        return await pull_artifact(store, tref.selector, directory)
    finally:
        await store.close()


__all__ = ["ANNOTATION_TITLE", "ArtifactFile", "EMPTY_DESCRIPTOR", "PulledArtifact", "PushedArtifact", "apull",
           "apush", "explicit_tag", "parse_file_arg", "pull_artifact", "push_artifact"]

"""The disk bundle: one OCI image layout holding every mirrored image, each blob once.

Layout of ``BUNDLE/``::

    oci-layout, index.json, blobs/sha256/...   one OCI layout (skopeo/umoci can read it)
    signatures/PATH@sha256=HEX/signature-N     lookaside (GPG) signatures, a file:// lookaside store
    SHA256SUMS                                 sha256sum -c compatible list of every file above
    ocikit-mirror.json                         metadata: what, when, from where, digests

Every ``index.json`` entry carries the full source reference in the ``io.ocikit.mirror.source``
annotation, its ``org.opencontainers.image.ref.name`` is ``SRCHOST/path/name:tag`` and the
path it lands at is ``io.ocikit.mirror.path``. The metadata file is written last: a bundle
without it is incomplete (the run that wrote it did not finish) and is refused on import.
With ``since``, blobs an earlier bundle already carried are left out, and so are images whose
digest did not change; the metadata names the earlier bundle.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterable

from .._version import __version__
from ..content import DEFAULT_OPTIONS, DEFAULT_TRAITS, LinkResult, Options, RawManifest, Store
from ..core.digest import Digest, digest_file
from ..core.errors import LayoutInvalid, UsageError
from ..model import ANNOTATION_REF_NAME, Descriptor
from ..ops.copy_plan import CopyPlan
from ..core.platforms import parse_platform
from ..durable import atomic_write
from ..transports.layout import OCILayout
from .bundle_format import (A_KIND, A_MODE, A_PATH, A_PLATFORMS, A_SOURCE, A_SOURCE_DIGEST, A_SUBJECT, A_TAG,
                            BUNDLE_KEY, CHECKSUM_FILE, METADATA_FILE, METADATA_SCHEMA)
from .plan_types import KIND_IMAGE, ImageJob, MirrorPlan, PlannedImage, merge_blobs



def _ref_name(job: ImageJob) -> str | None:
    """``SRCHOST/path/name:tag`` for a registry source; ``path:tag`` for a local one."""
    if not job.tag:
        return None
    name = job.path if job.source_key.startswith("oci:") else job.repository
    return f"{name}:{job.tag}"


class BundleImageStore:
    """A Store view of the bundle layout for one image: its root entry gets the mirror annotations."""

    traits = DEFAULT_TRAITS
    """An OCI layout underneath: keeps whatever it is given."""

    def __init__(self, target: "BundleTarget", job: ImageJob, plan: CopyPlan | None) -> None:
        self.target, self.job, self.plan = target, job, plan

    @property
    def layout(self) -> OCILayout:
        return self.target.layout

    @property
    def location(self) -> str:
        return f"dir:{self.target.root}"

    async def resolve(self, reference: str | None, opts: Options = DEFAULT_OPTIONS) -> Descriptor:
        return await self.layout.resolve(reference, opts)

    async def get_manifest(self, reference: str, opts: Options = DEFAULT_OPTIONS) -> RawManifest:
        return await self.layout.get_manifest(reference, opts)

    def blob_chunks(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> AsyncIterator[bytes]:
        return self.layout.blob_chunks(desc, opts)

    async def has_blob(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.target.has_blob_path(desc)

    async def put_blob(self, desc: Descriptor, chunks: AsyncIterator[bytes], opts: Options = DEFAULT_OPTIONS) -> None:
        await self.layout.put_blob(desc, chunks, opts)

    async def has_manifest(self, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> bool:
        return self.target.has_blob_path(desc)

    async def put_manifest(self, raw: bytes, media_type: str, tag: str | None = None,
                           opts: Options = DEFAULT_OPTIONS, *, root: bool = False) -> Digest:
        digest = await self.layout.put_manifest(raw, media_type, None, opts, root=False)
        if root:
            j = self.job
            ann = {A_SOURCE: j.source, A_PATH: j.path, A_MODE: j.mode, A_KIND: j.kind}
            if j.tag:
                ann[A_TAG] = j.tag
            if j.platforms:
                ann[A_PLATFORMS] = ",".join(str(p) for p in j.platforms)
            if j.subject:
                ann[A_SUBJECT] = str(j.subject)
            if self.plan is not None and self.plan.source_root_digest != digest:
                ann[A_SOURCE_DIGEST] = str(self.plan.source_root_digest)
            self.layout.add_entry(Descriptor(media_type, digest, len(raw), ann), _ref_name(j))
        return digest

    async def list_tags(self, opts: Options = DEFAULT_OPTIONS) -> list[str]:
        return await self.layout.list_tags(opts)

    async def link_blob_from(self, source: Store, desc: Descriptor, opts: Options = DEFAULT_OPTIONS) -> LinkResult:
        return await self.layout.link_blob_from(source, desc, opts)

    async def close(self) -> None:
        return None


class BundleTarget:
    """``dir:BUNDLE`` as a mirror target."""

    registry = "local"
    records_referrers = False
    """Referrers stay index.json entries annotated with their subject; importing records them."""

    def __init__(self, root: str, *, since: str | None = None) -> None:
        self.root = os.path.abspath(root)
        self.location = f"dir:{self.root}"
        if os.path.exists(os.path.join(self.root, METADATA_FILE)):
            raise UsageError(f"{self.root} already holds a finished bundle; write a new one elsewhere "
                             "(with --since to write only what changed)")
        self._layout: OCILayout | None = None
        self.previous: dict[str, Any] | None = load_metadata_file(since) if since else None
        assumed: set[Digest] = set()
        if self.previous is not None:
            for img in self.previous.get("images", []):
                assumed.update(Digest(b["digest"]) for b in img.get("blobs", []))
            assumed.update(Digest(d) for d in self.previous.get("assumedBlobs", []))
        self.assumed_present = frozenset(assumed)
        """The blobs the earlier bundle (``since``) carried: planned as present, not written again."""
        self.unchanged: list[dict[str, Any]] = []

    @property
    def layout(self) -> OCILayout:
        if self._layout is None:
            self._layout = OCILayout(self.root, create=True)
        return self._layout

    def has_blob_path(self, desc: Descriptor) -> bool:
        try:
            return os.path.getsize(os.path.join(self.root, "blobs", desc.digest.algorithm,
                                                desc.digest.encoded)) == desc.size
        except OSError:
            return False

    def store_for(self, path: str) -> Store:
        return BundleImageStore(self, ImageJob("", "", "", "", path, None), None)

    def image_store(self, job: ImageJob, plan: CopyPlan | None) -> Store:
        return BundleImageStore(self, job, plan)

    def key_for(self, path: str) -> str:
        return BUNDLE_KEY

    def display(self, path: str, tag: str | None) -> str:
        return f"dir:{self.root} {path}" + (f":{tag}" if tag else "")

    def drop_unchanged(self, plan: MirrorPlan) -> MirrorPlan:
        """With ``since``: leave out images whose digest the earlier bundle already carried."""
        if self.previous is None:
            return plan
        before = {(i["source"], i["digest"]) for i in self.previous.get("images", [])}
        before |= {(i["source"], i["digest"]) for i in self.previous.get("unchanged", [])}
        keep: list[PlannedImage] = []
        for p in plan.images:
            if p.plan is not None and (p.job.source, str(p.digest)) in before:
                self.unchanged.append({**p.job.to_dict(), "digest": str(p.digest)})
            else:
                keep.append(p)
        blobs = merge_blobs(keep, self.key_for)
        present = {(k, d) for (k, d) in plan.present if d in blobs}
        return MirrorPlan(keep, blobs, present, plan.key_paths)

    def finalize(self, plan: MirrorPlan, *, sources: Iterable[str], config_path: str | None) -> dict[str, Any]:
        """Write SHA256SUMS then the metadata file (last: it marks the bundle complete)."""
        lay = self.layout
        images = [image_metadata(p) for p in plan.images if p.plan is not None]
        stored: list[str] = []
        omitted: set[str] = set()
        for img in images:
            for b in img["blobs"]:
                if self.has_blob_path(Descriptor("application/octet-stream", Digest(b["digest"]), b["size"])):
                    stored.append(b["digest"])
                else:
                    omitted.add(b["digest"])
        missing = omitted - {str(d) for d in self.assumed_present}
        if missing:
            raise LayoutInvalid(f"{self.root}: {len(missing)} blob(s) the images need are neither in the bundle "
                                f"nor in the earlier one, e.g. {sorted(missing)[0]}")
        lines = []
        for name in ("oci-layout", "index.json"):
            d, _ = digest_file(os.path.join(lay.path, name))
            lines.append(f"{d.encoded}  {name}")
        for alg in sorted(os.listdir(os.path.join(lay.path, "blobs"))):
            for enc in sorted(os.listdir(os.path.join(lay.path, "blobs", alg))):
                if not enc.startswith("."):
                    lines.append(f"{enc}  blobs/{alg}/{enc}") if alg == "sha256" else None
        sigs = os.path.join(self.root, "signatures")  # mirror_signatures.SIGNATURES_DIR: lookaside signatures
        for top, dirs, files in os.walk(sigs):
            dirs.sort()
            for name in sorted(files):
                if not name.startswith("."):
                    rel = os.path.relpath(os.path.join(top, name), self.root)
                    lines.append(f"{digest_file(os.path.join(top, name))[0].encoded}  {rel}")
        sums = ("\n".join(lines) + "\n").encode()
        atomic_write(os.path.join(self.root, CHECKSUM_FILE), sums)
        meta: dict[str, Any] = {
            "schemaVersion": METADATA_SCHEMA, "id": str(uuid.uuid4()), "tool": f"ocikit {__version__}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": socket.gethostname(),
            "config": os.path.abspath(config_path) if config_path else None,
            "sources": sorted(set(sources)),
            "checksums": {"file": CHECKSUM_FILE, "sha256": Digest.of(sums).encoded},
            "since": ({"id": self.previous.get("id"), "created": self.previous.get("created")}
                      if self.previous else None),
            "assumedBlobs": sorted(omitted),
            "images": images, "unchanged": self.unchanged,
            "blobs": {"count": len(set(stored)), "bytes": _stored_bytes(images, set(stored))},
        }
        atomic_write(os.path.join(self.root, METADATA_FILE), json.dumps(meta, indent=1).encode() + b"\n")
        return meta

    async def close(self) -> None:
        return None


def _stored_bytes(images: list[dict[str, Any]], stored: set[str]) -> int:
    sizes = {b["digest"]: b["size"] for img in images for b in img["blobs"]}
    return sum(sizes[d] for d in stored)


def image_metadata(p: PlannedImage) -> dict[str, Any]:
    """What the metadata file records of one image: the job, its digests, its graph."""
    assert p.plan is not None
    d = p.job.to_dict()
    d.update({"digest": str(p.digest), "sourceDigest": str(p.source_digest),
              "mediaType": p.plan.root.manifest.media_type, "imagePlatforms": list(p.plan.platforms),
              "manifests": [{"digest": str(n.desc.digest), "mediaType": n.manifest.media_type, "size": n.desc.size,
                             **({"platform": str(n.desc.platform)} if n.desc.platform else {})}
                            for n in p.plan.manifests],
              "blobs": [{"digest": str(b.digest), "size": b.size, "mediaType": b.media_type}
                        for b in p.plan.blobs.values()]})
    return d


def load_metadata_file(path: str) -> dict[str, Any]:
    """Read a bundle's metadata file (or a bundle directory's)."""
    if os.path.isdir(path):
        path = os.path.join(path, METADATA_FILE)
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.read())
    except FileNotFoundError:
        raise UsageError(f"{path}: no bundle metadata (an incomplete bundle: the run that wrote it did not "
                         "finish; re-run it)") from None
    except ValueError as e:
        raise UsageError(f"{path}: not a bundle metadata file: {e}") from None
    if not isinstance(meta, dict) or meta.get("schemaVersion") != METADATA_SCHEMA or \
            not isinstance(meta.get("images"), list):
        raise UsageError(f"{path}: not an ocikit mirror bundle metadata file (schemaVersion {METADATA_SCHEMA})")
    return meta


@dataclass
class BundleSource:
    """A finished bundle read back: its layout as the one source Store, and the image jobs it holds."""

    root: str
    meta: dict[str, Any]
    layout: Store
    """The bundle's OCI layout, or its tar volumes read in place."""

    @classmethod
    def open(cls, root: str) -> "BundleSource":
        from .volumes import TarVolumesStore, has_volumes

        root = os.path.abspath(root)
        meta = load_metadata_file(root)
        return cls(root, meta, TarVolumesStore(root) if has_volumes(root) else OCILayout(root))

    @property
    def key(self) -> str:
        return f"dir:{self.root}"

    def jobs(self) -> list[ImageJob]:
        out = []
        for i, img in enumerate(self.meta["images"]):
            try:
                mode = img.get("mode", "all")
                # a rewritten index is stored rewritten: copy it byte-exact
                mode = "sparse" if mode == "sparse" else "all"
                platforms = tuple(parse_platform(p) for p in img.get("platforms", [])) if mode == "sparse" else ()
                out.append(ImageJob(img["source"], self.key, img["repository"], img["digest"], img["path"],
                                    img.get("tag"), mode, platforms, img.get("kind", KIND_IMAGE),
                                    Digest(img["subject"]) if img.get("subject") else None, referrers=False))
            except (KeyError, TypeError) as e:
                raise UsageError(f"{self.root}/{METADATA_FILE}: images[{i}]: missing {e}") from None
        return out


def entry_annotations(layout: OCILayout) -> list[tuple[Descriptor, str | None]]:
    """index.json entries with their source references (for people inspecting a bundle)."""
    return [(e, (e.annotations or {}).get(A_SOURCE)) for e in layout.entries()]


__all__ = ["A_SOURCE", "BUNDLE_KEY", "BundleImageStore", "BundleSource", "BundleTarget", "CHECKSUM_FILE",
           "METADATA_FILE", "image_metadata", "load_metadata_file", "ANNOTATION_REF_NAME"]

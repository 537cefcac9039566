"""Editing image indexes: pure edits of index documents, and crane's ``index filter|append`` verbs.

The pure half (:func:`new_index`, :func:`append_entries`, :func:`remove_entry`,
:func:`annotate_entry`, :func:`set_index_annotations`, :func:`convert_index`) works on the
decoded document so fields ocikit does not know survive an edit; every edit returns a new,
deterministically encoded :class:`~ocikit.model.ImageIndex`.

The I/O half brings images into the store an index lives in (:func:`import_image`, with the
copy engine) and runs ``filter`` / ``append`` between transport references.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from ..core import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Options, Store, read_blob
from ..core.digest import Digest
from ..core.errors import DuplicatePlatform, ManifestInvalid, ManifestUnknown, PlatformNotFound, UsageError
from ..model import Descriptor, ImageIndex, ImageManifest, canonical_json, parse_config, parse_index
from ..model.jsonutil import decode_object
from ..core.platforms import Platform, best_match, host_platform, select
from ..progress import ProgressSink
from ..core.transportref import TransportReference, parse_transport_reference
from ..transports.layout import OCILayout
from .copy import CopyOptions, CopyResult, Node, copy_between, fetch_manifest, resolve_root
from .stores import finish, holding

if TYPE_CHECKING:
    from ..transports import OpenOptions

INDEX_FORMATS = {"oci": mt.OCI_INDEX, "docker": mt.DOCKER_MANIFEST_LIST, "v2s2": mt.DOCKER_MANIFEST_LIST}
"""``--format`` names of the two index media types."""


# ---- pure edits ------------------------------------------------------------------------------


def new_index(media_type: str = mt.OCI_INDEX, annotations: Mapping[str, str] | None = None) -> ImageIndex:
    """An empty index (OCI image index or Docker manifest list)."""
    if media_type not in mt.INDEX_TYPES:
        raise UsageError(f"not an index media type: {media_type!r}")
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": []}
    if annotations:
        doc["annotations"] = dict(annotations)
    return _encode(doc, media_type)


def _encode(doc: dict[str, Any], media_type: str) -> ImageIndex:
    return parse_index(canonical_json(doc), media_type, what="new index")


def _doc(index: ImageIndex) -> dict[str, Any]:
    doc = decode_object(index.raw, "index")
    if "mediaType" not in doc:
        doc = {"schemaVersion": doc.get("schemaVersion", 2), "mediaType": index.media_type,
               **{k: v for k, v in doc.items() if k != "schemaVersion"}}
    doc.setdefault("manifests", [])
    return doc


def _same_platform(a: Platform, b: Platform) -> bool:
    x, y = a.normalized(), b.normalized()
    return (x.os, x.architecture, x.variant or "", x.os_version or "", sorted(x.os_features)) == \
        (y.os, y.architecture, y.variant or "", y.os_version or "", sorted(y.os_features))


def append_entries(index: ImageIndex, descs: Sequence[Descriptor]) -> ImageIndex:
    """``index`` with ``descs`` appended.

    An entry whose digest is already listed replaces that entry in place (its platform and
    annotations updated). A platform already held by a *different* image raises
    :class:`DuplicatePlatform`; a Docker manifest list refuses entries without a platform.
    """
    doc = _doc(index)
    entries: list[dict[str, Any]] = list(doc["manifests"])
    current = [Descriptor.from_dict(e, f"manifests[{i}]") for i, e in enumerate(entries)]
    for d in descs:
        if index.media_type == mt.DOCKER_MANIFEST_LIST and d.platform is None:
            raise ManifestInvalid(f"{d.digest}: a Docker manifest list needs a platform for every entry "
                                  "(give --os/--arch, or use an OCI index)")
        same = [i for i, c in enumerate(current) if c.digest == d.digest]
        if d.platform is not None:
            for i, c in enumerate(current):
                if c.digest != d.digest and c.platform is not None and _same_platform(c.platform, d.platform):
                    raise DuplicatePlatform(
                        f"platform {d.platform} of {d.digest} is already in the index: {c.digest} ({c.platform}); "
                        "remove that entry first, or give this image a different platform")
        if same:
            i = same[0]
            entries[i] = d.to_dict()
            current[i] = d
        else:
            entries.append(d.to_dict())
            current.append(d)
    doc["manifests"] = entries
    return _encode(doc, index.media_type)


def _find(index: ImageIndex, digest: str) -> int:
    d = Digest(digest)
    for i, m in enumerate(index.manifests):
        if m.digest == d:
            return i
    raise ManifestUnknown(f"the index has no entry {d} "
                          f"(it lists {', '.join(m.digest.short for m in index.manifests) or 'nothing'})")


def remove_entry(index: ImageIndex, digest: str) -> ImageIndex:
    """``index`` without the entry for ``digest``; :class:`ManifestUnknown` if it has none."""
    i = _find(index, digest)
    doc = _doc(index)
    del doc["manifests"][i]
    return _encode(doc, index.media_type)


@dataclass(frozen=True)
class PlatformFields:
    """Platform fields given on a command line; ``None`` means "keep / take from the image"."""

    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] | None = None

    def any(self) -> bool:
        return any(v is not None for v in dataclasses.astuple(self))

    def apply(self, base: Platform | None) -> Platform | None:
        """``base`` with the given fields replaced; ``None`` if neither gives an os and an arch."""
        if not self.any():
            return base
        os_ = self.os if self.os is not None else (base.os if base else None)
        arch = self.architecture if self.architecture is not None else (base.architecture if base else None)
        if not os_ or not arch:
            raise UsageError("a platform needs both an OS and an architecture (--os and --arch)")
        arch_changed = base is None or (self.architecture is not None and self.architecture != base.architecture)
        variant = self.variant if self.variant is not None else (None if arch_changed else base.variant)
        osv = self.os_version if self.os_version is not None else (base.os_version if base else None)
        feats = self.os_features if self.os_features is not None else (base.os_features if base else ())
        return Platform(os_, arch, variant or None, osv or None, tuple(feats)).normalized()


def annotate_entry(index: ImageIndex, digest: str, annotations: Mapping[str, str] | None = None,
                   platform: PlatformFields | None = None, *, remove_keys: Sequence[str] = ()) -> ImageIndex:
    """``index`` with the entry for ``digest`` given annotations and/or platform fields.

    :class:`ManifestUnknown` when the index has no such entry; :class:`DuplicatePlatform`
    when the new platform is another entry's.
    """
    i = _find(index, digest)
    cur = index.manifests[i]
    ann = {**(cur.annotations or {}), **(annotations or {})}
    for k in remove_keys:
        ann.pop(k, None)
    new_platform = platform.apply(cur.platform) if platform is not None else cur.platform
    new = dataclasses.replace(cur, annotations=ann or None, platform=new_platform)
    if new_platform is not None:
        for j, other in enumerate(index.manifests):
            if j != i and other.digest != cur.digest and other.platform is not None \
                    and _same_platform(other.platform, new_platform):
                raise DuplicatePlatform(f"platform {new_platform} is already in the index: {other.digest} "
                                        f"({other.platform})")
    doc = _doc(index)
    entry = new.to_dict()
    # keep fields of the original entry that ocikit does not model
    for k, v in doc["manifests"][i].items():
        if k not in ("annotations", "platform"):
            entry.setdefault(k, v)
    doc["manifests"][i] = entry
    return _encode(doc, index.media_type)


def set_index_annotations(index: ImageIndex, annotations: Mapping[str, str],
                          remove_keys: Sequence[str] = ()) -> ImageIndex:
    """``index`` with top-level annotations added (and ``remove_keys`` dropped)."""
    doc = _doc(index)
    ann = {**(doc.get("annotations") or {}), **annotations}
    for k in remove_keys:
        ann.pop(k, None)
    if ann:
        doc["annotations"] = ann
    else:
        doc.pop("annotations", None)
    return _encode(doc, index.media_type)


def convert_index(index: ImageIndex, media_type: str) -> ImageIndex:
    """``index`` as the other index media type (OCI index <-> Docker manifest list).

    A Docker manifest list has no ``artifactType``, ``subject`` or entries without platform:
    converting such an index is refused rather than silently dropping them.
    """
    if media_type == index.media_type:
        return index
    if media_type not in mt.INDEX_TYPES:
        raise UsageError(f"not an index media type: {media_type!r}")
    doc = _doc(index)
    if media_type == mt.DOCKER_MANIFEST_LIST:
        for field_name in ("artifactType", "subject"):
            if field_name in doc:
                raise ManifestInvalid(f"cannot write a Docker manifest list: the index has {field_name!r}")
        for i, m in enumerate(index.manifests):
            if m.platform is None:
                raise ManifestInvalid(f"cannot write a Docker manifest list: manifests[{i}] ({m.digest}) "
                                      "has no platform")
    doc["mediaType"] = media_type
    return _encode(doc, media_type)


# ---- bringing images into a store ------------------------------------------------------------


async def image_platform(store: Store, node: Node, opts: Options = DEFAULT_OPTIONS) -> Platform | None:
    """The platform an image manifest's config declares (None for artifacts without one)."""
    m = node.manifest
    if not isinstance(m, ImageManifest) or m.config.media_type not in mt.CONFIG_TYPES:
        return None
    cfg = parse_config(await read_blob(store, m.config, opts), what=f"config {m.config.digest}", strict=False)
    if not cfg.os or not cfg.architecture:
        return None
    return cfg.platform


def _root_entries(store: Store) -> set[Digest] | None:
    return {e.digest for e in store.entries()} if isinstance(store, OCILayout) else None


def _drop_new_roots(store: Store, before: set[Digest] | None, digests: Sequence[Digest]) -> None:
    """Undo the untagged ``index.json`` entries a copy into a layout made for images an index now holds."""
    if before is None or not isinstance(store, OCILayout):
        return
    for d in digests:
        if d not in before:
            store.remove_digest(str(d))


@dataclass
class Imported:
    """Images :func:`import_image` brought into a store, as index entries, with the copies' results."""

    entries: list[Descriptor]
    copies: list[CopyResult]


async def import_image(src: Store, selector: str | None, dst: Store, *, all_platforms: bool = False,
                       flatten: bool = True, platform: PlatformFields | None = None,
                       want: Platform | None = None, jobs: int = 6, progress: ProgressSink | None = None,
                       check: Callable[[list[Descriptor]], object] | None = None,
                       opts: Options = DEFAULT_OPTIONS) -> Imported:
    """Copy an image (or the images of an index) into ``dst`` and describe each as an index entry.

    An image manifest: one entry, its platform from its config unless ``platform`` overrides
    fields. An index: with ``all_platforms`` every child (``flatten``) or the index itself as
    one entry; otherwise the child for ``want`` (default: the host platform). ``check`` sees
    the entries before anything is copied and may raise (a duplicate platform) to stop it.
    """
    root = await resolve_root(src, selector, opts)
    copy_opts = CopyOptions(all_platforms=True, jobs=jobs, progress=progress)
    picked: list[Node] = []
    nested_index = False
    if isinstance(root.manifest, ImageIndex):
        idx = root.manifest
        if all_platforms and not flatten:
            picked = [root]
            nested_index = True
        elif all_platforms:
            picked = [await fetch_manifest(src, c, opts) for c in idx.manifests]
        else:
            target = want or _want_from(platform) or host_platform()
            i = best_match(target, idx.platforms())
            if i is None:
                have = ", ".join(str(p) for p in idx.platforms() if p) or "none"
                raise PlatformNotFound(f"{src.location}: no image for {target} in index {root.desc.digest} "
                                       f"(it has {have}); use --all, or --os/--arch to choose")
            picked = [await fetch_manifest(src, idx.manifests[i], opts)]
    else:
        picked = [root]
    if platform is not None and platform.any() and len(picked) > 1:
        raise UsageError(f"--os/--arch/--variant name one image's platform; {len(picked)} images are added "
                         "from the index (drop --all, or annotate each image afterwards)")
    entries: list[Descriptor] = []
    for node in picked:
        plat: Platform | None = None
        if not nested_index:
            plat = node.desc.platform or await image_platform(src, node, opts)
        if platform is not None:
            plat = platform.apply(plat)
        entries.append(Descriptor(node.manifest.media_type, node.desc.digest, node.desc.size,
                                  artifact_type=node.manifest.artifact_type, platform=plat))
    if check is not None:
        check(entries)
    before = _root_entries(dst)
    copies = [await copy_between(src, str(node.desc.digest), dst, None, copy_opts) for node in picked]
    _drop_new_roots(dst, before, [e.digest for e in entries])
    return Imported(entries, copies)


def _want_from(platform: PlatformFields | None) -> Platform | None:
    if platform is None or not platform.any():
        return None
    host = host_platform()
    return Platform(platform.os or host.os, platform.architecture or host.architecture,
                    platform.variant if platform.variant is not None else
                    (None if platform.architecture else host.variant)).normalized()


# ---- crane's verbs: index filter / index append ----------------------------------------------


@dataclass
class IndexEdit:
    """The result of ``index filter`` / ``index append``: where the new index went and its digest."""

    target: str
    digest: Digest
    media_type: str
    tag: str | None
    manifests: list[Descriptor]

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "digest": str(self.digest), "mediaType": self.media_type,
                "tag": self.tag, "manifests": [m.to_dict() for m in self.manifests]}


def _tref(text: str) -> TransportReference:
    return parse_transport_reference(text, default_transport="docker")


async def filter_index_ref(ref: str, platforms: Sequence[Platform], target: str | None = None, *,
                           jobs: int = 6, progress: ProgressSink | None = None,
                           options: "OpenOptions | None" = None) -> IndexEdit:
    """Keep only ``platforms`` of the index at ``ref``; write the new index to ``target`` (default: ``ref``).

    Every other field of the index and of kept entries stays as it was.
    """
    from ..transports import open_store, target_tag

    if not platforms:
        raise UsageError("index filter needs at least one --platform to keep")
    sref = _tref(ref)
    dref = _tref(target) if target else sref
    src = open_store(sref, options=options)
    try:
        root = await resolve_root(src, sref.selector, DEFAULT_OPTIONS)
        if not isinstance(root.manifest, ImageIndex):
            raise ManifestInvalid(f"{ref} is an image manifest ({root.manifest.media_type}), not an index")
        if not select(platforms, root.manifest.platforms()):
            have = ", ".join(str(p) for p in root.manifest.platforms() if p) or "none"
            raise PlatformNotFound(f"{ref}: no image for {', '.join(map(str, platforms))} (it has {have})")
        async with holding(open_store(dref, write=True, options=options)) as dst:
            res = await copy_between(src, sref.selector, dst, target_tag(dref),
                                     CopyOptions(platforms=list(platforms), jobs=jobs, progress=progress))
            new = parse_index(await _manifest_bytes(dst, res.digest), res.media_type)
        return IndexEdit(str(dref), res.digest, res.media_type, target_tag(dref), list(new.manifests))
    finally:
        await src.close()


async def _manifest_bytes(store: Store, digest: Digest) -> bytes:
    return (await store.get_manifest(str(digest))).raw


async def append_index_ref(base: str | None, manifests: Sequence[str], target: str | None = None, *,
                           flatten: bool = True, media_type: str | None = None,
                           platform: PlatformFields | None = None, jobs: int = 6,
                           progress: ProgressSink | None = None, options: "OpenOptions | None" = None) -> IndexEdit:
    """Append images to the index at ``base`` (or a new empty index); write it to ``target``.

    Each appended image is copied into the target with the copy engine. An appended index
    contributes its children (``flatten``) or itself as one entry.
    """
    from ..transports import open_store, target_tag

    if not target and not base:
        raise UsageError("index append without a base index needs a target (-t/--tag)")
    if not manifests:
        raise UsageError("index append needs at least one -m/--manifest to append")
    dref = _tref(target or base)  # type: ignore[arg-type]
    dst = open_store(dref, write=True, options=options)
    ok = False
    try:
        before = _root_entries(dst)
        if base:
            bref = _tref(base)
            bsrc = open_store(bref, options=options)
            try:
                res = await copy_between(bsrc, bref.selector, dst, None,
                                         CopyOptions(all_platforms=True, jobs=jobs, progress=progress))
                if res.media_type not in mt.INDEX_TYPES:
                    raise ManifestInvalid(f"{base} is an image manifest ({res.media_type}), not an index")
                index = parse_index(await _manifest_bytes(dst, res.digest), res.media_type)
                _drop_new_roots(dst, before, [res.digest])
            finally:
                await bsrc.close()
            if media_type:
                index = convert_index(index, media_type)
        else:
            index = new_index(media_type or mt.OCI_INDEX)
        added: list[Descriptor] = []
        for text in manifests:
            mref = _tref(text)
            msrc = open_store(mref, options=options)
            try:
                imp = await import_image(msrc, mref.selector, dst, all_platforms=True, flatten=flatten,
                                         platform=platform, jobs=jobs, progress=progress,
                                         check=lambda new: append_entries(index, [*added, *new]))
            finally:
                await msrc.close()
            added.extend(imp.entries)
        index = append_entries(index, added)
        tag = target_tag(dref)
        digest = await dst.put_manifest(index.raw, index.media_type, tag, root=True)
        ok = True
    finally:
        await finish(dst, ok)
    return IndexEdit(str(dref), digest, index.media_type, tag, list(index.manifests))


__all__ = ["INDEX_FORMATS", "IndexEdit", "Imported", "PlatformFields", "annotate_entry", "append_entries",
           "append_index_ref", "convert_index", "filter_index_ref", "image_platform", "import_image",
           "new_index", "remove_entry", "set_index_annotations"]

"""Working manifest lists, podman-style: ``manifest create|add|annotate|remove|inspect|push|rm``.

A list lives in a Store, next to the images it lists. A bare name (``mylist``,
``localhost/mylist:v1``) is a working list: an index tagged with that name in a local OCI
layout under ``$XDG_DATA_HOME/ocikit/lists`` (default ``~/.local/share/ocikit``). A transport
reference (``oci:/path:tag``, ``docker://host/repo:tag``) edits an index in place there.

``add`` copies the image into the list's store with the copy engine (hardlinks between local
layouts), so a list is self-contained; ``push`` copies the list and every image it lists to a
destination with the copy engine in one plan, the index last.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Store
from ..digest import Digest
from ..durable import lock
from ..errors import InvalidReference, LayoutInvalid, ManifestInvalid, ManifestUnknown, NameUnknown, UsageError
from ..model import Descriptor, ImageIndex, parse_index
from ..progress import ProgressSink
from ..transportref import TRANSPORTS, TransportReference, parse_transport_reference
from ..transports.layout import OCILayout
from .copy import CopyOptions, CopyResult, copy_between
from .stores import holding
from .index_edit import (
    PlatformFields,
    annotate_entry,
    append_entries,
    convert_index,
    import_image,
    new_index,
    remove_entry,
    set_index_annotations,
)

if TYPE_CHECKING:
    from ..transports import OpenOptions

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")


def data_home() -> str:
    """``$XDG_DATA_HOME/ocikit`` (default ``~/.local/share/ocikit``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "ocikit")


def working_layout_path() -> str:
    """The OCI layout that holds working lists and their images."""
    return os.path.join(data_home(), "lists")


@dataclass(frozen=True)
class ListRef:
    """Where a list lives: a working-list name, or a transport reference to an index."""

    text: str
    tref: TransportReference | None
    """None for a working list."""

    @property
    def is_working(self) -> bool:
        return self.tref is None

    @property
    def tag(self) -> str | None:
        """The tag the list is written at (None: the reference names a digest, read-only)."""
        if self.tref is None:
            return self.text
        from ..transports import target_tag
        return target_tag(self.tref)

    @property
    def selector(self) -> str | None:
        return self.text if self.tref is None else self.tref.selector

    def open(self, *, write: bool = False, options: "OpenOptions | None" = None) -> Store:
        if self.tref is None:
            path = working_layout_path()
            if not write and not os.path.isdir(path):
                raise ManifestUnknown(f"no manifest list named {self.text!r} (no working lists yet; "
                                      "`ocikit manifest create` makes one)")
            return OCILayout(path, create=write)
        from ..transports import open_store
        return open_store(self.tref, write=write, options=options)

    def __str__(self) -> str:
        return self.text


def parse_list_ref(text: str) -> ListRef:
    """A transport reference (``docker://``, ``oci:``, ...) or a bare working-list name."""
    transport, sep, _ = text.partition(":")
    if sep and transport in TRANSPORTS:
        return ListRef(text, parse_transport_reference(text))
    if not _NAME_RE.match(text or ""):
        raise InvalidReference(f"invalid manifest list name {text!r}: use letters, digits and ._/:@+- "
                               "(or a transport reference such as oci:PATH:TAG or docker://HOST/REPO:TAG)")
    return ListRef(text, None)


@contextlib.contextmanager
def _list_lock(ref: ListRef):  # type: ignore[no-untyped-def]
    """Serialise read-modify-write of working lists across processes (a lock file beside the layout)."""
    if not ref.is_working:
        yield
        return
    os.makedirs(data_home(), exist_ok=True)
    with lock(os.path.join(data_home(), "lists.lock")):
        yield


def _opened(ref: ListRef, *, write: bool,
            options: "OpenOptions | None" = None) -> "contextlib.AbstractAsyncContextManager[Store]":
    return holding(ref.open(write=write, options=options))


async def read_list(store: Store, ref: ListRef) -> ImageIndex:
    """The index a list reference names; :class:`ManifestUnknown` / :class:`ManifestInvalid` otherwise."""
    try:
        rm = await store.get_manifest(ref.selector or "latest")
    except ManifestUnknown:
        raise ManifestUnknown(f"no manifest list {ref.text!r}" +
                              (" (`ocikit manifest create` makes one)" if ref.is_working else "")) from None
    if rm.media_type not in mt.INDEX_TYPES:
        raise ManifestInvalid(f"{ref.text} is an image manifest ({rm.media_type}), not a manifest list")
    return parse_index(rm.raw, rm.media_type, what=f"manifest list {ref.text}")


async def _write_list(store: Store, ref: ListRef, index: ImageIndex) -> Digest:
    tag = ref.tag
    if not tag:
        raise UsageError(f"{ref.text} names a digest; a list is written at a tag")
    return await store.put_manifest(index.raw, index.media_type, tag, root=True)


@dataclass
class ListState:
    """A list after an operation: where it is, its digest and its index."""

    name: str
    digest: Digest
    index: ImageIndex
    added: list[Descriptor]

    def to_dict(self) -> dict[str, object]:
        return {"list": self.name, "digest": str(self.digest), "mediaType": self.index.media_type,
                "added": [d.to_dict() for d in self.added],
                "manifests": [d.to_dict() for d in self.index.manifests]}


async def create_list(name: str, *, media_type: str = mt.OCI_INDEX, images: Sequence[str] = (),
                      all_platforms: bool = False, amend: bool = False,
                      annotations: Mapping[str, str] | None = None, progress: ProgressSink | None = None,
                      options: "OpenOptions | None" = None) -> ListState:
    """Create an empty list (refused if it exists, unless ``amend``), then add ``images``."""
    ref = parse_list_ref(name)
    with _list_lock(ref):
        async with _opened(ref, write=True, options=options) as store:
            try:
                existing: ImageIndex | None = await read_list(store, ref)
            except ManifestUnknown:
                existing = None
            if existing is not None and not amend:
                raise UsageError(f"manifest list {ref.text!r} already exists (--amend to add to it, "
                                 "`ocikit manifest rm` to delete it)")
            index = existing if existing is not None else new_index(media_type, annotations)
            if existing is not None and annotations:
                index = set_index_annotations(index, annotations)
            added: list[Descriptor] = []
            for image in images:
                imp = await _import(store, image, all_platforms, None, progress, into=index, options=options)
                index = append_entries(index, imp)
                added.extend(imp)
            digest = await _write_list(store, ref, index)
    return ListState(ref.text, digest, index, added)


async def _import(store: Store, image: str, all_platforms: bool, platform: PlatformFields | None,
                  progress: ProgressSink | None, annotations: Mapping[str, str] | None = None, *,
                  into: ImageIndex | None = None, options: "OpenOptions | None" = None) -> list[Descriptor]:
    """Copy IMAGE into the list's store; with ``into``, a duplicate platform stops it before any copy."""
    from ..transports import open_store

    iref = parse_transport_reference(image, default_transport="docker")
    try:
        src = open_store(iref, options=options)
    except LayoutInvalid as e:
        raise LayoutInvalid(f"cannot add {image}: {e}") from None
    try:
        imp = await import_image(src, iref.selector, store, all_platforms=all_platforms, platform=platform,
                                 progress=progress,
                                 check=(lambda new: append_entries(into, new)) if into is not None else None)
    except (ManifestUnknown, NameUnknown) as e:
        raise type(e)(f"cannot add {image}: {e}") from None
    finally:
        await src.close()
    if annotations:
        return [d.with_annotations({**(d.annotations or {}), **annotations}) for d in imp.entries]
    return imp.entries


async def add_to_list(name: str, image: str, *, all_platforms: bool = False,
                      platform: PlatformFields | None = None, annotations: Mapping[str, str] | None = None,
                      progress: ProgressSink | None = None, options: "OpenOptions | None" = None) -> ListState:
    """Copy ``image`` into the list's store and list it (its platform from its config unless given).

    An index: with ``all_platforms`` all its images, else the one for ``--os/--arch`` or the host.
    A missing image raises :class:`ManifestUnknown`; a platform already listed for another
    image raises :class:`~ocikit.errors.DuplicatePlatform`, and the list is left unchanged.
    """
    ref = parse_list_ref(name)
    with _list_lock(ref):
        async with _opened(ref, write=True, options=options) as store:
            index = await read_list(store, ref)
            added = await _import(store, image, all_platforms, platform, progress, annotations, into=index,
                                  options=options)
            index = append_entries(index, added)
            digest = await _write_list(store, ref, index)
    return ListState(ref.text, digest, index, added)


async def annotate_list(name: str, digest: str | None, *, annotations: Mapping[str, str] | None = None,
                        platform: PlatformFields | None = None, remove_keys: Sequence[str] = (),
                        options: "OpenOptions | None" = None) -> ListState:
    """Set annotations / platform fields on the entry for ``digest`` (``None``: the index's own annotations)."""
    ref = parse_list_ref(name)
    with _list_lock(ref):
        async with _opened(ref, write=True, options=options) as store:
            index = await read_list(store, ref)
            if digest is None:
                if platform is not None and platform.any():
                    raise UsageError("platform fields apply to an entry; name its digest")
                index = set_index_annotations(index, annotations or {}, remove_keys)
            else:
                try:
                    index = annotate_entry(index, digest, annotations, platform, remove_keys=remove_keys)
                except ManifestUnknown as e:
                    raise ManifestUnknown(f"manifest list {ref.text}: {e}") from None
            new_digest = await _write_list(store, ref, index)
    return ListState(ref.text, new_digest, index, [])


async def remove_from_list(name: str, digest: str, *, options: "OpenOptions | None" = None) -> ListState:
    """Drop the entry for ``digest``; :class:`ManifestUnknown` if the list has none."""
    ref = parse_list_ref(name)
    with _list_lock(ref):
        async with _opened(ref, write=True, options=options) as store:
            index = await read_list(store, ref)
            try:
                index = remove_entry(index, digest)
            except ManifestUnknown as e:
                raise ManifestUnknown(f"manifest list {ref.text}: {e}") from None
            new_digest = await _write_list(store, ref, index)
    return ListState(ref.text, new_digest, index, [])


async def inspect_list(name: str, *, options: "OpenOptions | None" = None) -> ImageIndex:
    """The list's index (exact bytes in ``.raw``)."""
    ref = parse_list_ref(name)
    async with _opened(ref, write=False, options=options) as store:
        return await read_list(store, ref)


async def delete_list(name: str) -> Digest:
    """Delete a working list (its images stay until ``ocikit layout gc`` of the working layout)."""
    ref = parse_list_ref(name)
    if not ref.is_working:
        raise UsageError(f"{ref.text} is not a working list; delete it where it lives")
    with _list_lock(ref):
        async with _opened(ref, write=False) as store:
            await read_list(store, ref)
            assert isinstance(store, OCILayout)
            return store.untag(ref.text).digest


async def push_list(name: str, destination: str, *, all_images: bool = True, media_type: str | None = None,
                    jobs: int = 6, progress: ProgressSink | None = None, remove: bool = False,
                    options: "OpenOptions | None" = None, list_options: "OpenOptions | None" = None) -> CopyResult:
    """Push a list: every image it lists (with ``all_images``), then the index, with the copy engine.

    ``media_type`` converts the index (OCI index <-> Docker manifest list); the images are
    pushed byte-exact. Without ``all_images`` only the index is written (the images must
    already be at the destination).
    """
    from ..transports import open_store, target_tag

    ref = parse_list_ref(name)
    dref = parse_transport_reference(destination, default_transport="docker")
    async with _opened(ref, write=False, options=list_options) as src:
        index = await read_list(src, ref)
        if not index.manifests:
            raise UsageError(f"manifest list {ref.text} is empty; nothing to push")
        selector = ref.selector
        if media_type and media_type != index.media_type:
            index = convert_index(index, media_type)
            if not isinstance(src, OCILayout):
                raise UsageError("--format conversion needs a local list (a working list or an oci: layout)")
            # the converted index is a blob of the list's layout (untagged) so the copy engine reads it
            await src.put_manifest(index.raw, index.media_type, None, root=False)
            selector = str(index.digest)
        async with holding(open_store(dref, write=True, options=options)) as dst:
            if all_images:
                result = await copy_between(src, selector, dst, target_tag(dref),
                                            CopyOptions(all_platforms=True, jobs=jobs, progress=progress))
            else:
                result = await _push_index_only(src, dst, index, target_tag(dref))
    if remove and ref.is_working:
        await delete_list(name)
    return result


async def _push_index_only(src: Store, dst: Store, index: ImageIndex, tag: str | None) -> CopyResult:
    missing = [m.digest for m in index.manifests if not await dst.has_manifest(m, DEFAULT_OPTIONS)]
    if missing:
        raise ManifestUnknown(f"{dst.location} lacks {len(missing)} of the listed images "
                              f"({', '.join(d.short for d in missing)}); push with --all")
    digest = await dst.put_manifest(index.raw, index.media_type, tag, root=True)
    return CopyResult(src.location, dst.location, index.digest, digest, index.media_type, tag,
                      manifests=[digest])


__all__ = ["ListRef", "ListState", "add_to_list", "annotate_list", "create_list", "data_home", "delete_list",
           "inspect_list", "parse_list_ref", "push_list", "read_list", "remove_from_list", "working_layout_path"]

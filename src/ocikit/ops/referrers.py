"""OCI 1.1 referrers: find the artifacts whose ``subject`` is a manifest, and record new ones.

Three mechanisms, chosen per store:

- ``api``: the registry's ``GET /v2/<name>/referrers/<digest>`` (a store that implements
  :class:`~ocikit.content.ReferrersAPI` or :class:`~ocikit.content.ReferrersLister` and answers it);
- ``tag-schema``: the distribution spec's fallback for registries without the API — an image
  index tagged ``<alg>-<hex>`` listing the referrers, which pushers keep up to date;
- ``layout``: an OCI layout keeps referrers as ``index.json`` entries; they are found by
  reading each entry's manifest and matching its ``subject``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Iterable

from .. import mediatypes as mt
from ..content import DEFAULT_OPTIONS, Options, ReferrersAPI, ReferrersLister, Store
from ..digest import Digest
from ..errors import NotFound, OcikitError, Unsupported
from ..model import Descriptor, ImageIndex, build_index, parse_index, parse_manifest
from ..model.referrer import referrer_descriptor
from ..transports.layout import INDEX_FILE, OCILayout

FALLBACK_TAG_MAX = 64
"""The spec truncates the encoded digest to this many characters in a fallback tag."""


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``sha256-<hex>`` (``<alg>-<ref>``)."""
    d = Digest(digest)
    return f"{d.algorithm}-{d.encoded[:FALLBACK_TAG_MAX]}"


@dataclass
class Referrers:
    """The referrers of ``subject`` found in a store, and the mechanism that found them."""

    subject: Digest
    referrers: list[Descriptor]
    source: str
    """``api``, ``tag-schema`` or ``layout``."""

    def to_dict(self) -> dict[str, object]:
        return {"subject": str(self.subject), "source": self.source,
                "referrers": [d.to_dict() for d in self.referrers]}


def _filter(descs: Iterable[Descriptor], artifact_type: str | None) -> list[Descriptor]:
    out: list[Descriptor] = []
    seen: set[Digest] = set()
    for d in descs:
        if d.digest in seen or (artifact_type and d.artifact_type != artifact_type):
            continue
        seen.add(d.digest)
        out.append(d)
    return out


async def api_referrers(store: Store, subject: Digest, artifact_type: str | None = None,
                        opts: Options = DEFAULT_OPTIONS) -> list[Descriptor] | None:
    """The registry's referrers API answer, or ``None`` where the store or registry lacks the API."""
    if isinstance(store, OCILayout):
        return None
    try:
        if isinstance(store, ReferrersAPI):  # a registry store: the API alone, None on a 404
            return await store.referrers_api(Digest(subject), artifact_type, opts)
        if isinstance(store, ReferrersLister):
            return await store.referrers(Digest(subject), artifact_type, opts)
    except (Unsupported, NotFound):
        pass
    return None


async def tag_schema_index(store: Store, subject: Digest, opts: Options = DEFAULT_OPTIONS) -> ImageIndex | None:
    """The fallback index tagged ``<alg>-<hex>`` for ``subject``, if there is one."""
    try:
        rm = await store.get_manifest(fallback_tag(subject), opts)
    except NotFound:
        return None
    return parse_index(rm.raw, rm.media_type, what=f"referrers tag {fallback_tag(subject)}")


class LayoutScan:
    """Referrers in an OCI layout: every ``index.json`` entry whose manifest has a subject.

    The map from subjects to referrers is rebuilt only when ``index.json`` changes (it is
    replaced atomically, so its inode, size or mtime change); a manifest, immutable by digest,
    is read once however often the map is rebuilt.
    """

    def __init__(self, layout: OCILayout) -> None:
        self.layout = layout
        self._stamp: tuple[int, int, int] | None = None
        self._map: dict[Digest, list[Descriptor]] = {}
        self._seen: dict[Digest, tuple[Digest, Descriptor] | None] = {}

    def _index_stamp(self) -> tuple[int, int, int]:
        st = os.stat(os.path.join(self.layout.path, INDEX_FILE))
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self, e: Descriptor) -> tuple[Digest, Descriptor] | None:
        try:
            raw = self.layout.get_manifest_sync(str(e.digest)).raw
            m = parse_manifest(raw, e.media_type, what=f"manifest {e.digest}")
        except (OcikitError, OSError):
            return None  # a broken entry is `layout validate`'s business, not discovery's
        return (m.subject.digest, referrer_descriptor(m)) if m.subject is not None else None

    def _scan(self) -> None:
        stamp = self._index_stamp()
        if stamp == self._stamp:
            return
        out: dict[Digest, list[Descriptor]] = {}
        listed: set[Digest] = set()
        for e in self.layout.entries():
            if e.digest in listed or not mt.is_manifest(e.media_type):
                continue
            listed.add(e.digest)
            if e.digest not in self._seen:
                self._seen[e.digest] = self._read(e)
            hit = self._seen[e.digest]
            if hit is not None:
                out.setdefault(hit[0], []).append(hit[1])
        self._map, self._stamp = out, stamp

    async def referrers(self, subject: Digest) -> list[Descriptor]:
        await asyncio.to_thread(self._scan)
        return list(self._map.get(Digest(subject), []))


_SCANS: dict[str, LayoutScan] = {}
_MAX_SCANS = 16


def layout_scan(layout: OCILayout) -> LayoutScan:
    """The (per-process, per-path) :class:`LayoutScan` of a layout."""
    scan = _SCANS.get(layout.path)
    if scan is None or scan.layout is not layout:
        if len(_SCANS) >= _MAX_SCANS:
            _SCANS.pop(next(iter(_SCANS)))
        scan = _SCANS[layout.path] = LayoutScan(layout)
    return scan


async def find_referrers(store: Store, subject: str, artifact_type: str | None = None,
                         opts: Options = DEFAULT_OPTIONS) -> Referrers:
    """The referrers of ``subject`` in ``store``: the API where it answers, else the tag schema.

    In an OCI layout: its ``index.json`` entries with a matching subject, plus any tag-schema
    index it holds (copied from a registry without the API).
    """
    digest = Digest(subject)
    if isinstance(store, OCILayout):
        found = await layout_scan(store).referrers(digest)
        idx = await tag_schema_index(store, digest, opts)
        if idx is not None:
            found.extend(idx.manifests)
        return Referrers(digest, _filter(found, artifact_type), "layout")
    api = await api_referrers(store, digest, artifact_type, opts)
    if api is not None:
        return Referrers(digest, _filter(api, artifact_type), "api")
    idx = await tag_schema_index(store, digest, opts)
    return Referrers(digest, _filter(idx.manifests if idx else [], artifact_type), "tag-schema")


async def record_referrer(store: Store, referrer: Descriptor, subject: str,
                          opts: Options = DEFAULT_OPTIONS) -> str:
    """Make a pushed referrer discoverable; returns the mechanism (``api``, ``tag-schema``, ``layout``).

    A registry with the referrers API indexes it by itself; an OCI layout finds it by scanning
    (the manifest must be an ``index.json`` entry: push it with ``root=True``); otherwise the
    ``<alg>-<hex>`` fallback index gains the referrer's descriptor (read, append, re-tag).
    """
    digest = Digest(subject)
    if isinstance(store, OCILayout):
        return "layout"
    if await api_referrers(store, digest, None, opts) is not None:
        return "api"
    idx = await tag_schema_index(store, digest, opts)
    entries = list(idx.manifests) if idx is not None else []
    if any(e.digest == referrer.digest for e in entries):
        return "tag-schema"
    new = build_index([*entries, referrer], media_type=mt.OCI_INDEX)
    await store.put_manifest(new.raw, new.media_type, fallback_tag(digest), opts, root=True)
    return "tag-schema"


__all__ = ["LayoutScan", "layout_scan", "Referrers", "api_referrers", "fallback_tag", "find_referrers",
           "record_referrer", "referrer_descriptor", "tag_schema_index"]

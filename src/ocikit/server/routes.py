"""Parsing registry URL paths (``/v2/<name>/...``) into routes: pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.digest import Digest
from ..core.errors import BlobUploadUnknown, NameInvalid, NotFound
from ..core.reference import validate_repository_name
from ..core.uint import parse_uint

_TAIL = re.compile(
    r"^(?P<name>.+)/(?:"
    r"(?P<manifests>manifests)/(?P<ref>[^/]+)"
    r"|(?P<uploads>blobs/uploads)/(?P<upload>[^/]*)"
    r"|(?P<blobs>blobs)/(?P<digest>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|(?P<referrers>referrers)/(?P<subject>[^/]+)"
    r"|(?P<tagdigests>_ocikit/tags/digests)"
    r")$")
_UPLOAD_ID = re.compile(r"^[a-f0-9]{32}$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
"""The Distribution spec's tag pattern."""


@dataclass(frozen=True)
class Route:
    """``kind``: base, catalog, discover, manifest, blob, upload, tags, tag-digests, referrers."""

    kind: str
    name: str | None = None
    reference: str | None = None
    """manifest: a tag or digest string; blob/referrers: a digest string; upload: an id ('' for new)."""


class RouteNotFound(NotFound):
    code = "NOT_FOUND"


def parse_route(path: str) -> Route:
    """Route a decoded path. Raises NameInvalid for a bad repository name, NotFound for no route."""
    if path in ("/v2", "/v2/"):
        return Route("base")
    if not path.startswith("/v2/"):
        raise RouteNotFound(f"no such endpoint: {path}")
    tail = path[4:]
    if tail == "_catalog":
        return Route("catalog")
    if tail == "_oci/ext/discover":
        return Route("discover")
    m = _TAIL.match(tail)
    if not m:
        raise RouteNotFound(f"no such endpoint: {path}")
    name = m["name"]
    validate_repository_name(name)
    if m["manifests"]:
        return Route("manifest", name, m["ref"])
    if m["uploads"]:
        upload = m["upload"]
        if upload and not _UPLOAD_ID.match(upload):
            raise BlobUploadUnknown(f"blob upload unknown: {upload[:64]}")
        return Route("upload", name, upload)
    if m["blobs"]:
        return Route("blob", name, m["digest"])
    if m["tags"]:
        return Route("tags", name)
    if m["tagdigests"]:
        return Route("tag-digests", name)
    return Route("referrers", name, m["subject"])


def parse_reference(ref: str) -> str | Digest:
    """A manifest reference: a Digest when it has a ':', else a tag (checked by the caller)."""
    if ":" in ref:
        return Digest(ref)
    return ref


def is_tag(ref: str) -> bool:
    return bool(TAG_RE.match(ref))


_RANGE = re.compile(r"^(?:bytes[ =])?([0-9]+)-([0-9]+)$")


def parse_content_range(value: str) -> tuple[int, int] | None:
    """``<start>-<end>`` (inclusive) of an upload chunk; None when malformed or end < start."""
    m = _RANGE.match(value.strip())
    if not m:
        return None
    start, end = parse_uint(m[1]), parse_uint(m[2])
    if start is None or end is None:
        return None
    return (start, end) if end >= start else None


__all__ = ["Route", "RouteNotFound", "parse_route", "parse_reference", "is_tag", "parse_content_range",
           "NameInvalid", "TAG_RE"]

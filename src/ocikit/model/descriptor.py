"""Descriptors (image-spec descriptor.md) and the field-path checking every document uses."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..core.digest import Digest
from ..core.errors import DigestInvalid, ManifestInvalid
from ..core.platforms import Platform

# image-spec: media types follow RFC 6838
MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CREATED = "org.opencontainers.image.created"


class Checker:
    """Field checks that name the JSON path of what is wrong (``manifests[2].digest``)."""

    def __init__(self, what: str, error: type[ManifestInvalid] = ManifestInvalid) -> None:
        self.what = what
        self.error = error

    def fail(self, path: str, message: str) -> ManifestInvalid:
        return self.error(f"{self.what}: {path}: {message}")

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {_kind(value)}")
        return value

    def req(self, d: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in d:
            raise self.fail(_join(path, key), "required field missing")
        return d[key]

    def string(self, value: Any, path: str, *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {_kind(value)}")
        if not empty and not value:
            raise self.fail(path, "must not be empty")
        return value

    def opt_string(self, d: Mapping[str, Any], key: str, path: str) -> str | None:
        if key not in d or d[key] is None:
            return None
        return self.string(d[key], _join(path, key), empty=True)

    def integer(self, value: Any, path: str, *, minimum: int | None = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be >= {minimum}, got {value}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected an array, got {_kind(value)}")
        return value

    def media_type(self, value: Any, path: str) -> str:
        s = self.string(value, path)
        if not MEDIA_TYPE_RE.match(s):
            raise self.fail(path, f"invalid media type {s!r}")
        return s

    def digest(self, value: Any, path: str) -> Digest:
        s = self.string(value, path)
        try:
            return Digest(s)
        except DigestInvalid as e:
            raise self.fail(path, str(e)) from None

    def annotations(self, d: Mapping[str, Any], key: str, path: str) -> dict[str, str] | None:
        if key not in d or d[key] is None:
            return None
        ann = self.obj(d[key], _join(path, key))
        for k, v in ann.items():
            if not isinstance(v, str):
                raise self.fail(f"{_join(path, key)}[{k!r}]", f"expected a string, got {_kind(v)}")
        return dict(ann)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest and size, plus optional extras."""

    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] | None = None
    artifact_type: str | None = None
    data: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """Fields the spec does not name, kept so a rewritten index loses nothing."""

    @property
    def ref_name(self) -> str | None:
        return (self.annotations or {}).get(ANNOTATION_REF_NAME)

    def with_annotations(self, annotations: Mapping[str, str] | None) -> "Descriptor":
        return Descriptor(self.media_type, self.digest, self.size, dict(annotations) if annotations else None,
                          self.platform, self.urls, self.artifact_type, self.data, self.extra)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.urls:
            d["urls"] = list(self.urls)
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.data is not None:
            d["data"] = self.data
        if self.platform is not None:
            d["platform"] = self.platform.to_dict()
        if self.artifact_type:
            d["artifactType"] = self.artifact_type
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, value: Any, path: str = "", checker: Checker | None = None) -> "Descriptor":
        c = checker or Checker("descriptor")
        d = c.obj(value, path or "descriptor")
        media_type = c.media_type(c.req(d, "mediaType", path), _join(path, "mediaType"))
        digest = c.digest(c.req(d, "digest", path), _join(path, "digest"))
        size = c.integer(c.req(d, "size", path), _join(path, "size"))
        urls = None
        if d.get("urls") is not None:
            urls = tuple(c.string(u, f"{_join(path, 'urls')}[{i}]")
                         for i, u in enumerate(c.array(d["urls"], _join(path, "urls"))))
        platform = None
        if d.get("platform") is not None:
            p = c.obj(d["platform"], _join(path, "platform"))
            pp = _join(path, "platform")
            os_ = c.string(c.req(p, "os", pp), f"{pp}.os")
            arch = c.string(c.req(p, "architecture", pp), f"{pp}.architecture")
            variant = c.opt_string(p, "variant", pp)
            osv = c.opt_string(p, "os.version", pp)
            feats: tuple[str, ...] = ()
            if p.get("os.features") is not None:
                feats = tuple(c.string(x, f"{pp}.os.features[{i}]")
                              for i, x in enumerate(c.array(p["os.features"], f"{pp}.os.features")))
            platform = Platform(os_, arch, variant or None, osv or None, feats)
        data = c.opt_string(d, "data", path)
        if data is not None:
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise c.fail(_join(path, "data"), "not valid base64") from None
            if len(raw) != size:
                raise c.fail(_join(path, "data"), f"holds {len(raw)} bytes but size is {size}")
            if Digest.of(raw, digest.algorithm) != digest:
                raise c.fail(_join(path, "data"), "does not match the digest")
        artifact_type = c.opt_string(d, "artifactType", path)
        if artifact_type:
            c.media_type(artifact_type, _join(path, "artifactType"))
        known = {"mediaType", "digest", "size", "urls", "annotations", "platform", "data", "artifactType"}
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(media_type, digest, size, c.annotations(d, "annotations", path), platform, urls,
                   artifact_type or None, data, extra)

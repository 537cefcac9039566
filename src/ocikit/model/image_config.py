"""Image configs (image-spec config.md and Docker's): a parsed view that keeps its raw bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..core.digest import Digest
from ..core.errors import ConfigInvalid
from ..core.platforms import Platform
from .descriptor import Checker
from .jsonutil import decode_object


@dataclass(frozen=True)
class ImageConfig:
    """An image config. The image ID is the digest of ``raw``."""

    raw: bytes
    doc: Mapping[str, Any]

    @property
    def digest(self) -> Digest:
        return Digest.of(self.raw)

    image_id = digest

    @property
    def architecture(self) -> str:
        return str(self.doc.get("architecture", ""))

    @property
    def os(self) -> str:
        return str(self.doc.get("os", ""))

    @property
    def variant(self) -> str | None:
        return self.doc.get("variant") or None

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant, self.doc.get("os.version") or None,
                        tuple(self.doc.get("os.features") or ()))

    @property
    def created(self) -> str | None:
        return self.doc.get("created")

    @property
    def config(self) -> Mapping[str, Any]:
        return self.doc.get("config") or {}

    @property
    def env(self) -> list[str]:
        return list(self.config.get("Env") or [])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def diff_ids(self) -> list[Digest]:
        return [Digest(d) for d in (self.doc.get("rootfs") or {}).get("diff_ids") or []]

    @property
    def history(self) -> list[Mapping[str, Any]]:
        return list(self.doc.get("history") or [])


def parse_config(raw: bytes, *, what: str = "config", strict: bool = True) -> ImageConfig:
    """Parse and check an image config. ``strict`` requires the fields image-spec calls REQUIRED.

    Either way every field :class:`ImageConfig` exposes has the type it promises when present
    (``rootfs`` an object, ``variant`` a string, ``os.features`` strings...), so no accessor
    meets a number where a string belongs: a hostile config fails here with a typed error.
    """
    doc = decode_object(raw, what, ConfigInvalid)
    c = Checker(what, ConfigInvalid)
    if strict:
        c.string(c.req(doc, "architecture", ""), "architecture")
        c.string(c.req(doc, "os", ""), "os")
        c.req(c.obj(c.req(doc, "rootfs", ""), "rootfs"), "diff_ids", "rootfs")
    for key in ("architecture", "os", "variant", "os.version", "created"):
        c.opt_string(doc, key, "")
    if doc.get("os.features") is not None:
        for i, f in enumerate(c.array(doc["os.features"], "os.features")):
            c.string(f, f"os.features[{i}]")
    if doc.get("rootfs") is not None:
        rootfs = c.obj(doc["rootfs"], "rootfs")
        if strict and c.string(c.req(rootfs, "type", "rootfs"), "rootfs.type") != "layers":
            raise c.fail("rootfs.type", "must be 'layers'")
        for i, d in enumerate(c.array(rootfs.get("diff_ids") or [], "rootfs.diff_ids")):
            c.digest(d, f"rootfs.diff_ids[{i}]")
    if doc.get("config") is not None:
        cfg = c.obj(doc["config"], "config")
        for key in ("Env", "Entrypoint", "Cmd"):
            if cfg.get(key) is not None:
                for i, v in enumerate(c.array(cfg[key], f"config.{key}")):
                    c.string(v, f"config.{key}[{i}]", empty=True)
        if cfg.get("Labels") is not None:
            c.annotations(cfg, "Labels", "config")
    if doc.get("history") is not None:
        for i, h in enumerate(c.array(doc["history"], "history")):
            c.obj(h, f"history[{i}]")
    return ImageConfig(bytes(raw), doc)

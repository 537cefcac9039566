"""The ``docker save`` archive format, as pure functions over bytes and strings.

``manifest.json`` is a list of items ``{"Config", "RepoTags", "Layers"}``; ``repositories``
maps names to tags to the top legacy layer ID; each layer has a legacy directory
``<id>/{VERSION,json,layer.tar}``. skopeo (containers/image) presents an image read from such
an archive as a Docker v2s2 manifest it generates: layer digests are the diff IDs, sizes the
uncompressed sizes, media types ``...rootfs.diff.tar.gzip`` whatever the stored form; the
bytes are Go's ``json.Marshal`` of that struct. :func:`generated_manifest` reproduces them
exactly, so ``ocikit inspect`` and ``skopeo inspect`` print the same Digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from ...core import mediatypes as mt
from ...core.digest import Digest
from ...core.errors import ArchiveInvalid, InvalidReference, ManifestUnknown, UsageError
from ...model.jsonutil import decode_object
from ...core.reference import parse_reference

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
LEGACY_ATTRS = ("architecture", "config", "container", "container_config", "created", "docker_version", "os")


@dataclass
class ManifestItem:
    """One entry of ``manifest.json``."""

    config: str
    repo_tags: list[str]
    layers: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def parse_manifest_json(raw: bytes, where: str) -> list[ManifestItem]:
    """Parse ``manifest.json``; :class:`ArchiveInvalid` names the field that is wrong."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ArchiveInvalid(f"{where}/{MANIFEST_FILE}: not valid JSON: {e}") from None
    if not isinstance(doc, list):
        raise ArchiveInvalid(f"{where}/{MANIFEST_FILE}: expected an array of images")
    items = []
    for i, it in enumerate(doc):
        p = f"{where}/{MANIFEST_FILE}: [{i}]"
        if not isinstance(it, dict):
            raise ArchiveInvalid(f"{p}: expected an object")
        cfg = it.get("Config")
        if not isinstance(cfg, str) or not cfg:
            raise ArchiveInvalid(f"{p}.Config: expected a file name")
        tags = it.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ArchiveInvalid(f"{p}.RepoTags: expected an array of strings")
        layers = it.get("Layers")
        if not isinstance(layers, list) or not all(isinstance(x, str) and x for x in layers):
            raise ArchiveInvalid(f"{p}.Layers: expected an array of file names")
        extra = {k: v for k, v in it.items() if k not in ("Config", "RepoTags", "Layers")}
        items.append(ManifestItem(cfg, list(tags), list(layers), extra))
    return items


def normalise_tag(text: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest`` (skopeo writes RepoTags in this form)."""
    ref = parse_reference(text, default_tag="latest")
    if ref.digest is not None:
        raise UsageError(f"docker-archive: {text!r}: digest references are not supported, name a tag")
    if ref.tag is None:
        ref = ref.with_tag("latest")
    return f"{ref.name}:{ref.tag}"


def _same_tag(a: str, b: str) -> bool:
    try:
        return normalise_tag(a) == normalise_tag(b)
    except (InvalidReference, UsageError):
        return a == b


def choose_item(items: Sequence[ManifestItem], reference: str | None, where: str) -> int:
    """Index of the item a reference names: ``None`` (the only image), ``@N``, or ``name:tag``."""
    if reference is None:
        if len(items) == 1:
            return 0
        if not items:
            raise ManifestUnknown(f"{where}: the archive holds no image")
        tags = ", ".join(t for it in items for t in it.repo_tags) or "none"
        raise ManifestUnknown(f"{where}: the archive holds {len(items)} images; name one with :NAME:TAG or :@N "
                              f"(tags: {tags})")
    if reference.startswith("@"):
        n = reference[1:]
        if not n.isdigit():
            raise InvalidReference(f"{where}: bad image index {reference!r}")
        if int(n) >= len(items):
            raise ManifestUnknown(f"{where}: no image @{n}; the archive holds {len(items)}")
        return int(n)
    want = normalise_tag(reference)
    for i, it in enumerate(items):
        if any(_same_tag(t, want) for t in it.repo_tags):
            return i
    raise ManifestUnknown(f"{where}: no image tagged {reference!r}")


def config_diff_ids(config_raw: bytes, where: str) -> list[Digest]:
    doc = decode_object(config_raw, where, ArchiveInvalid)  # type: ignore[arg-type]
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ArchiveInvalid(f"{where}: rootfs.diff_ids missing (not an image config)")
    out = []
    for i, d in enumerate(rootfs["diff_ids"]):
        try:
            out.append(Digest(d))
        except Exception:
            raise ArchiveInvalid(f"{where}: rootfs.diff_ids[{i}]: invalid digest {d!r}") from None
    return out


def generated_manifest(config_size: int, config_digest: str, layers: Sequence[tuple[str, int]]) -> bytes:
    """The v2s2 manifest skopeo presents for a docker-archive image, byte for byte.

    ``layers`` are (diff ID, uncompressed size) in order.
    """
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.DOCKER_MANIFEST,
        "config": {"mediaType": mt.DOCKER_CONFIG, "size": config_size, "digest": str(config_digest)},
        "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP, "size": size, "digest": str(d)} for d, size in layers],
    }
    return go_json(doc)


def go_json(obj: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (HTML characters escaped, UTF-8 kept)."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def layer_file(diff_id: str) -> str:
    return f"{Digest(diff_id).encoded}.tar"


def config_file(digest: str) -> str:
    return f"{Digest(digest).encoded}.json"


@dataclass(frozen=True)
class LegacyLayer:
    id: str
    json: bytes
    layer_file: str


def legacy_layers(diff_ids: Sequence[str], config_raw: bytes) -> list[LegacyLayer]:
    """The ``<id>/{VERSION,json,layer.tar}`` entries old docker versions load (as skopeo writes them)."""
    config = json.loads(config_raw)
    out: list[LegacyLayer] = []
    chain = ""
    last = ""
    for i, diff_id in enumerate(diff_ids):
        layer_cfg: dict[str, Any] = {}
        if last:
            layer_cfg["parent"] = last
        if i == len(diff_ids) - 1:
            for attr in LEGACY_ATTRS:
                layer_cfg[attr] = config.get(attr)
        chain = diff_id if not chain else "sha256:" + hashlib.sha256(f"{chain} {diff_id}".encode()).hexdigest()
        layer_cfg["layer_id"] = chain
        layer_id = hashlib.sha256(go_json(dict(sorted(layer_cfg.items())))).hexdigest()
        del layer_cfg["layer_id"]
        layer_cfg["id"] = layer_id
        out.append(LegacyLayer(layer_id, go_json(dict(sorted(layer_cfg.items()))), layer_file(diff_id)))
        last = layer_id
    return out


def repositories(items: Sequence[tuple[Sequence[str], str]]) -> bytes:
    """The ``repositories`` file: ``{name: {tag: top layer id}}`` from (RepoTags, top layer id) pairs."""
    repos: dict[str, dict[str, str]] = {}
    for tags, top in items:
        if not top:
            continue
        for t in tags:
            name, _, tag = t.rpartition(":")
            repos.setdefault(name, {})[tag] = top
    return go_json({k: dict(sorted(v.items())) for k, v in sorted(repos.items())})


def manifest_json(items: Sequence[ManifestItem]) -> bytes:
    return go_json([{"Config": it.config, "RepoTags": list(it.repo_tags), "Layers": list(it.layers), **it.extra}
                    for it in items])

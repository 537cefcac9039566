"""Manifest format conversion on request (``copy --format oci|v2s2``), as pure functions.

OCI image manifest <-> Docker v2s2 manifest, OCI index <-> Docker manifest list: media types
of the manifest, its config and its layers change; blobs stay byte-identical (a config is the
same JSON under either media type; gzip and plain tar layers exist in both worlds). What v2s2
cannot say is refused with :class:`~ocikit.core.errors.ConversionError` (zstd layers, artifacts,
subjects, index entries without a platform); annotations are dropped, as skopeo does.

A converted document keeps the source's key order and unknown fields and is encoded
compactly, so converting there and back gives the original bytes (and digest) whenever the
source was compact and carried nothing v2s2 drops.

:func:`convert_plan` rewrites a copy plan children first, so each parent points at its
children's new digests, sizes and media types.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..core import mediatypes as mt
from ..content import Store
from ..core.digest import Digest
from ..core.errors import ConversionError, Unsupported
from ..model import Descriptor, canonical_json, parse_manifest
from ..model.jsonutil import decode_object
from .copy_plan import Conversion, CopyPlan, Node

FORMATS = ("oci", "v2s2")

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
"""Docker's plain-tar layer type (containers/image writes it for uncompressed OCI layers)."""
DOCKER_LAYER_FOREIGN_TAR = "application/vnd.docker.image.rootfs.foreign.diff.tar"

LAYER_TO_DOCKER = {
    mt.OCI_LAYER: DOCKER_LAYER,
    mt.OCI_LAYER_GZIP: mt.DOCKER_LAYER_GZIP,
    mt.OCI_LAYER_ND: DOCKER_LAYER_FOREIGN_TAR,
    mt.OCI_LAYER_ND_GZIP: mt.DOCKER_LAYER_FOREIGN,
}
LAYER_TO_OCI = {v: k for k, v in LAYER_TO_DOCKER.items()}
MANIFEST_TYPE = {
    "oci": {mt.OCI_MANIFEST: mt.OCI_MANIFEST, mt.DOCKER_MANIFEST: mt.OCI_MANIFEST,
            mt.OCI_INDEX: mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST: mt.OCI_INDEX},
    "v2s2": {mt.OCI_MANIFEST: mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST: mt.DOCKER_MANIFEST,
             mt.OCI_INDEX: mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST_LIST: mt.DOCKER_MANIFEST_LIST},
}
_DOCKER_DESCRIPTOR_FIELDS = ("mediaType", "size", "digest", "urls", "platform")


def normalise_format(fmt: str | None) -> str | None:
    """``oci``/``v2s2`` (skopeo's names; ``docker`` is taken for v2s2); ``None``: no conversion."""
    if fmt is None:
        return None
    f = fmt.lower()
    if f in ("docker", "v2s2"):
        return "v2s2"
    if f == "oci":
        return "oci"
    if f == "v2s1":
        raise ConversionError("--format v2s1: Docker schema 1 is not supported (deprecated since 2017)")
    raise ConversionError(f"unknown manifest format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _layer_type(media_type: str, fmt: str, what: str) -> str:
    if fmt == "v2s2":
        if mt.is_docker(media_type):
            return media_type
        if media_type in LAYER_TO_DOCKER:
            return LAYER_TO_DOCKER[media_type]
        if mt.compression(media_type) == "zstd":
            raise ConversionError(f"{what}: a zstd layer ({media_type}) cannot be expressed in a Docker v2s2 "
                                  "manifest; keep the OCI format")
        raise ConversionError(f"{what}: layer type {media_type!r} has no Docker v2s2 equivalent")
    if media_type in LAYER_TO_OCI:
        return LAYER_TO_OCI[media_type]
    if media_type.startswith("application/vnd.oci.image.layer."):
        return media_type
    raise ConversionError(f"{what}: layer type {media_type!r} has no OCI equivalent")


def _config_type(media_type: str, fmt: str, what: str) -> str:
    if media_type not in mt.CONFIG_TYPES:
        raise ConversionError(f"{what}: config type {media_type!r} is not an image config; artifacts "
                              "are not converted")
    return mt.DOCKER_CONFIG if fmt == "v2s2" else mt.OCI_CONFIG


def _descriptor(d: Mapping[str, Any], fmt: str, media_type: str, new: Descriptor | None = None) -> dict[str, Any]:
    """A descriptor object with its media type (and, for a converted child, digest and size) replaced."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if fmt == "v2s2" and k not in _DOCKER_DESCRIPTOR_FIELDS:
            continue
        out[k] = v
    out["mediaType"] = media_type
    if new is not None:
        out["digest"] = str(new.digest)
        out["size"] = new.size
    if "mediaType" not in d:  # keep a stable, spec-like order when the source omitted it
        out = {"mediaType": out.pop("mediaType"), **out}
    return out


def _top(doc: Mapping[str, Any], fmt: str, media_type: str, what: str) -> dict[str, Any]:
    if fmt == "v2s2":
        for key in ("subject", "artifactType"):
            if doc.get(key) is not None:
                raise ConversionError(f"{what}: {key!r} cannot be expressed in Docker v2s2 "
                                      "(it is an OCI artifact or referrer)")
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if fmt == "v2s2" and k == "annotations":
            continue
        out[k] = v
    out["mediaType"] = media_type
    if "mediaType" not in doc:
        sv = out.pop("schemaVersion", 2)
        out = {"schemaVersion": sv, "mediaType": out.pop("mediaType"), **out}
    return out


def convert_manifest(raw: bytes, media_type: str, fmt: str, children: Mapping[str, Descriptor] | None = None,
                     *, what: str = "manifest") -> bytes:
    """The bytes of ``raw`` in format ``fmt`` (``oci``/``v2s2``); ``raw`` itself when nothing changes.

    ``children`` maps an index entry's old digest to the converted child's descriptor; every
    entry of an index must be there (a child not converted would keep the wrong type).
    """
    target = MANIFEST_TYPE[fmt].get(media_type)
    if target is None:
        raise ConversionError(f"{what}: cannot convert a {media_type!r} document")
    doc = decode_object(raw, what)
    if mt.is_index(media_type):
        entries = []
        for i, e in enumerate(doc.get("manifests") or []):
            new = (children or {}).get(e.get("digest"))
            if new is None:
                raise ConversionError(f"{what}: manifests[{i}] ({e.get('digest')}) is not part of this copy, so it "
                                      "cannot be converted; copy every child (--all) or drop --format")
            if fmt == "v2s2" and not e.get("platform"):
                raise ConversionError(f"{what}: manifests[{i}] has no platform, which a Docker manifest list "
                                      "requires")
            entries.append(_descriptor(e, fmt, new.media_type, new))
        out = _top(doc, fmt, target, what)
        out["manifests"] = entries
    else:
        out = _top(doc, fmt, target, what)
        cfg = doc.get("config") or {}
        out["config"] = _descriptor(cfg, fmt, _config_type(str(cfg.get("mediaType")), fmt, f"{what}: config"))
        out["layers"] = [_descriptor(x, fmt, _layer_type(str(x.get("mediaType")), fmt, f"{what}: layers[{i}]"))
                         for i, x in enumerate(doc.get("layers") or [])]
    new_raw = canonical_json(out)
    if out == doc:
        return raw  # already in this format: the exact source bytes
    return new_raw


def check_target(plan: CopyPlan, fmt: str | None, *, preserve_digests: bool = False,
                 target: Store | None = None) -> None:
    """Refuse, before anything moves, what the target cannot store.

    Consults the target's :class:`~ocikit.content.StoreTraits` in this order:
    ``accepts_index`` (False: single images only), ``manifest_formats`` (with ``fmt``: the
    manifest media types it stores), ``rewrites_manifests`` (with ``preserve_digests``: it
    regenerates manifests, so digests change).
    """
    if target is None:
        return
    where, traits = target.location, target.traits
    if not traits.accepts_index and mt.is_index(plan.root.manifest.media_type):
        raise Unsupported(f"{where} holds single images, not an index ({plan.root.desc.digest}); "
                          "copy one platform's image instead (without --all or --platform, the host's is taken)")
    formats = traits.manifest_formats
    if fmt is not None and formats is not None:
        want = MANIFEST_TYPE[fmt][mt.DOCKER_MANIFEST]
        if want not in formats:
            raise ConversionError(f"{where} stores only {', '.join(formats)}; --format {fmt} cannot apply")
    if preserve_digests and traits.rewrites_manifests:
        raise Unsupported(f"--preserve-digests: {where} stores layers uncompressed and regenerates the "
                          "manifest, so the image's digest would change")


def convert_plan(plan: CopyPlan, fmt: str | None, *, preserve_digests: bool = False,
                 target: Store | None = None) -> CopyPlan:
    """A copy plan with every manifest in format ``fmt`` (``None``: the plan as is), children first.

    Also checks the target's limits (:func:`check_target`). With ``preserve_digests`` any
    manifest that would change is refused. The returned plan's ``conversions`` lists what
    changed (old and new descriptors).
    """
    fmt = normalise_format(fmt)
    check_target(plan, fmt, preserve_digests=preserve_digests, target=target)
    if fmt is None:
        return plan
    if plan.sparse:
        raise ConversionError("--format with --preserve-index-digest: converting an index changes its bytes; "
                              "drop one of them")
    converted: dict[str, Descriptor] = {}
    changes: list[Conversion] = []
    nodes = []
    root = None
    for node in plan.manifests:
        media_type = node.manifest.media_type
        raw = convert_manifest(node.raw, media_type, fmt, converted, what=f"manifest {node.desc.digest}")
        new = node
        if raw is not node.raw:
            m = parse_manifest(raw, MANIFEST_TYPE[fmt][media_type], what=f"converted manifest {node.desc.digest}")
            desc = Descriptor(m.media_type, Digest.of(raw), len(raw), platform=node.desc.platform)
            if preserve_digests:
                raise ConversionError(f"--preserve-digests: --format {fmt} would rewrite manifest "
                                      f"{node.desc.digest} as {desc.digest}")
            new = Node(desc, raw, m)
            changes.append(Conversion(node.desc, desc))
        converted[str(node.desc.digest)] = new.desc
        nodes.append(new)
        if node is plan.root:
            root = new
    assert root is not None
    return dataclasses.replace(plan, root=root, manifests=nodes, conversions=changes)


__all__ = ["Conversion", "FORMATS", "LAYER_TO_DOCKER", "LAYER_TO_OCI", "check_target", "convert_manifest",
           "convert_plan", "normalise_format"]

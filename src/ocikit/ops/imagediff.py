"""Compare two images: shared and different layers, config differences, and file-level changes.

``ocikit diff IMAGE_A IMAGE_B`` answers what a person asks of httpd 2.4.47 against 2.4.48:
which layers they share (by diff_id, whatever the compression), what changed in the config
(``Env HTTPD_VERSION: 2.4.47 -> 2.4.48``), and with ``files`` which paths were added,
removed or modified in the filesystems the layers add up to (content by sha256, mode,
owner, type, link target, xattrs). Layers are streamed and verified, never unpacked.

The comparisons themselves (:func:`compare_layers`, :func:`compare_configs`,
:func:`compare_trees`) are pure functions over data.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..content import Options
from ..layers.merge import MergedTree
from ..layers.reader import LayerReader, TarMember
from ..model import Descriptor, ImageManifest
from ..core.platforms import Platform
from .inspect import InspectedImage, inspect_image
from .mutate import merge_layers


# ---- layers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRow:
    """One layer of A or B: where it is, and whether the other image has the same tar."""

    index: int
    digest: str
    diff_id: str
    size: int
    media_type: str
    shared: bool
    same_blob: bool
    """The other image has this exact blob too (not only the same tar under other compression)."""


@dataclass
class LayerComparison:
    a: list[LayerRow]
    b: list[LayerRow]
    common_prefix: int
    """How many bottom layers the two stacks share, in order."""

    @property
    def shared(self) -> int:
        return sum(1 for r in self.a if r.shared)


def compare_layers(a_layers: Sequence[Descriptor], a_diff_ids: Sequence[str],
                   b_layers: Sequence[Descriptor], b_diff_ids: Sequence[str]) -> LayerComparison:
    """Layers matched by diff_id (the uncompressed tar), noting exact blob matches too."""
    a_ids, b_ids = set(a_diff_ids), set(b_diff_ids)
    a_dig, b_dig = {d.digest for d in a_layers}, {d.digest for d in b_layers}

    def rows(layers: Sequence[Descriptor], ids: Sequence[str], other_ids: set[str], other_dig: set[str]) -> list[LayerRow]:
        return [LayerRow(i, str(d.digest), ids[i] if i < len(ids) else "", d.size, d.media_type,
                         (ids[i] if i < len(ids) else None) in other_ids, d.digest in other_dig)
                for i, d in enumerate(layers)]

    prefix = 0
    for x, y in zip(a_diff_ids, b_diff_ids):
        if x != y:
            break
        prefix += 1
    return LayerComparison(rows(a_layers, a_diff_ids, b_ids, b_dig), rows(b_layers, b_diff_ids, a_ids, a_dig), prefix)


# ---- config -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    """``field`` changed from ``a`` to ``b`` (``None``: absent on that side)."""

    field: str
    a: Any
    b: Any

    def describe(self) -> str:
        if self.a is None:
            return f"{self.field}: + {_show(self.b)}"
        if self.b is None:
            return f"{self.field}: - {_show(self.a)}"
        return f"{self.field}: {_show(self.a)} -> {_show(self.b)}"


def _show(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True)


def _env_map(env: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in env or []:
        k, _, v = str(e).partition("=")
        out[k] = v
    return out


def _mapping_changes(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ConfigChange]:
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k) or (k in a) != (k in b):
            out.append(ConfigChange(f"{prefix} {k}", a.get(k) if k in a else None, b.get(k) if k in b else None))
    return out


def compare_configs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ConfigChange]:
    """Field-level differences of two image configs (Env, Labels, ExposedPorts and Volumes per entry)."""
    out: list[ConfigChange] = []
    for k in ("architecture", "os", "variant", "os.version", "created", "author"):
        if a.get(k) != b.get(k):
            out.append(ConfigChange(k, a.get(k), b.get(k)))
    ca, cb = a.get("config") or {}, b.get("config") or {}
    out += _mapping_changes("Env", _env_map(ca.get("Env")), _env_map(cb.get("Env")))
    for key in ("Labels", "ExposedPorts", "Volumes"):
        out += _mapping_changes(key, ca.get(key) or {}, cb.get(key) or {})
    skip = {"Env", "Labels", "ExposedPorts", "Volumes"}
    for k in sorted((set(ca) | set(cb)) - skip):
        if ca.get(k) != cb.get(k):
            out.append(ConfigChange(k, ca.get(k), cb.get(k)))
    ha, hb = a.get("history") or [], b.get("history") or []
    if len(ha) != len(hb):
        out.append(ConfigChange("history", f"{len(ha)} entries", f"{len(hb)} entries"))
    return out


# ---- files --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """``+`` added, ``-`` removed, ``M`` modified (``what`` lists how)."""

    kind: str
    path: str
    what: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.kind} {self.path}" + (f"  ({', '.join(self.what)})" if self.what else "")


_TYPES = {"0": "file", "2": "symlink", "3": "char device", "4": "block device", "5": "directory", "6": "fifo"}


def tree_signatures(tree: MergedTree) -> dict[str, dict[str, Any]]:
    """path -> what matters about it (type, mode, owner, size, sha256, link target, device, xattrs)."""
    out: dict[str, dict[str, Any]] = {}
    for path, node in tree.walk():
        if node.inode is None:
            out[path] = {"type": "directory", "mode": None, "owner": None}
            continue
        m = node.inode.member
        sig: dict[str, Any] = {"type": _TYPES.get(m.type, m.type), "mode": m.mode, "owner": (m.uid, m.gid)}
        if m.is_file:
            sig["size"], sig["sha256"] = node.inode.data
        elif m.is_symlink:
            sig["target"] = m.linkname
        elif m.is_device:
            sig["device"] = (m.devmajor, m.devminor)
        if m.xattrs:
            sig["xattrs"] = dict(sorted(m.xattrs.items()))
        out[path] = sig
    return out


def compare_trees(a: Mapping[str, Mapping[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> list[FileChange]:
    """Added, removed and modified paths, in path order; under an added/removed dir only the dir."""
    out: list[FileChange] = []
    gone: list[str] = []
    for path in sorted(set(a) | set(b), key=lambda p: p.split("/")):
        if any(path.startswith(g + "/") for g in gone[-1:]):
            continue
        x, y = a.get(path), b.get(path)
        if x is None or y is None:
            out.append(FileChange("+" if x is None else "-", path))
            if (y or x or {}).get("type") == "directory":
                gone.append(path)
            continue
        what: list[str] = []
        if x["type"] != y["type"]:
            what.append(f"{x['type']} -> {y['type']}")
        else:
            if x.get("sha256") != y.get("sha256"):
                what.append("content" + (f", size {x['size']} -> {y['size']}" if x.get("size") != y.get("size") else ""))
            if x.get("target") != y.get("target"):
                what.append(f"link {x.get('target')} -> {y.get('target')}")
            if x.get("device") != y.get("device"):
                what.append("device numbers")
        if x["mode"] != y["mode"] and x["mode"] is not None and y["mode"] is not None and x["type"] == y["type"]:
            what.append(f"mode {x['mode']:o} -> {y['mode']:o}")
        if x["owner"] != y["owner"] and x["owner"] is not None and y["owner"] is not None:
            what.append(f"owner {x['owner'][0]}:{x['owner'][1]} -> {y['owner'][0]}:{y['owner'][1]}")
        if x.get("xattrs") != y.get("xattrs"):
            what.append("xattrs")
        if what:
            out.append(FileChange("M", path, tuple(what)))
    return out


def _hash_data(reader: LayerReader, member: TarMember) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for chunk in reader.data():
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def _merge_both(sa: Any, ma: ImageManifest, da: list[str], sb: Any, mb: ImageManifest, db: list[str],
                common: int, loop: asyncio.AbstractEventLoop) -> tuple[MergedTree, MergedTree]:
    """Both images' merged trees; the layers they share at the bottom are read once."""
    base = merge_layers(sa, ma, da, _hash_data, loop, stop=common)
    tb = merge_layers(sb, mb, db, _hash_data, loop, tree=copy.deepcopy(base), start=common)
    ta = merge_layers(sa, ma, da, _hash_data, loop, tree=base, start=common)
    return ta, tb


# ---- the whole comparison -----------------------------------------------------------------------


@dataclass
class ImageDiff:
    a_name: str
    b_name: str
    a_digest: str
    b_digest: str
    a_platform: str
    b_platform: str
    layers: LayerComparison
    config: list[ConfigChange]
    files: list[FileChange] | None = None
    identical: bool = False

    @property
    def differs(self) -> bool:
        return not self.identical and bool(
            self.config or self.files or any(not r.shared for r in self.layers.a + self.layers.b))

    def to_dict(self) -> dict[str, Any]:
        def row(r: LayerRow) -> dict[str, Any]:
            return {"index": r.index, "digest": r.digest, "diffID": r.diff_id, "size": r.size,
                    "mediaType": r.media_type, "shared": r.shared, "sameBlob": r.same_blob}
        d: dict[str, Any] = {
            "a": {"name": self.a_name, "digest": self.a_digest, "platform": self.a_platform},
            "b": {"name": self.b_name, "digest": self.b_digest, "platform": self.b_platform},
            "identical": self.identical,
            "layers": {"sharedPrefix": self.layers.common_prefix, "shared": self.layers.shared,
                       "a": [row(r) for r in self.layers.a], "b": [row(r) for r in self.layers.b]},
            "config": [{"field": c.field, "a": c.a, "b": c.b} for c in self.config],
        }
        if self.files is not None:
            d["files"] = [{"change": f.kind, "path": f.path, "what": list(f.what)} for f in self.files]
        return d


@dataclass
class DiffOptions:
    files: bool = False
    platform: Platform | None = None
    opts: Options = field(default_factory=Options)
    open_options: Any = None
    """:class:`~ocikit.transports.OpenOptions` for registries."""


async def _open(name: str, platform: Platform | None, opts: Options, open_options: Any) -> tuple[Any, InspectedImage]:
    from ..core.transportref import parse_transport_reference
    from ..transports import open_store

    ref = parse_transport_reference(name)
    store = open_store(ref, options=open_options)
    try:
        return store, await inspect_image(store, ref.selector, platform=platform, opts=opts)
    except BaseException:
        await store.close()
        raise


async def adiff(image_a: str, image_b: str, options: DiffOptions | None = None) -> ImageDiff:
    """Compare two images (any transports); see the module docstring."""
    options = options or DiffOptions()
    sa, ia = await _open(image_a, options.platform, options.opts, options.open_options)
    try:
        sb, ib = await _open(image_b, options.platform, options.opts, options.open_options)
        try:
            ma, mb = ia.image.manifest, ib.image.manifest
            assert isinstance(ma, ImageManifest) and isinstance(mb, ImageManifest)
            da, db = [str(d) for d in ia.config.diff_ids], [str(d) for d in ib.config.diff_ids]
            result = ImageDiff(image_a, image_b, str(ia.root.desc.digest), str(ib.root.desc.digest),
                               str(ia.config.platform), str(ib.config.platform),
                               compare_layers(ma.layers, da, mb.layers, db), compare_configs(ia.config.doc, ib.config.doc),
                               identical=ia.image.desc.digest == ib.image.desc.digest)
            if options.files:
                loop = asyncio.get_running_loop()
                if result.identical or da == db:
                    result.files = []
                else:
                    ta, tb = await asyncio.to_thread(_merge_both, sa, ma, da, sb, mb, db,
                                                     result.layers.common_prefix, loop)
                    result.files = compare_trees(tree_signatures(ta), tree_signatures(tb))
            return result
        finally:
            await sb.close()
    finally:
        await sa.close()


def diff(image_a: str, image_b: str, options: DiffOptions | None = None) -> ImageDiff:
    """Synchronous :func:`adiff`."""
    return asyncio.run(adiff(image_a, image_b, options))


__all__ = ["ConfigChange", "DiffOptions", "FileChange", "ImageDiff", "LayerComparison", "LayerRow", "adiff",
           "compare_configs", "compare_layers", "compare_trees", "diff", "tree_signatures"]

"""Hand-made layers for the unpack tests: tar entries, layers and images from them, tree snapshots."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.model import build_manifest, canonical_json
from ocikit.transports.layout import OCILayout

EPOCH = 1700000000


@dataclass
class E:
    """One tar entry for a hand-made layer."""

    name: str
    type: bytes = tarfile.REGTYPE
    data: bytes = b""
    mode: int = 0o644
    link: str = ""
    uid: int = 0
    gid: int = 0
    xattrs: dict[str, str] | None = None
    pax: dict[str, str] | None = None
    devmajor: int = 0
    devminor: int = 0
    mtime: int = EPOCH


def F(name: str, data: bytes = b"x", mode: int = 0o644, **kw: Any) -> E:
    return E(name, tarfile.REGTYPE, data, mode, **kw)


def D(name: str, mode: int = 0o755, **kw: Any) -> E:
    return E(name, tarfile.DIRTYPE, b"", mode, **kw)


def S(name: str, target: str, **kw: Any) -> E:
    return E(name, tarfile.SYMTYPE, b"", 0o777, target, **kw)


def H(name: str, target: str, **kw: Any) -> E:
    return E(name, tarfile.LNKTYPE, b"", 0o644, target, **kw)


def tar_bytes(entries: Iterable[E], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = e.type, e.mode, e.uid, e.gid, e.mtime
            ti.linkname = e.link
            ti.devmajor, ti.devminor = e.devmajor, e.devminor
            pax = dict(e.pax or {})
            for k, v in (e.xattrs or {}).items():
                pax[f"SCHILY.xattr.{k}"] = v
            ti.pax_headers = pax
            if e.type == tarfile.REGTYPE:
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def compress(tar: bytes, compression: str) -> tuple[bytes, str]:
    if compression == "gzip":
        return gzip.compress(tar, 1, mtime=0), mt.OCI_LAYER_GZIP
    if compression == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(tar), mt.OCI_LAYER_ZSTD
    return tar, mt.OCI_LAYER


def image_from_tars(path: str, tag: str, tars: Sequence[bytes], *, compression: str = "gzip",
                    config: dict[str, Any] | None = None, diff_ids: Sequence[str] | None = None,
                    blobs: Sequence[bytes] | None = None) -> OCILayout:
    """An OCI layout at ``path`` with image ``tag`` made of these uncompressed layer tars.

    ``diff_ids`` overrides the config's (to test mismatches); ``blobs`` replaces the stored
    layer bytes (hostile non-tar or truncated blobs)."""
    lay = OCILayout(path, create=True)
    layers = []
    for i, tar in enumerate(tars):
        blob, mtype = compress(tar, compression)
        if blobs is not None:
            blob = blobs[i]
        layers.append(lay.put_bytes(blob, mtype))
    ids = list(diff_ids) if diff_ids is not None else [str(Digest.of(t)) for t in tars]
    cfg = {"created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
           "config": config if config is not None else {"Cmd": ["/bin/sh"]},
           "rootfs": {"type": "layers", "diff_ids": ids},
           "history": [{"created_by": f"layer {i}"} for i in range(len(tars))]}
    cdesc = lay.put_bytes(canonical_json(cfg), mt.OCI_CONFIG)
    m = build_manifest(cdesc, layers)
    asyncio.run(lay.put_manifest(m.raw, m.media_type, tag))
    return lay


# ---- tree snapshots ------------------------------------------------------------------------------


def _xattrs(p: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(p, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in names:
        if n.startswith("security.selinux"):
            continue
        try:
            out[n] = os.getxattr(p, n, follow_symlinks=False)
        except OSError:
            pass
    return out


def snapshot(root: str, *, mtimes: bool = False, skip: Sequence[str] = ()) -> dict[str, tuple]:
    """Every path under ``root`` (relative; the root itself is ".") -> what it is: type, mode,
    owner, content digest or link target, device numbers, xattrs, hardlink group; mtimes too
    (for non-directories) with ``mtimes``."""
    out: dict[str, tuple] = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir != "." and any(rel_dir == s or rel_dir.startswith(s + "/") for s in skip):
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in [None] + sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = dirpath if name is None else os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if name is not None and rel in skip:
                continue
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            what: Any = None
            if stat.S_ISREG(kind):
                with open(p, "rb") as f:
                    what = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(kind):
                what = os.readlink(p)
            elif stat.S_ISCHR(kind) or stat.S_ISBLK(kind):
                what = (os.major(st.st_rdev), os.minor(st.st_rdev))
            link_group = None
            if not stat.S_ISDIR(kind) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                link_group = inodes.setdefault(key, rel)
            entry = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what,
                     tuple(sorted(_xattrs(p).items())), link_group)
            if mtimes and not stat.S_ISDIR(kind):
                entry += (st.st_mtime_ns // 1_000_000_000,)
            out[rel] = entry
    return out


FIELDS = ("type", "mode", "uid", "gid", "content/target", "xattrs", "hardlink-of", "mtime")


def compare_trees(a: str, b: str, **kw: Any) -> list[str]:
    """Human-readable differences between two trees (empty when identical)."""
    sa, sb = snapshot(a, **kw), snapshot(b, **kw)
    diffs = []
    for rel in sorted(set(sa) | set(sb)):
        if rel not in sa:
            diffs.append(f"{rel}: only in {b}")
        elif rel not in sb:
            diffs.append(f"{rel}: only in {a}")
        elif sa[rel] != sb[rel]:
            for i, (x, y) in enumerate(zip(sa[rel], sb[rel])):
                if x != y:
                    diffs.append(f"{rel}: {FIELDS[i]} {x!r} != {y!r}")
    return diffs

"""Trees and snapshots shared by the build, tar writer and tree diff tests.

``make_tree`` builds a directory of every kind of entry; ``snapshot`` describes a tree
(content, modes, owners, link targets, device numbers, xattrs, hardlink groups) so two trees
compare with ``==`` and a failure shows what differs.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from typing import Any

from .cli import run_ocikit


def snapshot(root: str, *, owners: bool = True, mtimes: bool = False) -> dict[str, Any]:
    """path -> description, plus ``"<hardlinks>"``: the sorted groups of paths sharing an inode."""
    out: dict[str, Any] = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            d: dict[str, Any] = {"mode": oct(stat.S_IMODE(m))}
            if owners:
                d["owner"] = (st.st_uid, st.st_gid)
            if mtimes and not stat.S_ISLNK(m):
                d["mtime"] = int(st.st_mtime)
            if stat.S_ISDIR(m):
                d["type"] = "dir"
            elif stat.S_ISREG(m):
                d["type"] = "file"
                with open(p, "rb") as f:
                    d["sha256"] = hashlib.sha256(f.read()).hexdigest()
                if st.st_nlink > 1:
                    inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
            elif stat.S_ISLNK(m):
                d["type"] = "symlink"
                d["target"] = os.readlink(p)
                d.pop("mode")
            elif stat.S_ISFIFO(m):
                d["type"] = "fifo"
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                d["type"] = "chr" if stat.S_ISCHR(m) else "blk"
                d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            try:
                xs = {k: os.getxattr(p, k, follow_symlinks=False) for k in os.listxattr(p, follow_symlinks=False)
                      if k.startswith("user.")}
            except OSError:
                xs = {}
            if xs:
                d["xattrs"] = xs
            out[rel] = d
    out["<hardlinks>"] = sorted(sorted(g) for g in inodes.values() if len(g) > 1)
    return out


def diff_snapshots(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Human-readable differences (empty when equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k}: {a.get(k)} != {b.get(k)}")
    return out


def write(path: str, data: bytes | str, mode: int = 0o644) -> None:
    """Write a file (and its parent directories) with ``mode``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)


def make_tree(root: str, *, seed: int = 0, devices: bool = True) -> str:
    """A small tree with files, dirs, symlinks, hardlinks, a fifo, setuid, xattrs, odd names."""
    os.makedirs(root, exist_ok=True)
    write(f"{root}/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
    write(f"{root}/etc/hostname", f"box{seed}\n")
    write(f"{root}/bin/tool", b"\x7fELF" + bytes(range(256)) * 40, 0o4755)
    write(f"{root}/usr/share/doc/readme.txt", "read me\n" * 100)
    write(f"{root}/usr/share/doc/" + "long-name-" * 12 + ".txt", "long\n")
    write(f"{root}/usr/share/doc/ünïcødé.txt", "utf8\n")
    write(f"{root}/srv/data.bin", os.urandom(0) + bytes(100_000))
    write(f"{root}/srv/empty", b"")
    os.link(f"{root}/bin/tool", f"{root}/bin/tool-link")
    os.link(f"{root}/bin/tool", f"{root}/usr/tool-hard")
    os.symlink("../etc/passwd", f"{root}/bin/passwd-link")
    os.symlink("/nonexistent/abs", f"{root}/bin/dangling")
    os.makedirs(f"{root}/var/empty-dir", mode=0o700)
    os.chmod(f"{root}/var/empty-dir", 0o700)
    os.makedirs(f"{root}/tmp")
    os.chmod(f"{root}/tmp", 0o1777)
    os.mkfifo(f"{root}/var/fifo")
    os.setxattr(f"{root}/etc/hostname", "user.origin", b"ocikit-test")
    if devices and os.geteuid() == 0:
        os.mknod(f"{root}/dev-null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return root


def disturb(root: str) -> None:
    """Same content, other owners and mtimes."""
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            mode = os.lstat(p).st_mode
            os.lchown(p, 4321, 8765)
            if not os.path.islink(p):
                os.chmod(p, mode)
                os.utime(p, (1_111_111_111, 1_111_111_111))


def umoci_unpack(layout: str, tag: str, dest: str) -> str:
    """``umoci unpack`` an image; returns the rootfs path."""
    p = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", dest], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return os.path.join(dest, "rootfs")


def ocikit_unpack(image: str, dest: str) -> str:
    """``ocikit unpack`` an image (a subprocess); returns ``dest``."""
    run_ocikit("unpack", image, dest)
    return dest

"""Hostile input for layer tests: raw tar blocks (headers with any field, PAX records of any
keyword) and directory trees deeper than Python's recursion limit.

:mod:`tarfile` refuses to write much of what a hostile layer holds (negative ids in base-256,
NUL bytes in names, global headers by the thousand), so these build the bytes directly.
"""

from __future__ import annotations

import io
import os

from ocikit.layers import LayerLimits, TarMember, open_layer_chunks

from helpers.layers import snapshot


def octal(n: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, n)


def base256(n: int, width: int) -> bytes:
    """GNU base-256: a first byte of 0x80 (positive) or 0xff (negative, two's complement)."""
    return bytes([0xFF if n < 0 else 0x80]) + (n % (1 << (8 * (width - 1)))).to_bytes(width - 1, "big")


def header(name: bytes, typeflag: bytes = b"0", *, size: int = 0, mode: int = 0o644, uid: int | bytes = 0,
           gid: int | bytes = 0, mtime: int | bytes = 1700000000, linkname: bytes = b"",
           devmajor: int | bytes = 0, devminor: int | bytes = 0) -> bytes:
    """One ustar header block with a correct checksum; a ``bytes`` field is taken as it is."""
    def f(v: int | bytes, width: int) -> bytes:
        return v if isinstance(v, bytes) else octal(v, width)
    block = bytearray(512)
    block[0:100] = name[:100].ljust(100, b"\0")
    block[100:108] = octal(mode, 8)
    block[108:116] = f(uid, 8)
    block[116:124] = f(gid, 8)
    block[124:136] = octal(size, 12)
    block[136:148] = f(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = linkname[:100].ljust(100, b"\0")
    block[257:265] = b"ustar\x0000"
    block[329:337] = f(devmajor, 8)
    block[337:345] = f(devminor, 8)
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def records(items: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> bytes:
    """PAX records ``"%d %s=%s\\n"`` (the length counts itself)."""
    out = io.BytesIO()
    for k, v in (items.items() if isinstance(items, dict) else items):
        body = b" " + k + b"=" + v + b"\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n = len(str(n)) + len(body)
        out.write(str(n).encode() + body)
    return out.getvalue()


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def pax(items: dict[bytes, bytes] | list[tuple[bytes, bytes]], typeflag: bytes = b"x") -> bytes:
    """An extended header (``x``: the next member; ``g``: global) with its records."""
    data = records(items)
    return header(b"././@PaxHeader", typeflag, size=len(data)) + pad(data)


def regular(name: bytes, data: bytes = b"", **kw: object) -> bytes:
    return header(name, b"0", size=len(data), **kw) + pad(data)  # type: ignore[arg-type]


END = bytes(1024)


def members(tar: bytes, limits: LayerLimits | None = None) -> list[TarMember]:
    """The members of an uncompressed layer ``tar``, read by ocikit's reader (to the end: verified)."""
    kw = {"limits": limits} if limits is not None else {}
    with open_layer_chunks([tar], **kw) as layer:
        out = []
        for m in layer:
            out.append(m)
        return out


def deep_chain(top: str, depth: int) -> None:
    """``top/d/d/.../d/f`` ``depth`` directories deep, made through descriptors (no long paths)."""
    os.mkdir(top)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    finally:
        os.close(fd)


def bait(path: str) -> dict[str, tuple]:
    """A directory of files a hostile layer must not touch (``file``, ``dir/inner``); its snapshot."""
    os.makedirs(os.path.join(path, "dir"))
    for name in ("file", "dir/inner"):
        with open(os.path.join(path, name), "wb") as f:
            f.write(b"precious")
    return snapshot(path)

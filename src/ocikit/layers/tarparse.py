"""Tar headers as data: the member type, header fields and PAX records — pure, no I/O.

What :class:`~ocikit.layers.reader.LayerReader` needs to turn 512-byte header blocks and the
extended records before them into :class:`TarMember` values: ustar fields (octal, NUL/space
padded, or GNU base-256), header checksums (unsigned, or signed as old Sun tar wrote them),
PAX records (``path``, ``linkpath``, ``size``, ``uid``/``gid``, ``mtime``, ``uname``/``gname``,
``SCHILY.xattr.*``, ``LIBARCHIVE.xattr.*``) and the global PAX state, bounded by
:class:`~ocikit.layers.limits.LayerLimits`.

Everything a hostile header can say that the filesystem cannot take is refused here with
:class:`~ocikit.errors.LayerInvalid`: owner and device ids outside 0..2^32-1, times outside
what a 64-bit ``time_t`` holds, NUL bytes in names, link targets and xattr names.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass, field

from ..errors import LayerInvalid, LayerLimitExceeded

# tar type flags
REGULAR = "0"
HARDLINK = "1"
SYMLINK = "2"
CHARDEV = "3"
BLOCKDEV = "4"
DIRECTORY = "5"
FIFO = "6"
TYPES = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"1": HARDLINK, b"2": SYMLINK, b"3": CHARDEV,
         b"4": BLOCKDEV, b"5": DIRECTORY, b"6": FIFO}
"""Header type flag -> the normalised type of :attr:`TarMember.type`."""

HEADER = struct.Struct("100s24s12s12s8sc100s6s2x64s8s8s155s12x")
"""name, mode+uid+gid, size, mtime, chksum, typeflag, linkname, magic, (version), uname+gname,
devmajor, devminor, prefix: fields that vary little are kept together, parsed once per value."""
ZERO_BLOCK = bytes(512)
CACHE_LIMIT = 512
"""Distinct mode/uid/gid and uname/gname fields remembered per layer (a hostile layer with more
only loses the shortcut)."""

MAX_ID = 0xFFFFFFFF
"""Largest uid, gid or device number (they are 32-bit unsigned on Linux)."""
MAX_TIME_S = (1 << 63) - 1
"""Times are seconds a 64-bit ``time_t`` holds, either side of the epoch."""


@dataclass(slots=True)
class TarMember:
    """One entry of a layer: a header with PAX extensions applied. Names are as in the archive."""

    name: str
    type: str
    """The tar type flag, normalised: ``0`` regular (also ``\\0`` and ``7``), ``1`` hardlink,
    ``2`` symlink, ``3``/``4`` char/block device, ``5`` directory, ``6`` fifo."""
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str = ""
    uname: str = ""
    gname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)
    offset: int = 0
    """Offset of the header in the uncompressed stream."""

    @property
    def is_file(self) -> bool:
        return self.type == REGULAR

    @property
    def is_dir(self) -> bool:
        return self.type == DIRECTORY

    @property
    def is_symlink(self) -> bool:
        return self.type == SYMLINK

    @property
    def is_hardlink(self) -> bool:
        return self.type == HARDLINK

    @property
    def is_device(self) -> bool:
        return self.type in (CHARDEV, BLOCKDEV)

    @property
    def is_fifo(self) -> bool:
        return self.type == FIFO

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


# ---- header fields ---------------------------------------------------------------------------------


def octal(field_: bytes, what: str, offset: int) -> int:
    """A numeric field the quick ``int(field, 8)`` could not read: GNU base-256, or octal with
    junk around it (refused)."""
    if field_ and field_[0] & 0x80:        # GNU base-256, as tarfile and GNU tar read it
        n = int.from_bytes(field_[1:], "big")
        if field_[0] == 0xFF:              # negative: two's complement
            n -= 1 << (8 * (len(field_) - 1))
        return n
    s = field_.split(b"\0", 1)[0].strip(b" ")
    if not s:
        return 0
    try:
        return int(s, 8)
    except ValueError:
        raise LayerInvalid(f"{what}: bad numeric field {field_!r} in the tar header at offset {offset}") from None


def num(field_: bytes, what: str, offset: int) -> int:
    """A numeric header field: octal (NUL/space padded) or GNU base-256."""
    try:
        return int(field_.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        return octal(field_, what, offset)


def check_id(n: int, name: str, what: str, offset: int) -> int:
    """``n`` if it is a valid uid, gid or device number, else :class:`LayerInvalid`."""
    if not 0 <= n <= MAX_ID:
        raise LayerInvalid(f"{what}: {name} {n} out of range (0..{MAX_ID}) in the tar header at offset {offset}")
    return n


def check_time(seconds: int, what: str, offset: int) -> int:
    """``seconds`` if a 64-bit ``time_t`` holds it, else :class:`LayerInvalid`."""
    if not -MAX_TIME_S - 1 <= seconds <= MAX_TIME_S:
        raise LayerInvalid(f"{what}: mtime {seconds} out of range in the tar header at offset {offset}")
    return seconds


def ids(field_: bytes, what: str, offset: int) -> tuple[int, int, int]:
    """(mode & 0o7777, uid, gid) from the header's three adjacent 8-byte fields."""
    return (num(field_[:8], what, offset) & 0o7777, check_id(num(field_[8:16], what, offset), "uid", what, offset),
            check_id(num(field_[16:], what, offset), "gid", what, offset))


def mtime_field(field_: bytes, what: str, offset: int) -> int:
    """The mtime field (seconds) when it is not plain octal: base-256, range-checked."""
    return check_time(num(field_, what, offset), what, offset)


def device(field_: bytes, name: str, what: str, offset: int) -> int:
    """A device major or minor number field."""
    return check_id(num(field_, what, offset), name, what, offset)


def names(field_: bytes) -> tuple[str, str]:
    """(uname, gname) from the header's two adjacent 32-byte fields."""
    return text(cstr(field_[:32])), text(cstr(field_[32:]))


def check_signed(hdr: bytes, chksum: int, what: str, offset: int) -> None:
    """Accept checksums computed over signed chars (old Sun tar), as tarfile does; else fail."""
    signed = sum(b - 256 if b > 127 else b for b in hdr) - sum(
        b - 256 if b > 127 else b for b in hdr[148:156]) + 256
    if chksum != signed:
        kind = "not a tar archive" if offset == 0 else "corrupt tar header"
        raise LayerInvalid(f"{what}: {kind}: bad header checksum at offset {offset}")


def text(b: bytes) -> str:
    """A name as Python text: UTF-8, any other byte kept as a surrogate (written back as it was)."""
    return b.decode("utf-8", "surrogateescape")


def cstr(b: bytes) -> bytes:
    """``b`` up to its first NUL."""
    i = b.find(b"\0")
    return b if i < 0 else b[:i]


# ---- PAX ---------------------------------------------------------------------------------------------


def parse_pax(data: bytes, what: str, offset: int) -> dict[str, bytes]:
    """The records of a PAX extended header (``"%d %s=%s\\n"``), keyword -> value."""
    out: dict[str, bytes] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:        # NUL padding
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise LayerInvalid(f"{what}: malformed PAX header at offset {offset}")
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise LayerInvalid(f"{what}: malformed PAX record length at offset {offset}") from None
        end = pos + length
        if length <= 0 or end > n or end <= sp or data[end - 1:end] != b"\n":
            raise LayerInvalid(f"{what}: malformed PAX record at offset {offset}")
        rec = data[sp + 1:end - 1]
        eq = rec.find(b"=")
        if eq <= 0:
            raise LayerInvalid(f"{what}: malformed PAX record at offset {offset}")
        out[text(rec[:eq])] = rec[eq + 1:]
        pos = end
    return out


def pax_time_ns(v: bytes, what: str, offset: int = 0) -> int:
    """A PAX time (``[-]seconds[.fraction]``) in nanoseconds, range-checked."""
    s = v.decode("ascii", "replace").strip()
    neg = s.startswith("-")
    whole, _, frac = s[1:].partition(".") if neg else s.partition(".")
    if not (whole or frac) or not (whole.isdigit() or not whole) or not (frac.isdigit() or not frac):
        raise LayerInvalid(f"{what}: bad PAX time {s[:40]!r} at offset {offset}")
    if len(whole) > 20:
        raise LayerInvalid(f"{what}: PAX time {s[:40]!r} out of range at offset {offset}")
    ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9])
    if neg:
        ns = -ns
    check_time(ns // 1_000_000_000, what, offset)     # the whole seconds a timespec would hold
    return ns


def _name(v: bytes, key: str, what: str, offset: int) -> str:
    if b"\0" in v:
        raise LayerInvalid(f"{what}: NUL byte in the PAX {key} at offset {offset}")
    return text(v)


def _pax_id(v: bytes, key: str, what: str, offset: int) -> int:
    try:
        n = int(v)
    except ValueError:
        raise LayerInvalid(f"{what}: bad PAX {key} at offset {offset}") from None
    return check_id(n, key, what, offset)


def apply_pax(m: TarMember, attrs: dict[str, bytes], what: str, offset: int) -> None:
    """Set what the PAX records ``attrs`` say on member ``m``."""
    for k, v in attrs.items():
        if k == "path":
            m.name = _name(v, k, what, offset)
        elif k == "linkpath":
            m.linkname = _name(v, k, what, offset)
        elif k == "size":
            try:
                m.size = int(v)
            except ValueError:
                raise LayerInvalid(f"{what}: bad PAX size at offset {offset}") from None
            if m.size < 0:
                raise LayerInvalid(f"{what}: negative PAX size at offset {offset}")
        elif k == "uid":
            m.uid = _pax_id(v, k, what, offset)
        elif k == "gid":
            m.gid = _pax_id(v, k, what, offset)
        elif k == "mtime":
            if v.strip():       # an empty record leaves the header's
                m.mtime_ns = pax_time_ns(v, what, offset)
        elif k == "uname":
            m.uname = text(v)
        elif k == "gname":
            m.gname = text(v)
        elif k.startswith("SCHILY.xattr."):
            m.xattrs[_name(k[13:].encode("utf-8", "surrogateescape"), "xattr name", what, offset)] = v
        elif k.startswith("LIBARCHIVE.xattr."):
            from urllib.parse import unquote_to_bytes

            try:
                name = text(unquote_to_bytes(k[17:]))
                value = base64.b64decode(v + b"=" * (-len(v) % 4))
            except ValueError:
                raise LayerInvalid(f"{what}: bad LIBARCHIVE.xattr value at offset {offset}") from None
            m.xattrs[_name(name.encode("utf-8", "surrogateescape"), "xattr name", what, offset)] = value
        elif k.startswith("GNU.sparse"):
            raise LayerInvalid(f"{what}: sparse file {m.name!r}: sparse members are not supported")


class GlobalPax:
    """The global PAX records (type ``g``) in force, bounded in bytes and keywords."""

    __slots__ = ("records", "size", "max_bytes", "max_records")

    def __init__(self, max_bytes: int, max_records: int) -> None:
        self.records: dict[str, bytes] = {}
        self.size = 0
        self.max_bytes = max_bytes
        self.max_records = max_records

    def update(self, new: dict[str, bytes], what: str, offset: int) -> None:
        """Add the records of one global header; :class:`LayerLimitExceeded` past the bounds."""
        records = self.records
        for k, v in new.items():
            old = records.get(k)
            if old is not None:
                self.size -= len(k) + len(old)
            records[k] = v
            self.size += len(k) + len(v)
        if self.size > self.max_bytes:
            raise LayerLimitExceeded(f"{what}: global PAX headers past {self.max_bytes} bytes at offset {offset}",
                                     limit="max_global_pax", value=self.size)
        if len(records) > self.max_records:
            raise LayerLimitExceeded(f"{what}: global PAX headers past {self.max_records} keywords at offset "
                                     f"{offset}", limit="max_global_pax_records", value=len(records))


__all__ = ["BLOCKDEV", "CHARDEV", "DIRECTORY", "FIFO", "GlobalPax", "HARDLINK", "REGULAR", "SYMLINK", "TarMember",
           "apply_pax", "parse_pax", "pax_time_ns"]

"""Fuzzing layers/tarparse, through the reader that drives it: arbitrary bytes — a whole stream, a
header block with a valid checksum, PAX records — raise nothing but ocikit's typed errors, and
what does parse holds only ids, times and names the filesystem can take."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.errors import LayerInvalid, OcikitError
from ocikit.layers.tarparse import MAX_ID, TarMember, apply_pax, parse_pax

from helpers.hostile_layers import END, members, pax, regular

pytestmark = pytest.mark.fuzz

FUZZ = settings(deadline=None)
"""Examples: the profile's (bounded by default; `make fuzz` loads the long ``fuzz`` profile)."""


@FUZZ
@given(st.binary(max_size=4096))
def test_fuzz_pax_records(data: bytes) -> None:
    try:
        attrs = parse_pax(data, "fuzz", 0)
    except LayerInvalid:
        return
    m = TarMember("n", "0", 0o644, 0, 0, 0, 0)
    try:
        apply_pax(m, attrs, "fuzz", 0)
    except LayerInvalid:
        return
    assert 0 <= m.uid <= MAX_ID and 0 <= m.gid <= MAX_ID and "\0" not in m.name + m.linkname


_KEYS = st.sampled_from([b"path", b"linkpath", b"size", b"uid", b"gid", b"mtime", b"uname", b"gname",
                         b"SCHILY.xattr.user.x", b"LIBARCHIVE.xattr.user.%00y", b"GNU.sparse.map", b"comment"])
_VALUES = st.one_of(st.binary(max_size=40), st.integers(-2**70, 2**70).map(lambda n: str(n).encode()),
                    st.from_regex(rb"\A-?[0-9]{1,25}(\.[0-9]{0,12})?\Z"))


@FUZZ
@given(st.lists(st.tuples(_KEYS, _VALUES), max_size=6), st.booleans())
def test_fuzz_pax_members(items: list[tuple[bytes, bytes]], global_: bool) -> None:
    tar = pax(items, b"g" if global_ else b"x") + regular(b"f", b"data") + END
    try:
        ms = members(tar)
    except OcikitError:
        return
    for m in ms:
        assert 0 <= m.uid <= MAX_ID and 0 <= m.gid <= MAX_ID and "\0" not in m.name + m.linkname
        assert -(1 << 63) * 10**9 <= m.mtime_ns < (1 << 63) * 10**9


@FUZZ
@given(st.binary(min_size=512, max_size=512), st.binary(max_size=2048))
def test_fuzz_header_block(block: bytes, rest: bytes) -> None:
    # a random block with a checksum that matches, so the fields themselves are parsed
    b = bytearray(block)
    b[148:156] = b" " * 8
    b[148:156] = b"%06o\0 " % sum(b)
    try:
        members(bytes(b) + rest + END)
    except OcikitError:
        pass


@FUZZ
@given(st.binary(max_size=8192))
def test_fuzz_stream(data: bytes) -> None:
    for chunks in ([data], [data, data]):
        try:
            members(b"".join(chunks))
        except OcikitError:
            pass

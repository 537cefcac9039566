"""layers/tarparse: header fields and PAX records as a hostile layer writes them.

Ids, times and names the filesystem cannot take are refused with LayerInvalid while reading
(before anything is written), global PAX state is bounded, and arbitrary bytes — a whole
stream, a header block, a PAX header — never raise anything but ocikit's typed errors.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocikit.errors import LayerInvalid, LayerLimitExceeded, OcikitError
from ocikit.layers import LayerLimits, open_layer_chunks
from ocikit.layers.tarparse import MAX_ID, TarMember, apply_pax, parse_pax, pax_time_ns

from tar_blocks import END, base256, header, pax, records, regular


def members(tar: bytes, limits: LayerLimits | None = None) -> list[TarMember]:
    kw = {"limits": limits} if limits is not None else {}
    with open_layer_chunks([tar], **kw) as layer:
        out = []
        for m in layer:
            out.append(m)
        return out


def test_plain_members_read() -> None:
    ms = members(pax({b"path": b"long/" * 30 + b"name", b"uid": b"4294967295", b"mtime": b"-12.5"})
                 + regular(b"x", b"data") + END)
    assert ms[0].name == "long/" * 30 + "name" and ms[0].uid == MAX_ID
    assert ms[0].mtime_ns == -12_500_000_000


# ---- ids, times, names -----------------------------------------------------------------------------


@pytest.mark.parametrize("key,value", [(b"uid", b"-1"), (b"gid", b"-5"), (b"uid", b"4294967296"),
                                       (b"gid", b"99999999999999999999")])
def test_pax_id_out_of_range_is_refused(key: bytes, value: bytes) -> None:
    with pytest.raises(LayerInvalid, match="out of range"):
        members(pax({key: value}) + regular(b"f", b"x") + END)


@pytest.mark.parametrize("field", ["uid", "gid"])
def test_negative_base256_id_in_the_header_is_refused(field: str) -> None:
    with pytest.raises(LayerInvalid, match=f"{field} -1 out of range"):
        members(regular(b"f", b"x", **{field: base256(-1, 8)}) + END)


def test_device_numbers_out_of_range_are_refused() -> None:
    with pytest.raises(LayerInvalid, match="devmajor"):
        members(header(b"dev", b"3", devmajor=base256(-3, 8)) + END)


@pytest.mark.parametrize("value", [b"1e30", b"100000000000000000000000000000", b"-9223372036854775809"])
def test_pax_mtime_out_of_range_is_refused(value: bytes) -> None:
    with pytest.raises(LayerInvalid, match="time"):
        members(pax({b"mtime": value}) + regular(b"f") + END)


def test_base256_mtime_out_of_range_is_refused() -> None:
    with pytest.raises(LayerInvalid, match="mtime .* out of range"):
        members(regular(b"f", mtime=bytes([0x80]) + b"\xff" * 11) + END)


@pytest.mark.parametrize("key", [b"path", b"linkpath", b"SCHILY.xattr.user.a\0b"])
def test_nul_bytes_in_names_are_refused(key: bytes) -> None:
    value = b"a\0b" if not key.startswith(b"SCHILY") else b"v"
    with pytest.raises(LayerInvalid, match="NUL"):
        members(pax({key: value}) + header(b"l", b"2", linkname=b"t") + END)


def test_pax_time_forms() -> None:
    assert pax_time_ns(b"1.5", "t") == 1_500_000_000
    assert pax_time_ns(b"-0.000000001", "t") == -1
    assert pax_time_ns(b" 7 ", "t") == 7_000_000_000
    assert pax_time_ns(b"-9223372036854775808", "t") == -(1 << 63) * 10**9
    with pytest.raises(LayerInvalid, match="out of range"):   # its whole seconds are one more
        pax_time_ns(b"-9223372036854775808.5", "t")
    for bad in (b"", b"-", b"1.2.3", b"x", b"1e3", b"\xff"):
        with pytest.raises(LayerInvalid):
            pax_time_ns(bad, "t")


# ---- PAX state ---------------------------------------------------------------------------------------


def test_global_pax_state_is_capped_in_bytes() -> None:
    # each global header is small and new keywords pile up: 2 KiB x 40 = 80 KiB > 64 KiB
    tar = b"".join(pax({b"k%d" % i: b"v" * 2000}, b"g") for i in range(40)) + regular(b"f") + END
    with pytest.raises(LayerLimitExceeded, match="global PAX") as e:
        members(tar)
    assert e.value.limit == "max_global_pax"


def test_global_pax_state_is_capped_in_keywords() -> None:
    tar = b"".join(pax({b"k%d" % i: b""}, b"g") for i in range(300)) + regular(b"f") + END
    with pytest.raises(LayerLimitExceeded) as e:
        members(tar)
    assert e.value.limit == "max_global_pax_records"


def test_global_pax_replaced_keywords_do_not_count_twice() -> None:
    tar = b"".join(pax({b"comment": b"c" * 1000}, b"g") for _ in range(200)) + regular(b"f") + END
    assert [m.name for m in members(tar)] == ["f"]


def test_global_pax_applies_to_later_members() -> None:
    tar = pax({b"uid": b"7"}, b"g") + regular(b"a") + pax({b"uid": b"8"}) + regular(b"b") + regular(b"c") + END
    assert [(m.name, m.uid) for m in members(tar)] == [("a", 7), ("b", 8), ("c", 7)]


def test_one_extended_header_is_capped() -> None:
    tar = pax({b"path": b"p" * 5000}) + regular(b"f") + END
    assert members(tar)[0].name == "p" * 5000
    with pytest.raises(LayerInvalid, match="too large"):
        members(tar, LayerLimits(max_extended_header=4096))


def test_malformed_pax_records() -> None:
    for bad in (b"5 a=b\n", b"x a=b\n", b"6 ab\n", b"99 a=b\n", b"4 =\n\n", b"3 a"):
        with pytest.raises(LayerInvalid):
            parse_pax(bad, "t", 0)
    assert parse_pax(records({b"a": b"b", b"c": b"=d\n"}) + b"\0\0", "t", 0) == {"a": b"b", "c": b"=d\n"}


# ---- fuzzing: only ocikit's errors escape ------------------------------------------------------------

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Examples: the profile's (100 by default; `make fuzz` loads the long ``fuzz`` profile)."""


@pytest.mark.fuzz
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


@pytest.mark.fuzz
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


@pytest.mark.fuzz
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


@pytest.mark.fuzz
@FUZZ
@given(st.binary(max_size=8192))
def test_fuzz_stream(data: bytes) -> None:
    for chunks in ([data], [data, data]):
        try:
            members(b"".join(chunks))
        except OcikitError:
            pass

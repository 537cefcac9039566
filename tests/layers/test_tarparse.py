"""layers/tarparse: header fields and PAX records as a hostile layer writes them.

Ids, times and names the filesystem cannot take are refused with LayerInvalid while reading
(before anything is written), and global PAX state is bounded (the fuzzing is in
test_tarparse_fuzz.py).
"""

from __future__ import annotations

import pytest

from ocikit.errors import LayerInvalid, LayerLimitExceeded
from ocikit.layers import LayerLimits
from ocikit.layers.tarparse import MAX_ID, parse_pax, pax_time_ns

from helpers.hostile_layers import END, base256, header, members, pax, records, regular


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

"""layers/rootless: the user.rootlesscontainers payload, and owners a uint32 cannot hold.

A negative owner id once made the varint encoder loop forever under ``--rootless`` (a hang);
now such ids are refused while the layer is read, and the encoder refuses them too.
"""

from __future__ import annotations

import os

import pytest

from ocikit.errors import LayerInvalid
from ocikit.layers.rootless import NOOP_ID, ROOTLESS_XATTR, parse_rootless_payload, rootless_payload
from ocikit.ops.unpack import UnpackOptions, unpack

from helpers.hostile_layers import END, base256, pax, regular
from helpers.layers import image_from_tars


@pytest.mark.parametrize("uid,gid", [(0, 0), (1000, 1000), (0, 5), (NOOP_ID - 1, 1), (1, 0)])
def test_payload_round_trip(uid: int, gid: int) -> None:
    assert parse_rootless_payload(rootless_payload(uid, gid)) == (uid, gid)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("uid,gid", [(-1, 0), (0, -2), (NOOP_ID + 1, 0), (1 << 70, 1)])
def test_payload_refuses_ids_out_of_range(uid: int, gid: int) -> None:
    with pytest.raises(LayerInvalid, match="out of range"):
        rootless_payload(uid, gid)


def test_truncated_payload() -> None:
    with pytest.raises(LayerInvalid, match="truncated"):
        parse_rootless_payload(b"\x08\x80")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("layer", [
    pax({b"uid": b"-1"}) + regular(b"f", b"x") + END,
    pax({b"gid": b"-7"}) + regular(b"f", b"x") + END,
    regular(b"f", b"x", uid=base256(-1, 8)) + END,
    pax({b"uid": b"4294967296"}) + regular(b"f", b"x") + END,
], ids=["pax-uid", "pax-gid", "base256-uid", "pax-uid-2^32"])
@pytest.mark.parametrize("rootless", [True, False])
def test_unpack_refuses_owner_ids_out_of_range(tmp_path, layer: bytes, rootless: bool) -> None:
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [layer])
    with pytest.raises(LayerInvalid, match="out of range"):
        unpack(f"oci:{layout}:t", str(tmp_path / "root"), UnpackOptions(rootless=rootless))
    assert sorted(os.listdir(tmp_path)) == ["layout"]


def test_unpack_rootless_records_the_largest_id(tmp_path) -> None:
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [pax({b"uid": b"4294967294", b"gid": b"3"}) + regular(b"f", b"x") + END])
    unpack(f"oci:{layout}:t", str(tmp_path / "root"), UnpackOptions(rootless=True))
    assert parse_rootless_payload(os.getxattr(tmp_path / "root" / "f", ROOTLESS_XATTR)) == (NOOP_ID - 1, 3)

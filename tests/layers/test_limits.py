"""layers/limits: a layer's expansion is bounded (ratio beyond an allowance, and an absolute size).

The bombs are built in memory from one compressed piece repeated (gzip members and zstd frames
concatenate), so a 1 GiB tar costs a few MiB to make.
"""

from __future__ import annotations

import gzip
import json
import os

import pytest
import zstandard

from ocikit.errors import LayerInvalid, LayerLimitExceeded
from ocikit.layers import DEFAULT_LIMITS, LayerLimits, open_layer_chunks
from ocikit.layers.limits import GiB, MiB
from ocikit.ops.unpack import MARKER, UnpackOptions, unpack

from helpers.hostile_layers import END, header
from helpers.layers import F, image_from_tars, tar_bytes

PIECE = 64 * MiB


def zero_file_tar_pieces(size: int) -> list[bytes]:
    """The uncompressed pieces of a tar holding one file of ``size`` zero bytes (a multiple of PIECE)."""
    return [header(b"zeros", size=size)] + [b"\0" * PIECE] * (size // PIECE) + [END]


def gzip_bomb(size: int) -> list[bytes]:
    """A gzip stream of a tar with one ``size``-byte file of zeros: one member per piece."""
    zeros = gzip.compress(b"\0" * PIECE, 9, mtime=0)
    head, *body, end = zero_file_tar_pieces(size)
    return [gzip.compress(head, mtime=0)] + [zeros] * len(body) + [gzip.compress(end, mtime=0)]


def zstd_bomb(size: int) -> list[bytes]:
    c = zstandard.ZstdCompressor(level=3)
    zeros = c.compress(b"\0" * PIECE)
    head, *body, end = zero_file_tar_pieces(size)
    return [c.compress(head)] + [zeros] * len(body) + [c.compress(end)]


def drain(chunks: list[bytes], **kw: object) -> None:
    with open_layer_chunks(chunks, **kw) as layer:  # type: ignore[arg-type]
        layer.drain()


def test_the_default_limits_stop_a_1_gib_gzip_bomb_of_1_mib() -> None:
    chunks = gzip_bomb(1 * GiB)
    size = sum(map(len, chunks))
    assert size < 1.1 * MiB
    with pytest.raises(LayerLimitExceeded, match="decompression bomb") as e:
        drain(chunks, size=size)
    assert e.value.limit == "max_expansion_ratio"
    # it stopped at the limit, not at the end
    assert e.value.value <= DEFAULT_LIMITS.uncompressed_limit(size) + 1 * MiB


def test_the_ratio_applies_to_the_bytes_read_when_the_size_is_not_known() -> None:
    limits = LayerLimits(expansion_allowance=1 * MiB, max_expansion_ratio=50)
    with pytest.raises(LayerLimitExceeded, match="expand to more than"):
        drain(zstd_bomb(PIECE * 2), limits=limits)


def test_the_absolute_size_limit() -> None:
    tar = tar_bytes([F("a", os.urandom(3 * MiB))])     # ratio ~1: only the size limit can trip
    drain([tar], limits=LayerLimits(max_layer_size=4 * MiB))
    with pytest.raises(LayerLimitExceeded, match="layer size limit") as e:
        drain([tar], limits=LayerLimits(max_layer_size=2 * MiB))
    assert e.value.limit == "max_layer_size"


def test_no_limits_reads_a_bomb_to_its_end() -> None:
    limits = LayerLimits(max_expansion_ratio=None, max_layer_size=None)
    drain(zstd_bomb(PIECE), limits=limits, diff_id=None)


def test_a_highly_compressible_but_small_layer_is_within_the_default_allowance() -> None:
    chunks = gzip_bomb(3 * PIECE)         # ~1000x, like a sparse lastlog
    drain(chunks, size=sum(map(len, chunks)))


def test_uncompressed_limit() -> None:
    limits = LayerLimits(expansion_allowance=10, max_expansion_ratio=2.5, max_layer_size=1000)
    assert limits.uncompressed_limit(0) == 10
    assert limits.uncompressed_limit(100) == 260
    assert limits.uncompressed_limit(10_000) == 1000
    assert LayerLimits(max_expansion_ratio=None, max_layer_size=None).uncompressed_limit(5) is None


# ---- through unpack: the API and the CLI -----------------------------------------------------------


def _image(tmp_path, mib: int) -> str:
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [tar_bytes([F("small", b"s")]), tar_bytes([F("big", b"\0" * (mib * MiB))])])
    return layout


def test_unpack_stops_at_the_limit_and_leaves_nothing(tmp_path) -> None:
    layout = _image(tmp_path, 8)
    limits = LayerLimits(expansion_allowance=1 * MiB, max_expansion_ratio=10)
    with pytest.raises(LayerLimitExceeded):
        unpack(f"oci:{layout}:t", str(tmp_path / "root"), UnpackOptions(limits=limits))
    assert sorted(os.listdir(tmp_path)) == ["layout"]
    unpack(f"oci:{layout}:t", str(tmp_path / "root"))          # the defaults take it
    assert (tmp_path / "root" / "big").stat().st_size == 8 * MiB


def test_cli_limit_flags(tmp_path, ocikit) -> None:
    layout = _image(tmp_path, 3)
    p = ocikit("unpack", "--max-layer-size", "2MiB", f"oci:{layout}:t", str(tmp_path / "r"), check=False)
    err = p.stderr.decode().strip()
    assert p.returncode == 1 and err.startswith("ocikit: error:") and len(err.splitlines()) == 1, err
    assert "layer size limit" in err
    assert sorted(os.listdir(tmp_path)) == ["layout"]
    p = ocikit("unpack", "--keep-partial", "--max-expansion-ratio", "1.5", "--max-layer-size", "2.5M",
               f"oci:{layout}:t", str(tmp_path / "r"), check=False)
    assert p.returncode == 1 and "left in" in p.stderr.decode()
    marker = json.loads((tmp_path / "r.partial" / MARKER).read_text())
    assert marker["status"] == "incomplete" and "limit" in marker["error"]
    for bad in ("lots", "-1", "5X"):
        p = ocikit("unpack", "--max-layer-size", bad, f"oci:{layout}:t", str(tmp_path / "q"), check=False)
        assert p.returncode == 2 and "size" in p.stderr.decode()
    ocikit("unpack", "--max-layer-size", "none", "--max-expansion-ratio", "0", f"oci:{layout}:t", str(tmp_path / "r"))
    assert (tmp_path / "r" / "big").stat().st_size == 3 * MiB and not (tmp_path / "r.partial").exists()


def test_limit_error_is_a_layer_error() -> None:
    assert issubclass(LayerLimitExceeded, LayerInvalid)

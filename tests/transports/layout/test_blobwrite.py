"""transports/layout/blobwrite: the checked path for blobs a writer hashes itself (staged_blob)."""

from __future__ import annotations

import os

import pytest

from ocikit.digest import Digest
from ocikit.durable import TMP_PREFIX
from ocikit.errors import SizeInvalid
from ocikit.transports.layout import OCILayout


def _temps(lay: OCILayout) -> list[str]:
    return [n for n in os.listdir(os.path.join(lay.path, "blobs", "sha256")) if n.startswith(TMP_PREFIX)]


def test_a_staged_blob_is_renamed_in_once_its_size_checks_out(tmp_path) -> None:
    lay = OCILayout(str(tmp_path / "lay"), create=True)
    data = os.urandom(10_000)
    with lay.staged_blob() as blob:
        assert os.path.basename(blob.path).startswith(TMP_PREFIX)
        with open(blob.path, "wb") as f:
            f.write(data)
        blob.commit(Digest.of(data), len(data))
    assert open(lay.blob_path(Digest.of(data)), "rb").read() == data and _temps(lay) == []


def test_a_staged_blob_of_the_wrong_size_never_appears(tmp_path) -> None:
    lay = OCILayout(str(tmp_path / "lay"), create=True)
    data = os.urandom(1000)
    with pytest.raises(SizeInvalid, match="is 1000 bytes, its writer counted 999"):
        with lay.staged_blob() as blob:
            with open(blob.path, "wb") as f:
                f.write(data)
            blob.commit(Digest.of(data), 999)
    assert not os.path.exists(lay.blob_path(Digest.of(data))) and _temps(lay) == []


def test_an_uncommitted_staged_blob_is_removed(tmp_path) -> None:
    lay = OCILayout(str(tmp_path / "lay"), create=True)
    with lay.staged_blob() as blob:
        with open(blob.path, "wb") as f:
            f.write(b"abandoned")
    with lay.staged_blob():
        pass   # never even created
    assert _temps(lay) == [] and os.listdir(os.path.join(lay.path, "blobs", "sha256")) == []

"""The server's storage as a Store: its traits follow the server's sparse-index setting."""

from __future__ import annotations

import pytest

from ocikit.content import SparseIndex
from ocikit.core.errors import Unsupported
from ocikit.ops.copy import CopyOptions, copy_between
from ocikit.core.platforms import parse_platform
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage
from ocikit.server.storage.repo_store import RepositoryStore
from ocikit.testing.images import write_index_async
from ocikit.transports.layout import OCILayout

SPARSE = CopyOptions(platforms=[parse_platform("linux/amd64")], preserve_index_digest=True)


@pytest.mark.parametrize("accept", [False, True])
async def test_a_sparse_index_goes_where_the_server_accepts_one_and_is_refused_before_any_blob_elsewhere(
        tmp_path, accept: bool) -> None:
    src = OCILayout(str(tmp_path / "src"), create=True)
    index = await write_index_async(src, "multi")
    storage = RegistryStorage(FilesystemDriver(str(tmp_path / "root"), fsync=False), accept_sparse_index=accept)
    dst = RepositoryStore(storage, "sparse/app")
    assert dst.traits.sparse_index is (SparseIndex.ACCEPTED if accept else SparseIndex.REFUSED)
    if not accept:
        with pytest.raises(Unsupported, match="refuses a sparse index"):
            await copy_between(src, "multi", dst, "v1", SPARSE)
        assert await storage.list_tags("sparse/app") is None  # nothing was written, not even a blob
        return
    result = await copy_between(src, "multi", dst, "v1", SPARSE)
    assert result.digest == index.digest and result.blobs_copied > 0
    assert (await dst.get_manifest("v1")).digest == index.digest

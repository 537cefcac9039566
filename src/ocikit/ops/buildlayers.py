"""The new layers of a build: a directory through the reproducible tar writer, a tarball as it is.

Each is written into the staging layout through the layout's checked path
(:meth:`~ocikit.transports.layout.OCILayout.staged_blob`): a temp file among its blobs, the
digest and size computed while writing, the size checked, then renamed in; on any failure
(a full disk raises :class:`~ocikit.errors.DiskFull`) nothing is left behind.
"""

from __future__ import annotations

import os

from .. import mediatypes as mt
from ..digest import CHUNK, Digest, Digester
from ..errors import LayerInvalid, UsageError
from ..layers.reader import open_layer_file
from ..layers.tarwriter import LayerResult, LayerSink, TarOptions, write_tree_layer
from ..transports.layout import OCILayout


def read_tarball(path: str) -> tuple[str | None, Digest, int, Digest, int]:
    """Read a tarball through the layer reader: (compression, digest, size, diff_id, tar size).

    Raises :class:`~ocikit.errors.LayerInvalid` when it is not a (compressed) tar archive.
    """
    try:
        with open_layer_file(path) as r:
            r.drain()
            assert r.digest is not None and r.diff_id is not None
            return r.compression, r.digest, r.compressed_size, r.diff_id, r.size
    except LayerInvalid as e:
        raise UsageError(f"{path}: not a layer tarball ({e})") from None


def layer_from_input(path: str, staging: OCILayout, compression: str, tar_options: TarOptions) -> LayerResult:
    """Write one input (a directory, or a tarball taken as it is) into ``staging`` as a layer blob."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file or directory")
    if not os.path.isdir(path) and not os.path.isfile(path):
        raise UsageError(f"{path}: not a directory or a tarball")
    with staging.staged_blob() as blob:
        if os.path.isdir(path):
            res = write_tree_layer(path, blob.path, compression, tar_options)
        else:
            res = _tarball_layer(path, blob.path, compression)
        blob.commit(res.digest, res.size)
        return res


def _tarball_layer(path: str, tmp: str, compression: str) -> LayerResult:
    """A tarball as a layer: compressed ones are kept byte for byte, a plain tar is compressed."""
    have, digest, size, diff_id, tar_size = read_tarball(path)
    if have is None:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            sink = LayerSink(out, compression)
            try:
                while chunk := src.read(CHUNK):
                    sink.write(chunk)
                digest, size, diff_id2, tar_size = sink.finish()
            except BaseException:
                sink.abort()
                raise
        if diff_id2 != diff_id:
            raise UsageError(f"{path}: changed while it was read")
        return LayerResult(sink.media_type, digest, size, diff_id, tar_size, 0)
    d = Digester()
    with open(path, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(CHUNK):
            d.update(chunk)
            out.write(chunk)
    if d.digest() != digest:
        raise UsageError(f"{path}: changed while it was read")
    media = mt.OCI_LAYER_GZIP if have == "gzip" else mt.OCI_LAYER_ZSTD
    return LayerResult(media, digest, size, diff_id, tar_size, 0)


__all__ = ["layer_from_input", "read_tarball"]

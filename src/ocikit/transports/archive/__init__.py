"""Archive transports: ``oci-archive:`` (a tar of an OCI layout) and ``docker-archive:`` (``docker save``).

Both read by indexing the tar once and serving members by offset, and write by staging
beside the target and publishing the whole tar atomically at ``close()``.
"""

from __future__ import annotations

from typing import Any

from ...core.transportref import TransportReference
from .docker import DockerArchiveReader, DockerArchiveWriter, open_docker_archive_path
from .oci import OCIArchiveReader, OCIArchiveWriter, open_oci_archive_path


def open_oci_archive(tref: TransportReference, opts: Any = None, *, write: bool = False
                     ) -> OCIArchiveReader | OCIArchiveWriter:
    """The Store for ``oci-archive:PATH[:REF]`` (``REF`` is resolved by the caller, like a layout tag)."""
    return open_oci_archive_path(tref.path, write=write)


def open_docker_archive(tref: TransportReference, opts: Any = None, *, write: bool = False
                        ) -> DockerArchiveReader | DockerArchiveWriter:
    """The Store for ``docker-archive:PATH[:NAME:TAG|:@N]``."""
    if write and tref.digest is not None:
        from ...core.errors import UsageError
        raise UsageError(f"{tref}: docker-archive does not support digest references")
    return open_docker_archive_path(tref.path, tref.reference, write=write)


__all__ = ["DockerArchiveReader", "DockerArchiveWriter", "OCIArchiveReader", "OCIArchiveWriter",
           "open_docker_archive", "open_oci_archive"]

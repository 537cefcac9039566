"""Choosing the storage driver a server configuration names (filesystem by default, or S3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import StorageDriver

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ServerConfig


def open_driver(config: "ServerConfig") -> StorageDriver:
    """The driver for ``config``; the S3 client library is imported only when S3 is configured."""
    if config.s3 is not None:
        from .s3 import S3Driver
        return S3Driver(config.s3)
    from .fs import FilesystemDriver
    return FilesystemDriver(config.root, fsync=config.fsync)

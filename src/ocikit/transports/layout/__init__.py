"""OCI image layouts on disk, split by concern as go-containerregistry splits ``pkg/v1/layout``:

``ocilayout`` (:class:`OCILayout`, the :class:`~ocikit.content.Store`), ``layoutdir`` (its
directory, lock and blob paths: the base the other modules take), ``indexfile``
(``oci-layout`` and ``index.json``), ``blobwrite`` (verified, atomic blob writes), ``link``
(hardlink/reflink from another layout), ``verified`` (verified-at-ingest records),
``layoutgc`` (reachability and garbage collection) and ``validate``. (File names are unique
across ``src/ocikit``, so a traceback names one place.) Durability itself (temp files, flushes, renames, locks, disk-full) is
:mod:`ocikit.durable`'s.
"""

from __future__ import annotations

from ...durable import TMP_PREFIX, atomic_write
from ...durable import lock as lock_directory
from .layoutgc import GcResult
from .indexfile import INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, check_layout_file, parse_index_file
from .ocilayout import OCILayout, open_layout
from .verified import VERIFIED_XATTR

__all__ = [
    "INDEX_FILE", "LAYOUT_FILE", "LAYOUT_VERSION", "TMP_PREFIX", "VERIFIED_XATTR",
    "GcResult", "OCILayout", "atomic_write", "check_layout_file", "lock_directory", "open_layout",
    "parse_index_file",
]

"""Layers: read layer blobs as tar members, plan whiteouts, unpack images into a rootfs or bundle.

- :mod:`.reader` — a layer blob as a verified stream of tar members (gzip/zstd/plain), over
  :mod:`.decompress` (the reading, hashing, decompressing thread), :mod:`.tarparse` (header
  fields and PAX records; pure) and :mod:`.blobsource` (a file or a Store's async chunks);
- :mod:`.limits` — the bounds on a layer's expansion and extended-header state;
- :mod:`.whiteout` — whiteout and opaque-directory semantics as pure planning;
- :mod:`.safepath` — resolving member paths inside a root without following symlinks out;
- :mod:`.unpacker` — :class:`Unpacker`, applying layers to a directory, with :mod:`.dirmeta`
  (directory metadata, last), :mod:`.rootless` (the ``user.rootlesscontainers`` xattr) and
  :mod:`.rmtree` (removing a tree without recursion or following symlinks);
- :mod:`.runtime_bundle` — the OCI runtime ``config.json`` converted from an image config.

The names are imported on first use (PEP 562), as in :mod:`ocikit`: importing one submodule
(``ocikit unpack`` without ``--bundle`` never needs :mod:`.runtime_bundle`) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports

# public name -> the submodule that defines it
_EXPORTS = {
    "DEFAULT_LIMITS": "limits", "LayerLimits": "limits",
    "resolve_user": "runtime_bundle", "runtime_config": "runtime_bundle",
    "LayerReader": "reader", "open_layer": "reader", "open_layer_chunks": "reader", "open_layer_file": "reader",
    "detect_compression": "decompress", "TarMember": "tarparse",
    "ROOTLESS_XATTR": "rootless",
    "SafeRoot": "safepath", "clean": "safepath",
    "Unpacker": "unpacker", "UnpackStats": "unpacker",
    "UpperSet": "whiteout", "Whiteout": "whiteout", "classify": "whiteout", "plan_removal": "whiteout",
}


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .decompress import detect_compression
    from .limits import DEFAULT_LIMITS, LayerLimits
    from .reader import LayerReader, open_layer, open_layer_chunks, open_layer_file
    from .rootless import ROOTLESS_XATTR
    from .runtime_bundle import resolve_user, runtime_config
    from .safepath import SafeRoot, clean
    from .tarparse import TarMember
    from .unpacker import Unpacker, UnpackStats
    from .whiteout import UpperSet, Whiteout, classify, plan_removal

__all__ = sorted(_EXPORTS)

"""Layers: read layer blobs as tar members, plan whiteouts, unpack images into a rootfs or bundle.

- :mod:`.reader` — a layer blob as a verified stream of tar members (gzip/zstd/plain);
- :mod:`.whiteout` — whiteout and opaque-directory semantics as pure planning;
- :mod:`.safepath` — resolving member paths inside a root without following symlinks out;
- :mod:`.unpack` — :class:`Unpacker`, applying layers to a directory;
- :mod:`.bundle` — the OCI runtime ``config.json`` converted from an image config.

The names are imported on first use (PEP 562), as in :mod:`ocikit`: importing one submodule
(``ocikit unpack`` without ``--bundle`` never needs :mod:`.bundle`) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports

# public name -> the submodule that defines it
_EXPORTS = {
    "resolve_user": "bundle", "runtime_config": "bundle",
    "LayerReader": "reader", "TarMember": "reader", "detect_compression": "reader", "open_layer": "reader",
    "open_layer_chunks": "reader", "open_layer_file": "reader",
    "SafeRoot": "safepath", "clean": "safepath",
    "ROOTLESS_XATTR": "unpack", "Unpacker": "unpack", "UnpackStats": "unpack",
    "UpperSet": "whiteout", "Whiteout": "whiteout", "classify": "whiteout", "plan_removal": "whiteout",
}


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .bundle import resolve_user, runtime_config
    from .reader import LayerReader, TarMember, detect_compression, open_layer, open_layer_chunks, open_layer_file
    from .safepath import SafeRoot, clean
    from .unpack import ROOTLESS_XATTR, Unpacker, UnpackStats
    from .whiteout import UpperSet, Whiteout, classify, plan_removal

__all__ = sorted(_EXPORTS)

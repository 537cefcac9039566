"""Layers: read layer blobs as tar members, plan whiteouts, unpack images into a rootfs or bundle.

- :mod:`.reader` — a layer blob as a verified stream of tar members (gzip/zstd/plain);
- :mod:`.whiteout` — whiteout and opaque-directory semantics as pure planning;
- :mod:`.safepath` — resolving member paths inside a root without following symlinks out;
- :mod:`.unpack` — :class:`Unpacker`, applying layers to a directory;
- :mod:`.bundle` — the OCI runtime ``config.json`` converted from an image config.
"""

from .bundle import resolve_user, runtime_config
from .reader import LayerReader, TarMember, detect_compression, open_layer, open_layer_chunks, open_layer_file
from .safepath import SafeRoot, clean
from .unpack import ROOTLESS_XATTR, Unpacker, UnpackStats
from .whiteout import UpperSet, Whiteout, classify, plan_removal

__all__ = [
    "LayerReader", "ROOTLESS_XATTR", "SafeRoot", "TarMember", "UnpackStats", "Unpacker", "UpperSet", "Whiteout",
    "classify", "clean", "detect_compression", "open_layer", "open_layer_chunks", "open_layer_file",
    "plan_removal", "resolve_user", "runtime_config",
]

"""ocikit: copy, mirror, inspect, unpack, build and serve OCI container images.

The public API is what this module exports; submodules hold the details. The names are
imported on first use (PEP 562), so ``import ocikit`` — and every ``ocikit`` command — pays
only for the parts it touches: ``ocikit unpack`` never loads the copy engine or aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports as _lazy_exports
from ._version import __version__

# public name -> the submodule that defines it
_EXPORTS = {
    "errors": "module:core.errors", "mediatypes": "module:core.mediatypes",
    "BlobLinker": "content", "LinkResult": "content", "Options": "content", "RawManifest": "content",
    "Store": "content", "StoreTraits": "content",
    "Digest": "core.digest", "Digester": "core.digest", "Verifier": "core.digest",
    "DigestMismatch": "core.errors", "OcikitError": "core.errors",
    "Descriptor": "model", "ImageConfig": "model", "ImageIndex": "model", "ImageManifest": "model",
    "parse_config": "model", "parse_manifest": "model",
    "CopyOptions": "ops.copy", "CopyResult": "ops.copy", "acopy": "ops.copy", "copy": "ops.copy",
    "Platform": "core.platforms", "host_platform": "core.platforms", "parse_platform": "core.platforms",
    "Reference": "core.reference", "parse_reference": "core.reference",
    "TransportReference": "core.transportref", "parse_transport_reference": "core.transportref",
    "OpenOptions": "transports", "open_store": "transports",
    "OCILayout": "transports.layout",
}


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from .core import errors, mediatypes
    from .content import BlobLinker, LinkResult, Options, RawManifest, Store, StoreTraits
    from .core.digest import Digest, Digester, Verifier
    from .core.errors import DigestMismatch, OcikitError
    from .model import Descriptor, ImageConfig, ImageIndex, ImageManifest, parse_config, parse_manifest
    from .ops.copy import CopyOptions, CopyResult, acopy, copy
    from .core.platforms import Platform, host_platform, parse_platform
    from .core.reference import Reference, parse_reference
    from .core.transportref import TransportReference, parse_transport_reference
    from .transports import OpenOptions, open_store
    from .transports.layout import OCILayout

__all__ = sorted(_EXPORTS) + ["__version__"]

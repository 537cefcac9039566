"""ocikit: copy, mirror, inspect, unpack, build and serve OCI container images.

The public API is what this module exports; submodules hold the details. The names are
imported on first use (PEP 562), so ``import ocikit`` — and every ``ocikit`` command — pays
only for the parts it touches: ``ocikit unpack`` never loads the copy engine or aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> the submodule that defines it
_EXPORTS = {
    "errors": "", "mediatypes": "",
    "BlobLinker": "content", "Options": "content", "RawManifest": "content", "Store": "content",
    "Digest": "digest", "Digester": "digest", "Verifier": "digest",
    "DigestMismatch": "errors", "OcikitError": "errors",
    "Descriptor": "model", "ImageConfig": "model", "ImageIndex": "model", "ImageManifest": "model",
    "parse_config": "model", "parse_manifest": "model",
    "CopyOptions": "ops.copy", "CopyResult": "ops.copy", "acopy": "ops.copy", "copy": "ops.copy",
    "Platform": "platforms", "host_platform": "platforms", "parse_platform": "platforms",
    "Reference": "reference", "parse_reference": "reference",
    "TransportReference": "transportref", "parse_transport_reference": "transportref",
    "OpenOptions": "transports", "open_store": "transports",
    "OCILayout": "transports.layout",
}


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is None:
        raise AttributeError(f"module 'ocikit' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{where or name}")
    value = module if not where else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import errors, mediatypes
    from .content import BlobLinker, Options, RawManifest, Store
    from .digest import Digest, Digester, Verifier
    from .errors import DigestMismatch, OcikitError
    from .model import Descriptor, ImageConfig, ImageIndex, ImageManifest, parse_config, parse_manifest
    from .ops.copy import CopyOptions, CopyResult, acopy, copy
    from .platforms import Platform, host_platform, parse_platform
    from .reference import Reference, parse_reference
    from .transportref import TransportReference, parse_transport_reference
    from .transports import OpenOptions, open_store
    from .transports.layout import OCILayout

__all__ = sorted(_EXPORTS) + ["__version__"]

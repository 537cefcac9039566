"""ocikit: copy, mirror, inspect, unpack, build and serve OCI container images.

The public API is what this module exports; submodules hold the details.
"""

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

from ._version import __version__

__all__ = [
    "BlobLinker", "CopyOptions", "CopyResult", "Descriptor", "Digest", "DigestMismatch", "Digester",
    "ImageConfig", "ImageIndex", "ImageManifest", "OCILayout", "OcikitError", "OpenOptions", "Options",
    "Platform", "RawManifest", "Reference", "Store", "TransportReference", "Verifier", "__version__",
    "acopy", "copy", "errors", "host_platform", "mediatypes", "open_store", "parse_config",
    "parse_manifest", "parse_platform", "parse_reference", "parse_transport_reference",
]

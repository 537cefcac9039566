"""The public API is what ``ocikit`` exports: pinned here, so a change to it is a decision."""

from __future__ import annotations

import inspect

import ocikit

EXPORTED = {
    "BlobLinker", "CopyOptions", "CopyResult", "Descriptor", "Digest", "DigestMismatch", "Digester",
    "ImageConfig", "ImageIndex", "ImageManifest", "LinkResult", "OCILayout", "OcikitError", "OpenOptions",
    "Options", "Platform", "RawManifest", "Reference", "Store", "StoreTraits", "TransportReference", "Verifier",
    "__version__",
    "acopy", "copy", "errors", "host_platform", "mediatypes", "open_store", "parse_config",
    "parse_manifest", "parse_platform", "parse_reference", "parse_transport_reference",
}


def test_exported_names_are_pinned() -> None:
    assert set(ocikit.__all__) == EXPORTED
    assert len(ocikit.__all__) == len(set(ocikit.__all__)), "duplicates in __all__"


def test_every_export_exists_and_is_documented() -> None:
    ns: dict[str, object] = {}
    exec("from ocikit import *", ns)
    for name in ocikit.__all__:
        assert name in ns, name
        obj = getattr(ocikit, name)
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
            assert inspect.getdoc(obj), f"ocikit.{name} has no docstring"


def test_version_is_a_string() -> None:
    assert isinstance(ocikit.__version__, str) and ocikit.__version__.count(".") >= 2

"""The descriptor a referrers list holds for a manifest (distribution spec, "Listing Referrers").

One rule for the server's referrers API, the client's tag-schema fallback index and a
layout's scan: ``mediaType``, ``digest`` and ``size`` of the manifest itself; its
``artifactType``, else (an image manifest) its config's media type; its ``annotations``.
"""

from __future__ import annotations

from ..digest import Digest
from .descriptor import Descriptor
from .manifest import ImageManifest, Manifest


def referrer_descriptor(manifest: Manifest, digest: Digest | None = None) -> Descriptor:
    """The referrers-list descriptor of ``manifest`` (``digest``: when already known, saves a hash)."""
    artifact_type = manifest.artifact_type
    if not artifact_type and isinstance(manifest, ImageManifest):
        artifact_type = manifest.config.media_type
    return Descriptor(manifest.media_type, digest if digest is not None else manifest.digest, manifest.size,
                      dict(manifest.annotations) if manifest.annotations else None,
                      artifact_type=artifact_type or None)


__all__ = ["referrer_descriptor"]

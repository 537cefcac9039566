"""The names a mirror bundle uses on disk: its files and its index.json annotations.

Shared by :mod:`ocikit.mirror.bundle` (writing and reading bundles) and
:mod:`ocikit.mirror.volumes` (tar volumes of a bundle); plain constants, no imports.
"""

METADATA_FILE = "ocikit-mirror.json"
"""Written last: a bundle without it is incomplete."""
CHECKSUM_FILE = "SHA256SUMS"
METADATA_SCHEMA = 1
A_SOURCE = "io.ocikit.mirror.source"
A_PATH = "io.ocikit.mirror.path"
A_TAG = "io.ocikit.mirror.tag"
A_MODE = "io.ocikit.mirror.mode"
A_PLATFORMS = "io.ocikit.mirror.platforms"
A_KIND = "io.ocikit.mirror.kind"
A_SUBJECT = "io.ocikit.mirror.subject"
A_SOURCE_DIGEST = "io.ocikit.mirror.source-digest"
BUNDLE_KEY = "bundle"


__all__ = ["A_KIND", "A_MODE", "A_PATH", "A_PLATFORMS", "A_SOURCE", "A_SOURCE_DIGEST", "A_SUBJECT", "A_TAG",
           "BUNDLE_KEY", "CHECKSUM_FILE", "METADATA_FILE", "METADATA_SCHEMA"]

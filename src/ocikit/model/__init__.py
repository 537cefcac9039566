"""The OCI data model: descriptors, manifests, indexes and configs, each with its raw bytes."""

from .image_config import ImageConfig, parse_config
from .descriptor import ANNOTATION_CREATED, ANNOTATION_REF_NAME, Descriptor
from .jsonutil import canonical_json
from .manifest import (
    ImageIndex,
    ImageManifest,
    Manifest,
    build_index,
    build_manifest,
    filter_index,
    parse_index,
    parse_manifest,
)

__all__ = [
    "ANNOTATION_CREATED", "ANNOTATION_REF_NAME", "Descriptor", "ImageConfig", "ImageIndex",
    "ImageManifest", "Manifest", "build_index", "build_manifest", "canonical_json", "filter_index",
    "parse_config", "parse_index", "parse_manifest",
]

"""Layers: read layer blobs as tar members, plan whiteouts, unpack images into a rootfs or bundle."""

from .reader import LayerReader, TarMember, detect_compression, open_layer, open_layer_chunks, open_layer_file

__all__ = ["LayerReader", "TarMember", "detect_compression", "open_layer", "open_layer_chunks", "open_layer_file"]

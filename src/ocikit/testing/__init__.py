"""Generators of images of a given shape, for tests, demos and benchmarks."""

from .images import FileEntry, LayerSpec, make_layer, write_image, write_index

__all__ = ["FileEntry", "LayerSpec", "make_layer", "write_image", "write_index"]

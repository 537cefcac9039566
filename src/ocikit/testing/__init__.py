"""Generators of images of a given shape, and an in-memory Store, for tests, demos and benchmarks."""

from .images import FileEntry, LayerSpec, make_layer, write_image, write_index
from .memory_store import LinkingMemoryStore, MemoryStore, ProbingMemoryStore, StagingMemoryStore

__all__ = ["FileEntry", "LayerSpec", "LinkingMemoryStore", "MemoryStore", "ProbingMemoryStore", "StagingMemoryStore",
           "make_layer", "write_image", "write_index"]

"""The plain data of a copy plan: :class:`Node`, :class:`Conversion`, :class:`CopyPlan`.

Their own module so that the options (:mod:`.copy_options`, whose hooks receive a plan) and the
planner (:mod:`.copy_plan`, which reads the options) both name them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..digest import Digest
from ..model import Descriptor, Manifest


@dataclass
class Node:
    """A manifest in the copy plan: its descriptor, raw bytes and parsed view."""

    desc: Descriptor
    raw: bytes
    manifest: Manifest


@dataclass(frozen=True)
class Conversion:
    """One manifest a format conversion (:func:`ocikit.ops.convert.convert_plan`) rewrote."""

    old: Descriptor
    new: Descriptor


@dataclass
class CopyPlan:
    """What a copy moves: :func:`plan_copy` makes it, the engine executes it."""

    root: Node
    source_root_digest: Digest
    manifests: list[Node]
    """Every manifest to write, children before parents, the root last."""
    blobs: dict[Digest, Descriptor]
    platforms: list[str]
    sparse: bool = False
    """The root is the source index kept byte-exact while only some children are copied."""
    conversions: list[Conversion] = field(default_factory=list)
    """Manifests ``--format`` rewrote (old and new descriptors), children first; empty without it."""


__all__ = ["Conversion", "CopyPlan", "Node"]

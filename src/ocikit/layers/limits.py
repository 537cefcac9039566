"""How much a layer may cost: the bounds a hostile layer cannot get past (see docs/security.md).

A 1 MiB gzip layer can expand to 1 GiB, a zstd one much further, and tar's extended headers
can pile up state for every later member. :class:`LayerLimits` bounds both; the defaults never
trip on a real image (real layers compress 2-10x, and a layer mostly made of zeros — a sparse
``lastlog`` — still fits the allowance). ``None`` turns a bound off.

- **expansion**: the uncompressed tar of one layer may be at most
  ``expansion_allowance + max_expansion_ratio x compressed size`` bytes (the compressed size is
  the descriptor's when known, else the bytes read so far), and never more than
  ``max_layer_size``;
- **PAX state**: one extended header (PAX ``x``/``g``, GNU long name/link) is at most
  ``max_extended_header`` bytes; the global PAX records (``g``), which apply to every later
  member, at most ``max_global_pax`` bytes and ``max_global_pax_records`` keywords in all.

Past a bound, reading stops with :class:`~ocikit.errors.LayerLimitExceeded`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LayerLimitExceeded

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class LayerLimits:
    """Bounds on one layer; see the module docstring. ``None``: no bound."""

    max_expansion_ratio: float | None = 100.0
    """Uncompressed bytes per compressed byte, beyond ``expansion_allowance``."""
    expansion_allowance: int = 512 * MiB
    """Uncompressed bytes any layer may have whatever its ratio."""
    max_layer_size: int | None = 64 * GiB
    """Uncompressed bytes of one layer (its tar stream), whatever its compressed size."""
    max_extended_header: int = 1 * MiB
    """Bytes of one PAX header or GNU long name/link record."""
    max_global_pax: int = 64 << 10
    """Bytes of the global PAX records in force (keywords and values)."""
    max_global_pax_records: int = 256
    """Keywords of the global PAX records in force."""

    def uncompressed_limit(self, compressed: int) -> int | None:
        """The most uncompressed bytes a layer of ``compressed`` bytes may have (``None``: no bound)."""
        limit = self.max_layer_size
        if self.max_expansion_ratio is not None:
            by_ratio = self.expansion_allowance + int(self.max_expansion_ratio * compressed)
            limit = by_ratio if limit is None else min(limit, by_ratio)
        return limit

    def check_expansion(self, uncompressed: int, compressed: int, what: str) -> None:
        """Raise :class:`LayerLimitExceeded` if ``uncompressed`` bytes from ``compressed`` is too much."""
        if self.max_layer_size is not None and uncompressed > self.max_layer_size:
            raise LayerLimitExceeded(
                f"{what}: more than {self.max_layer_size} bytes uncompressed (the layer size limit; "
                f"raise it with --max-layer-size)", limit="max_layer_size", value=uncompressed)
        if self.max_expansion_ratio is not None and \
                uncompressed > self.expansion_allowance + self.max_expansion_ratio * compressed:
            raise LayerLimitExceeded(
                f"{what}: {compressed} compressed bytes expand to more than {uncompressed} bytes, past the "
                f"limit of {self.expansion_allowance} bytes + {self.max_expansion_ratio:g}x (a decompression "
                f"bomb? raise it with --max-expansion-ratio)", limit="max_expansion_ratio", value=uncompressed)


DEFAULT_LIMITS = LayerLimits()


__all__ = ["DEFAULT_LIMITS", "LayerLimits"]

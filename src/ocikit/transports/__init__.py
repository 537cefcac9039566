"""Where content lives. ``open_store`` turns a transport reference into a Store."""

from __future__ import annotations

from ..content import Store
from ..core.errors import UsageError
from ..core.transportref import TransportReference, parse_transport_reference
from .layout import OCILayout
from .open_options import OpenOptions


def open_store(ref: TransportReference | str, *, write: bool = False,
               options: OpenOptions | None = None) -> Store:
    """Open the Store a transport reference names; ``write`` creates local places as needed."""
    tref = parse_transport_reference(ref) if isinstance(ref, str) else ref
    opts = options or OpenOptions()
    if tref.transport == "oci":
        return OCILayout(tref.path, create=write)
    if tref.transport == "docker":
        from .registry import open_repository
        return open_repository(tref, opts, write=write)
    if tref.transport == "oci-archive":
        from .archive import open_oci_archive
        return open_oci_archive(tref, opts, write=write)
    if tref.transport == "docker-archive":
        from .archive import open_docker_archive
        return open_docker_archive(tref, opts, write=write)
    raise UsageError(f"unknown transport {tref.transport!r}")


def target_tag(tref: TransportReference) -> str | None:
    """The tag a copy writes at a target reference (None: untagged)."""
    if tref.transport == "docker":
        assert tref.image is not None
        return tref.image.tag if not tref.image.digest else None
    return tref.reference


__all__ = ["OCILayout", "OpenOptions", "open_store", "target_tag"]

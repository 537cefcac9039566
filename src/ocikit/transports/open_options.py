"""How to reach a place: :class:`OpenOptions`, the one options type every transport opener takes.

Its own module so that the transports (``registry``, ``archive``) and ``transports/__init__``
can all import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

UploadMode = Literal["auto", "monolithic", "streamed", "chunked"]


@dataclass(frozen=True)
class OpenOptions:
    """Credentials, TLS, retries and upload behaviour. Fields a place has no use for are ignored."""

    creds: tuple[str, str] | None = None
    tls_verify: bool = True
    cert_dir: str | None = None
    auth_file: str | None = None
    retry_times: int = 3
    upload_mode: UploadMode = "auto"
    """Registry uploads: ``auto`` picks per blob; the others force one of the spec's workflows."""
    chunk_size: int = 16 << 20
    """Registry uploads in ``chunked`` mode: bytes per PATCH."""


__all__ = ["OpenOptions", "UploadMode"]

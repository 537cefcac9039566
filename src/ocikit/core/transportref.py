"""Transport references in skopeo's syntax: where an image lives and which one it is.

``docker://REF``, ``oci:PATH[:TAG|@DIGEST]``, ``oci-archive:PATH[:REF]``,
``docker-archive:PATH[:REF]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .digest import Digest, is_digest
from .errors import InvalidReference
from .reference import Reference, parse_reference

TRANSPORTS = ("docker", "oci", "oci-archive", "docker-archive")


@dataclass(frozen=True)
class TransportReference:
    """A parsed transport reference.

    ``docker`` transports carry ``image`` (a :class:`Reference`); the others carry ``path`` and
    an optional ``reference`` (a tag, a ``ref.name``, a docker reference for docker-archive) or
    ``digest``.
    """

    transport: str
    path: str = ""
    reference: str | None = None
    digest: Digest | None = None
    image: Reference | None = None

    @property
    def is_local(self) -> bool:
        return self.transport != "docker"

    @property
    def selector(self) -> str | None:
        """What to resolve inside the store: the digest if any, else the tag/reference."""
        if self.image is not None:
            return str(self.image.digest) if self.image.digest else (self.image.tag or "latest")
        return str(self.digest) if self.digest else self.reference

    def __str__(self) -> str:
        if self.transport == "docker":
            return f"docker://{self.image}"
        s = f"{self.transport}:{self.path}"
        if self.reference:
            s += f":{self.reference}"
        if self.digest:
            s += f"@{self.digest}"
        return s


def parse_transport_reference(text: str, *, default_transport: str | None = None) -> TransportReference:
    """Parse ``transport:details``. With ``default_transport="docker"``, a bare ``host/repo:tag`` works."""
    if not text:
        raise InvalidReference("invalid image location: empty")
    transport, sep, rest = text.partition(":")
    if transport == "docker" and rest.startswith("//"):
        image = parse_reference(rest[2:], default_tag="latest")
        return TransportReference("docker", image=image)
    if transport == "docker":
        raise InvalidReference(f"invalid image location {text!r}: docker transport needs docker://")
    if sep and transport in TRANSPORTS:
        return _parse_local(transport, rest, text)
    if default_transport == "docker":
        return TransportReference("docker", image=parse_reference(text, default_tag="latest"))
    raise InvalidReference(
        f"invalid image location {text!r}: expected one of docker://REF, oci:PATH[:TAG], "
        "oci-archive:PATH[:REF], docker-archive:PATH[:REF]")


def _parse_local(transport: str, rest: str, text: str) -> TransportReference:
    if not rest:
        raise InvalidReference(f"invalid image location {text!r}: empty path")
    path, at, dig = rest.rpartition("@")
    if at and is_digest(dig):
        if path.endswith(":"):
            path = path[:-1]
        if not path:
            raise InvalidReference(f"invalid image location {text!r}: empty path")
        if ":" in path:
            raise InvalidReference(f"invalid image location {text!r}: give :TAG or @DIGEST, not both")
        return TransportReference(transport, path=path, digest=Digest(dig))
    if at and dig.startswith(("sha256:", "sha512:")):
        raise InvalidReference(f"invalid image location {text!r}: bad digest {dig!r}")
    path, colon, ref = rest.partition(":")
    if not path:
        raise InvalidReference(f"invalid image location {text!r}: empty path")
    if colon and not ref:
        raise InvalidReference(f"invalid image location {text!r}: empty reference after ':'")
    if ref and transport == "docker-archive":
        if not ref.startswith("@"):
            parse_reference(ref)  # checked; kept as written
        elif not ref[1:].isdigit():
            raise InvalidReference(f"invalid image location {text!r}: @N needs a number")
    elif ref:
        bad = [c for c in ref if not (c.isalnum() or c in "._-:/@")]
        if bad:
            raise InvalidReference(f"invalid image location {text!r}: bad character {bad[0]!r} in reference")
    return TransportReference(transport, path=path, reference=ref or None)

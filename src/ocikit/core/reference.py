"""Image references: the docker reference grammar ``[host[:port]/]path[:tag][@digest]``.

Pure functions over strings; every kind of bad input raises :class:`InvalidReference`
with a message saying precisely what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .digest import Digest
from .errors import DigestInvalid, InvalidReference, NameInvalid

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
NAME_TOTAL_MAX = 255
TAG_MAX = 128

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST_RE = re.compile(rf"^(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?$")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_PATH_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
_ANCHORED_HEX_RE = re.compile(r"^[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
# the Distribution spec's repository name pattern (what a registry accepts in a URL)
REPOSITORY_NAME_RE = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")


def validate_tag(tag: str) -> str:
    if not tag:
        raise InvalidReference("invalid reference format: empty tag")
    if len(tag) > TAG_MAX:
        raise InvalidReference(f"invalid tag {tag[:40]!r}...: longer than {TAG_MAX} characters")
    if not _TAG_RE.match(tag):
        raise InvalidReference(f"invalid tag {tag!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]*")
    return tag


def validate_repository_name(name: str) -> str:
    """Check a repository name (no host) against the Distribution spec's pattern."""
    if not name:
        raise NameInvalid("invalid repository name: empty")
    if len(name) > NAME_TOTAL_MAX:
        raise NameInvalid(f"invalid repository name: longer than {NAME_TOTAL_MAX} characters")
    if not REPOSITORY_NAME_RE.match(name):
        raise NameInvalid(f"invalid repository name {name!r}")
    return name


def validate_host(host: str) -> str:
    if not _HOST_RE.match(host):
        raise InvalidReference(f"invalid registry host {host!r}")
    port = host.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in host.rsplit("]", 1)[-1] else None
    if port is not None and not (0 < int(port) < 65536):
        raise InvalidReference(f"invalid registry host {host!r}: port out of range")
    return host


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    ``domain`` is the registry host (``docker.io`` when none was given), ``path`` the
    repository inside it (``library/`` added for official docker.io images). At least one of
    ``tag`` and ``digest`` may be ``None`` (both ``None`` means "latest" to a puller).
    """

    domain: str
    path: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``domain/path``, the fully qualified repository name."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        return self.path

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/`` in a registry URL: the digest if any, else the tag."""
        return str(self.digest) if self.digest else (self.tag or "latest")

    def with_tag(self, tag: str | None) -> "Reference":
        return Reference(self.domain, self.path, validate_tag(tag) if tag else None, None)

    def with_digest(self, digest: str | None) -> "Reference":
        return Reference(self.domain, self.path, self.tag, Digest(digest) if digest else None)

    def familiar(self) -> str:
        """The short form people type: ``nginx:1.25`` for ``docker.io/library/nginx:1.25``."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            short = self.path[len(OFFICIAL_PREFIX):]
            # library/a/b stays whole: "a/b" would name docker.io/a/b
            name = short if self.path.startswith(OFFICIAL_PREFIX) and "/" not in short else self.path
        return name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def split_domain(name: str) -> tuple[str, str]:
    """Split a repository name into (domain, path) the way docker does."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and not first.startswith("[") and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse_reference(text: str, *, default_tag: str | None = None) -> Reference:
    """Parse and normalise ``[host[:port]/]path[:tag][@digest]``.

    ``default_tag`` is filled in when neither a tag nor a digest is given.
    """
    if not isinstance(text, str):
        raise InvalidReference(f"invalid reference {text!r}: not a string")
    if not text:
        raise InvalidReference("invalid reference format: empty reference")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(f"invalid reference format {text!r}: contains white space")
    rest, at, dig = text.partition("@")
    digest: Digest | None = None
    if at:
        if not dig:
            raise InvalidReference(f"invalid reference format {text!r}: empty digest after '@'")
        try:
            digest = Digest(dig)
        except DigestInvalid as e:
            raise InvalidReference(f"invalid reference {text!r}: {e}") from None
    # the tag is after the last ':' that follows the last '/' (and the ']' of an IPv6 host)
    tag: str | None = None
    slash = max(rest.rfind("/"), rest.rfind("]"))
    colon = rest.rfind(":")
    name = rest
    if colon > slash:
        name, tag = rest[:colon], rest[colon + 1:]
        if not tag:
            raise InvalidReference(f"invalid reference format {text!r}: empty tag after ':'")
        validate_tag(tag)
    if not name:
        raise InvalidReference(f"invalid reference format {text!r}: repository name must have at least one component")
    first, sep, remainder = name.partition("/")
    if not sep and first.startswith("["):
        raise InvalidReference(f"invalid reference format {text!r}: registry host {first!r} without a repository")
    has_domain = bool(sep) and ("." in first or ":" in first or first == "localhost" or first.startswith("[")
                                or first.lower() != first)
    path_part = remainder if has_domain else name
    if has_domain:
        validate_host(first)
    if not path_part:
        raise InvalidReference(f"invalid reference format {text!r}: repository name must have at least one component")
    if path_part.lower() != path_part and not _PATH_RE.match(path_part):
        if _PATH_RE.match(path_part.lower()):
            raise InvalidReference(f"invalid reference format {text!r}: repository name must be lowercase")
    for comp in path_part.split("/"):
        if not comp:
            raise InvalidReference(f"invalid reference format {text!r}: empty path component")
        if not _PATH_COMPONENT_RE.match(comp):
            raise InvalidReference(f"invalid reference format {text!r}: bad path component {comp!r}")
    if len(name) > NAME_TOTAL_MAX:
        raise InvalidReference(f"invalid reference format {text[:60]!r}...: repository name longer than {NAME_TOTAL_MAX} characters")
    if not has_domain and _ANCHORED_HEX_RE.match(name):
        raise InvalidReference(
            f"invalid reference format {text!r}: a repository name cannot be a 64-character hex string (an image ID)")
    domain, path = split_domain(name)
    if tag is None and digest is None and default_tag:
        tag = default_tag
    return Reference(domain, path, tag, digest)

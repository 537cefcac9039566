"""Platforms: ``os/arch[/variant]`` parsing, normalisation and matching against index entries."""

from __future__ import annotations

import platform as _stdlib_platform
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .errors import InvalidPlatform, PlatformNotFound

_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None), "x86-64": ("amd64", None), "amd64": ("amd64", None),
    "i386": ("386", None), "i486": ("386", None), "i586": ("386", None), "i686": ("386", None),
    "386": ("386", None), "x86": ("386", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None), "armv8": ("arm64", None), "armv8l": ("arm", "v8"),
    "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "arm": ("arm", None),
    "armv7": ("arm", "v7"), "armv7l": ("arm", "v7"), "armv6": ("arm", "v6"), "armv6l": ("arm", "v6"),
    "armv5": ("arm", "v5"), "armv5l": ("arm", "v5"), "armv5tel": ("arm", "v5"),
    "ppc64le": ("ppc64le", None), "ppc64el": ("ppc64le", None), "powerpc64le": ("ppc64le", None),
    "ppc64": ("ppc64", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
    "mips64le": ("mips64le", None), "mips64": ("mips64", None), "mipsle": ("mipsle", None),
    "mips": ("mips", None), "loong64": ("loong64", None), "loongarch64": ("loong64", None),
    "wasm": ("wasm", None),
}
_OS_ALIASES = {"macos": "darwin", "osx": "darwin"}
# a variant that an arch gets when none is written
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_ARM_FALLBACK = {"v8": ["v8", "v7", "v6", "v5"], "v7": ["v7", "v6", "v5"], "v6": ["v6", "v5"], "v5": ["v5"]}


@dataclass(frozen=True)
class Platform:
    """An image platform as the image-spec's index describes it."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = field(default=())

    def normalized(self) -> "Platform":
        arch, variant = normalize_arch(self.architecture, self.variant)
        return Platform(_OS_ALIASES.get(self.os.lower(), self.os.lower()), arch, variant,
                        self.os_version, tuple(self.os_features))

    def __str__(self) -> str:
        s = f"{self.os}/{self.architecture}"
        return s + f"/{self.variant}" if self.variant else s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            d["os.version"] = self.os_version
        if self.os_features:
            d["os.features"] = list(self.os_features)
        if self.variant:
            d["variant"] = self.variant
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Platform":
        return cls(os=str(d.get("os", "")), architecture=str(d.get("architecture", "")),
                   variant=d.get("variant") or None, os_version=d.get("os.version") or None,
                   os_features=tuple(d.get("os.features") or ()))


def normalize_arch(arch: str, variant: str | None = None) -> tuple[str, str | None]:
    a = arch.lower()
    canonical, implied = _ARCH_ALIASES.get(a, (a, None))
    v = (variant or "").lower() or implied
    if canonical == "arm64" and v in ("8", "v8", None):
        v = "v8"
    if canonical == "arm" and v and not v.startswith("v"):
        v = "v" + v
    return canonical, v


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (or a bare ``arch``, meaning linux)."""
    if not text or not text.strip():
        raise InvalidPlatform("invalid platform: empty")
    parts = text.strip().split("/")
    if len(parts) == 1:
        os_, arch, variant = "linux", parts[0], None
    elif len(parts) == 2:
        os_, arch, variant = parts[0], parts[1], None
    elif len(parts) == 3:
        os_, arch, variant = parts
    else:
        raise InvalidPlatform(f"invalid platform {text!r}: expected os/arch[/variant]")
    if not os_ or not arch or variant == "":
        raise InvalidPlatform(f"invalid platform {text!r}: empty component")
    for part in (os_, arch, variant or "x"):
        if not all(c.isalnum() or c in "._-" for c in part):
            raise InvalidPlatform(f"invalid platform {text!r}: bad character in {part!r}")
    return Platform(os_, arch, variant).normalized()


def host_platform() -> Platform:
    """The platform this process runs on."""
    os_ = {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(sys.platform, sys.platform)
    return Platform(os_, _stdlib_platform.machine() or "amd64").normalized()


def matches(want: Platform, have: Platform) -> bool:
    """Does an index entry's platform ``have`` satisfy ``want`` exactly (after normalisation)?

    The variant must agree (arm64 without one counts as v8); ``os.version`` must agree when
    ``want`` names one; ``want``'s ``os.features`` must all be in ``have``'s.
    """
    w, h = want.normalized(), have.normalized()
    if w.os != h.os or w.architecture != h.architecture:
        return False
    if w.variant and h.variant and w.variant != h.variant:
        return False
    if w.variant and not h.variant and _DEFAULT_VARIANT.get(h.architecture) not in (None, w.variant):
        return False
    if w.os_version and not _os_version_matches(w.os_version, h.os_version):
        return False
    return set(w.os_features) <= set(h.os_features)


def _os_version_matches(want: str, have: str | None) -> bool:
    """``10.0.17763`` matches ``10.0.17763`` and ``10.0.17763.5329`` (a Windows build and its revisions)."""
    return have is not None and (have == want or have.startswith(want + "."))


def image_for(want: Platform | None, candidates: Sequence[Platform | None], index: str) -> int:
    """Index of the image of ``index`` (its digest, for the message) to take for ``want`` (default:
    this host), by :func:`best_match`; :class:`PlatformNotFound` naming what it has otherwise."""
    want = want or host_platform()
    i = best_match(want, candidates)
    if i is None:
        have = ", ".join(str(p) for p in candidates if p) or "none"
        raise PlatformNotFound(f"no image for {want} in index {index} (it has {have})")
    return i


def best_match(want: Platform, candidates: Sequence[Platform | None]) -> int | None:
    """Index of the candidate that best satisfies ``want``, or None.

    A candidate with exactly the wanted variant wins over one that merely matches (an
    ``amd64`` host prefers the plain ``amd64`` entry to an ``amd64/v3`` one); for arm, an older
    variant the CPU can run (v7 on a v8 CPU) is the fallback, newest first.
    """
    w = want.normalized()
    loose: int | None = None
    for i, c in enumerate(candidates):
        if c is not None and matches(w, c):
            if c.normalized().variant == w.variant:
                return i
            if loose is None:
                loose = i
    if loose is not None:
        return loose
    if w.architecture == "arm" and w.variant in _ARM_FALLBACK:
        for v in _ARM_FALLBACK[w.variant][1:]:
            for i, c in enumerate(candidates):
                if c is not None and matches(Platform(w.os, "arm", v, w.os_version, w.os_features), c):
                    return i
    return None


def select(wanted: Iterable[Platform], candidates: Sequence[Platform | None]) -> list[int]:
    """Indexes of candidates for each wanted platform, in candidate order, no duplicates."""
    chosen: set[int] = set()
    for w in wanted:
        for i, c in enumerate(candidates):
            if c is not None and matches(w, c):
                chosen.add(i)
    return sorted(chosen)

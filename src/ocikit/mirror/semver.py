"""Versions in tags and version ranges, for selecting tags by ``semver:`` and ``newest:``.

Tags such as ``1.25.3``, ``v2.4``, ``2.4.48-alpine`` parse as versions (missing minor/patch
count as 0; a ``-suffix`` is a pre-release, ordered before the release). Ranges are
comparators joined by spaces or commas (all must hold) and alternatives joined by ``||``:
``>=1.2 <2``, ``^1.4``, ``~2.4``, ``1.x``, ``=1.2.3``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_VERSION_RE = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+_]([0-9A-Za-z.-]+))?$")
_COMPARATOR_RE = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*v?(\d+|x|\*)(?:\.(\d+|x|\*))?(?:\.(\d+|x|\*))?"
                            r"(?:-([0-9A-Za-z.-]+))?$")


def _pre_key(pre: str | None) -> tuple:
    # a release sorts after every pre-release of the same version
    if pre is None:
        return (1,)
    parts: list[tuple[int, int | str]] = []
    for p in pre.split("."):
        parts.append((0, int(p)) if p.isdigit() else (1, p))
    return (0, tuple(parts))


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str | None = None

    def _key(self) -> tuple:
        return (self.major, self.minor, self.patch, _pre_key(self.pre))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def parse_version(tag: str) -> Version | None:
    """The version a tag spells, or None."""
    m = _VERSION_RE.match(tag)
    if not m:
        return None
    major, minor, patch, pre = m.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), pre)


@dataclass(frozen=True)
class Comparator:
    op: str
    version: Version

    def holds(self, v: Version) -> bool:
        if self.op == ">=":
            return v >= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == "<":
            return v < self.version
        return v == self.version


@dataclass(frozen=True)
class SemverRange:
    """Alternatives (``||``), each a conjunction of comparators."""

    alternatives: tuple[tuple[Comparator, ...], ...]
    text: str = ""

    def contains(self, v: Version) -> bool:
        return any(all(c.holds(v) for c in alt) for alt in self.alternatives)

    def __str__(self) -> str:
        return self.text


def _expand(term: str) -> list[Comparator]:
    m = _COMPARATOR_RE.match(term)
    if not m:
        raise ValueError(f"bad version comparator {term!r}")
    op, a, b, c, pre = m.groups()
    wild = [x is None or x in ("x", "*") for x in (a, b, c)]
    nums = [0 if w else int(x) for w, x in zip(wild, (a, b, c))]  # type: ignore[arg-type]
    base = Version(nums[0], nums[1], nums[2], pre)
    if wild[0]:
        if op not in (None, "="):
            raise ValueError(f"bad version comparator {term!r}")
        return []
    if op == "^":
        if nums[0] > 0 or wild[1]:
            upper = Version(nums[0] + 1, 0, 0, "0")
        elif nums[1] > 0 or wild[2]:
            upper = Version(0, nums[1] + 1, 0, "0")
        else:
            upper = Version(0, 0, nums[2] + 1, "0")
        return [Comparator(">=", base), Comparator("<", upper)]
    if op == "~":
        upper = Version(nums[0] + 1, 0, 0, "0") if wild[1] else Version(nums[0], nums[1] + 1, 0, "0")
        return [Comparator(">=", base), Comparator("<", upper)]
    if op in (None, "=") and (wild[1] or wild[2]):
        # 1.x / 1.2.x / bare 1 / 1.2: a range
        upper = Version(nums[0] + 1, 0, 0, "0") if wild[1] else Version(nums[0], nums[1] + 1, 0, "0")
        return [Comparator(">=", Version(nums[0], nums[1], 0, "0" if not pre else pre)), Comparator("<", upper)]
    if op == "<" and pre is None:
        return [Comparator("<", Version(nums[0], nums[1], nums[2], "0"))]  # <2 excludes 2.0.0-rc1
    return [Comparator(op or "=", base)]


def parse_range(text: str) -> SemverRange:
    """Parse a range; raises ValueError naming the bad part."""
    if not text or not text.strip():
        raise ValueError("empty version range")
    alts: list[tuple[Comparator, ...]] = []
    for alt in text.split("||"):
        terms = [t for t in re.split(r"[\s,]+", re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", alt.strip())) if t]
        if not terms:
            raise ValueError(f"empty alternative in version range {text!r}")
        comps: list[Comparator] = []
        for t in terms:
            comps.extend(_expand(t))
        alts.append(tuple(comps))
    return SemverRange(tuple(alts), text.strip())


__all__ = ["Comparator", "SemverRange", "Version", "parse_range", "parse_version"]

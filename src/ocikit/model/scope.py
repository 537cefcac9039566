"""Token scopes (distribution's token-scope grammar), for the registry client and the server alike.

A scope is ``type:name:actions`` — ``repository:library/alpine:pull,push``,
``registry:catalog:*``. The name may itself hold ``:`` (``repository:host:5000/a:pull``), so
the type is what comes before the first colon and the actions what comes after the last.
Actions print sorted, so equal scopes print equally. Pure functions over strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..errors import ScopeInvalid

REPOSITORY = "repository"
CATALOG = "registry:catalog:*"
"""The scope of ``GET /v2/_catalog``."""


@dataclass(frozen=True, order=True)
class Scope:
    """A token scope: ``repository:NAME:pull,push`` (type, resource name, actions)."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def covers(self, other: "Scope") -> bool:
        return self.type == other.type and self.name == other.name and other.actions <= self.actions


def parse_scope(text: str) -> Scope:
    """Parse ``type:name:actions``; :class:`~ocikit.errors.ScopeInvalid` when it is not one."""
    if not isinstance(text, str):
        raise ScopeInvalid(f"invalid scope {text!r}: expected a string")
    typ, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not typ or not name:
        raise ScopeInvalid(f"invalid scope {text!r}: expected type:name:actions")
    return Scope(typ, name, frozenset(a for a in actions.split(",") if a))


def repository_scope(repository: str, *actions: str) -> Scope:
    """``repository:NAME:ACTIONS`` (``pull`` when no action is given)."""
    return Scope(REPOSITORY, repository, frozenset(actions or ("pull",)))


def merge_scopes(scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """Merge scopes on the same resource (actions united); sorted, so equal sets compare equal."""
    merged: dict[tuple[str, str], set[str]] = {}
    for sc in scopes:
        merged.setdefault((sc.type, sc.name), set()).update(sc.actions)
    return tuple(sorted(Scope(t, n, frozenset(a)) for (t, n), a in merged.items()))


def covers_all(have: Iterable[Scope], need: Iterable[Scope]) -> bool:
    """Does every scope in ``need`` fall within one of ``have``?"""
    have = list(have)
    return all(any(h.covers(n) for h in have) for n in need)


__all__ = ["CATALOG", "REPOSITORY", "Scope", "covers_all", "merge_scopes", "parse_scope", "repository_scope"]

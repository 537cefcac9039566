"""signedIdentity: does the identity a signature claims fit the image being checked?

containers-policy.json(5)'s rules, pure functions over references:

- ``matchExact``: the image is named by a tag and the signature names exactly that.
- ``matchRepoDigestOrExact`` (the default): an image named by digest needs the same repository;
  one named by tag needs the exact reference.
- ``matchRepository``: the same repository, whatever the tag.
- ``exactReference`` ``{dockerReference}``: the signature names exactly that reference.
- ``exactRepository`` ``{dockerRepository}``: the signature names that repository.
- ``remapIdentity`` ``{prefix, signedPrefix}``: an image whose name starts with ``prefix`` is
  checked as if it started with ``signedPrefix`` (a mirror), then as ``matchRepoDigestOrExact``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import InvalidReference, PolicyInvalid
from ..reference import Reference, parse_reference

TYPES = ("matchExact", "matchRepoDigestOrExact", "matchRepository", "exactReference", "exactRepository",
         "remapIdentity")


@dataclass(frozen=True)
class IdentityRule:
    type: str = "matchRepoDigestOrExact"
    docker_reference: str | None = None
    docker_repository: str | None = None
    prefix: str | None = None
    signed_prefix: str | None = None


DEFAULT_RULE = IdentityRule()


def parse_rule(obj: Any, where: str) -> IdentityRule:
    """Parse a ``signedIdentity`` object; :class:`PolicyInvalid` naming ``where`` if it is wrong."""
    if obj is None:
        return DEFAULT_RULE
    if not isinstance(obj, Mapping) or obj.get("type") not in TYPES:
        kind = obj.get("type") if isinstance(obj, Mapping) else obj
        raise PolicyInvalid(f"{where}: unknown signedIdentity type {kind!r}")
    t = obj["type"]
    need = {"exactReference": ("dockerReference",), "exactRepository": ("dockerRepository",),
            "remapIdentity": ("prefix", "signedPrefix")}.get(t, ())
    allowed = {"type", *need}
    extra = set(obj) - allowed
    if extra:
        raise PolicyInvalid(f"{where}: signedIdentity {t} has unknown fields {sorted(extra)}")
    for k in need:
        if not isinstance(obj.get(k), str) or not obj[k]:
            raise PolicyInvalid(f"{where}: signedIdentity {t} needs {k}")
    if t == "exactReference":
        ref = _parse(obj["dockerReference"], where)
        if ref.tag is None and ref.digest is None:
            raise PolicyInvalid(f"{where}: exactReference {obj['dockerReference']!r} names no tag or digest")
    if t == "exactRepository":
        _parse(obj["dockerRepository"], where)
    return IdentityRule(t, obj.get("dockerReference"), obj.get("dockerRepository"), obj.get("prefix"),
                        obj.get("signedPrefix"))


def _parse(text: str, where: str) -> Reference:
    try:
        return parse_reference(text)
    except InvalidReference as e:
        raise PolicyInvalid(f"{where}: {e}") from None


def _exact(a: Reference, b: Reference) -> bool:
    return a.name == b.name and a.tag == b.tag and a.digest == b.digest


def _repo_digest_or_exact(image: Reference, signed: Reference) -> bool:
    if image.digest is not None:
        return image.name == signed.name
    if image.tag is not None:
        return _exact(image, signed)
    return False


def remap(image: Reference, prefix: str, signed_prefix: str) -> Reference:
    """``image`` with ``prefix`` replaced by ``signed_prefix`` if its name starts with it (whole components)."""
    name = image.name
    if name == prefix or name.startswith(prefix.rstrip("/") + "/"):
        new = signed_prefix.rstrip("/") + name[len(prefix.rstrip("/")):]
        text = new + (f":{image.tag}" if image.tag else "") + (f"@{image.digest}" if image.digest else "")
        return parse_reference(text)
    return image


def matches(rule: IdentityRule, image: Reference | None, signed_identity: str) -> str | None:
    """None when the signature's identity fits; otherwise the reason it does not."""
    try:
        signed = parse_reference(signed_identity)
    except InvalidReference as e:
        return f"the signature's identity {signed_identity!r} is not a reference ({e})"
    t = rule.type
    if t == "exactReference":
        assert rule.docker_reference is not None
        ok = _exact(parse_reference(rule.docker_reference), signed)
        return None if ok else f"signed for {signed}, the policy wants exactly {rule.docker_reference}"
    if t == "exactRepository":
        assert rule.docker_repository is not None
        ok = parse_reference(rule.docker_repository).name == signed.name
        return None if ok else f"signed for {signed.name}, the policy wants repository {rule.docker_repository}"
    if image is None:
        return f"{t}: the image has no docker reference to match {signed} against"
    if t == "remapIdentity":
        assert rule.prefix is not None and rule.signed_prefix is not None
        image = remap(image, rule.prefix, rule.signed_prefix)
        t = "matchRepoDigestOrExact"
    if t == "matchExact":
        ok = image.digest is None and image.tag is not None and _exact(image, signed)
    elif t == "matchRepository":
        ok = image.name == signed.name
    else:
        ok = _repo_digest_or_exact(image, signed)
    return None if ok else f"signed for {signed}, not {image} ({rule.type})"


__all__ = ["DEFAULT_RULE", "IdentityRule", "TYPES", "matches", "parse_rule", "remap"]

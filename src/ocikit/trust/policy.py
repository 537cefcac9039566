"""containers-policy.json(5): which images are trusted, evaluated as skopeo and podman do.

A policy has a ``default`` list of requirements and per-transport maps from scopes to lists::

    {"default": [{"type": "reject"}],
     "transports": {"docker": {"registry.example.com/ns": [{"type": "signedBy", "keyType": "GPGKeys",
                                                             "keyPath": "/etc/pki/key.gpg"}],
                               "": [{"type": "insecureAcceptAnything"}]}}}

The most specific scope of the image's transport wins (``docker``: ``host/repo:tag`` or
``@digest``, ``host/repo``, its namespaces, ``host``, ``*.domain`` wildcards; ``oci``: the
layout path with its reference, the path, its parent directories), then the transport's ``""``
scope, then ``default``. Every requirement in the chosen list must be satisfied:
``insecureAcceptAnything``; ``reject``; ``signedBy`` (GPG, ``keyPath``/``keyPaths``/``keyData``);
``sigstoreSigned`` (``keyPath``/``keyData``; cosign tag-schema signatures and sigstore
bundles). Signed requirements take ``signedIdentity`` (:mod:`ocikit.trust.identity`).
An unknown requirement type, field or key type is a :class:`PolicyInvalid`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..content import DEFAULT_OPTIONS, Options, Store
from ..digest import Digest
from ..errors import PolicyInvalid
from ..transportref import TransportReference
from . import keys as keymod
from .identity import IdentityRule, parse_rule
from .lookaside import RegistriesD, scopes_of

SYSTEM_POLICY = "/etc/containers/policy.json"
TYPES = ("insecureAcceptAnything", "reject", "signedBy", "sigstoreSigned")


@dataclass(frozen=True)
class Requirement:
    type: str
    key_paths: tuple[str, ...] = ()
    key_data: tuple[bytes, ...] = ()
    identity: IdentityRule | None = None


@dataclass
class Policy:
    """A parsed policy. The trusted keys of its requirements are loaded once (GPG keys into a temporary
    home) and kept until :meth:`close`: use it as a context manager, or close it."""

    default: list[Requirement]
    transports: dict[str, dict[str, list[Requirement]]] = field(default_factory=dict)
    path: str = ""
    _trusted: dict[int, Any] = field(default_factory=dict, repr=False)

    def trusted(self, req: Requirement) -> Any:
        """The :class:`~ocikit.trust.verify.TrustedKeys` of a signed requirement (loaded on first use)."""
        if id(req) not in self._trusted:
            self._trusted[id(req)] = _trusted(req)
        return self._trusted[id(req)]

    def close(self) -> None:
        for t in self._trusted.values():
            t.close()
        self._trusted.clear()

    def __enter__(self) -> "Policy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def requirements(self, tref: TransportReference) -> tuple[str, list[Requirement]]:
        """(scope, requirements) for an image: its most specific scope, the transport's ``""``, ``default``."""
        scopes = self.transports.get(tref.transport, {})
        for scope in policy_scopes(tref):
            if scope in scopes:
                return scope, scopes[scope]
        if "" in scopes:
            return f"{tref.transport}:\"\"", scopes[""]
        return "default", self.default


def policy_scopes(tref: TransportReference) -> list[str]:
    """The scopes an image matches, most specific first."""
    if tref.transport == "docker":
        assert tref.image is not None
        out = scopes_of(tref.image)
        labels = tref.image.domain.split(".")
        out += ["*." + ".".join(labels[i:]) for i in range(1, len(labels))]
        return out
    path = os.path.abspath(tref.path)
    out = [f"{path}:{tref.reference}"] if tref.reference else []
    while True:
        out.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            return out
        path = parent


def _req(obj: Any, where: str, base_dir: str) -> Requirement:
    if not isinstance(obj, Mapping):
        raise PolicyInvalid(f"{where}: a requirement must be an object")
    t = obj.get("type")
    if t not in TYPES:
        raise PolicyInvalid(f"{where}: unknown policy requirement type {t!r}")
    if t in ("insecureAcceptAnything", "reject"):
        if set(obj) != {"type"}:
            raise PolicyInvalid(f"{where}: {t} takes no fields, has {sorted(set(obj) - {'type'})}")
        return Requirement(t)
    if t == "signedBy":
        allowed = {"type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity"}
        if obj.get("keyType") != "GPGKeys":
            raise PolicyInvalid(f"{where}: signedBy keyType {obj.get('keyType')!r} is not supported (GPGKeys)")
    else:
        allowed = {"type", "keyPath", "keyData", "signedIdentity"}
        unsupported = {"fulcio", "rekorPublicKeyPath", "rekorPublicKeyData", "keyPaths", "keyDatas", "pki"} & set(obj)
        if unsupported:
            raise PolicyInvalid(f"{where}: sigstoreSigned {sorted(unsupported)} is not supported (keyPath/keyData)")
    extra = set(obj) - allowed
    if extra:
        raise PolicyInvalid(f"{where}: {t} has unknown fields {sorted(extra)}")
    paths: list[str] = []
    if "keyPath" in obj:
        paths.append(obj["keyPath"])
    paths += list(obj.get("keyPaths") or [])
    data: list[bytes] = []
    if "keyData" in obj:
        try:
            data.append(base64.b64decode(obj["keyData"], validate=True))
        except (binascii.Error, TypeError):
            raise PolicyInvalid(f"{where}: keyData is not base64") from None
    if len(paths) + len(data) == 0 or ("keyPath" in obj) + ("keyPaths" in obj) + ("keyData" in obj) != 1:
        raise PolicyInvalid(f"{where}: {t} needs exactly one of keyPath, keyPaths, keyData")
    for p in paths:
        if not isinstance(p, str) or not p:
            raise PolicyInvalid(f"{where}: a key path must be a non-empty string")
    resolved = tuple(p if os.path.isabs(p) else os.path.join(base_dir, p) for p in paths)
    return Requirement(t, resolved, tuple(data), parse_rule(obj.get("signedIdentity"), f"{where}.signedIdentity"))


def _list(value: Any, where: str, base_dir: str) -> list[Requirement]:
    if not isinstance(value, list) or not value:
        raise PolicyInvalid(f"{where}: must be a non-empty list of requirements")
    return [_req(x, f"{where}[{i}]", base_dir) for i, x in enumerate(value)]


def parse_policy(raw: bytes, path: str = "policy.json") -> Policy:
    """Parse a policy document; :class:`PolicyInvalid` naming the JSON path of what is wrong."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise PolicyInvalid(f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PolicyInvalid(f"{path}: not a JSON object")
    extra = set(doc) - {"default", "transports"}
    if extra:
        raise PolicyInvalid(f"{path}: unknown fields {sorted(extra)}")
    base_dir = os.path.dirname(os.path.abspath(path))
    pol = Policy(_list(doc.get("default"), f"{path}: default", base_dir), path=path)
    transports = doc.get("transports") or {}
    if not isinstance(transports, dict):
        raise PolicyInvalid(f"{path}: transports must be an object")
    for name, scopes in transports.items():
        if not isinstance(scopes, dict):
            raise PolicyInvalid(f"{path}: transports.{name} must be an object")
        pol.transports[name] = {s: _list(v, f"{path}: transports.{name}[{s!r}]", base_dir) for s, v in scopes.items()}
    return pol


def load_policy(path: str | None = None) -> Policy:
    """Read a policy file (the system's, ``/etc/containers/policy.json``, when None)."""
    p = path or SYSTEM_POLICY
    with open(p, "rb") as f:
        return parse_policy(f.read(), p)


@dataclass
class Decision:
    """The outcome of a policy for one image."""

    image: str
    digest: Digest
    scope: str
    accepted: bool
    reasons: list[str]
    checks: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"image": self.image, "digest": str(self.digest), "scope": self.scope, "accepted": self.accepted,
                "reasons": self.reasons, "signatures": [c.to_dict() for c in self.checks]}


def _trusted(req: Requirement) -> Any:
    from .simplesign import Keyring
    from .verify import TrustedKeys

    if req.type == "signedBy":
        return TrustedKeys([], Keyring(req.key_paths, req.key_data))
    pubs = []
    for p in req.key_paths:
        with open(p, "rb") as f:
            pubs.append((p, keymod.load_public_key(f.read(), what=p)))
    for i, d in enumerate(req.key_data):
        pubs.append((f"keyData[{i}]", keymod.load_public_key(d, what=f"keyData[{i}]")))
    return TrustedKeys(pubs, None)


async def evaluate(policy: Policy, store: Store, tref: TransportReference, digest: str, *,
                   regd: RegistriesD | None = None, opts: Options = DEFAULT_OPTIONS) -> Decision:
    """Apply ``policy`` to the manifest ``digest`` that ``tref`` names in ``store``."""
    from .verify import verify_manifests

    scope, reqs = policy.requirements(tref)
    d = Digest(digest)
    reasons: list[str] = []
    checks: list[Any] = []
    accepted = True
    for req in reqs:
        if req.type == "insecureAcceptAnything":
            continue
        if req.type == "reject":
            accepted = False
            reasons.append(f"the policy rejects every image in scope {scope}")
            continue
        kinds = ("gpg",) if req.type == "signedBy" else ("cosign", "bundle")
        got = await verify_manifests(store, [d], policy.trusted(req), tref=tref, regd=regd, rule=req.identity,
                                     kinds=kinds, opts=opts)
        checks += got
        if not any(c.ok for c in got):
            accepted = False
            why = "; ".join(sorted({c.reason for c in got})) or "no signature found"
            reasons.append(f"{req.type}: {why}")
    return Decision(str(tref), d, scope, accepted, reasons, checks)


async def evaluate_reference(policy: Policy, reference: str, *, regd: RegistriesD | None = None,
                             open_options: Any = None) -> Decision:
    """Open ``reference``, resolve its top-level manifest and apply ``policy`` to it."""
    from ..ops.copy import resolve_root
    from ..transportref import parse_transport_reference
    from ..transports import open_store

    tref = parse_transport_reference(reference, default_transport="docker")
    store = open_store(tref, options=open_options)
    try:
        root = await resolve_root(store, tref.selector, DEFAULT_OPTIONS)
        return await evaluate(policy, store, tref, root.desc.digest, regd=regd)
    finally:
        await store.close()


def enforce(policy_path: str, reference: str, *, registries_d: str | None = None, open_options: Any = None) -> Decision:
    """Apply a policy file (``system``: the system's) to ``reference``; :class:`PolicyRejected` if it refuses."""
    import asyncio

    from ..errors import PolicyRejected

    with load_policy(None if policy_path == "system" else policy_path) as policy:
        decision = asyncio.run(evaluate_reference(policy, reference, regd=RegistriesD.load(registries_d),
                                                  open_options=open_options))
    if not decision.accepted:
        raise PolicyRejected(f"{decision.image}: rejected by {policy.path}: {'; '.join(decision.reasons)}")
    return decision


__all__ = ["Decision", "enforce", "evaluate_reference", "Policy", "Requirement", "SYSTEM_POLICY", "evaluate", "load_policy", "parse_policy",
           "policy_scopes"]

"""Trust around a copy: enforce a policy before anything is written, carry signatures after.

:class:`TrustHook` is a :class:`~ocikit.ops.copy_options.CopyHook`:

- ``before_transfer``: with a policy, the source image must be accepted (else
  :class:`PolicyRejected` and nothing is written); the source's lookaside signatures are read
  now, so a target that cannot keep them fails before the transfer too;
- ``after_copy``: for every manifest written (the index and each platform manifest) carry
  cosign's ``sha256-<hex>.sig/.att/.sbom`` tags, the OCI 1.1 referrers (the target's API, its
  tag fallback, or a layout's ``index.json``), and the lookaside signatures (into the target's
  ``lookaside-staging``/``lookaside``); then sign the copy when asked (``--sign-by``,
  ``--sign-by-sigstore-private-key``).

Nothing is carried with ``carry=False`` (``--remove-signatures``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..content import Options, Store
from ..digest import Digest
from ..errors import Denied, NotFound, PolicyRejected, Unauthorized, Unsupported, UsageError
from ..model import Descriptor
from ..transportref import TransportReference
from .collect import docker_ref, lookaside_base
from .lookaside import RegistriesD, put_signatures, read_signatures
from .sigstore import TAG_SUFFIXES, tag_for

if TYPE_CHECKING:
    from ..ops.copy import CopyOptions, CopyPlan, CopyResult
    from .policy import Decision, Policy
    from .sign import SignOptions, Signed


@dataclass
class Carried:
    """What a copy carried and signed."""

    tags: list[str] = field(default_factory=list)
    referrers: list[Digest] = field(default_factory=list)
    lookaside: dict[Digest, int] = field(default_factory=dict)
    signed: list["Signed"] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"tags": self.tags, "referrers": [str(d) for d in self.referrers],
                "lookaside": {str(k): v for k, v in self.lookaside.items()},
                "signed": [s.to_dict() for s in self.signed]}


@dataclass
class TrustHook:
    src_ref: TransportReference
    dst_ref: TransportReference
    policy: "Policy | None" = None
    regd: RegistriesD = field(default_factory=RegistriesD.load)
    carry: bool = True
    sign: "SignOptions | None" = None
    carried: Carried = field(default_factory=Carried)
    decision: "Decision | None" = None
    _lookaside: dict[Digest, list[bytes]] = field(default_factory=dict)
    _tags: list[str] = field(default_factory=list)

    async def before_transfer(self, src: Store, dst: Store, plan: "CopyPlan", opts: Options) -> None:
        if self.policy is not None:
            from .policy import evaluate

            with self.policy:
                self.decision = await evaluate(self.policy, src, self.src_ref, plan.source_root_digest,
                                               regd=self.regd, opts=opts)
            if not self.decision.accepted:
                raise PolicyRejected(f"{self.src_ref}@{plan.source_root_digest}: rejected by {self.policy.path}: "
                                     f"{'; '.join(self.decision.reasons)}")
        if self.sign is not None and self.sign.gpg_fingerprint:  # fail before writing, not after
            from .simplesign import check_secret_key

            if docker_ref(self.dst_ref) is None:
                raise UsageError(f"--sign-by: GPG signatures live in a lookaside store, which {self.dst_ref} has not")
            check_secret_key(self.sign.gpg_fingerprint, gnupghome=self.sign.gnupghome)
        if not self.carry:
            return
        self._tags = await _signature_tags(src, plan)
        src_image = docker_ref(self.src_ref)
        if src_image is not None:
            base = lookaside_base(self.regd, src_image)
            found = await asyncio.gather(*(read_signatures(base, src_image, n.desc.digest) for n in plan.manifests))
            for node, sigs in zip(plan.manifests, found):
                if sigs:
                    self._lookaside[node.desc.digest] = [data for _, data in sigs]
        if self._lookaside and docker_ref(self.dst_ref) is None:
            raise UsageError(f"{self.src_ref} has lookaside signatures, which {self.dst_ref} cannot keep "
                             "(only docker:// targets have a lookaside store); copy with --remove-signatures "
                             "to drop them")
        if self.dst_ref.transport == "docker-archive" and (self._tags or await _has_referrers(src, plan, opts)):
            raise UsageError(f"{self.src_ref} has signatures or referrers, which a docker-archive cannot keep; "
                             "copy with --remove-signatures to drop them")

    async def after_copy(self, src: Store, dst: Store, plan: "CopyPlan", options: "CopyOptions",
                         result: "CopyResult", opts: Options) -> None:
        if self.carry:
            await self._carry_tags(src, dst, options, result)
            if not options.referrers:  # a --referrers copy has carried them already
                from ..ops.copy import copy_referrers

                got = await copy_referrers(src, dst, plan, options, result, opts)
                self.carried.referrers += [r for _, r in got.carried]
            dst_image = docker_ref(self.dst_ref)
            if dst_image is not None:
                base = lookaside_base(self.regd, dst_image, write=True)
                for digest, sigs in self._lookaside.items():
                    put_signatures(base, dst_image, digest, sigs)
                    self.carried.lookaside[digest] = len(sigs)
        if self.sign is not None:
            from .sign import sign_in_store

            root = plan.root
            desc = Descriptor(root.manifest.media_type, result.digest, root.desc.size)
            self.carried.signed += await sign_in_store(dst, self.dst_ref, desc, root.manifest, self.sign, opts)

    async def _carry_tags(self, src: Store, dst: Store, options: "CopyOptions", result: "CopyResult") -> None:
        from ..ops.copy import copy_between

        sub = dataclasses.replace(options, all_platforms=True, platforms=(), preserve_index_digest=False,
                                  referrers=False, hooks=(), progress=None)
        for tag in self._tags:
            result.add(await copy_between(src, tag, dst, tag, sub))
            self.carried.tags.append(tag)


async def _signature_tags(src: Store, plan: "CopyPlan") -> list[str]:
    """The ``sha256-<hex>.sig/.att/.sbom`` tags the source has for the plan's manifests.

    One tag listing; where listing is refused, each candidate tag is asked for.
    """
    wanted = [tag_for(n.desc.digest, suffix) for n in plan.manifests for suffix in TAG_SUFFIXES]
    try:
        tags = set(await src.list_tags())
        return [t for t in wanted if t in tags]
    except (Denied, Unauthorized, Unsupported, NotFound):
        pass
    found = []
    for t in wanted:
        try:
            await src.resolve(t)
            found.append(t)
        except NotFound:
            continue
    return found


async def _has_referrers(src: Store, plan: "CopyPlan", opts: Options) -> bool:
    from ..ops.referrers import find_referrers

    for n in plan.manifests:
        if (await find_referrers(src, n.desc.digest, None, opts)).referrers:
            return True
    return False


__all__ = ["Carried", "TrustHook"]

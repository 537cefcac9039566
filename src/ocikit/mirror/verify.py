"""``ocikit mirror verify``: is everything the job planned really at the target, digest-exact?

Every source reference must resolve at the target to the same digest, and every manifest
(index children included), config, layer and referrer the graph needs must be there with the
right digest. Manifests are fetched and hashed; blobs are checked by digest (``deep``: streamed
and hashed too). Each problem names the image, the missing node and where it sits in the graph.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ..content import Options, Store
from ..core.digest import Verifier, verify_bytes
from ..core.errors import NotFound, OcikitError
from ..model import Descriptor, ImageManifest
from ..ops.referrers import find_referrers
from .places import Limits, Target
from .plan import KIND_REFERRER, MirrorPlan, PlannedImage


@dataclass
class Problem:
    image: str
    """The destination reference (``host/prefix/path:tag``)."""
    what: str
    """``tag``, ``manifest``, ``blob``, ``source``."""
    digest: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.image}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "what": self.what, "digest": self.digest, "message": self.message}


@dataclass
class VerifyReport:
    target: str
    checked_images: int = 0
    checked_manifests: int = 0
    checked_blobs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "ok": self.ok, "images": self.checked_images,
                "manifests": self.checked_manifests, "blobs": self.checked_blobs,
                "problems": [p.to_dict() for p in self.problems]}


def _labels(p: PlannedImage) -> tuple[dict[str, str], dict[str, str]]:
    """Where each manifest and blob sits in the image's graph, for messages."""
    assert p.plan is not None
    root = p.plan.root.desc.digest
    mlabels: dict[str, str] = {}
    blabels: dict[str, str] = {}
    for n in p.plan.manifests:
        d = n.desc.digest
        plat = f" ({n.desc.platform})" if n.desc.platform else ""
        if d == root:
            mlabels[d] = f"{'referrer' if p.job.kind == KIND_REFERRER else 'root'} manifest {d}" + \
                (f" (referrer of {p.job.subject})" if p.job.subject else "")
        else:
            mlabels[d] = f"child manifest {d}{plat} of index {root}"
        m = n.manifest
        if isinstance(m, ImageManifest):
            blabels.setdefault(m.config.digest, f"config {m.config.digest} of manifest {d}{plat}")
            for i, layer in enumerate(m.layers):
                blabels.setdefault(layer.digest, f"layer {i} {layer.digest} of manifest {d}{plat}")
    return mlabels, blabels


async def verify_image(p: PlannedImage, store: Store, dest: str, report: VerifyReport, *, limits: Limits,
                       registry: str, deep: bool, opts: Options) -> None:
    if p.plan is None:
        report.problems.append(Problem(dest, "source", None, f"cannot say what should be there: {p.error}"))
        return
    report.checked_images += 1
    mlabels, blabels = _labels(p)
    want = p.plan.root.desc.digest
    if p.job.tag:
        try:
            async with limits.hold(registry):
                got = await store.resolve(p.job.tag, opts)
            if got.digest != want:
                report.problems.append(Problem(dest, "tag", str(want),
                                               f"tag {p.job.tag} points to {got.digest}, expected {want}"))
        except NotFound:
            report.problems.append(Problem(dest, "tag", str(want), f"tag {p.job.tag} is missing (expected {want})"))
        except OcikitError as e:
            report.problems.append(Problem(dest, "tag", str(want), f"tag {p.job.tag}: {e}"))

    async def manifest(desc: Descriptor) -> None:
        report.checked_manifests += 1
        try:
            async with limits.hold(registry):
                rm = await store.get_manifest(str(desc.digest), opts)
            verify_bytes(rm.raw, desc.digest, desc.size, what=f"manifest {desc.digest}")
        except NotFound:
            report.problems.append(Problem(dest, "manifest", str(desc.digest),
                                           f"missing {mlabels.get(desc.digest, f'manifest {desc.digest}')}"))
        except OcikitError as e:
            report.problems.append(Problem(dest, "manifest", str(desc.digest),
                                           f"bad {mlabels.get(desc.digest, 'manifest')}: {e}"))

    async def blob(desc: Descriptor) -> None:
        report.checked_blobs += 1
        label = blabels.get(desc.digest, f"blob {desc.digest}")
        try:
            async with limits.hold(registry):
                if not await store.has_blob(desc, opts):
                    report.problems.append(Problem(dest, "blob", str(desc.digest), f"missing {label}"))
                    return
                if deep:
                    v = Verifier(desc.digest, desc.size, what=label)
                    async for chunk in store.blob_chunks(desc, opts):
                        v.update(chunk)
                    v.verify()
        except NotFound:
            report.problems.append(Problem(dest, "blob", str(desc.digest), f"missing {label}"))
        except OcikitError as e:
            report.problems.append(Problem(dest, "blob", str(desc.digest), f"bad {label}: {e}"))

    async def discoverable() -> None:
        # a referrer must also be found from its subject (referrers API, sha256-<hex> tag, layout scan)
        assert p.plan is not None and p.job.subject is not None
        try:
            async with limits.hold(registry):
                found = await find_referrers(store, p.job.subject, None, opts)
        except OcikitError as e:
            report.problems.append(Problem(dest, "referrer", str(want), f"referrers of {p.job.subject}: {e}"))
            return
        if want not in {d.digest for d in found.referrers}:
            report.problems.append(Problem(dest, "referrer", str(want),
                                           f"referrer {want} of {p.job.subject} is stored but not discoverable "
                                           f"({found.source} does not list it)"))

    checks = [manifest(n.desc) for n in p.plan.manifests] + [blob(b) for b in p.plan.blobs.values()]
    if p.job.kind == KIND_REFERRER and p.job.subject is not None and not p.job.tag:
        checks.append(discoverable())
    await asyncio.gather(*checks)


async def verify_plan(plan: MirrorPlan, target: Target, *, deep: bool = False, jobs: int = 8,
                      per_registry: int = 6, opts: Options = Options()) -> VerifyReport:
    """Check every planned image at the target."""
    report = VerifyReport(target.location)
    limits = Limits(jobs, per_registry)
    await asyncio.gather(*(
        verify_image(p, target.store_for(p.job.path), target.display(p.job.path, p.job.tag) if p.job.tag else
                     target.display(p.job.path, None) + (f"@{p.digest}" if p.digest else ""), report,
                     limits=limits, registry=target.registry, deep=deep, opts=opts)
        for p in plan.images))
    report.problems.sort(key=lambda pr: (pr.image, pr.what, pr.message))
    return report


__all__ = ["Problem", "VerifyReport", "verify_image", "verify_plan"]

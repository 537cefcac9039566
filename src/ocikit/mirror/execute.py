"""Run a mirror plan: every unique blob once, in parallel with per-registry limits, then each
image's manifests (children first, the tag last) through the copy engine.

A blob needed at several target keys (repositories) moves once; the other keys get it by a
mount or link from the first (the target's :class:`~ocikit.content.BlobLinker`), else by
streaming it from there. Every confirmed blob and finished image goes to the journal, so a
killed run, re-run, moves no verified blob again. Failures are collected per image; the run
goes on and the report names every one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from ..content import BlobLinker, Options, Store
from ..digest import Digest
from ..errors import OcikitError
from ..ops.copy import CopyPlan, CopyResult, execute_plan, transfer_blob
from ..ops.referrers import record_referrer, referrer_descriptor
from ..progress import ProgressSink
from .journal import Journal
from .plan import KIND_REFERRER, MirrorPlan, PlannedImage
from .places import Limits, SourceSet, Target


@dataclass
class ImageOutcome:
    source: str
    destination: str
    kind: str
    status: str
    """``ok``, ``done-earlier`` (journaled by an earlier run), ``failed``."""
    digest: Digest | None = None
    source_digest: Digest | None = None
    platforms: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"source": self.source, "destination": self.destination, "kind": self.kind,
                             "status": self.status, "digest": self.digest, "sourceDigest": self.source_digest,
                             "platforms": self.platforms}
        if self.error:
            d["error"] = self.error
        return d


@dataclass
class MirrorReport:
    target: str
    images: list[ImageOutcome] = field(default_factory=list)
    unique_blobs: int = 0
    blobs_moved: int = 0
    bytes_moved: int = 0
    blobs_mounted: int = 0
    blobs_linked: int = 0
    blobs_already: int = 0
    bytes_already: int = 0
    blobs_journaled: int = 0
    """Blobs an earlier run of this job verified: not sent, not even asked about."""
    blobs_resent: int = 0
    """Blobs an earlier run verified that this run sent again (0 unless something is wrong)."""
    blob_failures: dict[str, str] = field(default_factory=dict)
    moved_digests: list[str] = field(default_factory=list)
    seconds: float = 0.0
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[ImageOutcome]:
        return [i for i in self.images if i.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blob_failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "ok": self.ok, "plan": self.plan,
            "images": [i.to_dict() for i in self.images],
            "blobs": {"unique": self.unique_blobs, "moved": self.blobs_moved, "bytesMoved": self.bytes_moved,
                      "mounted": self.blobs_mounted, "linked": self.blobs_linked,
                      "alreadyThere": self.blobs_already, "bytesAlreadyThere": self.bytes_already,
                      "journaled": self.blobs_journaled, "resent": self.blobs_resent,
                      "movedDigests": self.moved_digests},
            "failures": [{"source": i.source, "destination": i.destination, "error": i.error}
                         for i in self.failures]
                        + [{"blob": d, "error": e} for d, e in self.blob_failures.items()],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ExecuteOptions:
    jobs: int = 8
    per_registry: int = 6
    progress: ProgressSink | None = None
    retries: int = 3
    """Whole-blob retries when a transfer fails on the network (the stores retry requests themselves)."""


def _image_store(target: Target, p: PlannedImage) -> Store:
    image_store = getattr(target, "image_store", None)
    if image_store is not None:
        return image_store(p.job, p.plan)
    return target.store_for(p.job.path)


async def execute_mirror(plan: MirrorPlan, sources: SourceSet, target: Target, journal: Journal,
                         options: ExecuteOptions | None = None) -> MirrorReport:
    """Transfer what the plan says is missing; return the report (failures inside, not raised)."""
    options = options or ExecuteOptions()
    t0 = time.monotonic()
    opts = Options(progress=options.progress)
    limits = Limits(options.jobs, options.per_registry)
    report = MirrorReport(target.location, plan=plan.summary())
    report.unique_blobs = len(plan.blobs)
    ready: dict[tuple[str, Digest], asyncio.Future[None]] = {}
    """(key, blob) -> settled when the blob is at that key (or could not be put there)."""
    loop = asyncio.get_running_loop()

    def store_for_key(key: str) -> Store:
        return target.store_for(plan.key_paths[key])

    async def place_at(k: str, d: Digest, sibling: str | None) -> None:
        """Put blob ``d`` at key ``k``: from the source, or (``sibling`` given) by a mount or link
        from a key that has it already, streaming from there if the target cannot mount."""
        need = plan.blobs[d]
        dst = store_for_key(k)
        if sibling is not None:
            src, src_reg = store_for_key(sibling), target.registry
        else:
            src, src_reg = sources.store_for(need.source_key), _reg(need.source_key)
        one = _counter(target)  # this transfer's own counts (the tasks run concurrently)
        # a placement from a sibling is a mount/link (light) where the target can
        async with limits.hold(src_reg, target.registry, light=sibling is not None):
            if sibling is not None and isinstance(dst, BlobLinker) and await dst.link_blob_from(src, need.desc, opts):
                # the blob is in a sibling repository already: mount (or link) it, no need to ask first
                if (getattr(dst, "last_link_kind", None) or "linked") == "mounted":
                    one.blobs_mounted += 1
                else:
                    one.blobs_linked += 1
            else:
                await transfer_blob(src, dst, need.desc, one, opts, options.progress, options.retries)
        if one.blobs_copied:
            report.blobs_moved += 1
            report.bytes_moved += need.desc.size
            report.moved_digests.append(str(d))
            if (k, d) in journal.prior_blobs:
                report.blobs_resent += 1
        elif one.blobs_mounted:
            report.blobs_mounted += 1
        elif one.blobs_linked:
            report.blobs_linked += 1
        elif one.blobs_skipped and sibling is None:
            report.blobs_already += 1
            report.bytes_already += need.desc.size
        journal.blob_done(k, d, need.desc.size)

    async def place_settled(k: str, d: Digest, sibling: str | None) -> bool:
        """:func:`place_at`, settling key ``k``'s future either way; True when it succeeded."""
        fut = ready[(k, d)]
        try:
            await place_at(k, d, sibling)
        except (OcikitError, OSError) as e:
            msg = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
            report.blob_failures[str(d)] = msg
            fut.set_exception(_BlobFailed(d, msg))
            fut.exception()  # retrieved: images that need it report it
            return False
        fut.set_result(None)
        return True

    async def place(d: Digest) -> None:
        """Blob ``d`` at every key that needs it: moved once, then mounted or linked at the other
        keys all at once. Each key's image goes on as soon as its own copy is there."""
        need = plan.blobs[d]
        done_keys = [k for k in need.destinations if (k, d) in plan.present or (k, d) in journal.blobs]
        todo = [k for k in need.destinations if k not in done_keys]
        if any((k, d) in journal.prior_blobs for k in need.destinations):
            report.blobs_journaled += 1
        elif not todo:
            report.blobs_already += 1
            report.bytes_already += need.desc.size
        for k in done_keys:
            ready[(k, d)].set_result(None)
        if todo and not done_keys:
            first = todo.pop(0)
            if not await place_settled(first, d, None):
                for k in todo:   # nowhere to mount from: every other key fails with it
                    ready[(k, d)].set_exception(ready[(first, d)].exception())  # type: ignore[arg-type]
                    ready[(k, d)].exception()
                return
            done_keys.append(first)
        await asyncio.gather(*(place_settled(k, d, done_keys[0]) for k in todo))

    image_done: dict[tuple[str, Digest | None], asyncio.Future[None]] = {}

    async def write_image(p: PlannedImage, out: ImageOutcome) -> None:
        j = p.job
        dest = out.destination
        done = image_done.get((j.path, p.source_digest))
        try:
            if p.plan is None:
                return
            plan_: CopyPlan = p.plan
            out.digest, out.source_digest, out.platforms = p.digest, p.source_digest, list(plan_.platforms)
            if not dest.endswith(f"@{p.digest}") and not j.tag:
                out.destination = f"{dest}@{p.digest}"
            key = target.key_for(j.path)
            for d in plan_.blobs:
                await ready[(key, d)]
            if j.kind == KIND_REFERRER and j.subject is not None:
                sub = image_done.get((j.path, j.subject))
                if sub is not None:
                    try:
                        await asyncio.shield(sub)
                    except RuntimeError:
                        out.error = f"its subject {j.subject} could not be mirrored"
                        return
            jkey = f"{target.key_for(j.path)}:{j.tag or ''}@{p.digest}"
            if journal.images.get(jkey) == p.digest:
                out.status, out.error = "done-earlier", None
                return
            dst = _image_store(target, p)
            src = sources.store_for(j.source_key)
            result = CopyResult(src.location, dest, plan_.source_root_digest, plan_.root.desc.digest,
                                plan_.root.manifest.media_type, j.tag, platforms=plan_.platforms)
            bare = dataclasses.replace(plan_, blobs={})  # the blobs are placed already
            async with limits.hold(_reg(j.source_key), target.registry, light=True):
                await execute_plan(src, dst, bare, j.tag, j.copy_options(options.jobs), result, opts)
            if j.kind == KIND_REFERRER and j.subject is not None and not j.tag and \
                    getattr(target, "records_referrers", True):
                # found through the API: keep it discoverable where the target lacks the API
                await record_referrer(dst, referrer_descriptor(plan_.root.manifest), j.subject, opts)
            journal.image_done(jkey, p.digest)  # type: ignore[arg-type]
            out.status, out.error = "ok", None
        except _BlobFailed as e:
            out.error = f"blob {e.digest} could not be copied: {e.message}"
        except (OcikitError, OSError) as e:
            out.error = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
        finally:
            if done is not None and not done.done():
                if out.status == "failed":
                    done.set_exception(RuntimeError(out.error or "failed"))
                    done.exception()
                else:
                    done.set_result(None)

    for p in plan.images:
        if p.plan is not None and p.job.kind != KIND_REFERRER:
            image_done.setdefault((p.job.path, p.source_digest), loop.create_future())
            for n in p.plan.manifests:
                image_done.setdefault((p.job.path, n.desc.digest), image_done[(p.job.path, p.source_digest)])
    for d, need in plan.blobs.items():
        for k in need.destinations:
            ready[(k, d)] = loop.create_future()
    blob_tasks = [asyncio.create_task(place(d))
                  for d in sorted(plan.blobs, key=lambda x: -plan.blobs[x].desc.size)]
    for p in plan.images:
        report.images.append(ImageOutcome(p.job.source, target.display(p.job.path, p.job.tag), p.job.kind,
                                          "failed", error=p.error))
    image_tasks = [asyncio.create_task(write_image(p, out)) for p, out in zip(plan.images, report.images)]
    try:
        await asyncio.gather(*blob_tasks, *image_tasks)
    except BaseException:
        for t in [*blob_tasks, *image_tasks]:
            t.cancel()
        await asyncio.gather(*blob_tasks, *image_tasks, return_exceptions=True)
        raise
    report.seconds = time.monotonic() - t0
    return report


def _reg(source_key: str) -> str:
    from .places import registry_of
    return registry_of(source_key)


def _counter(target: Target) -> CopyResult:
    return CopyResult("mirror", target.location, Digest.of(b""), Digest.of(b""), "", None)


class _BlobFailed(Exception):
    def __init__(self, digest: Digest, message: str) -> None:
        super().__init__(message)
        self.digest = digest
        self.message = message


__all__ = ["ExecuteOptions", "ImageOutcome", "MirrorReport", "execute_mirror"]

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

from ..content import BlobLinker, LinkResult, Options, Store
from ..core.digest import Digest
from ..core.errors import OcikitError
from ..ops.copy import count_link, execute_plan, gather_or_cancel, transfer_blob
from ..ops.copy_options import CopyResult
from ..ops.copy_plan import CopyPlan
from ..ops.referrers import record_referrer, referrer_descriptor
from ..progress import JobProgress, ProgressSink, emit
from .journal import Journal
from .places import Limits, SourceSet, Target, registry_of
from .plan_types import KIND_REFERRER, MirrorPlan, PlannedImage


@dataclass
class ImageOutcome:
    source: str
    destination: str
    kind: str
    status: str
    """``ok``, ``done-earlier`` (journaled by an earlier run), ``unchanged`` (in place already: not
    planned, not copied), ``skipped`` (a referrer a recompressing job cannot carry), ``failed``."""
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
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    """HTTP requests per registry host and method (the whole job: planning, transfer, prune)."""
    pruned: list[dict[str, Any]] = field(default_factory=list)
    """``--prune``: one entry per tag removed (or kept, and why)."""
    uploads_resumed: int = 0
    """Chunked uploads that broke off and went on from the registry's offset."""
    upload_bytes_resent: int = 0
    peak_rss_kb: int | None = None
    recompressed: dict[str, str] = field(default_factory=dict)
    """``--dest-compress-format``: every digest that changed, old -> new."""
    signatures_carried: int = 0
    """Lookaside (GPG) signatures copied (tag-schema signatures and referrers are images here)."""
    """The process's peak resident memory when the job ended (kB; None off Linux)."""

    @property
    def failures(self) -> list[ImageOutcome]:
        return [i for i in self.images if i.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.blob_failures and not any(p["status"] == "failed" for p in self.pruned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "ok": self.ok, "plan": self.plan,
            "images": [i.to_dict() for i in self.images],
            "blobs": {"unique": self.unique_blobs, "moved": self.blobs_moved, "bytesMoved": self.bytes_moved,
                      "mounted": self.blobs_mounted, "linked": self.blobs_linked,
                      "alreadyThere": self.blobs_already, "bytesAlreadyThere": self.bytes_already,
                      "journaled": self.blobs_journaled, "resent": self.blobs_resent,
                      "uploadsResumed": self.uploads_resumed, "uploadBytesResent": self.upload_bytes_resent,
                      "movedDigests": self.moved_digests},
            "failures": [{"source": i.source, "destination": i.destination, "error": i.error}
                         for i in self.failures]
                        + [{"blob": d, "error": e} for d, e in self.blob_failures.items()],
            "seconds": round(self.seconds, 3),
            "unchanged": sum(1 for i in self.images if i.status == "unchanged"),
            "requests": self.requests, "pruned": self.pruned, "peakRssKb": self.peak_rss_kb,
            "lookasideSignatures": self.signatures_carried,
            **({"recompressed": self.recompressed} if self.recompressed else {}),
        }


@dataclass
class ExecuteOptions:
    jobs: int = 8
    per_registry: int = 6
    progress: ProgressSink | None = None
    retries: int = 3
    """Whole-blob retries when a transfer fails on the network (the stores retry requests themselves)."""


class _MirrorRun:
    """One :func:`execute_mirror`: the plan, where things go, and the futures that order the work.

    ``ready[(key, blob)]`` settles when the blob is at that key (or could not be put there);
    ``image_done[(path, digest)]`` settles when an image (any of its manifests) is written, so a
    referrer waits for its subject.
    """

    def __init__(self, plan: MirrorPlan, sources: SourceSet, target: Target, journal: Journal,
                 options: ExecuteOptions) -> None:
        self.plan, self.sources, self.target, self.journal, self.options = plan, sources, target, journal, options
        self.opts = Options(progress=options.progress)
        self.limits = Limits(options.jobs, options.per_registry)
        self.report = MirrorReport(target.location, plan=plan.summary())
        self.report.unique_blobs = len(plan.blobs)
        loop = asyncio.get_running_loop()
        self.ready: dict[tuple[str, Digest], asyncio.Future[None]] = {
            (k, d): loop.create_future() for d, need in plan.blobs.items() for k in need.destinations}
        self.image_done: dict[tuple[str, Digest | None], asyncio.Future[None]] = {}
        self.started = time.monotonic()
        self.images_finished = len(plan.unchanged)
        self.bytes_total = int(self.report.plan.get("bytesToMove", 0))
        self.bytes_placed = 0
        """Bytes of blobs placed from the source (copied, linked or found there): the progress's bytes."""
        for p in plan.images:
            if p.plan is not None and p.job.kind != KIND_REFERRER:
                fut = self.image_done.setdefault((p.job.path, p.source_digest), loop.create_future())
                for n in p.plan.manifests:
                    self.image_done.setdefault((p.job.path, n.desc.digest), fut)

    async def run(self) -> MirrorReport:
        plan, report = self.plan, self.report
        blob_tasks = [asyncio.create_task(self.place(d))
                      for d in sorted(plan.blobs, key=lambda x: -plan.blobs[x].desc.size)]
        for p in plan.images:
            report.images.append(ImageOutcome(p.job.source, self.target.display(p.job.path, p.job.tag),
                                              p.job.kind, "failed", error=p.error))
        image_tasks = [asyncio.create_task(self.write_image(p, out)) for p, out in zip(plan.images, report.images)]
        await gather_or_cancel([*blob_tasks, *image_tasks])
        for u in plan.unchanged:
            report.images.append(ImageOutcome(u.job.source, self.target.display(u.job.path, u.job.tag), u.job.kind,
                                              "unchanged", u.digest, u.source_digest))
        return report

    # ---- blobs ---------------------------------------------------------------------------------

    def store_for_key(self, key: str) -> Store:
        return self.target.store_for(self.plan.key_paths[key])

    async def place(self, d: Digest) -> None:
        """Blob ``d`` at every key that needs it: moved once, then mounted or linked at the other
        keys all at once. Each key's image goes on as soon as its own copy is there."""
        need, journal, report, ready = self.plan.blobs[d], self.journal, self.report, self.ready
        done_keys = [k for k in need.destinations if (k, d) in self.plan.present or (k, d) in journal.blobs]
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
            if not await self.place_settled(first, d, None):
                for k in todo:   # nowhere to mount from: every other key fails with it
                    ready[(k, d)].set_exception(ready[(first, d)].exception())  # type: ignore[arg-type]
                    ready[(k, d)].exception()
                return
            done_keys.append(first)
        await asyncio.gather(*(self.place_settled(k, d, done_keys[0]) for k in todo))

    async def place_settled(self, k: str, d: Digest, sibling: str | None) -> bool:
        """:meth:`place_at`, settling key ``k``'s future either way; True when it succeeded."""
        fut = self.ready[(k, d)]
        try:
            await self.place_at(k, d, sibling)
        except (OcikitError, OSError) as e:
            msg = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
            self.report.blob_failures[str(d)] = msg
            fut.set_exception(_BlobFailed(d, msg))
            fut.exception()  # retrieved: images that need it report it
            return False
        fut.set_result(None)
        return True

    async def place_at(self, k: str, d: Digest, sibling: str | None) -> None:
        """Put blob ``d`` at key ``k``: from the source, or (``sibling`` given) by a mount or link
        from a key that has it already, streaming from there if the target cannot mount."""
        need, target = self.plan.blobs[d], self.target
        dst = self.store_for_key(k)
        if sibling is not None:
            src, src_reg = self.store_for_key(sibling), target.registry
        else:
            src, src_reg = self.sources.store_for(need.source_key), _reg(need.source_key)
        one = _counter(target)  # this transfer's own counts (the tasks run concurrently)
        # a placement from a sibling is a mount/link (light) where the target can
        async with self.limits.hold(src_reg, target.registry, light=sibling is not None):
            how = LinkResult.NOT_LINKED
            if sibling is not None and isinstance(dst, BlobLinker):
                # the blob is in a sibling repository already: mount (or link) it, no need to ask first
                how = await dst.link_blob_from(src, need.desc, self.opts)
            if how is not LinkResult.NOT_LINKED:
                count_link(one, need.desc, how)
            else:
                await transfer_blob(src, dst, need.desc, one, self.opts, self.options.progress, self.options.retries)
        self.count_placed(k, d, one, sibling)
        self.journal.blob_done(k, d, need.desc.size)

    def progress(self) -> None:
        """Tell the progress sink how far the job is: images and bytes done, so an ETA."""
        if self.options.progress is not None:
            emit(self.options.progress, JobProgress(
                self.images_finished, len(self.plan.images) + len(self.plan.unchanged), self.bytes_placed,
                max(self.bytes_total, self.bytes_placed), time.monotonic() - self.started))

    def count_placed(self, k: str, d: Digest, one: CopyResult, sibling: str | None) -> None:
        """Add one placement's counts to the report."""
        report, size = self.report, self.plan.blobs[d].desc.size
        if sibling is None:
            self.bytes_placed += size
            self.progress()
        if one.blobs_copied:
            report.blobs_moved += 1
            report.bytes_moved += size
            report.moved_digests.append(str(d))
            if (k, d) in self.journal.prior_blobs:
                report.blobs_resent += 1
        elif one.blobs_mounted:
            report.blobs_mounted += 1
        elif one.blobs_linked:
            report.blobs_linked += 1
        elif one.blobs_skipped and sibling is None:
            report.blobs_already += 1
            report.bytes_already += size

    # ---- images --------------------------------------------------------------------------------

    async def write_image(self, p: PlannedImage, out: ImageOutcome) -> None:
        """An image's manifests once its blobs are placed (and a referrer's subject is written)."""
        done = self.image_done.get((p.job.path, p.source_digest))
        try:
            if p.plan is not None:
                await self._write_image(p, p.plan, out)
        except _BlobFailed as e:
            out.error = f"blob {e.digest} could not be copied: {e.message}"
        except (OcikitError, OSError) as e:
            out.error = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
        finally:
            self.images_finished += 1
            self.progress()
            if done is not None and not done.done():
                if out.status == "failed":
                    done.set_exception(RuntimeError(out.error or "failed"))
                    done.exception()
                else:
                    done.set_result(None)

    async def _write_image(self, p: PlannedImage, plan_: CopyPlan, out: ImageOutcome) -> None:
        j, target = p.job, self.target
        dest = out.destination
        out.digest, out.source_digest, out.platforms = p.digest, p.source_digest, list(plan_.platforms)
        if not dest.endswith(f"@{p.digest}") and not j.tag:
            out.destination = f"{dest}@{p.digest}"
        key = target.key_for(j.path)
        for d in plan_.blobs:
            await self.ready[(key, d)]
        if not await self._subject_written(p, out):
            return
        jkey = f"{key}:{j.tag or ''}@{p.digest}"
        if self.journal.images.get(jkey) == p.digest:
            out.status, out.error = "done-earlier", None
            return
        dst = target.image_store(j, plan_)
        src = self.sources.store_for(j.source_key)
        result = CopyResult(src.location, dest, plan_.source_root_digest, plan_.root.desc.digest,
                            plan_.root.manifest.media_type, j.tag, platforms=plan_.platforms)
        bare = dataclasses.replace(plan_, blobs={})  # the blobs are placed already
        async with self.limits.hold(_reg(j.source_key), target.registry, light=True):
            await execute_plan(src, dst, bare, j.tag, j.copy_options(self.options.jobs), result, self.opts)
        if j.kind == KIND_REFERRER and j.subject is not None and not j.tag and target.records_referrers:
            # found through the API: keep it discoverable where the target lacks the API
            await record_referrer(dst, referrer_descriptor(plan_.root.manifest), j.subject, self.opts)
        self.journal.image_done(jkey, p.digest)  # type: ignore[arg-type]
        out.status, out.error = "ok", None

    async def _subject_written(self, p: PlannedImage, out: ImageOutcome) -> bool:
        """A referrer waits for its subject's image; False (``out`` says why) when that failed."""
        j = p.job
        if j.kind != KIND_REFERRER or j.subject is None:
            return True
        sub = self.image_done.get((j.path, j.subject))
        if sub is None:
            return True
        try:
            await asyncio.shield(sub)
        except RuntimeError:
            out.error = f"its subject {j.subject} could not be mirrored"
            return False
        return True


async def execute_mirror(plan: MirrorPlan, sources: SourceSet, target: Target, journal: Journal,
                         options: ExecuteOptions | None = None) -> MirrorReport:
    """Transfer what the plan says is missing; return the report (failures inside, not raised)."""
    t0 = time.monotonic()
    report = await _MirrorRun(plan, sources, target, journal, options or ExecuteOptions()).run()
    report.seconds = time.monotonic() - t0
    return report


def _reg(source_key: str) -> str:
    return registry_of(source_key)


def _counter(target: Target) -> CopyResult:
    return CopyResult("mirror", target.location, Digest.of(b""), Digest.of(b""), "", None)


class _BlobFailed(Exception):
    def __init__(self, digest: Digest, message: str) -> None:
        super().__init__(message)
        self.digest = digest
        self.message = message


__all__ = ["ExecuteOptions", "ImageOutcome", "MirrorReport", "execute_mirror"]

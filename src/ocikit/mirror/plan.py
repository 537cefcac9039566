"""The mirror plan: every tag resolved to a digest, every graph walked, blobs deduplicated.

Each image is planned with the copy engine's :func:`~ocikit.ops.copy.plan_copy`; the mirror
plan is the union: one entry per unique blob, with every destination that needs it and
whether it is already there. Nothing is transferred here; ``--dry-run`` stops after this.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Awaitable, Callable, Iterable, Sequence

from ..content import Options, ReferrersAPI, ReferrersLister, Store
from ..core.digest import Digest, is_digest
from ..core.errors import NotFound, OcikitError, Unsupported
from ..model import Descriptor, parse_manifest
from ..ops.copy_plan import CopyPlan, Node, plan_copy, resolve_root
from ..ops.referrers import layout_scan
from ..transports.layout import OCILayout
from .mirror_config import MirrorConfig, destination_path, select_tags
from .places import Limits, SourceSet, Target
from .plan_types import (KIND_IMAGE, KIND_REFERRER, BlobNeed, ImageJob, MirrorPlan, PlannedImage, merge_blobs,
                         summarize)

_FALLBACK_TAG_RE = re.compile(r"^(sha256|sha512)-([a-f0-9]{64}|[a-f0-9]{128})(\.(sig|att|sbom))?$")


def _source_ref(key: str, repository: str, selector: str) -> str:
    sep = "@" if is_digest(selector) else ":"
    if key.startswith("docker://"):
        return f"docker://{repository}{sep}{selector}"
    return f"{key}{sep}{selector}"


async def jobs_from_config(cfg: MirrorConfig, sources: SourceSet, opts: Options = Options(),
                           failures: list["PlannedImage"] | None = None) -> list[ImageJob]:
    """The image jobs a config asks for; repositories are listed where tags are selected by pattern.

    With ``failures``, an entry whose repository cannot be listed is recorded there (as a
    failed image) and the others go on; without it the error is raised.
    """
    jobs: list[ImageJob] = []
    seen: set[tuple[str, str, str, str | None]] = set()

    async def for_entry(entry: Any) -> list[ImageJob]:
        src = entry.source
        if src.image is not None:
            key, repository = f"docker://{src.image.name}", src.image.name
        else:
            key, repository = f"oci:{src.path}", src.path
        selectors = list(entry.explicit_selectors)
        path = destination_path(entry, cfg.rewrite)
        if entry.needs_tag_list:
            try:
                tags = await sources.store_for(key).list_tags(opts)
            except OcikitError as e:
                if failures is None:
                    raise
                where = f"docker://{repository}" if src.image is not None else key
                failures.append(PlannedImage(ImageJob(where, key, repository, "", path, None),
                                             error=f"cannot list the tags of {where}: {e}"))
                return []
            tags = [t for t in tags if not _FALLBACK_TAG_RE.match(t)]
            selectors += [t for t in select_tags(entry, tags) if t not in selectors]
        mode = entry.platform_mode or "all"
        out = []
        for sel in selectors:
            tag = None if is_digest(sel) else sel
            out.append(ImageJob(_source_ref(key, repository, sel), key, repository, sel, path, tag, mode,
                                tuple(entry.platforms), referrers=entry.referrers))
        return out

    for group in await asyncio.gather(*(for_entry(e) for e in cfg.images)):
        for j in group:
            k = (j.source_key, j.selector, j.path, j.tag)
            if k not in seen:
                seen.add(k)
                jobs.append(j)
    return jobs


async def _plan_one(job: ImageJob, store: Store, pinned: Digest | None, opts: Options) -> CopyPlan:
    selector = str(pinned) if pinned else job.selector
    if job.source_key.startswith("docker://") and not is_digest(selector):
        # a tag: one GET gives the bytes, and the digest is the hash of those bytes
        rm = await store.get_manifest(selector, opts)
        m = parse_manifest(rm.raw, rm.media_type, what=f"{job.source}")
        root = Node(Descriptor(m.media_type, Digest.of(rm.raw, rm.digest.algorithm if rm.digest else "sha256"),
                               len(rm.raw)), rm.raw, m)
    else:
        root = await resolve_root(store, selector, opts)
    return await plan_copy(store, root, job.copy_options(), opts)


async def _referrer_jobs(job: ImageJob, plan: CopyPlan, store: Store, tags_cache: dict[str, list[str]],
                         no_api: set[str], opts: Options) -> list[ImageJob]:
    """Referrers of every manifest in an image: the referrers API, else the ``sha256-<hex>`` tags."""
    digests = [n.desc.digest for n in plan.manifests]
    if plan.source_root_digest not in digests:
        digests.append(plan.source_root_digest)
    out: list[ImageJob] = []
    # the API alone (a registry's referrers_api answers None without it; its referrers() would
    # fall back to the tag schema, which the tag scan below covers as whole tagged indexes)
    api: Callable[[Digest, str | None, Options], Awaitable[list[Descriptor] | None]] | None = None
    if isinstance(store, ReferrersAPI):
        api = store.referrers_api
    elif isinstance(store, ReferrersLister):
        api = store.referrers
    elif isinstance(store, OCILayout):
        scan = layout_scan(store)  # a layout keeps referrers as index.json entries with a subject

        async def api(d: Digest, _t: str | None, _o: Options) -> list[Descriptor]:
            return await scan.referrers(d)
    if job.registry in no_api:
        api = None  # this registry said once that it has no referrers API
    try:
        for d in digests if api is not None else []:
            found = await api(d, None, opts)
            if found is None:
                no_api.add(job.registry)
                break
            for r in found:
                out.append(ImageJob(_source_ref(job.source_key, job.repository, str(r.digest)), job.source_key,
                                    job.repository, str(r.digest), job.path, None, "all", (), KIND_REFERRER, d,
                                    True))
    except (Unsupported, NotFound):
        out = []
    # the tag schema: sha256-<hex> (OCI 1.1 fallback) and cosign's sha256-<hex>.sig/.att/.sbom
    if job.source_key not in tags_cache:
        try:
            tags_cache[job.source_key] = await store.list_tags(opts)
        except (Unsupported, NotFound):
            tags_cache[job.source_key] = []
    by_prefix: dict[str, list[str]] = {}
    for t in tags_cache[job.source_key]:
        m = _FALLBACK_TAG_RE.match(t)
        if m:
            by_prefix.setdefault(f"{m.group(1)}:{m.group(2)}", []).append(t)
    for d in digests:
        for t in sorted(by_prefix.get(str(d), [])):
            out.append(ImageJob(_source_ref(job.source_key, job.repository, t), job.source_key, job.repository, t,
                                job.path, t, "all", (), KIND_REFERRER, d, True))
    return out


async def plan_jobs(jobs: Sequence[ImageJob], sources: SourceSet, *, limits: Limits | None = None,
                    pins: dict[tuple[str, str], Digest] | None = None, opts: Options = Options()
                    ) -> list[PlannedImage]:
    """Resolve and walk every job (and the referrers they pull in); failures are kept, not raised."""
    limits = limits or Limits(8, 6)
    pins = pins or {}
    planned: list[PlannedImage] = []
    seen: set[tuple[str, str, str, str | None]] = set()
    tags_cache: dict[str, list[str]] = {}
    no_api: set[str] = set()

    async def one(job: ImageJob) -> list[ImageJob]:
        p = PlannedImage(job)
        planned.append(p)
        try:
            store = sources.store_for(job.source_key)
            async with limits.hold(job.registry, light=True):
                p.plan = await _plan_one(job, store, pins.get((job.source_key, job.selector)), opts)
            if job.referrers:
                async with limits.hold(job.registry, light=True):
                    return await _referrer_jobs(job, p.plan, store, tags_cache, no_api, opts)
        except OcikitError as e:
            p.error = str(e)
        except OSError as e:
            p.error = f"{e.strerror or e}"
        return []

    wave = list(jobs)
    while wave:
        fresh = []
        for j in wave:
            k = (j.source_key, j.selector, j.path, j.tag)
            if k not in seen:
                seen.add(k)
                fresh.append(j)
        more = await asyncio.gather(*(one(j) for j in fresh))
        wave = [j for group in more for j in group]
    order = {(j.source_key, j.selector, j.path, j.tag): i for i, j in enumerate(jobs)}
    planned.sort(key=lambda p: (p.job.kind != KIND_IMAGE,
                                order.get((p.job.source_key, p.job.selector, p.job.path, p.job.tag), 1 << 30),
                                p.job.source))
    return planned


async def check_present(blobs: dict[Digest, BlobNeed], target: Target, key_paths: dict[str, str], *,
                        limits: Limits, known: Iterable[tuple[str, Digest]] = (), opts: Options = Options()
                        ) -> set[tuple[str, Digest]]:
    """Which (target key, blob) pairs the target already holds (``known`` ones are not asked)."""
    present = set(known)
    asks = [(k, d, need.desc) for d, need in blobs.items() for k in need.destinations if (k, d) not in present]

    async def ask(k: str, d: Digest, desc: Descriptor) -> None:
        store = target.store_for(key_paths[k])
        async with limits.hold(target.registry, light=True):
            try:
                if await store.has_blob(desc, opts):
                    present.add((k, d))
            except OcikitError:
                pass

    await asyncio.gather(*(ask(*a) for a in asks))
    return present


async def build_plan(jobs: Sequence[ImageJob], sources: SourceSet, target: Target, *, limits: Limits,
                     pins: dict[tuple[str, str], Digest] | None = None,
                     known_present: Iterable[tuple[str, Digest]] = (), check_target: bool = True,
                     opts: Options = Options()) -> MirrorPlan:
    """Plan a whole mirror job against a target."""
    planned = await plan_jobs(jobs, sources, limits=limits, pins=pins, opts=opts)
    key_paths = {target.key_for(p.job.path): p.job.path for p in planned}
    blobs = merge_blobs(planned, target.key_for)
    present = set(known_present)
    assumed = target.assumed_present
    if assumed:
        for d, need in blobs.items():
            if d in assumed:
                present.update((k, d) for k in need.destinations)
    if check_target:
        present = await check_present(blobs, target, key_paths, limits=limits, known=present, opts=opts)
    return MirrorPlan(planned, blobs, present, key_paths, check_target)


__all__ = ["BlobNeed", "ImageJob", "KIND_IMAGE", "KIND_REFERRER", "MirrorPlan", "PlannedImage", "build_plan",
           "check_present", "jobs_from_config", "merge_blobs", "plan_jobs", "summarize"]  # types from plan_types

"""A mirror job end to end: jobs (from a config or a bundle) -> plan -> execute -> bundle metadata.

This is the library entry point the CLI calls::

    job = MirrorJob(config=load_config("M.yaml"), to="docker://mirror:5000/ocp")
    report = await run_mirror(job)
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..content import Options
from ..core.errors import UsageError
from ..memtune import peak_rss_kb
from ..ops.recompress import Recompression
from ..progress import ProgressSink
from ..transports import OpenOptions
from .bundle import BundleSource, BundleTarget
from ..trust.lookaside import RegistriesD
from .mirror_config import MirrorConfig
from .mirror_signatures import carry_lookaside, drop_signature_jobs
from .execute import ExecuteOptions, MirrorReport, execute_mirror
from .journal import Journal, default_journal_path
from .places import Limits, RegistryTarget, SourceSet, Target, parse_target
from .plan import ImageJob, MirrorPlan, PlannedImage, build_plan, jobs_from_config
from .prune import PruneOutcome, prune_candidates, prune_tags
from .recompressed import execute_recompressed
from .resync import find_unchanged
from .state import MirrorState, TagRecord, default_state_path


@dataclass
class MirrorJob:
    """What to mirror where. Exactly one of ``config`` and ``bundle`` (a ``dir:`` path) is the source."""

    to: str
    config: MirrorConfig | None = None
    bundle: str | None = None
    src_options: OpenOptions = field(default_factory=OpenOptions)
    dest_options: OpenOptions = field(default_factory=OpenOptions)
    jobs: int = 8
    per_registry: int = 6
    journal: str | None = None
    """Journal path; None: a default path derived from the job; "" disables the journal."""
    since: str | None = None
    progress: ProgressSink | None = None
    state: str | None = None
    """State path (tags this job wrote); None: a default path derived from the origin and target;
    "" keeps it in memory only (no skipping of rewritten images, nothing to prune later)."""
    resync: bool = True
    """Skip images whose tag is unchanged at the source and in place at the target (:mod:`.resync`)."""
    trust_state: bool = False
    """Take a tag the state recorded to be in place at the target without asking (:mod:`.resync`)."""
    prune: bool = False
    """Remove the tags this job wrote in earlier runs that it no longer selects (:mod:`.prune`)."""
    recompress: Recompression | None = None
    """``--dest-compress-format``: images copied with their layers recompressed (:mod:`.recompressed`)."""
    carry_signatures: bool = True
    """Signatures, attestations, SBOMs and other referrers, and lookaside signatures, travel with the
    images; False (``--remove-signatures``) drops them all (:mod:`.mirror_signatures`)."""
    registries_d: str | None = None
    """Where registries.d names the lookaside stores (None: the default directory)."""
    policy: str | None = None
    """``--policy``: a containers-policy.json file ("system": the system's) every image must pass
    before anything is written (:mod:`.mirror_policy`)."""

    def origin(self) -> str:
        """What the job copies from: the config file or the bundle directory."""
        if self.config is not None and self.config.path:
            return self.config.path
        return self.bundle or "-"

    def open_target(self) -> Target:
        if self.to.startswith("dir:"):
            if len(self.to) <= 4:
                raise UsageError("invalid mirror target 'dir:': expected dir:BUNDLE (a directory path)")
            if self.bundle:
                raise UsageError("--from dir:BUNDLE needs a registry (or oci:) target, not another bundle")
            return BundleTarget(self.to[4:], since=self.since)
        if self.since:
            raise UsageError("--since applies to a dir: bundle target")
        return parse_target(self.to, self.dest_options)


@dataclass
class Prepared:
    """A planned job, ready to execute (or to print for ``--dry-run``)."""

    job: MirrorJob
    sources: SourceSet
    target: Target
    jobs: list[ImageJob]
    plan: MirrorPlan
    journal: Journal
    bundle: BundleSource | None
    job_id: str
    state: MirrorState
    seconds: float = 0.0
    """How long building the jobs and planning took."""
    prune: list[TagRecord] = field(default_factory=list)
    """Tags ``--prune`` removes (found while preparing, removed after the transfer)."""

    async def close(self) -> None:
        await self.sources.close()
        await self.target.close()


def job_identity(jobs: list[ImageJob], target: str) -> str:
    """A stable id for a job: what is copied from where to where (the journal's name)."""
    doc = {"target": target, "jobs": sorted(json.dumps(j.to_dict(), sort_keys=True) + j.selector for j in jobs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


async def prepare(job: MirrorJob, *, check_target: bool | None = None, dry_run: bool = False,
                  verify: bool = False) -> Prepared:
    """Build the jobs, open the journal (not for a dry run or a verify), plan everything.

    ``check_target`` (default: for a dry run, and for local targets where asking is a stat)
    asks the target which blobs it holds already; a run against a registry finds out as it
    goes instead (the copy engine asks before each transfer anyway).
    """
    if (job.config is None) == (job.bundle is None):
        raise UsageError("a mirror needs exactly one of --config M.yaml and --from dir:BUNDLE")
    t0 = time.monotonic()
    sources = SourceSet(job.src_options)
    target = job.open_target()
    bundle = None
    failures: list[PlannedImage] = []
    try:
        opts = Options(progress=job.progress)
        if job.bundle is not None:
            bundle = BundleSource.open(job.bundle)
            sources.fixed[bundle.key] = bundle.layout
            jobs = bundle.jobs()
        else:
            assert job.config is not None
            jobs = await jobs_from_config(job.config, sources, opts, failures)
        if not job.carry_signatures:
            jobs = drop_signature_jobs(jobs)
        job_id = job_identity(jobs, target.location)
        jpath = None if job.journal == "" else (job.journal or default_journal_path(job_id))
        journal = Journal(None, job_id) if dry_run or verify else Journal.open(jpath, job_id)
        if check_target is None:
            check_target = not verify and (dry_run or target.registry == "local")
        limits = Limits(job.jobs, job.per_registry)
        known = {(k, d) for (k, d) in journal.blobs}
        spath = None if job.state == "" else (job.state or default_state_path(job.origin(), target.location))
        state = MirrorState.load(spath, target.location)
        unchanged = []
        if job.resync and not verify and isinstance(target, RegistryTarget):
            unchanged = await find_unchanged(jobs, sources, target, state, limits=limits, pins=journal.pins,
                                             opts=opts, byte_exact=job.recompress is None,
                                             trust_state=job.trust_state)
        skip = {id(u.job) for u in unchanged}
        plan = await build_plan([j for j in jobs if id(j) not in skip], sources, target, limits=limits,
                                pins=journal.pins, known_present=known, check_target=check_target, opts=opts)
        plan.unchanged = unchanged
        if job.policy:
            from ..trust.lookaside import RegistriesD
            from ..trust.policy import load_policy
            from .mirror_policy import enforce_policy
            plan = await enforce_policy(plan, sources, target,
                                        load_policy(None if job.policy == "system" else job.policy),
                                        RegistriesD.load(job.registries_d), opts)
        if isinstance(target, BundleTarget):
            plan = target.drop_unchanged(plan)
        plan.images[:0] = failures  # entries that could not even be listed: reported, not fatal
        for p in plan.images:
            if p.plan is not None and not p.job.selector.startswith(("sha256:", "sha512:")):
                journal.pin(p.job.source_key, p.job.selector, p.plan.source_root_digest)
        prep = Prepared(job, sources, target, jobs, plan, journal, bundle, job_id, state, time.monotonic() - t0)
        if job.prune:
            if not isinstance(target, RegistryTarget):
                raise UsageError("--prune applies to a registry target (docker://HOST/PREFIX)")
            selected = [(j.path, j.tag) for j in jobs if j.tag]
            # an entry whose repository could not be listed selects nothing known: its tags are spared
            spared = [p.job.path for p in plan.images if not p.ok]
            prep.prune = prune_candidates(state, selected, spared)
        return prep
    except BaseException:
        await sources.close()
        await target.close()
        raise


async def execute(prep: Prepared) -> MirrorReport:
    """Transfer, then (for a bundle target) write the metadata when everything succeeded."""
    try:
        eopts = ExecuteOptions(prep.job.jobs, prep.job.per_registry, prep.job.progress,
                               prep.job.dest_options.retry_times)
        if prep.job.recompress is not None:
            if isinstance(prep.target, BundleTarget):
                raise UsageError("--dest-compress-format applies to a registry or oci: target, not a bundle")
            report = await execute_recompressed(prep.plan, prep.sources, prep.target, prep.journal, eopts,
                                                prep.job.recompress)
        else:
            report = await execute_mirror(prep.plan, prep.sources, prep.target, prep.journal, eopts)
            if prep.job.carry_signatures:
                await carry_lookaside(prep.plan, report, prep.target, RegistriesD.load(prep.job.registries_d))
        if report.ok and isinstance(prep.target, BundleTarget):
            srcs = [j.source for j in prep.jobs]
            prep.target.finalize(prep.plan, sources=srcs,
                                 config_path=prep.job.config.path if prep.job.config else None)
        record_state(prep, report)
        if prep.job.prune:
            report.pruned = [o.to_dict() for o in await prune(prep)]
        prep.state.save()
        report.requests = request_counts(prep)
        if isinstance(prep.target, RegistryTarget):
            report.uploads_resumed, report.upload_bytes_resent = prep.target.cache.upload_resumes()
        report.peak_rss_kb = peak_rss_kb()
        prep.journal.finish(report.ok)
        return report
    finally:
        await prep.close()


def record_state(prep: Prepared, report: MirrorReport) -> None:
    """Every tag this run wrote (or found in place) goes to the job's state."""
    if isinstance(prep.target, BundleTarget):
        return
    for p, out in zip(prep.plan.images, report.images):
        digest = out.digest or p.digest  # a recompressed image's own digest
        if p.job.tag and out.status in ("ok", "done-earlier") and digest and p.source_digest:
            prep.state.record(TagRecord(p.job.path, p.job.tag, digest, p.source_digest, p.job.source))
    for u in prep.plan.unchanged:
        assert u.job.tag is not None
        prep.state.record(TagRecord(u.job.path, u.job.tag, u.digest, u.source_digest, u.job.source))


async def prune(prep: Prepared, *, dry_run: bool = False) -> list[PruneOutcome]:
    """Remove (or list) the tags ``prepare`` found for ``--prune``."""
    if not prep.job.prune:
        return []
    return await prune_tags(prep.target, prep.state, prep.prune, dry_run=dry_run,
                            limits=Limits(prep.job.jobs, prep.job.per_registry))


def request_counts(prep: Prepared) -> dict[str, dict[str, int]]:
    """HTTP requests per registry (sources and target) and method, so far."""
    out = prep.sources.cache.request_counts()
    target = prep.target.cache.request_counts() if isinstance(prep.target, RegistryTarget) else {}
    for host, counts in target.items():
        mine = out.setdefault(host, {})
        for m, n in counts.items():
            mine[m] = mine.get(m, 0) + n
    return out


async def run_mirror(job: MirrorJob) -> MirrorReport:
    """Plan and execute a mirror job; failures are in the report (``report.ok``)."""
    return await execute(await prepare(job))


def mapping(prep: Prepared) -> list[dict[str, Any]]:
    """Source -> destination of every planned image (for the outputs)."""
    out = []
    for p in prep.plan.images:
        if p.plan is None:
            continue
        out.append({"repository": p.job.repository, "path": p.job.path, "tag": p.job.tag, "digest": str(p.digest),
                    "sourceDigest": str(p.source_digest), "source": p.job.source, "kind": p.job.kind,
                    "destination": prep.target.display(p.job.path, p.job.tag)})
    return out


__all__ = ["MirrorJob", "Prepared", "execute", "job_identity", "mapping", "prepare", "prune", "record_state",
           "request_counts", "run_mirror"]

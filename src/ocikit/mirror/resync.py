"""A re-run's shortcut: images whose tag is unchanged at the source and in place at the target.

For each tagged image of a job the target is asked for the digest its tag names now, and at
the same time the source for the tag's digest with one ``HEAD`` (``Docker-Content-Digest``; a
digest selector needs no request):

- a target that offers ocikit's tag-digests extension (advertised by ``GET
  /v2/_oci/ext/discover``, asked once per registry) answers for a whole repository with one
  ``GET /v2/<name>/_ocikit/tags/digests``;
- any other registry gets one ``HEAD`` per tag, all at once within the per-registry limit.

An image is unchanged when the target's tag names the digest this job would write: the
source digest for a byte-exact copy, or the digest the job's state recorded for that source
digest (a rewritten index). Unchanged images are not planned: no manifest GET, no blob asked.

``trust_state`` (``mirror --trust-state``) skips the target's side for a tag the job's state
recorded: the tag is taken to name what this job wrote there last, so a no-op re-run is one
source ``HEAD`` per tag and nothing at the target (half the requests against a registry
without the extension). The price, documented: a tag someone else moved at the target is
not put back until a run without the flag (or ``--recheck``). A tag the state lacks is
still asked at the target.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from ..content import Options
from ..core.digest import Digest, is_digest
from ..core.errors import NotFound, OcikitError
from .places import Limits, RegistryTarget, SourceSet
from .plan_types import KIND_IMAGE, ImageJob, Unchanged
from .state import MirrorState

TAG_DIGESTS_EXTENSION = "_ocikit"
TAG_DIGESTS_ENDPOINT = "_ocikit/tags/digests"


async def offers_tag_digests(client: Any) -> bool:
    """Whether the registry lists ocikit's tag-digests extension in ``/v2/_oci/ext/discover``."""
    from ..transports.registry.client import read_json
    try:
        async with client.request("GET", "/v2/_oci/ext/discover", ok=(200, 404), retry=False) as resp:
            if resp.status != 200:
                return False
            doc = await read_json(resp, f"{client.host}: extensions")
    except OcikitError:
        return False
    exts = doc.get("extensions")
    return isinstance(exts, list) and any(isinstance(e, dict) and e.get("name") == TAG_DIGESTS_EXTENSION
                                          and TAG_DIGESTS_ENDPOINT in (e.get("endpoints") or []) for e in exts)


async def repository_tag_digests(client: Any, repository: str) -> dict[str, Digest]:
    """Every tag of ``repository`` with its digest, in one request ({} for an unknown repository)."""
    from ..transports.registry.auth import repository_scope
    from ..transports.registry.client import read_json
    what = f"{client.host}/{repository}: tag digests"
    async with client.request("GET", f"/v2/{repository}/{TAG_DIGESTS_ENDPOINT}", ok=(200, 404), what=what,
                              scopes=(repository_scope(repository, "pull", "push"),)) as resp:
        if resp.status == 404:
            return {}
        doc = await read_json(resp, what)
    tags = doc.get("tags")
    if not isinstance(tags, dict):
        return {}
    return {t: Digest(d) for t, d in tags.items() if isinstance(t, str) and isinstance(d, str) and is_digest(d)}


class TargetTags:
    """What the target's tags name now: one request per repository, or one HEAD per tag."""

    def __init__(self, target: RegistryTarget, limits: Limits, opts: Options) -> None:
        self.target, self.limits, self.opts = target, limits, opts
        self._extension: asyncio.Task[bool] | None = None
        self._repos: dict[str, asyncio.Task[dict[str, Digest]]] = {}

    async def extension(self) -> bool:
        if self._extension is None:
            self._extension = asyncio.ensure_future(offers_tag_digests(self.target.client()))
        return await self._extension

    async def _repo(self, path: str) -> dict[str, Digest]:
        async with self.limits.hold(self.target.registry, light=True):
            return await repository_tag_digests(self.target.client(), self.target.repository(path))

    async def digest(self, path: str, tag: str) -> Digest | None:
        if await self.extension():
            task = self._repos.get(path)
            if task is None:
                task = self._repos[path] = asyncio.ensure_future(self._repo(path))
            return (await task).get(tag)
        async with self.limits.hold(self.target.registry, light=True):
            try:
                return (await self.target.store_for(path).resolve(tag, self.opts)).digest
            except NotFound:
                return None


async def find_unchanged(jobs: Iterable[ImageJob], sources: SourceSet, target: RegistryTarget, state: MirrorState,
                         *, limits: Limits, pins: dict[tuple[str, str], Digest], opts: Options = Options(),
                         byte_exact: bool = True, trust_state: bool = False) -> list[Unchanged]:
    """The jobs whose image needs nothing (see the module doc); errors just mean "plan it".

    ``byte_exact`` False (a recompressing job): every image's target digest is the state's.
    ``trust_state``: a tag the state recorded is not asked at the target (see the module doc)."""
    tags = TargetTags(target, limits, opts)

    async def check(job: ImageJob) -> Unchanged | None:
        if job.kind != KIND_IMAGE or job.tag is None:
            return None
        async def source_digest() -> Digest:
            if is_digest(job.selector):
                return Digest(job.selector)
            async with limits.hold(job.registry, light=True):
                return (await sources.store_for(job.source_key).resolve(job.selector, opts)).digest

        try:
            rec = state.get(job.path, job.tag)
            if trust_state and rec is not None:
                now, sd = rec.digest, await source_digest()
            else:
                # both sides at once: a re-run is latency-bound (a new tag costs one source HEAD more)
                now, sd = await asyncio.gather(tags.digest(job.path, job.tag), source_digest())
            if now is None:
                return None
            pinned = pins.get((job.source_key, job.selector))
            if pinned is not None and pinned != sd:
                return None  # a killed run copies what it pinned
            if job.mode == "all" and byte_exact:
                want = sd
            else:
                if rec is None or rec.source_digest != sd:
                    return None
                want = rec.digest
            if now != want:
                return None
        except (OcikitError, OSError):
            return None
        return Unchanged(job, sd, want)

    found = await asyncio.gather(*(check(j) for j in jobs))
    return [u for u in found if u is not None]


__all__ = ["TAG_DIGESTS_ENDPOINT", "TAG_DIGESTS_EXTENSION", "TargetTags", "find_unchanged", "offers_tag_digests",
           "repository_tag_digests"]

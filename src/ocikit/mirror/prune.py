"""``mirror --prune``: remove at the target the tags this job wrote earlier that its config no longer selects.

Only tags recorded in the job's state (:mod:`.state`) are candidates, and one is removed only
while it still names the digest the job wrote: a tag someone else re-pushed, or never the
job's, stays. A registry that deletes tags (``DELETE /v2/<name>/manifests/<tag>``, OCI 1.1)
loses just the tag; one that only deletes manifests (docker-registry 2.8) loses the manifest
only when no other tag of the repository names it. The content goes with the target's gc.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Iterable

from ..content import Options
from ..core.digest import Digest
from ..core.errors import NotFound, OcikitError, Unsupported, UsageError
from .places import Limits, RegistryTarget
from .resync import TargetTags
from .state import MirrorState, TagRecord


@dataclass
class PruneOutcome:
    destination: str
    digest: Digest
    status: str
    """``removed``, ``would-remove`` (a dry run), ``gone`` (not at the target any more), ``kept`` or ``failed``."""
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"destination": self.destination, "digest": str(self.digest), "status": self.status}
        if self.reason:
            d["reason"] = self.reason
        return d


def prune_candidates(state: MirrorState, selected: Iterable[tuple[str, str]],
                     spared_paths: Iterable[str] = ()) -> list[TagRecord]:
    """Recorded tags the job no longer selects; paths in ``spared_paths`` (a failed listing) are kept."""
    keep = set(selected)
    spared = set(spared_paths)
    return [r for _, r in sorted(state.tags.items()) if (r.path, r.tag) not in keep and r.path not in spared]


async def _delete_tag(target: RegistryTarget, rec: TagRecord, tags: TargetTags, opts: Options) -> str | None:
    """Remove one tag; returns why it was kept instead (None: removed)."""
    from ..transports.registry.auth import repository_scope
    client, repo = target.client(), target.repository(rec.path)
    scopes = (repository_scope(repo, "delete"),)
    try:
        async with client.request("DELETE", f"/v2/{repo}/manifests/{rec.tag}", scopes=scopes, ok=(200, 202),
                                  what=f"{target.display(rec.path, rec.tag)}: delete tag"):
            return None
    except (Unsupported, NotFound):
        pass  # no tag deletes here: delete the manifest, if no other tag names it
    store = target.store_for(rec.path)
    for other in await store.list_tags(opts):
        if other != rec.tag and await tags.digest(rec.path, other) == rec.digest:
            return f"the registry cannot delete a tag alone and tag {other} names the same manifest"
    await store.delete_manifest(str(rec.digest), opts)
    return None


async def prune_tags(target: Any, state: MirrorState, candidates: list[TagRecord], *, limits: Limits,
                     dry_run: bool = False, opts: Options = Options()) -> list[PruneOutcome]:
    """Remove (or, ``dry_run``, list) ``candidates``; the state forgets every tag that is no longer the job's."""
    if not isinstance(target, RegistryTarget):
        raise UsageError("--prune applies to a registry target (docker://HOST/PREFIX)")
    tags = TargetTags(target, limits, opts)

    async def one(rec: TagRecord) -> PruneOutcome:
        out = PruneOutcome(target.display(rec.path, rec.tag), rec.digest, "failed")
        try:
            now = await tags.digest(rec.path, rec.tag)
            if now is None:
                out.status = "gone"
            elif now != rec.digest:
                out.status, out.reason = "kept", f"it names {now} now, not what this job wrote"
            elif dry_run:
                out.status = "would-remove"
                return out
            else:
                async with limits.hold(target.registry, light=True):
                    why = await _delete_tag(target, rec, tags, opts)
                out.status, out.reason = ("kept", why) if why else ("removed", None)
                if why:
                    return out  # still the job's tag: a later prune tries again
            state.forget(rec.path, rec.tag)
        except (OcikitError, OSError) as e:
            out.reason = str(e) if isinstance(e, OcikitError) else f"{e.strerror or e}"
        return out

    return list(await asyncio.gather(*(one(r) for r in candidates)))


__all__ = ["PruneOutcome", "prune_candidates", "prune_tags"]

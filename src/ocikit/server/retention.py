"""Retention: ``retention:`` rules decide which tags and untagged manifests a repository keeps.

Each repository takes the first rule whose ``repository`` pattern (fnmatch) matches it. A tag is
kept when it is one of the rule's ``keep-last`` most recently pushed tags (the time its tag was
written), matches one of ``keep-tags`` (regular expressions, matched against the whole tag), or
was pulled within ``keep-pulled-within`` (pulls are recorded by the server, at most once per
:data:`PULL_RECORD_EVERY` per tag). Every other tag goes. With ``untagged-for``, a manifest that
no kept tag reaches — itself, as a child of a kept index, or as a referrer (at any depth) of a
kept manifest — goes too once it was pushed longer ago than that. A manifest that a kept one
reaches is never deleted. A rule that would leave a repository with no tag at all is refused
(reported, nothing deleted there) unless it says ``allowEmpty: true``.

Only tags and manifest revisions are removed; the blobs they leave go at the next gc sweep.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ..digest import Digest
from ..errors import ManifestInvalid, ManifestUnknown, UsageError
from ..model import ImageIndex, parse_manifest
from .cache_config import RetentionRule, parse_cache
from .config import ServerConfig, load_config
from .storage.drivers import open_driver
from .storage.registry import RegistryStorage, repo_key

log = logging.getLogger("ocikit.server.retention")

PULL_RECORD_EVERY = 600.0
"""A tag's last pull is written at most this often (seconds): reads stay reads."""


@dataclass
class RetentionReport:
    """What retention removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    tags: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[str, Digest]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Repositories where the rule would have deleted every tag (no ``allowEmpty``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"dryRun": self.dry_run, "tags": [f"{r}:{t}" for r, t in self.tags],
                "manifests": [f"{r}@{d}" for r, d in self.manifests], "kept": [f"{r}:{t}" for r, t in self.kept],
                "refused": self.refused}

    def lines(self) -> list[str]:
        """One line per removal (and per refused repository), for the command's text output."""
        verb = "would remove" if self.dry_run else "removed"
        return ([f"{verb} tag {r}:{t}" for r, t in self.tags] + [f"{verb} manifest {r}@{d}" for r, d in self.manifests]
                + [f"kept every tag of {r}: the retention rule would delete them all (allowEmpty: true allows it)"
                   for r in self.refused])


def rule_for(rules: list[RetentionRule], repository: str) -> RetentionRule | None:
    for r in rules:
        if fnmatch.fnmatchcase(repository, r.repository):
            return r
    return None


def pull_key(name: str, tag: str) -> str:
    return repo_key(name, "_pulls", tag)


class PullRecorder:
    """Remembers when tags were pulled (for ``keep-pulled-within``), writing rarely."""

    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage
        self._written: dict[tuple[str, str], float] = {}

    async def pulled(self, name: str, tag: str) -> None:
        now = time.monotonic()
        last = self._written.get((name, tag))
        if last is not None and now - last < PULL_RECORD_EVERY:
            return
        self._written[(name, tag)] = now
        if len(self._written) > 100_000:
            self._written.clear()
        await self.storage.driver.put(pull_key(name, tag), b"", durable=False)


async def _pushed_at(storage: RegistryStorage, name: str, tag: str) -> float:
    return await storage.driver.mtime(repo_key(name, "_manifests", "tags", tag)) or 0.0


async def _reachable(storage: RegistryStorage, name: str, roots: set[Digest]) -> set[Digest]:
    """``roots`` with every child of an index and every referrer, at any depth."""
    seen: set[Digest] = set()
    todo = list(roots)
    while todo:
        d = todo.pop()
        if d in seen:
            continue
        seen.add(d)
        try:
            stored = await storage.get_manifest(name, d)
            m = parse_manifest(stored.raw, stored.media_type)
        except (ManifestUnknown, ManifestInvalid):
            continue
        if isinstance(m, ImageIndex):
            todo.extend(c.digest for c in m.manifests)
        todo.extend(Digest(r["digest"]) for r in await storage.referrers(name, d))
    return seen


async def _keep_tags(storage: RegistryStorage, name: str, rule: RetentionRule, tags: list[str],
                     now: float) -> set[str]:
    keep: set[str] = set()
    if rule.keep_last:
        times = [(await _pushed_at(storage, name, t), t) for t in tags]
        keep.update(t for _, t in sorted(times, reverse=True)[:rule.keep_last])
    keep.update(t for t in tags if any(p.fullmatch(t) for p in rule.keep_tags))
    if rule.keep_pulled_within is not None:
        for t in tags:
            pulled = await storage.driver.mtime(pull_key(name, t))
            if pulled is not None and now - pulled <= rule.keep_pulled_within:
                keep.add(t)
    return keep


async def apply_retention(storage: RegistryStorage, rules: list[RetentionRule], *, dry_run: bool = False,
                          now: float | None = None) -> RetentionReport:
    """Apply ``rules`` to every repository of ``storage``."""
    now = time.time() if now is None else now
    report = RetentionReport(dry_run)
    for name in await storage.catalog():
        rule = rule_for(rules, name)
        if rule is None:
            continue
        tags = await storage.list_tags(name) or []
        keep = await _keep_tags(storage, name, rule, tags, now)
        if tags and not keep and not rule.allow_empty:
            report.refused.append(name)
            log.warning("retention: %s: the rule for %r would delete every tag; skipped (allowEmpty: true "
                        "allows it)", name, rule.repository)
            continue
        roots = {d for t in keep if (d := await storage.resolve_tag(name, t)) is not None}
        for t in tags:
            if t in keep:
                report.kept.append((name, t))
                continue
            report.tags.append((name, t))
            if not dry_run:
                await storage.delete_tag(name, t)
        if rule.untagged_for is None:
            continue
        reached = await _reachable(storage, name, roots)
        for d in await storage.list_manifests(name):
            if d in reached:
                continue
            pushed = await storage.driver.mtime(repo_key(name, "_manifests", "revisions", d.algorithm, d.encoded))
            if pushed is not None and now - pushed < rule.untagged_for:
                continue
            report.manifests.append((name, d))
            if not dry_run:
                await storage.delete_manifest(name, d)
    return report


async def apply_retention_file(config: ServerConfig, config_path: str, *, dry_run: bool = False,
                               now: float | None = None) -> RetentionReport:
    """Apply the ``retention:`` rules of the server configuration at ``config_path`` to the
    storage ``config`` names (a directory or a bucket)."""
    rules = parse_cache(load_config(config_path).extra_sections).retention
    if not rules:
        raise UsageError(f"{config_path}: no retention: rules")
    driver = open_driver(config)
    try:
        return await apply_retention(RegistryStorage(driver), rules, dry_run=dry_run, now=now)
    finally:
        await driver.close()

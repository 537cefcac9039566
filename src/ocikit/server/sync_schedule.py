"""Scheduled sync: ``sync:`` entries are mirror jobs the server runs into itself, on an interval
or at the times of a cron expression.

Each entry is a mirror configuration (``images:`` as ``ocikit mirror`` reads them: tags by
regex or semver, platforms, referrers; ``rewrite:``) plus when and where::

    sync:
      - interval: 1h                 # run at start, then this long after each run ends
        prefix: mirrored             # images land under LOCAL/mirrored/<path>
        tls-verify: true             # for the sources
        images:
          - source: docker://registry.example/library/httpd
            include: ["^2\\.4\\."]
            platforms: [linux/amd64, linux/arm64]
            platform-mode: rewrite

``onlySigned: true`` with ``key: cosign.pub`` (sigstore signatures by that key, naming the source
repository) or ``policy: policy.json`` (any containers-policy.json; ``registries.d`` names the
lookaside stores for GPG signatures) refuses every image that is not signed: it is reported in
the run's ``sync.done`` event and nothing of it is written (``ocikit mirror --policy``).

Instead of ``interval:``, ``schedule: "0 3 * * *"`` runs the entry at the times of a
five-field cron expression (:mod:`ocikit.core.cron`: minute hour day-of-month month
day-of-week, names, ranges, steps, ``@daily`` and the other macros), **in UTC**; not at start.
One of the two is required, not both. A time that comes while the entry's previous run is
still going is skipped (and logged): one entry never runs twice at once.

A run is ``ocikit mirror`` with this server as the target (over HTTP, on its own listen
address), journaled under ``ROOT/sync/``: a run after a complete one sends nothing it verified
before. Each run ends with a ``sync.done`` event.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..core.cron import CronSchedule
from ..core.errors import CronInvalid, OcikitError, UsageError
from ..mirror.mirror_config import MirrorConfig, parse_config
from ..mirror.run import MirrorJob, run_mirror
from ..core.reference import validate_repository_name
from ..transports.open_options import OpenOptions
from .cache_config import parse_cron, parse_duration
from .schedules import run_at_times, run_every

log = logging.getLogger("ocikit.server.sync")

_KEYS = {"interval", "schedule", "prefix", "tls-verify", "cert-dir", "auth-file", "images", "rewrite", "name",
         "onlySigned", "key", "policy", "registries.d"}


@dataclass(frozen=True)
class SyncEntry:
    """One ``sync[]`` entry, checked."""

    name: str
    mirror: MirrorConfig
    interval: float | None
    """Seconds between the end of a run and the next (``None``: on ``schedule``)."""
    prefix: str = ""
    tls_verify: bool = True
    cert_dir: str | None = None
    auth_file: str | None = None
    key: str | None = None
    """``onlySigned`` with a sigstore public key."""
    policy: str | None = None
    """``onlySigned`` with a containers-policy.json."""
    registries_d: str | None = None
    schedule: CronSchedule | None = None
    """Run at these times (UTC) instead of on an interval."""


def parse_sync(entries: list[dict[str, Any]]) -> list[SyncEntry]:
    """Check the raw ``sync:`` entries (mirror rules for ``images``/``rewrite``)."""
    out = []
    for i, e in enumerate(entries):
        where = f"sync[{i}]"
        unknown = sorted(set(e) - _KEYS)
        if unknown:
            raise UsageError(f"config: {where}: unknown keys {unknown}")
        interval, schedule = _when(e, where)
        prefix = str(e.get("prefix") or "").strip("/")
        if prefix:
            validate_repository_name(prefix)
        tls = e.get("tls-verify", True)
        if not isinstance(tls, bool):
            raise UsageError(f"config: {where}.tls-verify: expected true or false")
        mirror = parse_config({k: e[k] for k in ("images", "rewrite") if k in e}, f"config: {where}")
        only = e.get("onlySigned", False)
        if not isinstance(only, bool):
            raise UsageError(f"config: {where}.onlySigned: expected true or false")
        key, policy = e.get("key"), e.get("policy")
        if only and (key is None) == (policy is None):
            raise UsageError(f"config: {where}.onlySigned: needs exactly one of key (a cosign public key) "
                             "and policy (a containers-policy.json)")
        if not only and (key or policy):
            raise UsageError(f"config: {where}: key and policy apply with onlySigned: true")
        for name, path in (("key", key), ("policy", policy)):
            if path is not None and not (isinstance(path, str) and os.path.isfile(path)):
                raise UsageError(f"config: {where}.{name}: {path!r} is not a file")
        out.append(SyncEntry(str(e.get("name") or i), mirror, interval, prefix, tls,
                             e.get("cert-dir"), e.get("auth-file"), key, policy, e.get("registries.d"), schedule))
    return out


def _when(e: dict[str, Any], where: str) -> tuple[float | None, CronSchedule | None]:
    """An entry's ``interval`` (a duration) or ``schedule`` (a cron expression): exactly one."""
    if ("interval" in e) == ("schedule" in e):
        raise UsageError(f"config: {where}: needs exactly one of interval (a duration, e.g. 1h) and "
                         'schedule (a cron expression in UTC, e.g. "0 3 * * *")')
    if "schedule" in e:
        try:
            return None, parse_cron(e["schedule"], f"{where}.schedule")
        except CronInvalid as err:
            text = str(e["schedule"]).strip()
            if isinstance(e["schedule"], (int, float, str)) and len(text.split()) == 1 and text[:1] != "@":
                raise CronInvalid(f"{err} (a duration goes in interval:)") from None
            raise
    interval = parse_duration(e["interval"], f"{where}.interval")
    if interval < 1:
        raise UsageError(f"config: {where}.interval: at least 1s")
    return interval, None


def job_for(entry: SyncEntry, listen: str, root: str) -> MirrorJob:
    """The mirror job of one run: this server (plain HTTP on its own address) as the target,
    journaled under ``root/sync/`` (a filesystem root) or where ``ocikit mirror`` keeps journals."""
    host, _, port = listen.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host
    target = f"docker://{host}:{port}" + (f"/{entry.prefix}" if entry.prefix else "")
    journal = None  # with storage in a bucket: the default journal place of `ocikit mirror`
    if root and os.path.isdir(root):
        journal = os.path.join(root, "sync", f"{entry.name}.journal")
        os.makedirs(os.path.dirname(journal), exist_ok=True)
    return MirrorJob(to=target, config=entry.mirror, journal=journal,
                     src_options=OpenOptions(tls_verify=entry.tls_verify, cert_dir=entry.cert_dir,
                                             auth_file=entry.auth_file),
                     dest_options=OpenOptions(tls_verify=False), jobs=4, per_registry=4,
                     policy=_policy_file(entry, root), registries_d=entry.registries_d)


def _policy_file(entry: SyncEntry, root: str) -> str | None:
    """The policy a signed-only sync enforces: the one given, or one made for ``key``."""
    if entry.key is None:
        return entry.policy
    import json
    import tempfile

    from ..durable import atomic_write

    directory = os.path.join(root, "sync") if root and os.path.isdir(root) else tempfile.gettempdir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{entry.name}.policy.json")
    rule = {"type": "sigstoreSigned", "keyPath": os.path.abspath(entry.key),
            "signedIdentity": {"type": "matchRepository"}}
    atomic_write(path, json.dumps({"default": [rule]}).encode(), sync=False)
    return path


async def sync_loop(entry: SyncEntry, job: Callable[[], MirrorJob], ready: asyncio.Event,
                    emit: Callable[[str, dict[str, Any]], None] | None) -> None:
    """Once the server listens: run ``entry`` at once, then ``interval`` after each run ends; or,
    with a ``schedule``, at each of its times (a run still going when the next time comes: that
    time is skipped)."""
    await ready.wait()

    async def run_once() -> None:
        try:
            report = await run_mirror(job())
            data = {"sync": entry.name, "ok": report.ok, "images": len(report.images),
                    "blobsMoved": report.blobs_moved, "bytesMoved": report.bytes_moved,
                    "blobsSkipped": report.blobs_already + report.blobs_journaled,
                    "seconds": round(report.seconds, 3),
                    "outcomes": {i.destination: i.status for i in report.images}}
            log.info("sync %s: %d images, %d blobs moved (%d bytes), %d already there", entry.name,
                     data["images"], report.blobs_moved, report.bytes_moved, data["blobsSkipped"])
        except (OcikitError, OSError) as e:
            data = {"sync": entry.name, "ok": False, "error": str(e)}
            log.warning("sync %s failed: %s", entry.name, e)
        if emit is not None:
            emit("sync.done", data)

    if entry.schedule is not None:
        await run_at_times(entry.schedule, run_once, f"sync {entry.name}")
    else:
        assert entry.interval is not None
        await run_every(entry.interval, run_once, at_start=True)

"""``ocikit serve`` (the registry) and ``ocikit registry gc``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import click

from .main import run
from .output import emit_json, human_size
from .output import output_format as current_format


def _parse_duration(value: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = value.strip()
    if value and value[-1] in units:
        return float(value[:-1]) * units[value[-1]]
    return float(value)


@click.command("serve")
@click.option("--listen", default=None, metavar="HOST:PORT", help="Address to listen on [127.0.0.1:5000].")
@click.option("--root", default=None, metavar="DIR", help="Storage directory (filesystem driver).")
@click.option("--storage", default=None, metavar="URL",
              help="s3://BUCKET/PREFIX?endpoint=URL[&region=R&path_style=true&part_size=8MiB&redirect=presigned"
                   "&redirect_expiry=600] (credentials: AWS env vars or ~/.aws files), or a directory.")
@click.option("--config", "config_path", default=None, metavar="FILE", help="YAML configuration; flags override it.")
@click.option("--read-only", is_flag=True, default=None, help="Refuse pushes and deletes (405 UNSUPPORTED).")
@click.option("--enable-delete", is_flag=True, default=None,
              help="Allow DELETE of manifests, tags and blobs (off by default: 405 UNSUPPORTED).")
@click.option("--tls-cert", default=None, metavar="FILE", help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", default=None, metavar="FILE", help="Private key of --tls-cert (PEM).")
@click.option("--htpasswd", default=None, metavar="FILE", help="Basic auth with this bcrypt htpasswd file.")
@click.option("--no-fsync", is_flag=True, default=False, help="Skip fsync (faster; unsafe on power loss).")
@click.option("--seed-sample", is_flag=True, help="Write a small multi-arch sample image (sample/multiarch).")
@click.option("--quiet", is_flag=True, help="No access log.")
@click.option("--no-ui", is_flag=True, help="Do not serve the web UI under /ui/.")
def serve_command(listen: str | None, root: str | None, storage: str | None, config_path: str | None,
                  read_only: bool | None, enable_delete: bool | None, tls_cert: str | None, tls_key: str | None,
                  htpasswd: str | None, no_fsync: bool, seed_sample: bool, quiet: bool, no_ui: bool) -> None:
    """Serve an OCI Distribution v1.1 registry from --root until SIGTERM/SIGINT."""
    from ..server.app import serve
    from ..server.serve_config import ServerConfig, load_config
    from ..server.seed import SAMPLE_REPOSITORY, seed_sample as do_seed, try_commands

    cfg = load_config(config_path) if config_path else ServerConfig()
    cfg = cfg.with_overrides(listen=listen, root=root, read_only=read_only or None,
                             delete_enabled=enable_delete or None, tls_cert=tls_cert,
                             tls_key=tls_key).with_storage(storage)
    if no_fsync:
        cfg.fsync = False
    if quiet:
        cfg.access_log = False
    if no_ui:
        cfg.ui = False
    if htpasswd:
        cfg.auth.mode = cfg.auth.mode if cfg.auth.mode == "token" else "htpasswd"
        cfg.auth.htpasswd = htpasswd
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    seeded: list[str] = []

    async def seed(registry) -> None:  # type: ignore[no-untyped-def]
        if seed_sample:
            seeded.extend(await do_seed(registry.storage))

    async def ready(registry, host: str) -> None:  # type: ignore[no-untyped-def]
        if seed_sample:
            tags = seeded
            click.echo(f"seeded {host}/{SAMPLE_REPOSITORY} with tags {', '.join(tags)}")
        if cfg.ui:
            click.echo(f"web UI: {'https' if cfg.tls_cert else 'http'}://{host}/ui/")
        if seed_sample:
            click.echo("try:")
            for c in try_commands(host, bool(cfg.tls_cert)):
                click.echo(f"  {c}")
        scheme = "https" if cfg.tls_cert else "http"
        click.echo(f"ocikit serve: listening on {scheme}://{host} ({cfg.storage_description})", err=True)
        sys.stdout.flush()

    asyncio.run(serve(cfg, on_ready=ready, before_listen=seed))


@click.group("registry")
def registry_group() -> None:
    """Maintain the storage of an ocikit serve registry (gc)."""


@registry_group.command("gc")
@click.option("--root", default=None, metavar="DIR", help="The storage directory of ocikit serve.")
@click.option("--storage", default=None, metavar="URL", help="s3://BUCKET/PREFIX?endpoint=URL (as ocikit serve).")
@click.option("--dry-run", is_flag=True, help="List what would be removed, remove nothing.")
@click.option("--untagged", is_flag=True,
              help="Also remove manifests no tag reaches (never children or referrers of kept ones).")
@click.option("--grace", default="1h", show_default=True,
              help="Keep anything written more recently than this (pushes in flight): 30s, 10m, 1h, 0.")
@click.option("--upload-grace", default="24h", show_default=True, help="Keep upload sessions idle less than this.")
@click.option("--retention", "retention_config", default=None, metavar="FILE",
              help="First apply the retention: rules of this server configuration (YAML).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default=None)
def gc_command(root: str | None, storage: str | None, dry_run: bool, untagged: bool, grace: str, upload_grace: str,
               retention_config: str | None, output_format: str | None) -> None:
    """Mark and sweep: remove unreferenced blobs, links, stale uploads (and untagged manifests)."""
    from ..core.errors import UsageError
    from ..server.serve_config import ServerConfig
    from ..server.gc import GcLock
    from ..server.gclease import collect_with_lease
    from ..server.retention import apply_retention_file

    if (root is None) == (storage is None):
        raise UsageError("registry gc: give --root DIR or --storage URL")
    cfg = ServerConfig(root=root or "").with_storage(storage)
    kw = dict(dry_run=dry_run, untagged=untagged, grace=_parse_duration(grace),
              upload_grace=_parse_duration(upload_grace))
    # a bucket is locked by a lease object inside it (collect_with_lease); a directory by flock
    with GcLock(cfg.root) if cfg.s3 is None else contextlib.nullcontext():
        kept = run(apply_retention_file(cfg, retention_config, dry_run=dry_run)) if retention_config else None
        report = run(collect_with_lease(cfg, **kw))  # type: ignore[arg-type]
    if retention_config and not dry_run:
        _announce_gc(retention_config, {"kind": "gc", **report.to_dict(),
                                        **({"retention": kept.to_dict()} if kept else {})})
    if (output_format or current_format(click.get_current_context())) == "json":
        emit_json({**report.to_dict(), **({"retention": kept.to_dict()} if kept else {})})
        return
    verb = "would remove" if dry_run else "removed"
    for line in kept.lines() if kept else []:
        click.echo(line)
    for repo, d in report.manifests:
        click.echo(f"{verb} manifest {repo}@{d}")
    for repo, d in report.links:
        click.echo(f"{verb} link {repo}@{d}")
    for d in report.blobs:
        click.echo(f"{verb} blob {d}")
    for u in report.uploads:
        click.echo(f"{verb} upload {u}")
    click.echo(f"{verb} {len(report.blobs)} blobs ({human_size(report.bytes_freed)}), "
               f"{len(report.manifests)} manifests, {len(report.uploads)} uploads; kept {report.blobs_kept} blobs")


def _announce_gc(config_path: str, data: dict[str, object]) -> None:
    """A ``gc.done`` event to the ``notifications:`` endpoints of the server configuration, if any."""
    from ..server.cache_config import parse_cache
    from ..server.events import send_now
    from ..server.serve_config import load_config

    config = load_config(config_path)
    endpoints = parse_cache(config.extra_sections).notifications
    if endpoints:
        run(send_now(endpoints, f"ocikit://{config.listen}", "gc.done", data))


def register(group: click.Group) -> None:
    group.add_command(serve_command)
    group.add_command(registry_group)

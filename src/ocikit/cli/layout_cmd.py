"""``ocikit layout ls|gc|validate PATH``."""

from __future__ import annotations

import click

from ..core.errors import LayoutInvalid
from ..transports.layout import OCILayout
from .output import echo, emit_json, format_option, human_size
from .output import output_format as current_format


@click.group("layout")
def layout_group() -> None:
    """Work on OCI image layout directories."""


@layout_group.command("ls")
@click.argument("path", type=click.Path(file_okay=False))
@format_option
def ls_command(path: str, output_format: str | None) -> None:
    """List the images of a layout: tag (ref.name), media type, digest, size."""
    layout = OCILayout(path)
    entries = layout.entries()
    if current_format() == "json":
        emit_json([{"tag": e.ref_name, "mediaType": e.media_type, "digest": str(e.digest), "size": e.size}
                   for e in entries])
        return
    for e in entries:
        echo(f"{e.ref_name or '<none>'}\t{e.media_type}\t{e.digest}\t{e.size}")


@layout_group.command("gc")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--grace", type=float, default=0.0, show_default=True,
              help="Keep blobs written within this many seconds (a writer may be about to tag them).")
@format_option
def gc_command(path: str, dry_run: bool, grace: float, output_format: str | None) -> None:
    """Remove blobs that nothing in index.json reaches."""
    res = OCILayout(path).gc(dry_run=dry_run, grace_seconds=grace)
    if current_format() == "json":
        emit_json({"removed": res.removed, "bytesFreed": res.bytes_freed, "kept": res.kept, "dryRun": dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    for r in res.removed:
        echo(f"{verb} {r}")
    echo(f"{verb} {len(res.removed)} blob(s), {human_size(res.bytes_freed)}; kept {res.kept}")


@layout_group.command("validate")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--no-hash", is_flag=True, help="Check presence and sizes only; do not hash layers.")
@format_option
def validate_command(path: str, no_hash: bool, output_format: str | None) -> None:
    """Check that every blob the layout references is present with the right digest and size."""
    problems = OCILayout(path).validate(hash_blobs=not no_hash)
    if current_format() == "json":
        emit_json({"valid": not problems, "problems": problems})
    else:
        for p in problems:
            echo(p)
        if not problems:
            echo(f"{path}: valid")
    if problems:
        raise LayoutInvalid(f"{path}: {len(problems)} problem(s)")


def register(group: click.Group) -> None:
    group.add_command(layout_group)

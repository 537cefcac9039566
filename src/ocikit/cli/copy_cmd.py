"""``ocikit copy SRC DST``."""

from __future__ import annotations

from typing import Any

import click

from ..ops.copy import CopyOptions, CopyResult, acopy
from ..ops.recompress import acopy_recompressed, parse_recompression
from .main import run
from .options import compress_options, parse_platforms
from .output import ProgressView, echo, emit_json, human_size, output_format
from .registry_cmds import copy_transport_options, side_options
from .trust_options import trust_copy_options, trust_hook


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("-a", "--all", "all_platforms", is_flag=True,
              help="Copy the index and every image it lists, byte-exact.")
@click.option("--multi-arch", type=click.Choice(["system", "all", "index-only"]), default=None,
              help="skopeo's spelling: system (the default), all (= --all).")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
              help="Copy only these platforms of an index (repeatable, or comma-separated).")
@click.option("--preserve-index-digest", is_flag=True,
              help="With --platform: keep the original index bytes (a sparse index) instead of a filtered one.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=6, show_default=True,
              help="Blobs transferred at once.")
@click.option("--preserve-digests", is_flag=True,
              help="Fail rather than write anything whose digest differs from the source's.")
@click.option("-f", "--format", "manifest_format", type=click.Choice(["oci", "v2s2"], case_sensitive=False),
              default=None, help="Convert manifests and media types to OCI or Docker v2s2 (digests change).")
@click.option("--referrers", is_flag=True,
              help="Also copy the OCI 1.1 referrers (signatures, SBOMs, ...) of what is copied.")
@compress_options
@trust_copy_options
@copy_transport_options
def copy_command(source: str, destination: str, all_platforms: bool, multi_arch: str | None,
                 platforms: tuple[str, ...], preserve_index_digest: bool, jobs: int, preserve_digests: bool,
                 referrers: bool, manifest_format: str | None = None, dest_compress_format: str | None = None,
                 dest_compress_level: int | None = None, **transport: Any) -> None:
    """Copy an image from SOURCE to DESTINATION (docker://, oci:, oci-archive:, docker-archive:).

    Digests are kept: every manifest is written as the exact bytes read.
    """
    if multi_arch == "all":
        all_platforms = True
    elif multi_arch == "index-only":
        raise click.UsageError("--multi-arch index-only is not supported; use --platform to pick children")
    want = parse_recompression(dest_compress_format, dest_compress_level)
    hook = trust_hook(source, destination, transport)  # policy, carried and new signatures
    with ProgressView() as view:
        options = CopyOptions(all_platforms=all_platforms, platforms=parse_platforms(platforms),
                              preserve_index_digest=preserve_index_digest, jobs=jobs, progress=view,
                              preserve_digests=preserve_digests, retry_times=transport.get("retry_times", 3),
                              referrers=referrers, manifest_format=manifest_format, hooks=(hook,))
        sides = {"src_options": side_options("src", transport), "dst_options": side_options("dest", transport)}
        changes: dict[str, str] | None = None
        if want is None:
            result = run(acopy(source, destination, options, **sides))
        else:
            result, changes = run(acopy_recompressed(source, destination, options, want, **sides))
    report(result, hook.carried.to_dict(), changes)


def report(result: CopyResult, signatures: dict[str, Any] | None = None,
           changes: dict[str, str] | None = None) -> None:
    if output_format() == "json":
        emit_json({**result.to_dict(), **({"signatures": signatures} if signatures is not None else {}),
                   **({"recompressed": changes} if changes is not None else {})})
        return
    for old, new in (changes or {}).items():
        echo(f"  recompressed {old} -> {new}")
    moved = result.bytes_copied + result.bytes_linked + result.bytes_mounted
    rate = f", {human_size(result.bytes_copied / result.seconds)}/s" if result.seconds > 0 and result.bytes_copied else ""
    echo(f"Copied {result.source} -> {result.target}")
    if result.digest_changed:
        echo(f"  source digest {result.source_digest}")
        echo(f"  new digest    {result.digest}")
    else:
        echo(f"  digest {result.digest}")
    echo(f"  {len(result.manifests)} manifest(s); blobs: {result.blobs_copied} copied ({human_size(result.bytes_copied)}), "
         f"{result.blobs_linked} linked ({human_size(result.bytes_linked)}), "
         f"{result.blobs_mounted} mounted ({human_size(result.bytes_mounted)}), "
         f"{result.blobs_skipped} already there ({human_size(result.bytes_skipped)}); "
         f"{human_size(moved)} in {result.seconds:.2f}s{rate}")
    if signatures and any(signatures.values()):
        echo(f"  signatures: {len(signatures['tags'])} tag(s), {len(signatures['referrers'])} referrer(s), "
             f"{sum(signatures['lookaside'].values())} lookaside, {len(signatures['signed'])} new")


def register(group: click.Group) -> None:
    group.add_command(copy_command)

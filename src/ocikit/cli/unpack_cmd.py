"""``ocikit unpack IMAGE DIR``: a rootfs, or with ``--bundle`` an OCI runtime bundle."""

from __future__ import annotations

import re
from typing import Any

import click

from ..core.platforms import parse_platform
from .output import ProgressView, echo, emit_json, format_option, human_size, output_format
from .registry_cmds import open_options, pull_transport_options

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?", re.IGNORECASE)


def _byte_count(text: str) -> int | None:
    """``64GiB``, ``500M``, ``1024`` (bytes) -> bytes; ``0`` or ``none`` -> None (no limit)."""
    if text.strip().lower() in ("0", "none", "off"):
        return None
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r}: expected a size such as 64GiB, 500M, 1048576, or none")
    power = "kmgtp".find(m.group(2).lower()) + 1
    return int(float(m.group(1)) * (1024 if m.group(3) else 1000) ** power)


@click.command("unpack")
@click.argument("image")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--bundle", is_flag=True,
              help="Make DIR an OCI runtime bundle: DIR/rootfs and DIR/config.json converted from the image config.")
@click.option("--rootless/--no-rootless", default=None,
              help="Do not chown: record owners in the user.rootlesscontainers xattr (as umoci does); "
                   "skip device nodes. The default when not running as root.")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
              help="Which image of a multi-platform index (default: this host's).")
@click.option("--max-layer-size", default="64GiB", show_default=True, metavar="SIZE",
              help="Refuse a layer whose uncompressed tar is larger (64GiB, 500M, bytes; none: no limit).")
@click.option("--max-expansion-ratio", type=click.FloatRange(min=0), default=100.0, show_default=True,
              help="Refuse a layer that expands more than this many times its compressed size, beyond "
                   "the first 512 MiB (a decompression bomb); 0: no limit.")
@click.option("--keep-partial", is_flag=True,
              help="After a failure, keep what was unpacked in DIR.partial (marked incomplete) instead of removing it.")
@click.option("--policy", default=None, metavar="FILE",
              help="Refuse IMAGE unless this containers-policy.json accepts it (\"system\": the system's).")
@click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
              help="registries.d directory naming the lookaside stores (with --policy).")
@pull_transport_options
@format_option
def unpack_command(image: str, directory: str, bundle: bool, rootless: bool | None, platform: str | None,
                   max_layer_size: str, max_expansion_ratio: float, keep_partial: bool,
                   output_format: str | None, policy: str | None = None, registries_d: str | None = None,
                   **transport: Any) -> None:
    """Unpack IMAGE (oci:, docker://, oci-archive:, docker-archive:) into DIR, applying its layers in order.

    Paths are resolved inside DIR and never follow a symlink out of it. Every layer's digest and
    diff_id are checked while it is applied, and its size bounded (docs/security.md); on any
    failure DIR is not created and what was written is removed (kept in DIR.partial, marked
    incomplete, with --keep-partial).
    """
    from ..layers.limits import LayerLimits
    from ..ops.unpack import UnpackOptions, unpack   # oci: layouts unpack with no event loop

    opened = open_options(**transport)
    if policy is not None:  # checked before anything is written
        from ..trust.policy import enforce
        enforce(policy, image, registries_d=registries_d, open_options=opened)

    limits = LayerLimits(max_expansion_ratio=max_expansion_ratio or None, max_layer_size=_byte_count(max_layer_size))
    warnings: list[str] = []
    with ProgressView() as view:
        options = UnpackOptions(bundle=bundle, rootless=rootless,
                                platform=parse_platform(platform) if platform else None,
                                progress=view if view.enabled else None, warn=warnings.append,
                                limits=limits, keep_partial=keep_partial)
        result = unpack(image, directory, options, open_options=opened)
    if output_format == "json" or (output_format is None and _group_json()):
        emit_json(result.to_dict())
        return
    for w in warnings[:20]:
        click.echo(f"ocikit: warning: {w}", err=True)
    if len(warnings) > 20:
        click.echo(f"ocikit: warning: ... and {len(warnings) - 20} more", err=True)
    s = result.stats
    echo(f"Unpacked {result.source} -> {result.target}{' (bundle)' if bundle else ''}")
    echo(f"  manifest {result.manifest_digest}")
    echo(f"  {s.layers} layer(s), {s.entries} entries, {s.files} files ({human_size(s.bytes)}), "
         f"{s.whiteouts} whiteouts{', rootless' if result.rootless else ''} in {result.seconds:.2f}s")


def _group_json() -> bool:
    return output_format() == "json"


def register(group: click.Group) -> None:
    group.add_command(unpack_command)

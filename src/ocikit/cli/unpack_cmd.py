"""``ocikit unpack IMAGE DIR``: a rootfs, or with ``--bundle`` an OCI runtime bundle."""

from __future__ import annotations

import click

from ..platforms import parse_platform
from .output import ProgressView, echo, emit_json, format_option, human_size, output_format


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
@click.option("--policy", default=None, metavar="FILE",
              help="Refuse IMAGE unless this containers-policy.json accepts it (\"system\": the system's).")
@click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
              help="registries.d directory naming the lookaside stores (with --policy).")
@format_option
def unpack_command(image: str, directory: str, bundle: bool, rootless: bool | None, platform: str | None,
                   output_format: str | None, policy: str | None = None, registries_d: str | None = None) -> None:
    """Unpack IMAGE (oci:, docker://, oci-archive:, docker-archive:) into DIR, applying its layers in order.

    Paths are resolved inside DIR and never follow a symlink out of it. Every layer's digest and
    diff_id are checked while it is applied; on any failure DIR is not created and DIR.partial
    is left marked incomplete.
    """
    from ..ops.unpack import UnpackOptions, unpack   # oci: layouts unpack with no event loop

    if policy is not None:  # checked before anything is written
        from ..trust.policy import enforce
        enforce(policy, image, registries_d=registries_d)

    warnings: list[str] = []
    with ProgressView() as view:
        options = UnpackOptions(bundle=bundle, rootless=rootless,
                                platform=parse_platform(platform) if platform else None,
                                progress=view if view.enabled else None, warn=warnings.append)
        result = unpack(image, directory, options)
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

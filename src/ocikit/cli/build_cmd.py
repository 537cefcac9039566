"""``ocikit build``, ``append``, ``mutate``, ``flatten``, ``layer diff`` and ``diff``."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..layers.tarwriter import COMPRESSIONS, MTIME_POLICIES, TarOptions
from ..ops.build import (
    SCRATCH,
    BuildRequest,
    BuildResult,
    ConfigChanges,
    abuild,
    parse_command,
    parse_env,
    parse_key_value,
    parse_port,
)
from .main import run
from .options import parse_platforms
from .output import echo, emit_json, human_size, output_format


def config_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The config-editing flags shared by build, append and mutate."""
    opts = [
        click.option("--entrypoint", default=None, metavar="CMD",
                     help='Entrypoint: a JSON array (\'["/app","-v"]\') or words; "" removes it.'),
        click.option("--cmd", default=None, metavar="CMD", help='Cmd: a JSON array or words; "" removes it.'),
        click.option("--env", "-e", "env", multiple=True, metavar="NAME=VALUE", help="Set an environment variable."),
        click.option("--workdir", default=None, help="Working directory."),
        click.option("--user", default=None, help="User (name, uid, uid:gid)."),
        click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE", help="Add a config label."),
        click.option("--expose", multiple=True, metavar="PORT[/PROTO]", help="Expose a port (80, 53/udp)."),
        click.option("--annotation", "-a", "annotations", multiple=True, metavar="KEY=VALUE",
                     help="Add a manifest annotation."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def layer_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """How directories become layers."""
    opts = [
        click.option("--compression", type=click.Choice(COMPRESSIONS), default="gzip", show_default=True,
                     help="Layer compression (gzip is ISA-L level 1, zstd level 3)."),
        click.option("--mtime", "mtime_policy", type=click.Choice(MTIME_POLICIES), default="epoch",
                     show_default=True,
                     help="epoch: every mtime = SOURCE_DATE_EPOCH (0 if unset); clamp: later ones lowered to it; "
                          "keep: as on disk."),
        click.option("--keep-owner", is_flag=True, help="Keep files' numeric uid/gid (default: 0:0)."),
        click.option("--no-xattrs", is_flag=True, help="Do not record extended attributes."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def make_changes(entrypoint: str | None, cmd: str | None, env: tuple[str, ...], workdir: str | None,
                 user: str | None, labels: tuple[str, ...], expose: tuple[str, ...],
                 annotations: tuple[str, ...]) -> ConfigChanges:
    return ConfigChanges(
        entrypoint=parse_command(entrypoint, "--entrypoint") if entrypoint is not None else None,
        cmd=parse_command(cmd, "--cmd") if cmd is not None else None,
        env=tuple(parse_env(e) for e in env), workdir=workdir, user=user,
        labels=tuple(parse_key_value(x, "--label") for x in labels),
        exposed_ports=tuple(parse_port(p) for p in expose),
        annotations=tuple(parse_key_value(x, "--annotation") for x in annotations))


def make_tar_options(mtime_policy: str, keep_owner: bool, no_xattrs: bool) -> TarOptions:
    return TarOptions(mtime=mtime_policy, owner=None if keep_owner else (0, 0), xattrs=not no_xattrs)


def report_build(verb: str, result: BuildResult) -> None:
    if output_format() == "json":
        emit_json(result.to_dict())
        return
    echo(f"{verb} {result.target}")
    echo(f"  digest {result.digest}")
    for img in result.images:
        added = ", ".join(f"{lr.digest.short} ({human_size(lr.size)})" for lr in img.layers) or "none"
        echo(f"  {img.platform}: manifest {img.manifest.digest.short}, config {img.config_digest.short}, "
             f"new layers: {added}")


@click.command("build")
@click.argument("layers", nargs=-1, metavar="[LAYER]...")
@click.option("-o", "--output", "target", required=True, metavar="IMAGE",
              help="Where to write the image (oci:DIR:TAG, docker://..., oci-archive:..., docker-archive:...).")
@click.option("--from", "base", default=SCRATCH, show_default=True, metavar="IMAGE",
              help="Base image (any transport), or scratch.")
@click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
              help="Platform(s) to build (several: an index). Picks the base's matching image.")
@click.option("--tag", "extra_tags", multiple=True, help="Also tag the result with TAG at the output.")
@config_options
@layer_options
def build_command(layers: tuple[str, ...], target: str, base: str, platforms: tuple[str, ...],
                  extra_tags: tuple[str, ...], compression: str, mtime_policy: str, keep_owner: bool,
                  no_xattrs: bool, **config: Any) -> None:
    """Build an image from LAYERs (directories or tarballs) on --from (default scratch).

    The same inputs give the same digest: entries are sorted, owners and mtimes normalised
    (SOURCE_DATE_EPOCH), and the config's created time is SOURCE_DATE_EPOCH.
    """
    req = BuildRequest(target=target, layers=layers, base=base, platforms=parse_platforms(platforms),
                       changes=make_changes(**config), compression=compression,
                       tar_options=make_tar_options(mtime_policy, keep_owner, no_xattrs),
                       extra_tags=extra_tags)
    report_build("Built", run(abuild(req)))


def register(group: click.Group) -> None:
    group.add_command(build_command)

"""``ocikit build``, ``append``, ``mutate``, ``flatten``, ``layer diff`` and ``diff``."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..layers.tarwriter import COMPRESSIONS, MTIME_POLICIES, TarOptions
from ..ops.build import SCRATCH, BuildRequest, BuildResult, abuild
from ..ops.buildconfig import ConfigChanges, parse_command, parse_env, parse_key_value, parse_port
from .main import run
from .options import parse_platforms
from .registry_cmds import open_options, transport_options
from .output import ProgressView, echo, emit_json, format_option, human_size
from .output import output_format as current_format


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


_TRANSPORT_KEYS = ("creds", "authfile", "tls_verify", "cert_dir", "retry_times")


def split_transport(kw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The registry flags apart from the config flags (``--format`` is read from the context)."""
    return ({k: v for k, v in kw.items() if k in _TRANSPORT_KEYS},
            {k: v for k, v in kw.items() if k not in _TRANSPORT_KEYS and k != "output_format"})


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
    if current_format() == "json":
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
@transport_options
@format_option
def build_command(layers: tuple[str, ...], target: str, base: str, platforms: tuple[str, ...],
                  extra_tags: tuple[str, ...], compression: str, mtime_policy: str, keep_owner: bool,
                  no_xattrs: bool, **kw: Any) -> None:
    """Build an image from LAYERs (directories or tarballs) on --from (default scratch).

    The same inputs give the same digest: entries are sorted, owners and mtimes normalised
    (SOURCE_DATE_EPOCH), and the config's created time is SOURCE_DATE_EPOCH.
    """
    transport, config = split_transport(kw)
    with ProgressView() as view:
        req = BuildRequest(target=target, layers=layers, base=base, platforms=parse_platforms(platforms),
                           changes=make_changes(**config), compression=compression,
                           tar_options=make_tar_options(mtime_policy, keep_owner, no_xattrs),
                           extra_tags=extra_tags, open_options=open_options(**transport), progress=view)
        result = run(abuild(req))
    report_build("Built", result)


def _mutate(verb: str, image: str, target: str | None, platforms: tuple[str, ...], extra_tags: tuple[str, ...] = (),
            layers: tuple[str, ...] = (), compression: str = "gzip", tar_options: TarOptions | None = None,
            flatten: bool = False, **kw: Any) -> None:
    from ..ops.mutate import MutateRequest, amutate

    transport, config = split_transport(kw)
    changes = make_changes(**config) if config else ConfigChanges()
    with ProgressView() as view:
        req = MutateRequest(image=image, target=target, layers=layers, changes=changes,
                            platforms=parse_platforms(platforms), extra_tags=extra_tags, compression=compression,
                            tar_options=tar_options or TarOptions(), flatten=flatten, verb=verb, progress=view,
                            open_options=open_options(**transport))
        result = run(amutate(req))
    report_build({"append": "Appended to", "mutate": "Mutated", "flatten": "Flattened"}[verb], result)


output_option = click.option("-o", "--output", "target", default=None, metavar="IMAGE",
                             help="Where to write the result (default: IMAGE itself, retagged in place).")
platform_option = click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
                               help="Only these images of an index (default: every one).")


@click.command("append")
@click.argument("image")
@click.argument("layers", nargs=-1, required=True, metavar="LAYER...")
@output_option
@platform_option
@click.option("--tag", "extra_tags", multiple=True, help="Also tag the result with TAG at the output.")
@config_options
@layer_options
@transport_options
@format_option
def append_command(image: str, layers: tuple[str, ...], target: str | None, platforms: tuple[str, ...],
                   extra_tags: tuple[str, ...], compression: str, mtime_policy: str, keep_owner: bool,
                   no_xattrs: bool, **kw: Any) -> None:
    """Add LAYERs (directories or tarballs) on top of IMAGE (every platform of an index)."""
    _mutate("append", image, target, platforms, extra_tags, layers, compression,
            make_tar_options(mtime_policy, keep_owner, no_xattrs), **kw)


@click.command("mutate")
@click.argument("image")
@output_option
@platform_option
@click.option("--tag", "extra_tags", multiple=True, help="Also tag the result with TAG (retag).")
@config_options
@transport_options
@format_option
def mutate_command(image: str, target: str | None, platforms: tuple[str, ...], extra_tags: tuple[str, ...],
                   **kw: Any) -> None:
    """Change IMAGE's config fields and annotations, or retag it.

    With no field changed, the image is copied as it is (same digest) to --output and --tag.
    """
    _mutate("mutate", image, target, platforms, extra_tags, **kw)


@click.command("flatten")
@click.argument("image")
@output_option
@platform_option
@click.option("--tag", "extra_tags", multiple=True, help="Also tag the result with TAG at the output.")
@click.option("--compression", type=click.Choice(COMPRESSIONS), default="gzip", show_default=True)
@transport_options
@format_option
def flatten_command(image: str, target: str | None, platforms: tuple[str, ...], extra_tags: tuple[str, ...],
                    compression: str, **kw: Any) -> None:
    """Squash IMAGE's layers into one (whiteouts applied; owners, modes, mtimes, xattrs kept)."""
    _mutate("flatten", image, target, platforms, extra_tags, compression=compression, flatten=True, **kw)


@click.group("layer")
def layer_group() -> None:
    """Make layers from trees."""


@layer_group.command("diff")
@click.argument("lower", type=click.Path(file_okay=False))
@click.argument("upper", type=click.Path(file_okay=False))
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@layer_options
@format_option
def layer_diff_command(lower: str, upper: str, out: str, compression: str, mtime_policy: str, keep_owner: bool,
                       no_xattrs: bool, output_format: str | None) -> None:
    """Write to OUT the layer that turns the tree LOWER into the tree UPPER.

    Deleted paths become whiteouts, a directory whose old contents are all gone becomes
    opaque; the tar is reproducible like the ones build writes.
    """
    import os

    from ..durable import publish, removing_on_error, temp_path
    from ..layers.treediff import write_diff_layer

    final = os.path.abspath(out)
    tmp = temp_path(os.path.dirname(final), os.path.basename(final))
    with removing_on_error(tmp, out):
        r = write_diff_layer(lower, upper, tmp, compression, make_tar_options(mtime_policy, keep_owner, no_xattrs))
        publish(tmp, final)
    if current_format() == "json":
        emit_json({"path": out, "mediaType": r.media_type, "digest": str(r.digest), "size": r.size,
                   "diffID": str(r.diff_id), "entries": r.entries})
        return
    echo(f"Wrote {out}: {r.entries} entries, {human_size(r.size)}")
    echo(f"  digest  {r.digest}  ({r.media_type})")
    echo(f"  diff_id {r.diff_id}")


@click.command("diff")
@click.argument("image_a")
@click.argument("image_b")
@click.option("--files", is_flag=True, help="Also compare the filesystems (added, removed, modified paths).")
@click.option("--platform", default=None, metavar="OS/ARCH[/VARIANT]",
              help="Which image of a multi-platform index (default: this host's).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the images differ (as diff(1) does).")
@format_option
@transport_options
def diff_command(image_a: str, image_b: str, files: bool, platform: str | None, exit_code: bool,
                 output_format: str | None, **transport: Any) -> None:
    """Compare IMAGE_A with IMAGE_B: shared and different layers, config changes, and with --files
    the file-level changes."""
    from ..ops.imagediff import DiffOptions, ImageDiff, adiff
    from ..platforms import parse_platform

    d: ImageDiff = run(adiff(image_a, image_b, DiffOptions(
        files=files, platform=parse_platform(platform) if platform else None, open_options=open_options(**transport))))
    if current_format() == "json":
        emit_json(d.to_dict())
    else:
        echo(f"A {d.a_name}  {d.a_digest}  {d.a_platform}")
        echo(f"B {d.b_name}  {d.b_digest}  {d.b_platform}")
        if d.identical:
            echo("identical images")
        lc = d.layers
        echo(f"Layers: {lc.shared} shared ({lc.common_prefix} as a common base), "
             f"{sum(not r.shared for r in lc.a)} only in A, {sum(not r.shared for r in lc.b)} only in B")
        for side, rows in (("A", lc.a), ("B", lc.b)):
            for r in rows:
                mark = "=" if r.shared else ("-" if side == "A" else "+")
                note = "" if r.shared and r.same_blob else (" (same tar, other blob)" if r.shared else f" only in {side}")
                echo(f"  {mark} {side}[{r.index}] {r.digest[:19]}  {human_size(r.size):>9}{note}")
        echo(f"Config: {len(d.config)} change(s)" if d.config else "Config: no changes")
        for c in d.config:
            echo(f"  {c.describe()}")
        if d.files is not None:
            counts = {k: sum(1 for f in d.files if f.kind == k) for k in "+-M"}
            echo(f"Files: {counts['+']} added, {counts['-']} removed, {counts['M']} modified")
            for f in d.files:
                echo(f"  {f.describe()}")
    if exit_code and d.differs:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    for cmd in (build_command, append_command, mutate_command, flatten_command, layer_group, diff_command):
        group.add_command(cmd)

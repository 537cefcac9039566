"""``ocikit manifest ...`` (working lists), ``ocikit index filter|append``, ``ocikit artifact push|pull``,
``ocikit referrers``."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from ..core.errors import UsageError
from ..ops import artifacts as art
from ..ops import index_edit as ie
from ..ops import manifest_list as ml
from ..ops.referrers import find_referrers
from ..core.transportref import parse_transport_reference
from .copy_cmd import report as report_copy
from .main import run
from .options import parse_platforms
from .output import ProgressView, echo, emit_json, format_option, human_size
from .registry_cmds import open_options, pull_transport_options, push_transport_options, transport_options
from .output import output_format as current_format


def _annotations(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k:
            raise UsageError(f"invalid annotation {v!r}: expected KEY=VALUE")
        out[k] = val
    return out


def _index_format(value: str | None) -> str | None:
    return ie.INDEX_FORMATS[value] if value else None


def platform_field_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """podman's --os/--arch/--variant/--os-version/--os-features."""
    for opt, help_ in reversed([
        ("--os", "The OS of the image (default: from its config)."),
        ("--arch", "The architecture of the image (default: from its config)."),
        ("--variant", "The architecture variant (v7, v8, ...)."),
        ("--os-version", "The OS version (Windows images)."),
    ]):
        f = click.option(opt, opt.lstrip("-").replace("-", "_"), default=None, help=help_)(f)
    f = click.option("--os-features", "os_features", multiple=True,
                     help="Required OS features (repeatable, or comma-separated).")(f)
    return f


def _platform_fields(os: str | None, arch: str | None, variant: str | None, os_version: str | None,
                     os_features: tuple[str, ...]) -> ie.PlatformFields | None:
    feats = tuple(x for v in os_features for x in v.split(",") if x) if os_features else None
    fields = ie.PlatformFields(os, arch, variant, os_version, feats)
    return fields if fields.any() else None


def _list_report(state: ml.ListState, verb: str) -> None:
    if current_format() == "json":
        emit_json(state.to_dict())
        return
    for d in state.added:
        echo(f"{verb} {d.digest} {d.platform or '(no platform)'}")
    echo(str(state.digest))


# ---- manifest ----------------------------------------------------------------------------------


@click.group("manifest")
def manifest_group() -> None:
    """Build multi-arch manifest lists (podman-like).

    LIST is a working list name kept under $XDG_DATA_HOME/ocikit, or a transport reference
    (oci:PATH:TAG, docker://HOST/REPO:TAG) to edit an index where it lives.
    """


@manifest_group.command("create")
@click.argument("list_name", metavar="LIST")
@click.argument("images", nargs=-1)
@click.option("--all", "all_platforms", is_flag=True, help="Add every image of an index given as IMAGE.")
@click.option("--amend", is_flag=True, help="Add to LIST if it exists instead of failing.")
@click.option("--format", "index_format", type=click.Choice(sorted(ie.INDEX_FORMATS)), default="oci",
              show_default=True, help="oci: an OCI image index; docker (v2s2): a Docker manifest list.")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="An annotation on the index (repeatable).")
@pull_transport_options
def create_command(list_name: str, images: tuple[str, ...], all_platforms: bool, amend: bool,
                   index_format: str, annotations: tuple[str, ...], **transport: Any) -> None:
    """Create the manifest list LIST, optionally adding IMAGEs; prints its digest."""
    with ProgressView() as view:
        state = run(ml.create_list(list_name, media_type=ie.INDEX_FORMATS[index_format], images=images,
                                   all_platforms=all_platforms, amend=amend,
                                   annotations=_annotations(annotations), progress=view,
                                   options=open_options(**transport)))
    _list_report(state, "added")


@manifest_group.command("add")
@click.argument("list_name", metavar="LIST")
@click.argument("image")
@click.option("--all", "all_platforms", is_flag=True, help="IMAGE is an index: add every image it lists.")
@platform_field_options
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="An annotation on the new entry (repeatable).")
@format_option
@pull_transport_options
def add_command(list_name: str, image: str, all_platforms: bool, os: str | None, arch: str | None,
                variant: str | None, os_version: str | None, os_features: tuple[str, ...],
                annotations: tuple[str, ...], output_format: str | None, **transport: Any) -> None:
    """Copy IMAGE into LIST's store and list it; its platform comes from its config unless given."""
    with ProgressView() as view:
        state = run(ml.add_to_list(list_name, image, all_platforms=all_platforms,
                                   platform=_platform_fields(os, arch, variant, os_version, os_features),
                                   annotations=_annotations(annotations), progress=view,
                                   options=open_options(**transport)))
    _list_report(state, "added")


@manifest_group.command("annotate")
@click.argument("list_name", metavar="LIST")
@click.argument("digest", required=False)
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="Set an annotation (repeatable).")
@click.option("--remove-annotation", "remove_keys", multiple=True, metavar="KEY", help="Drop an annotation.")
@click.option("--index", "on_index", is_flag=True, help="Annotate the index itself, not an entry.")
@platform_field_options
@format_option
@transport_options
def annotate_command(list_name: str, digest: str | None, annotations: tuple[str, ...],
                     remove_keys: tuple[str, ...], on_index: bool, os: str | None, arch: str | None,
                     variant: str | None, os_version: str | None, os_features: tuple[str, ...],
                     output_format: str | None, **transport: Any) -> None:
    """Set annotations or platform fields of the entry DIGEST in LIST (or of the index with --index)."""
    if on_index == bool(digest):
        raise UsageError("name the entry's DIGEST, or give --index to annotate the index itself")
    state = run(ml.annotate_list(list_name, None if on_index else digest, annotations=_annotations(annotations),
                                 platform=_platform_fields(os, arch, variant, os_version, os_features),
                                 remove_keys=remove_keys, options=open_options(**transport)))
    _list_report(state, "annotated")


@manifest_group.command("remove")
@click.argument("list_name", metavar="LIST")
@click.argument("digest")
@format_option
@transport_options
def remove_command(list_name: str, digest: str, output_format: str | None, **transport: Any) -> None:
    """Remove the entry DIGEST from LIST."""
    state = run(ml.remove_from_list(list_name, digest, options=open_options(**transport)))
    _list_report(state, "removed")


@manifest_group.command("inspect")
@click.argument("list_name", metavar="LIST")
@click.option("--raw", is_flag=True, help="Print the index's exact bytes.")
@pull_transport_options
def inspect_command(list_name: str, raw: bool, **transport: Any) -> None:
    """Print LIST's index (pretty JSON; --raw for its exact bytes)."""
    index = run(ml.inspect_list(list_name, options=open_options(**transport)))
    if raw:
        sys.stdout.buffer.write(index.raw)
        sys.stdout.buffer.flush()
        return
    echo(json.dumps(json.loads(index.raw), indent=4))


@manifest_group.command("push")
@click.argument("list_name", metavar="LIST")
@click.argument("destination")
@click.option("--all/--no-all", "all_images", default=True, show_default=True,
              help="Push every image the list names, then the list (--no-all: the list only).")
@click.option("-f", "--format", "index_format", type=click.Choice(sorted(ie.INDEX_FORMATS)), default=None,
              help="Write the index as an OCI index or a Docker manifest list (default: as it is).")
@click.option("--rm", "remove", is_flag=True, help="Delete the working list after a successful push.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=6, show_default=True)
@click.option("--digestfile", type=click.Path(dir_okay=False), default=None,
              help="Write the pushed list's digest to this file.")
@push_transport_options
def push_command(list_name: str, destination: str, all_images: bool, index_format: str | None, remove: bool,
                 jobs: int, digestfile: str | None, **transport: Any) -> None:
    """Push LIST and the images it lists to DESTINATION (docker://, oci:, ...) with the copy engine."""
    with ProgressView() as view:
        result = run(ml.push_list(list_name, destination, all_images=all_images,
                                  media_type=_index_format(index_format), jobs=jobs, progress=view,
                                  remove=remove, options=open_options(**transport),
                                  list_options=open_options(**transport)))
    if digestfile:
        with open(digestfile, "w") as f:
            f.write(str(result.digest))
    report_copy(result)


@manifest_group.command("exists")
@click.argument("list_name", metavar="LIST")
@pull_transport_options
def exists_command(list_name: str, **transport: Any) -> None:
    """Exit 0 if LIST exists and is a manifest list, 1 otherwise (podman's `manifest exists`)."""
    from ..core.errors import ManifestInvalid, NotFound

    try:
        run(ml.inspect_list(list_name, options=open_options(**transport)))
    except (NotFound, ManifestInvalid):
        click.get_current_context().exit(1)


@manifest_group.command("rm")
@click.argument("list_names", metavar="LIST...", nargs=-1, required=True)
def rm_command(list_names: tuple[str, ...]) -> None:
    """Delete working lists (their images are freed by `ocikit layout gc` of the working layout)."""
    for name in list_names:
        echo(f"{name} {run(ml.delete_list(name))}")


# ---- index -------------------------------------------------------------------------------------


def _edit_report(edit: ie.IndexEdit) -> None:
    if current_format() == "json":
        emit_json(edit.to_dict())
    else:
        echo(str(edit.digest))


@click.group("index")
def index_group() -> None:
    """Edit image indexes where they live (crane's verbs); prints the new index digest."""


@index_group.command("filter")
@click.argument("reference")
@click.option("--platform", "platforms", multiple=True, required=True, metavar="OS/ARCH[/VARIANT]",
              help="A platform to keep (repeatable, or comma-separated).")
@click.option("-t", "--tag", "target", default=None, help="Write the new index here (default: REFERENCE).")
@format_option
@transport_options
def filter_command(reference: str, platforms: tuple[str, ...], target: str | None, output_format: str | None,
                   **transport: Any) -> None:
    """Keep only the given platforms of the index at REFERENCE."""
    with ProgressView() as view:
        edit = run(ie.filter_index_ref(reference, parse_platforms(platforms), target, progress=view,
                                       options=open_options(**transport)))
    _edit_report(edit)


@index_group.command("append")
@click.argument("base", required=False)
@click.option("-m", "--manifest", "manifests", multiple=True, required=True,
              help="An image (or index) to append (repeatable).")
@click.option("-t", "--tag", "target", default=None, help="Write the new index here (default: BASE).")
@click.option("--flatten/--no-flatten", default=True, show_default=True,
              help="An appended index contributes its images (--no-flatten: the index itself).")
@click.option("--index-format", "index_format", type=click.Choice(sorted(ie.INDEX_FORMATS)), default=None,
              help="The new index's media type: oci, or docker (v2s2) (default: BASE's, or OCI).")
@format_option
@transport_options
def append_command(base: str | None, manifests: tuple[str, ...], target: str | None, flatten: bool,
                   index_format: str | None, output_format: str | None, **transport: Any) -> None:
    """Append images to the index BASE (or to a new empty index) and write it to --tag."""
    with ProgressView() as view:
        edit = run(ie.append_index_ref(base, manifests, target, flatten=flatten,
                                       media_type=_index_format(index_format), progress=view,
                                       options=open_options(**transport)))
    _edit_report(edit)


# ---- artifacts and referrers ---------------------------------------------------------------------


@click.group("artifact")
def artifact_group() -> None:
    """Push and pull OCI 1.1 artifacts (files as layers, the empty config, an optional subject)."""


@artifact_group.command("push")
@click.argument("reference")
@click.argument("files", nargs=-1)
@click.option("--artifact-type", required=True, metavar="MEDIATYPE", help="The artifact's artifactType.")
@click.option("--subject", default=None, metavar="REF",
              help="The manifest this artifact refers to: a tag or digest in the same repository/layout.")
@click.option("--annotation", "annotations", multiple=True, metavar="KEY=VALUE",
              help="A manifest annotation (repeatable).")
@format_option
@push_transport_options
def artifact_push_command(reference: str, files: tuple[str, ...], artifact_type: str, subject: str | None,
                          annotations: tuple[str, ...], output_format: str | None, **transport: Any) -> None:
    """Push FILEs (PATH or PATH:MEDIATYPE) as an artifact to REFERENCE; prints its digest.

    As in oras, the last ':' splits PATH from MEDIATYPE: a path with a colon ends with ':' (the
    default type, application/vnd.oci.image.layer.v1.tar) or escapes it as '\\:'."""
    res = run(art.apush(reference, files, artifact_type, subject=subject, annotations=_annotations(annotations),
                        options=open_options(**transport)))
    if current_format() == "json":
        emit_json(res.to_dict())
        return
    if res.subject:
        echo(f"subject {res.subject} (discoverable via {res.referrers_via})")
    echo(str(res.digest))


@artifact_group.command("pull")
@click.argument("reference")
@click.argument("directory", type=click.Path(file_okay=False))
@format_option
@pull_transport_options
def artifact_pull_command(reference: str, directory: str, output_format: str | None, **transport: Any) -> None:
    """Write the files of the artifact at REFERENCE into DIRECTORY (each verified)."""
    res = run(art.apull(reference, directory, options=open_options(**transport)))
    if current_format() == "json":
        emit_json(res.to_dict())
        return
    for path, d in res.files:
        echo(f"{path} {d.digest} {human_size(d.size)}")


@click.command("referrers")
@click.argument("reference")
@click.option("--artifact-type", default=None, metavar="MEDIATYPE", help="Only referrers of this type.")
@format_option
@pull_transport_options
def referrers_command(reference: str, artifact_type: str | None, output_format: str | None, **transport: Any) -> None:
    """List the artifacts referring to REFERENCE (referrers API, else the sha256-<hex> tag schema)."""
    from ..transports import open_store

    tref = parse_transport_reference(reference, default_transport="docker")

    async def go() -> Any:
        store = open_store(tref, options=open_options(**transport))
        try:
            desc = await store.resolve(tref.selector)
            return await find_referrers(store, desc.digest, artifact_type)
        finally:
            await store.close()

    found = run(go())
    if current_format() == "json":
        emit_json(found.to_dict())
        return
    for d in found.referrers:
        echo(f"{d.digest}\t{d.artifact_type or '-'}\t{d.media_type}\t{d.size}")


def register(group: click.Group) -> None:
    group.add_command(manifest_group)
    group.add_command(index_group)
    group.add_command(artifact_group)
    group.add_command(referrers_command)

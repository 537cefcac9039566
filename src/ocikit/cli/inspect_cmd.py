"""``ocikit inspect``, ``ocikit tree``, ``ocikit manifest-digest``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..core.digest import Digest
from ..model import parse_manifest
from ..ops.inspect import inspect_image, tree
from ..core.transportref import parse_transport_reference
from ..transports import open_store
from .main import run
from .registry_cmds import open_options, pull_transport_options
from .options import override_platform, platform_override_options
from .output import echo, emit_json, format_option, human_size
from .output import output_format as current_format


@click.command("inspect")
@click.argument("image")
@click.option("--raw", is_flag=True, help="Print the exact manifest bytes the reference names.")
@click.option("--config", "show_config", is_flag=True, help="Print the exact config bytes of the image.")
@click.option("--no-tags", "-n", is_flag=True, help="Do not list the repository's tags.")
@platform_override_options
@pull_transport_options
@format_option
def inspect_command(image: str, raw: bool, show_config: bool, no_tags: bool, override_os: str | None,
                    override_arch: str | None, override_variant: str | None, output_format: str | None,
                    **transport: Any) -> None:
    """Show an image's digest, platform, layers, env and labels (skopeo inspect's fields)."""
    tref = parse_transport_reference(image, default_transport="docker")
    platform = override_platform(override_os, override_arch, override_variant)

    async def go() -> Any:
        store = open_store(tref, options=open_options(**transport))
        try:
            if raw and not show_config:
                from ..ops.copy import resolve_root
                node = await resolve_root(store, tref.selector, _opts())
                return ("raw", node.raw)
            ins = await inspect_image(store, tref.selector, platform=platform)
            if show_config:
                return ("raw", ins.config_raw)
            tags = [] if no_tags else await _tags(store)
            from ..ops.inspect import inspect_fields
            name = str(tref.image.name) if tref.image else tref.path
            return ("fields", inspect_fields(name, ins, tags))
        finally:
            await store.close()

    kind, value = run(go())
    if kind == "raw":
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()
        return
    emit_json(value)


async def _tags(store: Any) -> list[str]:
    try:
        return sorted(await store.list_tags())
    except Exception:  # a registry may forbid listing tags; inspect still works
        return []


def _opts() -> Any:
    from ..content import Options
    return Options()


@click.command("tree")
@click.argument("image")
@click.option("--referrers", is_flag=True, help="Show the artifacts that refer to each manifest.")
@pull_transport_options
@format_option
def tree_command(image: str, referrers: bool, output_format: str | None, **transport: Any) -> None:
    """Show the graph under IMAGE: index -> manifests (platforms) -> config and layers."""
    tref = parse_transport_reference(image, default_transport="docker")

    async def go() -> dict[str, Any]:
        store = open_store(tref, options=open_options(**transport))
        try:
            return await tree(store, tref.selector, referrers=referrers)
        finally:
            await store.close()

    t = run(go())
    if current_format() == "json":
        emit_json(t)
        return
    from rich.console import Console
    from rich.tree import Tree

    def label(d: dict[str, Any]) -> str:
        plat = f" [bold]{d['platform']}[/bold]" if d.get("platform") else ""
        art = f" ({d['artifactType']})" if d.get("artifactType") else ""
        return f"{d['mediaType']}{plat}{art} {d['digest']} {human_size(d['size'])}"

    def build(node: Tree, d: dict[str, Any]) -> None:
        for m in d.get("manifests", []):
            build(node.add(label(m)), m)
        if "config" in d:
            node.add("config " + label(d["config"]))
            for i, layer in enumerate(d["layers"]):
                node.add(f"layer {i} " + label(layer))
        for r in d.get("referrers", []):
            build(node.add("referrer " + label(r)), r)

    root = Tree(label(t))
    build(root, t)
    Console(soft_wrap=True).print(root)


@click.command("manifest-digest")
@click.argument("file", type=click.File("rb"))
def manifest_digest_command(file: Any) -> None:
    """Print the digest of a manifest file (the sha256 of its exact bytes)."""
    raw = file.read()
    parse_manifest(raw, what=getattr(file, "name", "manifest"))
    echo(str(Digest.of(raw)))


def register(group: click.Group) -> None:
    group.add_command(inspect_command)
    group.add_command(tree_command)
    group.add_command(manifest_digest_command)

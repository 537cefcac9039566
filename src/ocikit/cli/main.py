"""The ``ocikit`` command group: global options, error handling, command registration."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Coroutine, TypeVar

import click

from .. import __version__
from ..errors import OcikitError
from .output import FORMATS

T = TypeVar("T")

# Command name -> the module whose ``register(group)`` defines it. Modules are imported only
# when their command runs (or help lists them), so `ocikit copy` does not pay for the server.
COMMANDS = {
    "copy": "ocikit.cli.copy_cmd",
    "inspect": "ocikit.cli.inspect_cmd",
    "tree": "ocikit.cli.inspect_cmd",
    "manifest-digest": "ocikit.cli.inspect_cmd",
    "layout": "ocikit.cli.layout_cmd",
    "list-tags": "ocikit.cli.registry_cmds",
    "delete": "ocikit.cli.registry_cmds",
    "login": "ocikit.cli.registry_cmds",
    "logout": "ocikit.cli.registry_cmds",
    "manifest": "ocikit.cli.manifest_cmd",
    "index": "ocikit.cli.manifest_cmd",
    "artifact": "ocikit.cli.manifest_cmd",
    "referrers": "ocikit.cli.manifest_cmd",
    "unpack": "ocikit.cli.unpack_cmd",
    "build": "ocikit.cli.build_cmd",
    "append": "ocikit.cli.build_cmd",
    "mutate": "ocikit.cli.build_cmd",
    "flatten": "ocikit.cli.build_cmd",
    "layer": "ocikit.cli.build_cmd",
    "diff": "ocikit.cli.build_cmd",
    "serve": "ocikit.cli.serve_cmd",
    "registry": "ocikit.cli.serve_cmd",
    "mirror": "ocikit.cli.mirror_cmd",
    "generate-key": "ocikit.cli.sign_cmd",
    "sign": "ocikit.cli.sign_cmd",
    "verify": "ocikit.cli.verify_cmd",
}
COMMAND_MODULES = sorted(set(COMMANDS.values()))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine for a command."""
    import asyncio   # here, not at the top: commands that never await do not pay for it

    return asyncio.run(coro)


class OcikitGroup(click.Group):
    """Loads commands lazily; turns ocikit's errors into one line on stderr and an exit code.

    ``--debug`` shows tracebacks.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name]).register(self)
        return self.commands.get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OcikitError as e:
            if _debug(ctx):
                raise
            click.echo(f"ocikit: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except BrokenPipeError:
            # the reader went away (`ocikit inspect ... | head`): stop quietly, as cat does
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(141)
        except OSError as e:
            if _debug(ctx):
                raise
            where = f": {e.filename}" if getattr(e, "filename", None) else ""
            click.echo(f"ocikit: error: {e.strerror or e}{where}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("ocikit: interrupted", err=True)
            ctx.exit(130)


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("debug")) or os.environ.get("OCIKIT_DEBUG") == "1"


@click.group(cls=OcikitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="ocikit")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("--format", "output_format", type=FORMATS, default="text", show_default=True,
              help="Output format for every command: text for people, json for scripts.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, output_format: str) -> None:
    """ocikit: copy, mirror, inspect, unpack, build and serve OCI container images."""
    ctx.obj = {"debug": debug, "format": output_format}
    if debug:
        import logging
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s %(message)s")


OWNS_PROCESS = False
"""True once :func:`main` runs: the process is the ``ocikit`` command's (see :mod:`ocikit._aiohttp`)."""


def main(args: list[str] | None = None) -> None:
    """Entry point: usage errors, like every other error, are one line on stderr (exit 2)."""
    global OWNS_PROCESS
    OWNS_PROCESS = True
    from ..memtune import tune_malloc

    tune_malloc()   # blobs stream through here as they do through the server
    try:
        _main(args)
    finally:
        _before_shutdown()


def _before_shutdown() -> None:
    """Collect garbage cycles once, while everything is intact (their finalizers run now), then
    freeze what is left: the interpreter's shutdown would otherwise traverse every loaded module's
    objects in several collections (~70 ms of a registry command's exit with aiohttp loaded,
    ~25 ms of an unpack's; measured from the last output to process exit)."""
    import gc

    gc.collect()
    gc.freeze()


def _main(args: list[str] | None) -> None:
    try:
        rv = cli.main(args=args, prog_name="ocikit", standalone_mode=False)
    except click.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:  # bare `ocikit`: show help
            click.echo(e.ctx.get_help())
            sys.exit(0)
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        click.echo(f"ocikit: error: {e.format_message()}{hint}", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        click.echo(f"ocikit: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("ocikit: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()

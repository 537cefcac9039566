"""Rendering for the CLI: JSON for scripts, rich text and progress for people."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from ..progress import BlobAdvanced, BlobDone, BlobStarted, JobProgress

FORMATS = click.Choice(["text", "json"])


def output_format(ctx: click.Context | None = None) -> str:
    """The command's ``--format``, else the group's, else text."""
    ctx = ctx or click.get_current_context()
    fmt = ctx.params.get("output_format")
    if fmt:
        return str(fmt)
    root = ctx.find_root()
    return str((root.obj or {}).get("format") or "text")


def format_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--format text|json`` on a command (the group's ``--format`` is the default)."""
    return click.option("--format", "output_format", type=FORMATS, default=None,
                        help="Output as text (default) or JSON for scripts.")(f)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def echo(text: str) -> None:
    click.echo(text)


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


class ProgressView:
    """A rich progress display for copy-like operations, on a terminal only."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.total: Any = None

    def __enter__(self) -> "ProgressView":
        if self.enabled:
            from rich.console import Console  # imported here: rich costs start-up time
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                     TransferSpeedColumn(), TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        p = self.progress
        if p is None:
            return
        if isinstance(event, JobProgress):  # a whole job: one bar of bytes, images counted in its text
            if self.total is None:
                self.total = p.add_task("", total=event.bytes_total or None)
            p.update(self.total, completed=event.bytes_done, total=event.bytes_total or None,
                     description=f"images {event.images_done}/{event.images_total}")
        elif isinstance(event, BlobStarted):
            self.tasks[event.digest] = p.add_task(f"{event.digest.short}", total=event.size)
        elif isinstance(event, BlobAdvanced):
            t = self.tasks.get(event.digest)
            if t is not None:
                p.advance(t, event.nbytes)
        elif isinstance(event, BlobDone):
            t = self.tasks.pop(event.digest, None)
            if t is not None:
                p.remove_task(t)

"""Options shared by several commands (platform selection, transport flags)."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..core.platforms import Platform, parse_platform


def parse_platforms(values: tuple[str, ...]) -> list[Platform]:
    out: list[Platform] = []
    for v in values:
        for part in v.split(","):
            if part.strip():
                out.append(parse_platform(part.strip()))
    return out


def platform_override_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """skopeo's --override-os/--override-arch/--override-variant."""
    f = click.option("--override-variant", default=None, help="Use VARIANT instead of the host's.")(f)
    f = click.option("--override-arch", default=None, help="Use ARCH instead of the host's architecture.")(f)
    f = click.option("--override-os", default=None, help="Use OS instead of the host's.")(f)
    return f


def override_platform(os_: str | None, arch: str | None, variant: str | None) -> Platform | None:
    if not (os_ or arch or variant):
        return None
    from ..core.platforms import host_platform
    host = host_platform()
    return Platform(os_ or host.os, arch or host.architecture,
                    variant if variant else (None if arch else host.variant)).normalized()

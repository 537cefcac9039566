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


def bool_option(*names: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """skopeo's boolean flags: ``--tls-verify``, ``--tls-verify=false`` (several spellings: one parameter)."""
    return click.option(*names, type=click.BOOL, default=None, is_flag=False, flag_value=True, metavar="BOOL",
                        help=help)


def registry_flags(side: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--creds``, ``--authfile``, ``--tls-verify``, ``--cert-dir``, ``--retry-times`` (podman's spellings)
    for a command that talks to one registry; with ``side`` (``src`` for a command that only reads,
    ``dest`` for one that writes) skopeo's ``--src-tls-verify``/``--dest-creds``... name the same flags."""
    def names(flag: str) -> tuple[str, ...]:
        return (f"--{flag}",) + ((f"--{side}-{flag}",) if side else ())

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option("--retry-times", type=click.IntRange(0, 100), default=3, show_default=True,
                         help="Retries on network errors and 408/429/5xx answers.")(f)
        f = click.option(*names("cert-dir"), "cert_dir", type=click.Path(file_okay=False), default=None,
                         help="Directory with CA certificates (*.crt) and client pairs (*.cert, *.key).")(f)
        f = bool_option(*names("tls-verify"), "tls_verify",
                        help="Require HTTPS and verify certificates (default true; false allows plain HTTP).")(f)
        f = click.option(*names("authfile"), "authfile", default=None, help="auth.json to read credentials from.")(f)
        f = click.option(*names("creds"), "creds", default=None, metavar="USER[:PASS]",
                         help="Credentials for the registry.")(f)
        return f
    return deco


def compress_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """skopeo's ``--dest-compress-format`` and ``--dest-compress-level`` (``copy`` and ``mirror``)."""
    f = click.option("--dest-compress-level", type=int, default=None, metavar="N",
                     help="Compression level (gzip 0-9, zstd -7..22).")(f)
    f = click.option("--dest-compress-format", type=click.Choice(["gzip", "zstd"], case_sensitive=False),
                     default=None, help="Recompress layers as gzip or zstd (diff_ids stay; digests change).")(f)
    return f

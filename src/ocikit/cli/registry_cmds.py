"""``ocikit list-tags``, ``delete``, ``login``, ``logout`` and the registry flags they share with ``copy``."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from ..core.errors import Unsupported, UsageError
from ..core.transportref import parse_transport_reference
from ..transports import OpenOptions, open_store
from .main import run
from .options import bool_option, registry_flags
from .output import echo


transport_options = registry_flags()
"""The registry flags of a command that reads and writes with one set of them (podman's spellings)."""
pull_transport_options = registry_flags("src")
"""... of a command that only reads: ``--src-tls-verify``, ``--src-creds``... are accepted too."""
push_transport_options = registry_flags("dest")
"""... of a command that only writes: ``--dest-tls-verify``, ``--dest-creds``... are accepted too."""


def copy_transport_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The source/destination flag pairs of ``skopeo copy``."""
    for side, what in (("dest", "destination"), ("src", "source")):
        f = click.option(f"--{side}-cert-dir", default=None, type=click.Path(file_okay=False),
                         help=f"Certificates directory for the {what} registry.")(f)
        f = bool_option(f"--{side}-tls-verify", help=f"TLS verification for the {what} registry.")(f)
        f = click.option(f"--{side}-authfile", default=None, help=f"auth.json for the {what} registry.")(f)
        f = click.option(f"--{side}-creds", default=None, metavar="USER[:PASS]",
                         help=f"Credentials for the {what} registry.")(f)
    return transport_options(f)


def _creds(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    user, _, password = text.partition(":")
    if not user:
        raise UsageError("--creds: expected USERNAME[:PASSWORD]")
    return (user, password)


def open_options(*, creds: str | None = None, authfile: str | None = None, tls_verify: bool | None = None,
                 cert_dir: str | None = None, retry_times: int = 3) -> OpenOptions:
    return OpenOptions(creds=_creds(creds), tls_verify=True if tls_verify is None else tls_verify,
                       cert_dir=cert_dir, auth_file=authfile, retry_times=retry_times)


def side_options(side: str, kw: dict[str, Any]) -> OpenOptions:
    """The OpenOptions of ``src`` or ``dest``: the side's own flag, else the shared one."""
    def pick(name: str) -> Any:
        v = kw.get(f"{side}_{name}")
        return kw.get(name) if v is None else v
    return open_options(creds=pick("creds"), authfile=pick("authfile"), tls_verify=pick("tls_verify"),
                        cert_dir=pick("cert_dir"), retry_times=kw.get("retry_times", 3))


# ---- list-tags ---------------------------------------------------------------------------------


@click.command("list-tags")
@click.argument("image")
@pull_transport_options
def list_tags_command(image: str, **kw: Any) -> None:
    """List the tags of a repository (docker://HOST/REPO) or a layout/archive, as skopeo does."""
    tref = parse_transport_reference(image, default_transport="docker")

    async def go() -> list[str]:
        store = open_store(tref, options=open_options(**kw))
        try:
            return await store.list_tags()
        finally:
            await store.close()

    tags = run(go())
    name = tref.image.name if tref.image is not None else tref.path
    sys.stdout.write(json.dumps({"Repository": name, "Tags": tags}, indent=4) + "\n")


# ---- delete --------------------------------------------------------------------------------------


@click.command("delete")
@click.argument("image")
@transport_options
def delete_command(image: str, **kw: Any) -> None:
    """Delete an image (by tag or digest); on a registry this removes the manifest and every tag on it."""
    tref = parse_transport_reference(image, default_transport="docker")

    async def go() -> None:
        store = open_store(tref, options=open_options(**kw))
        try:
            deleter = getattr(store, "delete_manifest", None)
            if deleter is None:
                raise Unsupported(f"{store.location}: cannot delete images there")
            selector = tref.selector
            if selector is None:
                raise UsageError(f"{image}: name a tag or digest to delete")
            await deleter(selector)
        finally:
            await store.close()

    run(go())


# ---- login / logout ------------------------------------------------------------------------------


def _host(registry: str) -> str:
    h = registry
    for prefix in ("docker://", "https://", "http://"):
        if h.startswith(prefix):
            h = h[len(prefix):]
    return h.split("/", 1)[0]


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", default=None, help="User name (asked for when missing).")
@click.option("-p", "--password", default=None, help="Password (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--authfile", default=None, help="auth.json to write (default $REGISTRY_AUTH_FILE or "
              "$XDG_RUNTIME_DIR/containers/auth.json).")
@click.option("--get-login", is_flag=True, help="Print the user name logged in to REGISTRY.")
@bool_option("--tls-verify", help="Require HTTPS and verify certificates.")
@click.option("--cert-dir", type=click.Path(file_okay=False), default=None)
def login_command(registry: str, username: str | None, password: str | None, password_stdin: bool,
                  authfile: str | None, get_login: bool, tls_verify: bool | None, cert_dir: str | None) -> None:
    """Check credentials against REGISTRY and save them in auth.json."""
    from ..transports.registry import Credentials, RegistryClient
    from ..transports.registry.credentials import find_credentials, store_credentials
    host = _host(registry)
    if get_login:
        c = find_credentials(host, authfile=authfile)
        if c is None:
            raise UsageError(f"not logged in to {host}")
        echo(c.username)
        return
    if password_stdin:
        if password:
            raise UsageError("--password and --password-stdin exclude each other")
        password = sys.stdin.readline().rstrip("\r\n")
    if not username:
        username = click.prompt("Username")
    if password is None:
        password = click.prompt("Password", hide_input=True)
    creds = Credentials(username, password)

    async def check() -> None:
        client = RegistryClient(host, creds=creds, tls_verify=True if tls_verify is None else tls_verify,
                                cert_dir=cert_dir)
        try:
            async with client.request("GET", "/v2/", what=f"{host}: login"):
                pass
        finally:
            await client.close()

    run(check())
    store_credentials(host, creds, authfile)
    echo("Login Succeeded!")


@click.command("logout")
@click.argument("registry", required=False)
@click.option("-a", "--all", "all_", is_flag=True, help="Forget the credentials of every registry.")
@click.option("--authfile", default=None, help="auth.json to edit.")
def logout_command(registry: str | None, all_: bool, authfile: str | None) -> None:
    """Forget saved credentials for REGISTRY (or all of them)."""
    from ..transports.registry.credentials import remove_credentials
    if all_:
        remove_credentials(None, authfile)
        echo("Removed login credentials for all registries")
        return
    if not registry:
        raise UsageError("name a registry, or --all")
    host = _host(registry)
    if not remove_credentials(host, authfile):
        raise UsageError(f"not logged in to {host}")
    echo(f"Removed login credentials for {host}")


def register(group: click.Group) -> None:
    for cmd in (list_tags_command, delete_command, login_command, logout_command):
        group.add_command(cmd)

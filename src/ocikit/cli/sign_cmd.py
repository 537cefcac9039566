"""``ocikit generate-key PREFIX`` and ``ocikit sign IMAGE``."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..errors import UsageError
from .main import run
from .output import echo, emit_json, output_format
from .registry_cmds import open_options, transport_options


def read_passphrase(passphrase_file: str | None, *, confirm: bool = False, what: str = "private key") -> bytes:
    """``--passphrase-file``, else ``OCIKIT_PASSPHRASE``, else a prompt on a terminal."""
    if passphrase_file:
        with open(passphrase_file, "rb") as f:
            return f.read().rstrip(b"\r\n")
    env = os.environ.get("OCIKIT_PASSPHRASE")
    if env is not None:
        return env.encode()
    if sys.stdin.isatty():
        return click.prompt(f"Passphrase for the {what}", hide_input=True, confirmation_prompt=confirm,
                            default="", show_default=False).encode()
    raise UsageError(f"no passphrase for the {what}: give --passphrase-file, set OCIKIT_PASSPHRASE, or run on a terminal")


def load_signing_key(path: str, passphrase_file: str | None, image: str) -> Any:
    """The private key to sign ``image`` with; a bad key or passphrase is an error naming both."""
    from ..trust.keys import load_private_key

    with open(path, "rb") as f:
        data = f.read()
    return load_private_key(data, read_passphrase(passphrase_file), what=f"{image}: signing key {path}")


@click.command("generate-key")
@click.argument("prefix")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
              help="Read the passphrase from this file (else OCIKIT_PASSPHRASE, else a prompt).")
@click.option("--force", is_flag=True, help="Overwrite PREFIX.key and PREFIX.pub if they exist.")
def generate_key_command(prefix: str, passphrase_file: str | None, force: bool) -> None:
    """Write a cosign key pair: PREFIX.key (encrypted, cosign's format) and PREFIX.pub (PEM)."""
    from ..trust.keys import write_key_pair

    priv, pub = write_key_pair(prefix, read_passphrase(passphrase_file, confirm=True), force=force)
    if output_format() == "json":
        emit_json({"privateKey": priv, "publicKey": pub})
    else:
        echo(f"Private key written to {priv}\nPublic key written to {pub}")


@click.command("sign")
@click.argument("image")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A cosign private key (PREFIX.key): sign with sigstore.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
              help="The passphrase of --key (else OCIKIT_PASSPHRASE, else a prompt).")
@click.option("--bundle", "bundle_mode", is_flag=True,
              help="With --key: attach a sigstore bundle as an OCI 1.1 referrer instead of cosign's .sig tag.")
@click.option("--tag-schema/--no-tag-schema", default=None,
              help="With --key: write cosign's sha256-<hex>.sig tag (the default; with --bundle: both).")
@click.option("--sign-by", "sign_by", default=None, metavar="FINGERPRINT",
              help="Sign with this GPG key (simple signing) into the lookaside store registries.d names.")
@click.option("--gpg-passphrase-file", type=click.Path(dir_okay=False), default=None,
              help="The passphrase of the GPG key, for gpg's loopback pinentry.")
@click.option("--gnupghome", type=click.Path(file_okay=False), default=None,
              help="The GPG home holding the --sign-by key (default: GNUPGHOME, else ~/.gnupg).")
@click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
              help="registries.d directory naming the lookaside stores.")
@click.option("--sign-identity", default=None, metavar="REF",
              help="The docker reference the signature names (default: IMAGE's).")
@click.option("-r", "--recursive", is_flag=True, help="For an index: also sign each manifest it lists.")
@transport_options
def sign_command(image: str, key_path: str | None, passphrase_file: str | None, bundle_mode: bool,
                 tag_schema: bool | None, sign_by: str | None, gpg_passphrase_file: str | None,
                 gnupghome: str | None, registries_d: str | None, sign_identity: str | None, recursive: bool,
                 **kw: Any) -> None:
    """Sign IMAGE with a cosign key (--key) and/or a GPG key (--sign-by)."""
    from ..trust.lookaside import RegistriesD
    from ..trust.sign import SignOptions, sign_image

    if key_path is None and sign_by is None:
        raise click.UsageError("give --key PREFIX.key (sigstore) or --sign-by FINGERPRINT (GPG)")
    if key_path is None and (bundle_mode or tag_schema):
        raise click.UsageError("--bundle and --tag-schema need --key")
    key = load_signing_key(key_path, passphrase_file, image) if key_path else None
    options = SignOptions(private_key=key, tag_schema=tag_schema if tag_schema is not None else not bundle_mode,
                          bundle=bundle_mode, gpg_fingerprint=sign_by, gnupghome=gnupghome,
                          gpg_passphrase_file=gpg_passphrase_file, identity=sign_identity, recursive=recursive,
                          regd=RegistriesD.load(registries_d) if sign_by else None)
    result = run(sign_image(image, options, open_options=open_options(**kw)))
    if output_format() == "json":
        emit_json(result.to_dict())
        return
    for s in result.signed:
        echo(f"Signed {s.digest} ({s.kind}): {s.location}")


def register(group: click.Group) -> None:
    group.add_command(generate_key_command)
    group.add_command(sign_command)

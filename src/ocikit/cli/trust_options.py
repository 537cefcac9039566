"""The trust flags of ``ocikit copy`` (skopeo's spelling) and the copy hook they make."""

from __future__ import annotations

from typing import Any, Callable

import click

from ..core.errors import UsageError

TRUST_KEYS = ("policy", "registries_d", "remove_signatures", "sign_by", "sign_by_sigstore_private_key",
              "sign_passphrase_file", "sign_identity")


def trust_check_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """What signatures are checked against (``ocikit verify``, ``mirror verify --signatures``):
    ``--key``, ``--gpg-keyring``, ``--policy``, ``--registries.d``, ``-r/--recursive``."""
    f = click.option("-r", "--recursive", is_flag=True,
                     help="For an index: each platform manifest it lists must be signed too.")(f)
    f = click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
                     help="registries.d directory naming the lookaside stores.")(f)
    f = click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
                     help="Evaluate this containers-policy.json (\"system\": /etc/containers/policy.json).")(f)
    f = click.option("--gpg-keyring", "keyrings", multiple=True, type=click.Path(dir_okay=False, exists=True),
                     help="A file of trusted OpenPGP public keys (armored or binary); repeatable.")(f)
    return click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False, exists=True),
                        help="A trusted sigstore/cosign public key (PEM); repeatable.")(f)


def trust_copy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--policy``, ``--registries.d``, ``--remove-signatures``, ``--sign-by``, ``--sign-by-sigstore-private-key``,
    ``--sign-passphrase-file``, ``--sign-identity``."""
    f = click.option("--sign-identity", default=None, metavar="REF",
                     help="The docker reference the new signature names (default: DESTINATION's).")(f)
    f = click.option("--sign-passphrase-file", type=click.Path(dir_okay=False), default=None,
                     help="Passphrase of the signing key (else OCIKIT_PASSPHRASE, else a prompt).")(f)
    f = click.option("--sign-by-sigstore-private-key", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Sign the copy with this cosign private key (cosign's .sig tag).")(f)
    f = click.option("--sign-by", default=None, metavar="FINGERPRINT",
                     help="Sign the copy with this GPG key into the destination's lookaside store.")(f)
    f = click.option("--remove-signatures", is_flag=True,
                     help="Do not carry signatures (lookaside, .sig/.att/.sbom tags, referrers).")(f)
    f = click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
                     help="registries.d directory naming the lookaside stores.")(f)
    f = click.option("--policy", default=None, metavar="FILE",
                     help="Refuse a source image this containers-policy.json rejects (\"system\": "
                          "/etc/containers/policy.json); nothing is written then.")(f)
    return f


def trust_hook(source: str, destination: str, kw: dict[str, Any]) -> Any:
    """The :class:`~ocikit.trust.carry.TrustHook` for a copy; pops the trust flags out of ``kw``."""
    from ..core.transportref import parse_transport_reference
    from ..trust.carry import TrustHook
    from ..trust.lookaside import RegistriesD

    t = {k: kw.pop(k, None) for k in TRUST_KEYS}
    regd = RegistriesD.load(t["registries_d"])
    policy = None
    if t["policy"]:
        from ..trust.policy import load_policy
        policy = load_policy(None if t["policy"] == "system" else t["policy"])
    sign = None
    if t["sign_by"] or t["sign_by_sigstore_private_key"]:
        from ..trust.sign import SignOptions
        key = None
        if t["sign_by_sigstore_private_key"]:
            from .sign_cmd import load_signing_key
            key = load_signing_key(t["sign_by_sigstore_private_key"], t["sign_passphrase_file"], destination)
        sign = SignOptions(private_key=key, gpg_fingerprint=t["sign_by"], identity=t["sign_identity"],
                           gpg_passphrase_file=t["sign_passphrase_file"] if t["sign_by"] and not key else None,
                           regd=regd)
    elif t["sign_identity"]:
        raise UsageError("--sign-identity needs --sign-by or --sign-by-sigstore-private-key")
    return TrustHook(parse_transport_reference(source), parse_transport_reference(destination), policy=policy,
                     regd=regd, carry=not t["remove_signatures"], sign=sign)


__all__ = ["TRUST_KEYS", "trust_copy_options", "trust_hook"]

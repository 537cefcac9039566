"""``ocikit verify IMAGE --key PUB | --gpg-keyring FILE | --policy policy.json``."""

from __future__ import annotations

from typing import Any

import click

from ..errors import PolicyRejected, SignatureMissing
from .main import run
from .output import echo, emit_json, output_format
from .registry_cmds import open_options, transport_options


@click.command("verify")
@click.argument("image")
@click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A sigstore/cosign public key (PEM); repeatable.")
@click.option("--gpg-keyring", "keyrings", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="A file of trusted OpenPGP public keys (armored or binary); repeatable.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), default=None,
              help="Evaluate this containers-policy.json (\"system\": /etc/containers/policy.json).")
@click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
              help="registries.d directory naming the lookaside stores.")
@click.option("--identity", default=None, metavar="REF",
              help="With --key/--gpg-keyring: require signatures naming exactly REF (default: IMAGE's "
                   "repository, and its tag when IMAGE names one).")
@click.option("-r", "--recursive", is_flag=True,
              help="For an index: each manifest it lists must be signed too (--key/--gpg-keyring).")
@transport_options
def verify_command(image: str, keys: tuple[str, ...], keyrings: tuple[str, ...], policy_path: str | None,
                   registries_d: str | None, identity: str | None, recursive: bool, **kw: Any) -> None:
    """Check every signature of IMAGE (lookaside, cosign tag, sigstore-bundle referrers); fail unless trusted."""
    from ..trust.lookaside import RegistriesD

    if not keys and not keyrings and policy_path is None:
        raise click.UsageError("give --key, --gpg-keyring or --policy")
    if policy_path is not None and (keys or keyrings):
        raise click.UsageError("--policy names its own keys; do not combine it with --key/--gpg-keyring")
    regd = RegistriesD.load(registries_d)
    if policy_path is not None:
        _verify_policy(image, policy_path, regd, kw)
        return
    from ..trust.identity import DEFAULT_RULE, IdentityRule
    from ..trust.verify import TrustedKeys, verify_image

    rule = IdentityRule("exactReference", docker_reference=identity) if identity else DEFAULT_RULE
    trusted = TrustedKeys.from_files(keys, keyrings)
    try:
        report = run(verify_image(image, trusted, regd=regd, rule=rule, recursive=recursive,
                                  open_options=open_options(**kw)))
    finally:
        trusted.close()
    if output_format() == "json":
        emit_json(report.to_dict())
    else:
        for c in report.checks:
            verdict = "PASS" if c.ok else "FAIL"
            who = f" by {c.signer}" if c.signer else ""
            echo(f"{verdict} {c.found.kind} {c.found.subject}{who}: {c.reason} [{c.found.location}]")
    if not report.ok:
        missing = [str(d) for d in report.digests if not report.passed(d)]
        found = len([c for c in report.checks if c.found.subject in missing])
        raise SignatureMissing(f"{report.image}: no valid signature for {', '.join(missing)} "
                               f"({found} signature(s) found, none trusted)")


def _verify_policy(image: str, policy_path: str, regd: Any, kw: dict[str, Any]) -> None:
    from ..trust.policy import evaluate_reference, load_policy

    policy = load_policy(None if policy_path == "system" else policy_path)
    decision = run(evaluate_reference(policy, image, regd=regd, open_options=open_options(**kw)))
    if output_format() == "json":
        emit_json(decision.to_dict())
    else:
        for c in decision.checks:
            echo(f"{'PASS' if c.ok else 'FAIL'} {c.found.kind} {c.found.subject}: {c.reason} [{c.found.location}]")
        echo(f"{'Accepted' if decision.accepted else 'Rejected'} {decision.image}@{decision.digest} "
             f"(policy scope {decision.scope})")
    if not decision.accepted:
        raise PolicyRejected(f"{decision.image}: rejected by {policy_path}: {'; '.join(decision.reasons)}")


def register(group: click.Group) -> None:
    group.add_command(verify_command)

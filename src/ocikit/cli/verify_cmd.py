"""``ocikit verify IMAGE... --key PUB | --gpg-keyring FILE | --policy policy.json``."""

from __future__ import annotations

from typing import Any

import click

from ..core.errors import PolicyRejected, SignatureMissing
from .main import run
from .output import echo, emit_json, output_format
from .registry_cmds import open_options, transport_options
from .trust_options import trust_check_options


@click.command("verify")
@click.argument("images", nargs=-1, required=True)
@trust_check_options
@click.option("--identity", default=None, metavar="REF",
              help="With --key/--gpg-keyring: require signatures naming exactly REF (default: IMAGE's "
                   "repository, and its tag when IMAGE names one).")
@transport_options
def verify_command(images: tuple[str, ...], keys: tuple[str, ...], keyrings: tuple[str, ...],
                   policy_path: str | None, registries_d: str | None, identity: str | None, recursive: bool,
                   **kw: Any) -> None:
    """Check every signature of each IMAGE (lookaside, cosign tag, sigstore-bundle referrers); fail unless
    each is trusted. Several images share one process and one loading of the keys."""
    from ..trust.lookaside import RegistriesD

    if not keys and not keyrings and policy_path is None:
        raise click.UsageError("give --key, --gpg-keyring or --policy")
    if policy_path is not None and (keys or keyrings):
        raise click.UsageError("--policy names its own keys; do not combine it with --key/--gpg-keyring")
    regd = RegistriesD.load(registries_d)
    if policy_path is not None:
        _verify_policy(images, policy_path, regd, kw)
        return
    from ..trust.identity import DEFAULT_RULE, IdentityRule
    from ..trust.verification import TrustedKeys, verify_image

    rule = IdentityRule("exactReference", docker_reference=identity) if identity else DEFAULT_RULE
    trusted = TrustedKeys.from_files(keys, keyrings)

    async def go() -> list[Any]:
        return [await verify_image(image, trusted, regd=regd, rule=rule, recursive=recursive,
                                   open_options=open_options(**kw)) for image in images]

    try:
        reports = run(go())
    finally:
        trusted.close()
    _emit([r.to_dict() for r in reports])
    if output_format() != "json":
        for report in reports:
            for c in report.checks:
                who = f" by {c.signer}" if c.signer else ""
                echo(f"{'PASS' if c.ok else 'FAIL'} {c.found.kind} {c.found.subject}{who}: {c.reason} "
                     f"[{c.found.location}]")
    failed = []
    for report in reports:
        if not report.ok:
            missing = [str(d) for d in report.digests if not report.passed(d)]
            found = len([c for c in report.checks if c.found.subject in missing])
            failed.append(f"{report.image}: no valid signature for {', '.join(missing)} "
                          f"({found} signature(s) found, none trusted)")
    if failed:
        raise SignatureMissing("; ".join(failed))


def _emit(docs: list[dict[str, Any]]) -> None:
    """JSON: one object for one image, a list for several."""
    if output_format() == "json":
        emit_json(docs[0] if len(docs) == 1 else docs)


def _verify_policy(images: tuple[str, ...], policy_path: str, regd: Any, kw: dict[str, Any]) -> None:
    from ..trust.policy import evaluate_reference, load_policy

    with load_policy(None if policy_path == "system" else policy_path) as policy:
        async def go() -> list[Any]:
            return [await evaluate_reference(policy, image, regd=regd, open_options=open_options(**kw))
                    for image in images]

        decisions = run(go())
    _emit([d.to_dict() for d in decisions])
    if output_format() != "json":
        for decision in decisions:
            for c in decision.checks:
                echo(f"{'PASS' if c.ok else 'FAIL'} {c.found.kind} {c.found.subject}: {c.reason} "
                     f"[{c.found.location}]")
            echo(f"{'Accepted' if decision.accepted else 'Rejected'} {decision.image}@{decision.digest} "
                 f"(policy scope {decision.scope})")
    rejected = [f"{d.image}: rejected by {policy_path}: {'; '.join(d.reasons)}" for d in decisions if not d.accepted]
    if rejected:
        raise PolicyRejected("; ".join(rejected))


def register(group: click.Group) -> None:
    group.add_command(verify_command)

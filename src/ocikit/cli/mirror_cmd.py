"""``ocikit mirror``: air-gapped mirroring (registry -> registry, registry -> disk, disk -> registry)
and ``ocikit mirror verify``."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from ..mirror.mirror_config import load_config
from ..mirror.execute import MirrorReport
from ..mirror.outputs import write_outputs
from ..mirror.plan import KIND_REFERRER, MirrorPlan
from ..mirror.places import RegistryTarget, Target
from ..mirror.run import MirrorJob, Prepared, execute, mapping, prepare
from ..mirror.run import prune as prune_tags
from ..mirror.verify import verify_plan
from .main import run
from .output import ProgressView, echo, emit_json, format_option, human_size, output_format
from ..ops.recompress import parse_recompression
from .options import compress_options
from .registry_cmds import copy_transport_options, side_options
from .trust_options import trust_check_options


def _size(text: str | None) -> int | None:
    if text is None:
        return None
    units = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30,
             "ti": 2**40}
    t = text.strip().lower().removesuffix("b")
    num = t.rstrip("kmgti")
    unit = t[len(num):]
    try:
        n = int(float(num) * units[unit])
    except (ValueError, KeyError):
        raise click.BadParameter(f"{text!r}: expected a size such as 700M, 4.7G, 25GiB") from None
    if n < 1 << 20:
        raise click.BadParameter(f"{text!r}: volumes must hold at least 1 MiB")
    return n


def job_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options every mirror command shares: what (config or bundle), where, how to reach them."""
    f = click.option("--max-per-registry", type=click.IntRange(1, 64), default=6, show_default=True,
                     help="Requests/transfers at once per registry.")(f)
    f = click.option("-j", "--jobs", type=click.IntRange(1, 128), default=8, show_default=True,
                     help="Transfers at once in total.")(f)
    f = click.option("--to", "to", metavar="TARGET",
                     help="docker://HOST[:PORT]/PREFIX, dir:BUNDLE (a disk bundle) or oci:DIR (a layout per repository).")(f)
    f = click.option("--from", "from_", metavar="dir:BUNDLE", help="Mirror the images of a disk bundle.")(f)
    f = click.option("--config", "config", metavar="M.yaml", type=click.Path(dir_okay=False),
                     help="The mirror configuration (images: - source: docker://...).")(f)
    f = copy_transport_options(f)
    return format_option(f)


def recompression(kw: dict[str, Any]) -> Any:
    """``--dest-compress-format``/``--dest-compress-level`` as one request (None: layers kept)."""
    return parse_recompression(kw.pop("dest_compress_format", None), kw.pop("dest_compress_level", None))


def _job(config: str | None, from_: str | None, to: str | None, kw: dict[str, Any], **extra: Any) -> MirrorJob:
    if not to:
        raise click.UsageError("--to is required (docker://HOST[:PORT]/PREFIX, dir:BUNDLE or oci:DIR)")
    if bool(config) == bool(from_):
        raise click.UsageError("give exactly one of --config M.yaml and --from dir:BUNDLE")
    bundle = None
    if from_:
        if not from_.startswith("dir:") or len(from_) <= 4:
            raise click.UsageError(f"--from {from_!r}: expected dir:BUNDLE")
        bundle = from_[4:]
    cfg = load_config(config) if config else None
    return MirrorJob(to=to, config=cfg, bundle=bundle, src_options=side_options("src", kw),
                     dest_options=side_options("dest", kw), jobs=kw["jobs"], per_registry=kw["max_per_registry"],
                     **extra)


def _plan_lines(plan: MirrorPlan, target: Target) -> list[str]:
    lines = []
    for p in plan.images:
        j = p.job
        dest = target.display(j.path, j.tag) if j.tag else target.display(j.path, None) + \
            (f"@{p.digest}" if p.digest else "")
        if p.plan is None:
            lines.append(f"  FAILED   {j.source}: {p.error}")
            continue
        kind = "referrer" if j.kind == KIND_REFERRER else "image"
        plats = ", ".join(p.plan.platforms) or "-"
        picked = ", ".join(str(x) for x in j.platforms)
        mode = {"all": "all platforms", "sparse": f"sparse: index digest kept, only {picked} copied",
                "rewrite": f"rewritten index: only {picked}"}[j.mode]
        lines.append(f"  {kind:8} {j.source} -> {dest}")
        lines.append(f"           {p.digest} [{plats}]" + (f" ({mode})" if p.plan.platforms else ""))
        if p.digest != p.source_digest:
            lines.append(f"           source digest {p.source_digest} (index rewritten: new digest)")
    s = plan.summary()
    lines.append(f"{s['images']} image(s), {s['referrers']} referrer(s), {s['manifests']} manifest(s); "
                 f"platforms: {', '.join(s['platforms']) or '-'}")
    lines.append(f"{s['uniqueBlobs']} unique blob(s), {human_size(s['totalBytes'])}, for {s['blobReferences']} "
                 f"blob reference(s): {s['blobsToMove']} to move ({human_size(s['bytesToMove'])}), "
                 f"{s['blobsToMount']} to mount/link, {s['blobsAlreadyThere']} already at the target "
                 f"({human_size(s['bytesAlreadyThere'])})")
    if not s["targetChecked"]:
        lines.append("(the target was not asked what it holds)")
    if s["unchanged"]:
        lines.append(f"{s['unchanged']} image(s) unchanged at the source and in place at the target: skipped")
    if s["failed"]:
        lines.append(f"{s['failed']} image(s) could not be planned")
    return lines


def _report_text(report: MirrorReport) -> None:
    for i in report.images:
        if i.status == "failed":
            echo(f"  FAILED   {i.source} -> {i.destination}: {i.error}")
        else:
            echo(f"  {i.status:8} {i.source} -> {i.destination} {i.digest}")
    echo(f"blobs: {report.unique_blobs} unique; {report.blobs_moved} moved ({human_size(report.bytes_moved)}), "
         f"{report.blobs_mounted} mounted, {report.blobs_linked} linked, {report.blobs_already} already there, "
         f"{report.blobs_journaled} done by an earlier run, {report.blobs_resent} re-sent; "
         f"{report.seconds:.2f}s")
    for d, e in report.blob_failures.items():
        echo(f"  FAILED   blob {d}: {e}")
    for p in report.pruned:
        echo(f"  {'pruned' if p['status'] == 'removed' else p['status']:8} {p['destination']} {p['digest']}"
             + (f" ({p['reason']})" if p.get("reason") else ""))
    unchanged = sum(1 for i in report.images if i.status == "unchanged")
    if unchanged:
        echo(f"{unchanged} image(s) unchanged: skipped")
    echo("requests: " + "; ".join(f"{h} " + ", ".join(f"{n} {m}" for m, n in c.items())
                                  for h, c in report.requests.items()))
    n = len(report.failures) + len(report.blob_failures)
    echo("mirror complete" if report.ok else f"mirror finished with {n} failure(s); re-run to continue")


def _results(prep: Prepared, results: str | None, report: MirrorReport | None = None,
             gpg_key: str | None = None, sigstore_key: str | None = None) -> list[str]:
    if not results or not isinstance(prep.target, RegistryTarget):
        return []
    t = prep.target
    insecure = not prep.job.dest_options.tls_verify
    lookaside = None
    if report is not None and report.signatures_carried:
        from ..core.reference import parse_reference
        from ..trust.collect import lookaside_base
        from ..trust.lookaside import RegistriesD

        first = next(m["path"] for m in mapping(prep))
        lookaside = lookaside_base(RegistriesD.load(prep.job.registries_d), parse_reference(t.key_for(first)))
    return write_outputs(results, mapping(prep), lambda path: f"{t.host}/{t.repository(path)}", insecure=insecure,
                         gpg_key=gpg_key, sigstore_key=sigstore_key, lookaside=lookaside)


@click.group("mirror", invoke_without_command=True)
@job_options
@click.option("--dry-run", is_flag=True, help="Print the plan (and what is already at the target) and stop.")
@click.option("--journal", default=None, metavar="FILE",
              help="Job journal (default: under ~/.local/state/ocikit/mirror, named after the job).")
@click.option("--since", default=None, metavar="METADATA",
              help="With --to dir:: write only what an earlier bundle (its ocikit-mirror.json) lacks.")
@click.option("--volume-size", default=None, metavar="SIZE",
              help="With --to dir:: split the bundle into tar volumes of at most SIZE (700M, 4.7G, ...).")
@click.option("--prune", is_flag=True,
              help="Remove at the target the tags this job wrote in earlier runs that the config no longer "
                   "selects (with --dry-run: list them).")
@click.option("--state", default=None, metavar="FILE",
              help="Job state: the tags this job wrote (default: under ~/.local/state/ocikit/mirror, named "
                   "after the config and the target).")
@compress_options
@click.option("--recheck", is_flag=True,
              help="Plan every image, even one whose tag is unchanged at the source and in place at the target.")
@click.option("--trust-state", is_flag=True,
              help="On a re-run, take a tag the job's state recorded to be in place at the target without asking "
                   "it (one source HEAD per tag, nothing at the target); a tag someone else changed there is "
                   "not put back until a run without this flag.")
@click.option("--remove-signatures", is_flag=True,
              help="Do not carry signatures, attestations, SBOMs and other referrers, nor lookaside signatures.")
@click.option("--registries.d", "registries_d", type=click.Path(file_okay=False), default=None,
              help="registries.d directory naming the lookaside stores (source: lookaside; target: "
                   "lookaside-staging or lookaside).")
@click.option("--policy", "policy", default=None, metavar="FILE",
              help="Refuse, before anything is written, every image this containers-policy.json rejects "
                   "(\"system\": /etc/containers/policy.json); the others are mirrored.")
@click.option("--results", default=None, metavar="DIR", type=click.Path(file_okay=False),
              help="Write registries.conf, ImageDigestMirrorSet/ImageTagMirrorSet/ImageContentSourcePolicy "
                   "YAML and mapping.txt here (registry targets); with lookaside signatures carried, "
                   "registries.d/ocikit-mirror.yaml.")
@click.option("--results-gpg-key", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --results: policy.json requires GPG signatures by this public key (signedBy).")
@click.option("--results-sigstore-key", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --results: policy.json (sigstoreSigned) and clusterimagepolicy.yaml require this "
                   "sigstore public key.")
@click.pass_context
def mirror_group(ctx: click.Context, config: str | None, from_: str | None, to: str | None, dry_run: bool,
                 journal: str | None, since: str | None, volume_size: str | None, results: str | None,
                 prune: bool, state: str | None, recheck: bool, trust_state: bool, remove_signatures: bool,
                 registries_d: str | None, policy: str | None,
                 results_gpg_key: str | None, results_sigstore_key: str | None, **kw: Any) -> None:
    """Mirror the images of a config (or a disk bundle) to a registry or to a disk bundle.

    \b
      ocikit mirror --config M.yaml --to docker://HOST[:PORT]/PREFIX
      ocikit mirror --config M.yaml --to dir:BUNDLE
      ocikit mirror --from dir:BUNDLE --to docker://HOST[:PORT]/PREFIX
      ocikit mirror verify --config M.yaml --to docker://HOST[:PORT]/PREFIX

    SRCHOST/path/name:tag lands at HOST:PORT/PREFIX/path/name:tag. Every platform is copied
    byte-exact unless the config picks some; blobs move once per job; a killed run, re-run,
    continues from its journal.
    """
    if ctx.invoked_subcommand is not None:
        return
    vol = _size(volume_size)
    if (since or vol) and not (to or "").startswith("dir:"):
        raise click.UsageError("--since and --volume-size apply to a dir:BUNDLE target")
    fmt = output_format()
    with ProgressView(enabled=None if fmt == "text" else False) as view:
        job = _job(config, from_, to, kw, journal=journal, since=since, progress=view, state=state,
                   resync=not recheck, trust_state=trust_state, prune=prune, recompress=recompression(kw),
                   carry_signatures=not remove_signatures, registries_d=registries_d, policy=policy)
        pruned: list[Any] = []

        async def go() -> tuple[Prepared, MirrorReport | None]:
            prep = await prepare(job, dry_run=dry_run)
            if dry_run:
                try:
                    pruned.extend(o.to_dict() for o in await prune_tags(prep, dry_run=True))
                finally:
                    await prep.close()
                return prep, None
            if fmt == "text":  # the plan comes first, then the transfer
                for line in _plan_lines(prep.plan, prep.target)[-3:]:
                    if not line.startswith("  "):
                        echo(f"Plan: {line}")
            return prep, await execute(prep)

        prep, report = run(go())
    if report is None:
        if fmt == "json":
            emit_json({"target": prep.target.location, "plan": prep.plan.summary(), "prune": pruned,
                       "images": [dict(p.job.to_dict(), digest=p.digest, sourceDigest=p.source_digest,
                                       platforms=p.plan.platforms if p.plan else [], error=p.error)
                                  for p in prep.plan.images]})
        else:
            echo(f"Plan: {prep.target.location}")
            for line in _plan_lines(prep.plan, prep.target):
                echo(line)
            for p in pruned:
                echo(f"  {'prune' if p['status'] == 'would-remove' else p['status']:8} {p['destination']} "
                     f"{p['digest']}" + (f" ({p['reason']})" if p.get("reason") else ""))
        if any(p.plan is None for p in prep.plan.images):
            ctx.exit(1)
        return
    written: list[str] = []
    if report.ok and vol:
        from ..mirror.volumes import pack_volumes
        written += pack_volumes(to[4:], vol)  # type: ignore[index]
    written += _results(prep, results, report, results_gpg_key, results_sigstore_key)
    if fmt == "json":
        emit_json({**report.to_dict(), "planSeconds": round(prep.seconds, 3), "outputs": written})
    else:
        echo(f"Mirror to {report.target}")
        _report_text(report)
        for w in written:
            echo(f"  wrote {w}")
    if not report.ok:
        ctx.exit(1)


@mirror_group.command("verify")
@job_options
@click.option("--deep", is_flag=True, help="Also stream every blob from the target and hash it.")
@click.option("--signatures", is_flag=True,
              help="Also require a good signature for every image at the target (--key, --gpg-keyring or --policy).")
@trust_check_options
def verify_command(config: str | None, from_: str | None, to: str | None, deep: bool, signatures: bool,
                   keys: tuple[str, ...], keyrings: tuple[str, ...], policy_path: str | None,
                   registries_d: str | None, recursive: bool, **kw: Any) -> None:
    """Check that every image of a config (or a bundle) is at the target, digest-exact.

    Every source reference must resolve to the same digest at the target and every child
    manifest, config, layer and referrer must be there. With --signatures, every image must
    also carry a signature that verifies (with --key/--gpg-keyring: naming the source image;
    with --policy: accepted by it). Exits 1 naming every problem.
    """
    job = _job(config, from_, to, kw, journal="")
    if job.to.startswith("dir:"):
        raise click.UsageError("mirror verify checks a registry (or oci:) target; a bundle is checked with "
                               "sha256sum -c SHA256SUMS")
    if (keys or keyrings or policy_path) and not signatures:
        raise click.UsageError("--key, --gpg-keyring and --policy go with --signatures")
    if signatures and not (keys or keyrings or policy_path):
        raise click.UsageError("--signatures needs --key, --gpg-keyring or --policy")
    if policy_path and (keys or keyrings):
        raise click.UsageError("--policy names its own keys; do not combine it with --key/--gpg-keyring")

    async def go() -> Any:
        prep = await prepare(job, verify=True)
        try:
            report = await verify_plan(prep.plan, prep.target, deep=deep, jobs=job.jobs,
                                       per_registry=job.per_registry)
            if signatures:
                report.problems += (await _signature_report(prep, keys, keyrings, policy_path, registries_d,
                                                            recursive)).problems
            return report
        finally:
            await prep.close()

    report = run(go())
    if output_format() == "json":
        emit_json(report.to_dict())
    else:
        for p in report.problems:
            click.echo(f"MISSING {p}" if "missing" in p.message else f"BAD     {p}")
        echo(f"{report.checked_images} image(s), {report.checked_manifests} manifest(s), {report.checked_blobs} "
             f"blob(s) checked at {report.target}: " + ("all present, digest-exact" if report.ok
                                                         else f"{len(report.problems)} problem(s)"))
    if not report.ok:
        sys.stdout.flush()
        raise SystemExit(1)


async def _signature_report(prep: Prepared, keys: tuple[str, ...], keyrings: tuple[str, ...],
                            policy_path: str | None, registries_d: str | None, recursive: bool) -> Any:
    from ..mirror.mirror_signatures import verify_signatures
    from ..trust.lookaside import RegistriesD
    from ..trust.policy import load_policy
    from ..trust.verification import TrustedKeys

    regd = RegistriesD.load(registries_d)
    common = dict(regd=regd, recursive=recursive, jobs=prep.job.jobs, per_registry=prep.job.per_registry)
    if policy_path:
        with load_policy(None if policy_path == "system" else policy_path) as policy:
            return await verify_signatures(prep.plan, prep.target, policy=policy, **common)
    trusted = TrustedKeys.from_files(keys, keyrings)
    try:
        return await verify_signatures(prep.plan, prep.target, trusted=trusted, **common)
    finally:
        trusted.close()


def register(group: click.Group) -> None:
    group.add_command(mirror_group)


__all__ = ["mirror_group", "register"]

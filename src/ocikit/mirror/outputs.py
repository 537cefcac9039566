"""Outputs for the cluster that pulls from the mirror (pure text builders + one writer).

- ``registries.conf``: containers-registries.conf(5) ``[[registry]]`` stanzas with a mirror;
- ``imagedigestmirrorset.yaml`` / ``imagetagmirrorset.yaml`` (config.openshift.io/v1);
- ``imagecontentsourcepolicy.yaml`` (the legacy operator.openshift.io/v1alpha1 kind);
- ``mapping.txt``: ``SOURCE@DIGEST=DESTINATION:TAG`` lines, one per image (oc-mirror's form).

Each builder takes ``pairs``: (source repository, mirror repository), deduplicated and sorted.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

from ..durable import atomic_write


def repository_pairs(mapping: Iterable[dict[str, Any]], mirror_repo: Any) -> list[tuple[str, str]]:
    """(source repository, mirror repository) for every registry-sourced image in a mapping."""
    out = set()
    for m in mapping:
        repo = m["repository"]
        if repo.startswith(("oci:", "/", "dir:")):
            continue
        out.add((repo, mirror_repo(m["path"])))
    return sorted(out)


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def registries_conf(pairs: Sequence[tuple[str, str]], *, insecure: bool = False) -> str:
    lines = ["# containers-registries.conf(5) mirror stanzas written by ocikit mirror", ""]
    for src, dst in pairs:
        lines += ["[[registry]]", f"prefix = {_q(src)}", f"location = {_q(src)}", "",
                  "[[registry.mirror]]", f"location = {_q(dst)}"]
        if insecure:
            lines.append("insecure = true")
        lines.append("")
    return "\n".join(lines)


def _yaml_list(key: str, pairs: Sequence[tuple[str, str]], indent: str) -> list[str]:
    lines = [f"{indent}{key}:"]
    grouped: dict[str, list[str]] = {}
    for src, dst in pairs:
        grouped.setdefault(src, []).append(dst)
    for src in sorted(grouped):
        lines.append(f"{indent}- mirrors:")
        lines += [f"{indent}  - {_q(d)}" for d in sorted(set(grouped[src]))]
        lines.append(f"{indent}  source: {_q(src)}")
    return lines


def image_digest_mirror_set(pairs: Sequence[tuple[str, str]], name: str = "ocikit-mirror") -> str:
    return "\n".join(["apiVersion: config.openshift.io/v1", "kind: ImageDigestMirrorSet",
                      "metadata:", f"  name: {name}", "spec:",
                      *_yaml_list("imageDigestMirrors", pairs, "  ")]) + "\n"


def image_tag_mirror_set(pairs: Sequence[tuple[str, str]], name: str = "ocikit-mirror") -> str:
    return "\n".join(["apiVersion: config.openshift.io/v1", "kind: ImageTagMirrorSet",
                      "metadata:", f"  name: {name}", "spec:",
                      *_yaml_list("imageTagMirrors", pairs, "  ")]) + "\n"


def image_content_source_policy(pairs: Sequence[tuple[str, str]], name: str = "ocikit-mirror") -> str:
    return "\n".join(["apiVersion: operator.openshift.io/v1alpha1", "kind: ImageContentSourcePolicy",
                      "metadata:", f"  name: {name}", "spec:",
                      *_yaml_list("repositoryDigestMirrors", pairs, "  ")]) + "\n"


def mapping_txt(mapping: Iterable[dict[str, Any]], mirror_repo: Any) -> str:
    lines = []
    for m in mapping:
        src = m["repository"]
        dst = mirror_repo(m["path"]) + (f":{m['tag']}" if m.get("tag") else f"@{m['digest']}")
        lines.append(f"{src}@{m['sourceDigest']}={dst}")
    return "\n".join(sorted(set(lines))) + ("\n" if lines else "")


def _lookaside_signatures(mapping: Sequence[dict[str, Any]], mirror_repo: Any,
                          lookaside: str) -> list[tuple[str, list[bytes]]]:
    """The GPG signatures the mirror wrote to ``lookaside`` for each mirrored root manifest."""
    from ..core.reference import parse_reference
    from ..trust.lookaside import read_signatures_sync

    out: list[tuple[str, list[bytes]]] = []
    seen: set[str] = set()
    for m in mapping:
        if m.get("kind", "image") != "image" or m["digest"] in seen:
            continue
        seen.add(m["digest"])
        sigs = read_signatures_sync(lookaside, parse_reference(mirror_repo(m["path"])), m["digest"])
        if sigs:
            out.append((m["digest"], [data for _, data in sigs]))
    return out


def write_outputs(directory: str, mapping: Sequence[dict[str, Any]], mirror_repo: Any, *,
                  insecure: bool = False, gpg_key: str | None = None, sigstore_key: str | None = None,
                  lookaside: str | None = None) -> list[str]:
    """Write every output file into ``directory``; returns their paths.

    With ``gpg_key``/``sigstore_key`` (public key files) also ``policy.json`` (and, for a sigstore
    key, ``clusterimagepolicy.yaml``); with ``lookaside`` (where the mirror keeps GPG signatures)
    ``registries.d/ocikit-mirror.yaml`` and, for the images signed there, ``release-signatures.yaml``
    (OpenShift's release-signature ConfigMaps; :mod:`.trust_outputs`).
    """
    from .trust_outputs import cluster_image_policy, policy_json, registries_d_yaml, release_signature_configmaps

    os.makedirs(directory, exist_ok=True)
    pairs = repository_pairs(mapping, mirror_repo)
    trust: dict[str, str] = {}
    if gpg_key or sigstore_key:
        trust["policy.json"] = policy_json(pairs, gpg_key=os.path.abspath(gpg_key) if gpg_key else None,
                                           sigstore_key=os.path.abspath(sigstore_key) if sigstore_key else None)
    if sigstore_key:
        with open(sigstore_key, "rb") as f:
            trust["clusterimagepolicy.yaml"] = cluster_image_policy(pairs, f.read())
    if lookaside:
        os.makedirs(os.path.join(directory, "registries.d"), exist_ok=True)
        trust[os.path.join("registries.d", "ocikit-mirror.yaml")] = registries_d_yaml(pairs, lookaside)
        signed = _lookaside_signatures(mapping, mirror_repo, lookaside)
        if signed:
            trust["release-signatures.yaml"] = release_signature_configmaps(signed)
    files = {
        "registries.conf": registries_conf(pairs, insecure=insecure),
        "imagedigestmirrorset.yaml": image_digest_mirror_set(pairs),
        "imagetagmirrorset.yaml": image_tag_mirror_set(pairs),
        "imagecontentsourcepolicy.yaml": image_content_source_policy(pairs),
        "mapping.txt": mapping_txt(mapping, mirror_repo),
        **trust,
    }
    out = []
    for name, text in files.items():
        path = os.path.join(directory, name)
        atomic_write(path, text.encode(), sync=False)
        out.append(path)
    return out


__all__ = ["image_content_source_policy", "image_digest_mirror_set", "image_tag_mirror_set", "mapping_txt",
           "registries_conf", "repository_pairs", "write_outputs"]

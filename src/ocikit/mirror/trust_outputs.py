"""Trust outputs for the cluster that pulls from the mirror (pure text builders).

- ``policy.json``: containers-policy.json(5) requiring the given keys for every mirrored
  repository, by its source name (a pull through registries.conf mirrors is checked against
  the name asked for) and by its mirror name (``remapIdentity``: the signatures name the source);
- ``registries.d/ocikit-mirror.yaml``: containers-registries.d(5), both names -> the lookaside
  store the mirror wrote the GPG signatures to;
- ``clusterimagepolicy.yaml``: OpenShift's ``ClusterImagePolicy`` (config.openshift.io/v1) with
  the sigstore public key, scoped to the source repositories;
- ``release-signatures.yaml``: OpenShift's release-signature ConfigMaps (one per signed image, in
  ``openshift-config-managed``, labelled ``release.openshift.io/verification-signatures``, with the
  GPG signatures as ``binaryData`` keys ``sha256-<hex>-<n>``), which the cluster-version operator
  reads in a disconnected cluster to verify release images.

Each builder takes ``pairs``: (source repository, mirror repository), as :mod:`.outputs` does.
"""

from __future__ import annotations

import base64
import json
from typing import Sequence


def _requirements(gpg_key: str | None, sigstore_key: str | None, identity: dict[str, str] | None) -> list[dict]:
    reqs: list[dict] = []
    if gpg_key:
        reqs.append({"type": "signedBy", "keyType": "GPGKeys", "keyPath": gpg_key})
    if sigstore_key:
        reqs.append({"type": "sigstoreSigned", "keyPath": sigstore_key})
    if identity:
        for r in reqs:
            r["signedIdentity"] = identity
    return reqs


def policy_json(pairs: Sequence[tuple[str, str]], *, gpg_key: str | None = None,
                sigstore_key: str | None = None) -> str:
    """A policy requiring ``gpg_key`` (armored public key file) and/or ``sigstore_key`` (PEM) signatures."""
    scopes: dict[str, list[dict]] = {}
    for src, dst in pairs:
        scopes[src] = _requirements(gpg_key, sigstore_key, None)
        scopes[dst] = _requirements(gpg_key, sigstore_key,
                                    {"type": "remapIdentity", "prefix": dst, "signedPrefix": src})
    doc = {"default": [{"type": "insecureAcceptAnything"}],
           "transports": {"docker": dict(sorted(scopes.items()))}}
    return json.dumps(doc, indent=2) + "\n"


def registries_d_yaml(pairs: Sequence[tuple[str, str]], lookaside: str) -> str:
    """Both names of every mirrored repository read their signatures from ``lookaside``."""
    lines = ["# containers-registries.d(5) written by ocikit mirror", "docker:"]
    for name in sorted({n for pair in pairs for n in pair}):
        lines += [f"  {json.dumps(name)}:", f"    lookaside: {json.dumps(lookaside)}"]
    return "\n".join(lines) + "\n"


def cluster_image_policy(pairs: Sequence[tuple[str, str]], public_key_pem: bytes,
                         name: str = "ocikit-mirror") -> str:
    """``ClusterImagePolicy`` requiring signatures by the sigstore public key on the source repositories."""
    key = base64.b64encode(public_key_pem).decode()
    scopes = sorted({src for src, _ in pairs})
    return "\n".join(["apiVersion: config.openshift.io/v1", "kind: ClusterImagePolicy", "metadata:",
                      f"  name: {name}", "spec:", "  scopes:", *[f"  - {json.dumps(s)}" for s in scopes],
                      "  policy:", "    rootOfTrust:", "      policyType: PublicKey", "      publicKey:",
                      f"        keyData: {key}", "    signedIdentity:",
                      "      matchPolicy: MatchRepoDigestOrExact"]) + "\n"


def release_signature_configmaps(signed: Sequence[tuple[str, Sequence[bytes]]]) -> str:
    """One ConfigMap per (manifest digest, its GPG signatures), as a multi-document YAML."""
    docs = []
    for digest, signatures in signed:
        alg, _, hexpart = digest.partition(":")
        lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {alg}-{hexpart}",
                 "  namespace: openshift-config-managed", "  labels:",
                 '    release.openshift.io/verification-signatures: ""', "binaryData:"]
        lines += [f"  {alg}-{hexpart}-{n}: {base64.b64encode(sig).decode()}"
                  for n, sig in enumerate(signatures, 1)]
        docs.append("\n".join(lines) + "\n")
    return "---\n".join(docs)


__all__ = ["cluster_image_policy", "policy_json", "registries_d_yaml", "release_signature_configmaps"]

"""The trust outputs of ``mirror --results``: valid for ocikit's own policy parser, the key carried exactly."""

from __future__ import annotations

import base64
import json

import yaml

from ocikit.mirror.trust_outputs import cluster_image_policy, policy_json, registries_d_yaml
from ocikit.trust.policy import parse_policy

PAIRS = [("quay.io/org/app", "mirror.local:5000/m/org/app"), ("quay.io/org/db", "mirror.local:5000/m/org/db")]
PEM = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_policy_json_scopes_both_names_and_remaps_the_mirror(tmp_path) -> None:
    gpg = tmp_path / "pub.asc"
    gpg.write_text("x")
    cosign = tmp_path / "k.pub"
    cosign.write_bytes(PEM)
    text = policy_json(PAIRS, gpg_key=str(gpg), sigstore_key=str(cosign))
    doc = json.loads(text)
    docker = doc["transports"]["docker"]
    assert sorted(docker) == sorted(n for p in PAIRS for n in p)
    assert [r["type"] for r in docker["quay.io/org/app"]] == ["signedBy", "sigstoreSigned"]
    assert "signedIdentity" not in docker["quay.io/org/app"][0]
    assert docker["mirror.local:5000/m/org/app"][1]["signedIdentity"] == {
        "type": "remapIdentity", "prefix": "mirror.local:5000/m/org/app", "signedPrefix": "quay.io/org/app"}
    parse_policy(text.encode(), str(tmp_path / "policy.json"))  # ocikit's own parser accepts it


def test_registries_d_names_every_repository() -> None:
    doc = yaml.safe_load(registries_d_yaml(PAIRS, "file:///srv/sigstore"))
    assert len(doc["docker"]) == 4
    assert {v["lookaside"] for v in doc["docker"].values()} == {"file:///srv/sigstore"}


def test_cluster_image_policy_carries_the_key() -> None:
    doc = yaml.safe_load(cluster_image_policy(PAIRS, PEM))
    assert doc["kind"] == "ClusterImagePolicy" and doc["apiVersion"] == "config.openshift.io/v1"
    assert doc["spec"]["scopes"] == ["quay.io/org/app", "quay.io/org/db"]
    trust = doc["spec"]["policy"]["rootOfTrust"]
    assert trust["policyType"] == "PublicKey"
    assert base64.b64decode(trust["publicKey"]["keyData"]) == PEM

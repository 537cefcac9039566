"""containers-policy.json: parsing, scope selection, and evaluation over OCI layouts (sigstoreSigned)."""

from __future__ import annotations

import json
import os

import pytest

from ocikit.errors import PolicyInvalid
from ocikit.transportref import parse_transport_reference
from ocikit.trust.policy import parse_policy, policy_scopes
from helpers.cli import expect_failure, run_ocikit

ACCEPT = [{"type": "insecureAcceptAnything"}]
REJECT = [{"type": "reject"}]


def pol(doc) -> bytes:
    return json.dumps(doc).encode()


def test_most_specific_scope_wins() -> None:
    p = parse_policy(pol({"default": REJECT, "transports": {"docker": {
        "reg.example.com": ACCEPT, "reg.example.com/ns": REJECT, "reg.example.com/ns/app:v1": ACCEPT,
        "*.example.com": REJECT, "": ACCEPT}}}))

    def scope(ref: str) -> str:
        return p.requirements(parse_transport_reference(ref))[0]
    assert scope("docker://reg.example.com/ns/app:v1") == "reg.example.com/ns/app:v1"
    assert scope("docker://reg.example.com/ns/app:v2") == "reg.example.com/ns"
    assert scope("docker://reg.example.com/other/app:v2") == "reg.example.com"
    assert scope("docker://sub.example.com/x:1") == "*.example.com"
    assert scope("docker://quay.io/x:1") == 'docker:""'
    assert scope("oci:/tmp/x:1") == "default"


def test_layout_scopes() -> None:
    assert policy_scopes(parse_transport_reference("oci:/srv/images/app:v1"))[:3] == [
        "/srv/images/app:v1", "/srv/images/app", "/srv/images"]


@pytest.mark.parametrize("doc, message", [
    ({"default": [{"type": "trustMeBro"}]}, "unknown policy requirement type 'trustMeBro'"),
    ({"default": []}, "non-empty list"),
    ({"default": ACCEPT, "transports": {"docker": {"x": [{"type": "reject", "keyPath": "/k"}]}}}, "takes no fields"),
    ({"default": [{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "/k"}]}, "keyType"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys"}]}, "exactly one of keyPath"),
    ({"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k", "keyData": "AA=="}]}, "exactly one"),
    ({"default": [{"type": "sigstoreSigned", "fulcio": {}}]}, "not supported"),
    ({"default": [{"type": "sigstoreSigned", "keyData": "%%"}]}, "not base64"),
    ({"default": ACCEPT, "extra": 1}, "unknown fields"),
    ({"default": [{"type": "sigstoreSigned", "keyPath": "/k", "signedIdentity": {"type": "nope"}}]},
     "unknown signedIdentity type"),
])
def test_bad_policies(doc, message) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(pol(doc), "p.json")


def test_bad_policy_on_the_cli(tmp_path) -> None:
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"default": [{"type": "trustMeBro"}]}))
    expect_failure("verify", "--policy", str(p), "oci:/nonexistent:v1", code=1,
                   match="unknown policy requirement type 'trustMeBro'")
    p.write_text("{not json")
    expect_failure("verify", "--policy", str(p), "oci:/nonexistent:v1", code=1, match="policy.json: not JSON")


def test_sigstore_signed_over_layouts(tmp_path, cosign_key) -> None:
    from ocikit.testing import write_index
    from ocikit.transports.layout import OCILayout

    key, pub, pf = cosign_key
    lay = str(tmp_path / "lay")
    write_index(OCILayout(lay, create=True), "v1")
    ident = {"type": "exactReference", "dockerReference": "reg.example.com/ns/app:v1"}
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"default": REJECT, "transports": {"oci": {
        lay: [{"type": "sigstoreSigned", "keyPath": pub, "signedIdentity": ident}]}}}))
    expect_failure("verify", "--policy", str(p), f"oci:{lay}:v1", code=1, match="rejected by .*no signature found")
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--sign-identity", "reg.example.com/ns/app:v2",
               f"oci:{lay}:v1")
    expect_failure("verify", "--policy", str(p), f"oci:{lay}:v1", code=1,
                   match="wants exactly reg.example.com/ns/app:v1")
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--bundle", "--sign-identity",
               "reg.example.com/ns/app:v1", f"oci:{lay}:v1")
    # a bundle names the repository only, never a tag: exactReference is checked on the repository part
    r = run_ocikit("--format", "json", "verify", "--policy", str(p), f"oci:{lay}:v1")
    doc = json.loads(r.stdout)
    assert doc["accepted"] and doc["scope"] == lay
    assert sorted((s["kind"], s["ok"]) for s in doc["signatures"]) == [("bundle", True), ("cosign", False)]
    q = tmp_path / "policy2.json"
    q.write_text(json.dumps({"default": REJECT, "transports": {"oci": {lay: [{
        "type": "sigstoreSigned", "keyPath": pub,
        "signedIdentity": {"type": "exactReference", "dockerReference": "reg.example.com/ns/other:v1"}}]}}}))
    expect_failure("verify", "--policy", str(q), f"oci:{lay}:v1", code=1, match="reg.example.com/ns/other")


def test_tampered_layer_under_a_valid_signature(tmp_path, cosign_key) -> None:
    """The manifest signature still verifies, the policy accepts it, and the copy refuses the changed layer;
    nothing is tagged at the target."""
    from ocikit.testing import write_image
    from ocikit.transports.layout import OCILayout

    key, pub, pf = cosign_key
    lay = str(tmp_path / "lay")
    write_image(OCILayout(lay, create=True), "v1")
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--sign-identity", "reg.example.com/ns/app:v1",
               f"oci:{lay}:v1")
    m = json.loads(run_ocikit("inspect", "--raw", f"oci:{lay}:v1").stdout)
    layer = os.path.join(lay, "blobs", "sha256", m["layers"][0]["digest"].split(":")[1])
    with open(layer, "r+b") as f:
        data = bytearray(f.read())
        data[-1] ^= 0xFF
        f.seek(0)
        f.write(data)
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"default": REJECT, "transports": {"oci": {lay: [{
        "type": "sigstoreSigned", "keyPath": pub,
        "signedIdentity": {"type": "exactReference", "dockerReference": "reg.example.com/ns/app:v1"}}]}}}))
    assert run_ocikit("verify", "--policy", str(p), f"oci:{lay}:v1").returncode == 0
    out = str(tmp_path / "out")
    expect_failure("copy", "--policy", str(p), f"oci:{lay}:v1", f"oci:{out}:v1", code=1, match="digest mismatch")
    index = os.path.join(out, "index.json")
    assert not os.path.exists(index) or json.load(open(index))["manifests"] == []


def test_unpack_under_a_policy(tmp_path, cosign_key) -> None:
    from ocikit.testing import write_image
    from ocikit.transports.layout import OCILayout

    key, pub, pf = cosign_key
    lay = str(tmp_path / "lay")
    write_image(OCILayout(lay, create=True), "v1")
    write_image(OCILayout(lay, create=True), "unsigned", seed=5)
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--sign-identity", "reg.example.com/ns/app:v1",
               f"oci:{lay}:v1")
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"default": REJECT, "transports": {"oci": {lay: [{
        "type": "sigstoreSigned", "keyPath": pub,
        "signedIdentity": {"type": "exactRepository", "dockerRepository": "reg.example.com/ns/app"}}]}}}))
    expect_failure("unpack", "--policy", str(p), f"oci:{lay}:unsigned", str(tmp_path / "u"), code=1,
                   match=r"oci:.*:unsigned: rejected by")
    assert not os.path.exists(tmp_path / "u")
    run_ocikit("unpack", "--policy", str(p), f"oci:{lay}:v1", str(tmp_path / "s"))
    assert os.path.isdir(tmp_path / "s")


def test_verify_several_images_in_one_command(tmp_path, cosign_key) -> None:
    from ocikit.testing import write_image
    from ocikit.transports.layout import OCILayout

    key, pub, pf = cosign_key
    lay = str(tmp_path / "lay")
    write_image(OCILayout(lay, create=True), "good")
    write_image(OCILayout(lay, create=True), "bad", seed=7)
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--sign-identity", "r.io/a:1", f"oci:{lay}:good")
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"default": [{"type": "sigstoreSigned", "keyPath": pub,
                                          "signedIdentity": {"type": "exactRepository", "dockerRepository": "r.io/a"}}]}))
    r = expect_failure("--format", "json", "verify", "--policy", str(p), f"oci:{lay}:good", f"oci:{lay}:bad", code=1,
                       match=r"^ocikit: error: oci:\S+:bad: rejected by")
    assert "good" not in r.stderr
    assert [d["accepted"] for d in json.loads(r.stdout)] == [True, False]
    r = expect_failure("verify", "--key", pub, "--identity", "r.io/a:1", f"oci:{lay}:good", f"oci:{lay}:bad", code=1,
                       match=r"oci:\S+:bad: no valid signature")
    assert r.stdout.count("PASS cosign") == 1

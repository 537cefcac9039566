"""Sigstore signatures with sigstore-js as the peer, on an ``ocikit serve`` registry.

- sigstore-js (``@sigstore/sign`` key-based, ``@sigstore/oci``) attaches a bundle -> ``ocikit verify --key`` accepts;
- ``ocikit sign --bundle`` -> ``@sigstore/verify`` accepts it with the public key alone;
- ``ocikit sign --key`` writes cosign's tag schema field for field (checked over plain HTTP, the
  signature checked by Node's crypto).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request

import pytest

from helpers.trust import push_image
from helpers.cli import run_ocikit
from helpers.peers import require

pytestmark = pytest.mark.peer

JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
"""sigstore-js, installed by .ci/install-peers.sh from the committed package-lock.json."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def node(script: str, *args: str) -> subprocess.CompletedProcess:
    if not os.path.isdir(os.path.join(JS, "node_modules", "@sigstore", "verify")):
        if os.environ.get("CI"):
            pytest.fail("sigstore-js is not installed in tests/trust/js (make test installs it)")
        pytest.skip("sigstore-js is not installed in tests/trust/js (run .ci/install-peers.sh)")
    return subprocess.run([require("node"), os.path.join(JS, script), *args], capture_output=True, text=True)


def get(url: str, accept: str = OCI_MANIFEST) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


@pytest.fixture(scope="module")
def node_key(tmp_path_factory) -> tuple[str, str]:
    """An ECDSA P-256 key pair made by Node (not by ocikit): (private PEM path, public PEM path)."""
    d = tmp_path_factory.mktemp("nodekey")
    priv, pub = str(d / "node.key.pem"), str(d / "node.pub.pem")
    script = ("const c=require('node:crypto');const fs=require('node:fs');"
              "const {privateKey,publicKey}=c.generateKeyPairSync('ec',{namedCurve:'P-256'});"
              f"fs.writeFileSync({priv!r},privateKey.export({{format:'pem',type:'pkcs8'}}));"
              f"fs.writeFileSync({pub!r},publicKey.export({{format:'pem',type:'spki'}}));")
    subprocess.run([require("node"), "-e", script], check=True)
    return priv, pub


@pytest.mark.parametrize("mode", ["dsse", "message"])
def test_sigstore_js_bundle_verified_by_ocikit(serve_host, node_key, cosign_key, tmp_path, mode) -> None:
    repo = f"{serve_host}/sigstore/js-{mode}"
    digest = push_image(str(tmp_path / "src"), f"docker://{repo}:v1", seed=11)
    p = node("sign_attach.js", repo, digest, node_key[0], mode)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["mediaType"] == BUNDLE
    v = run_ocikit("--format", "json", "verify", "--key", node_key[1], "--tls-verify=false", f"docker://{repo}:v1")
    doc = json.loads(v.stdout)
    assert doc["ok"] and [s["kind"] for s in doc["signatures"]] == ["bundle"]
    assert doc["signatures"][0]["identity"] == (repo if mode == "dsse" else None)
    # another key: refused, one line naming the image
    bad = run_ocikit("verify", "--key", cosign_key[1], "--tls-verify=false", f"docker://{repo}:v1", check=False)
    assert bad.returncode == 1 and f"{repo}:v1" in bad.stderr.decode() and b"does not verify" in bad.stdout


def _bundle_of(serve_host: str, repo: str, digest: str) -> bytes:
    idx = json.loads(get(f"http://{serve_host}/v2/{repo}/referrers/{digest}", "application/vnd.oci.image.index.v1+json"))
    (ref,) = [m for m in idx["manifests"] if m.get("artifactType") == BUNDLE]
    m = json.loads(get(f"http://{serve_host}/v2/{repo}/manifests/{ref['digest']}"))
    assert m["subject"]["digest"] == digest and m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    (layer,) = m["layers"]
    assert layer["mediaType"] == BUNDLE
    return get(f"http://{serve_host}/v2/{repo}/blobs/{layer['digest']}", "*/*")


def test_ocikit_bundle_verified_by_sigstore_js(serve_host, cosign_key, node_key, tmp_path) -> None:
    key, pub, pf = cosign_key
    repo = "sigstore/ocikit-bundle"
    digest = push_image(str(tmp_path / "src"), f"docker://{serve_host}/{repo}:v1", seed=12)
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--bundle", "--tls-verify=false",
               f"docker://{serve_host}/{repo}:v1")
    raw = _bundle_of(serve_host, repo, digest)
    path = tmp_path / "bundle.json"
    path.write_bytes(raw)
    p = node("verify_bundle.js", str(path), pub)
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)["statement"]
    assert st["subject"] == [{"name": f"{serve_host}/{repo}", "digest": {"sha256": digest.split(":")[1]}}]
    # sigstore-js refuses it with another key, and once the statement is changed
    assert node("verify_bundle.js", str(path), node_key[1]).returncode != 0
    doc = json.loads(raw)
    body = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    body["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    path.write_text(json.dumps(doc))
    bad = node("verify_bundle.js", str(path), pub)
    assert bad.returncode != 0 and "SIGNATURE" in bad.stderr


def test_tag_schema_matches_cosign_spec(serve_host, cosign_key, tmp_path) -> None:
    key, pub, pf = cosign_key
    repo = "sigstore/tagschema"
    digest = push_image(str(tmp_path / "src"), f"docker://{serve_host}/{repo}:v1", seed=13)
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--tls-verify=false", f"docker://{serve_host}/{repo}:v1")
    tag = f"sha256-{digest.split(':')[1]}.sig"
    m = json.loads(get(f"http://{serve_host}/v2/{repo}/manifests/{tag}"))
    assert list(m) == ["schemaVersion", "mediaType", "config", "layers"]
    assert m["schemaVersion"] == 2 and m["mediaType"] == OCI_MANIFEST
    assert list(m["config"]) == ["mediaType", "size", "digest"]
    assert m["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    (layer,) = m["layers"]
    assert list(layer) == ["mediaType", "size", "digest", "annotations"]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert list(layer["annotations"]) == ["dev.cosignproject.cosign/signature"]
    config = json.loads(get(f"http://{serve_host}/v2/{repo}/blobs/{m['config']['digest']}", "*/*"))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}
    assert config["architecture"] == "" and config["os"] == "" and config["config"] == {}
    payload = get(f"http://{serve_host}/v2/{repo}/blobs/{layer['digest']}", "*/*")
    assert len(payload) == layer["size"]
    assert json.loads(payload) == {"critical": {"identity": {"docker-reference": f"{serve_host}/{repo}:v1"},
                                                "image": {"docker-manifest-digest": digest},
                                                "type": "cosign container image signature"},
                                   "optional": None}
    # the annotation is a base64 ASN.1 ECDSA signature of the payload, as Node's crypto checks it
    (tmp_path / "payload").write_bytes(payload)
    script = ("const c=require('node:crypto');const fs=require('node:fs');"
              f"const ok=c.verify('sha256',fs.readFileSync({str(tmp_path / 'payload')!r}),"
              f"c.createPublicKey(fs.readFileSync({pub!r})),Buffer.from(process.argv[1],'base64'));"
              "process.exit(ok?0:3)")
    sig = layer["annotations"]["dev.cosignproject.cosign/signature"]
    assert subprocess.run([require("node"), "-e", script, sig]).returncode == 0
    # a second signature is appended to the same manifest, as cosign does
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--tls-verify=false",
               "--sign-identity", f"{serve_host}/{repo}:other", f"docker://{serve_host}/{repo}@{digest}")
    m2 = json.loads(get(f"http://{serve_host}/v2/{repo}/manifests/{tag}"))
    assert [x["digest"] for x in m2["layers"]][0] == layer["digest"] and len(m2["layers"]) == 2
    v = run_ocikit("--format", "json", "verify", "--key", pub, "--tls-verify=false", f"docker://{serve_host}/{repo}:v1",
                   check=False)
    doc = json.loads(v.stdout)
    # the tag's own signature passes; the one naming :other fails the identity check, and says so
    assert v.returncode == 0 and [s["ok"] for s in doc["signatures"]] == [True, False]
    assert "not" in doc["signatures"][1]["reason"] and ":other" in doc["signatures"][1]["reason"]


def test_tampered_payload_digest_refused(serve_host, cosign_key, tmp_path) -> None:
    """A valid signature whose payload names another digest (a .sig copied onto another image)."""
    key, pub, pf = cosign_key
    repo = "sigstore/moved"
    a = push_image(str(tmp_path / "a"), f"docker://{serve_host}/{repo}:a", seed=14)
    b = push_image(str(tmp_path / "b"), f"docker://{serve_host}/{repo}:b", seed=15)
    run_ocikit("sign", "--key", key, "--passphrase-file", pf, "--tls-verify=false", f"docker://{serve_host}/{repo}:a")
    run_ocikit("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--remove-signatures",
               f"docker://{serve_host}/{repo}:sha256-{a.split(':')[1]}.sig",
               f"docker://{serve_host}/{repo}:sha256-{b.split(':')[1]}.sig")
    p = run_ocikit("verify", "--key", pub, "--tls-verify=false", f"docker://{serve_host}/{repo}:b", check=False)
    assert p.returncode == 1
    assert f"the signature is for {a}, not {b}" in p.stdout.decode()
    assert f"{repo}:b" in p.stderr.decode() and len(p.stderr.decode().strip().splitlines()) == 1

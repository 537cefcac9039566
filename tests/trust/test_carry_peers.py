"""Signatures through ``ocikit copy`` on ``ocikit serve``: carried (counted) by default, dropped with
``--remove-signatures``, a policy enforced before anything is written, signing during the copy (checked by
skopeo)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

from helpers.trust import push_image, registries_d
from helpers.cli import run_ocikit
from helpers.peers import require

pytestmark = pytest.mark.peer

SBOM = "application/spdx+json"
NO_TLS = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture(scope="module")
def signed(tmp_path_factory, serve_host, cosign_key, gpg_key):
    """A 3-platform index on the serve_host, signed every way for the index and each platform, with an SBOM
    referrer and a cosign .att tag on the index."""
    tmp = tmp_path_factory.mktemp("carry")
    look = str(tmp / "lookaside")
    regd = registries_d(str(tmp / "registries.d"), look)
    key, pub, pf = cosign_key
    ref = f"docker://{serve_host}/carry/src:v1"
    digest = push_image(str(tmp / "src"), ref, index=True, seed=21)
    for extra in ((), ("--bundle",)):
        run_ocikit("sign", "-r", "--key", key, "--passphrase-file", pf, "--tls-verify=false", *extra, ref)
    run_ocikit("sign", "-r", "--sign-by", gpg_key.fingerprint, "--gnupghome", gpg_key.home, "--registries.d", regd,
               "--tls-verify=false", ref)
    sbom = tmp / "sbom.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    run_ocikit("artifact", "push", "--tls-verify=false", "--artifact-type", SBOM, "--subject", digest,
               f"docker://{serve_host}/carry/src", str(sbom))
    att = f"sha256-{digest.split(':')[1]}.att"
    run_ocikit("artifact", "push", "--tls-verify=false", "--artifact-type", "application/vnd.dsse.envelope.v1+json",
               f"docker://{serve_host}/carry/src:{att}", str(sbom))
    return {"tmp": tmp, "look": look, "regd": regd, "ref": ref, "digest": digest, "att": att, "pub": pub,
            "gpg": gpg_key}


def counts(serve_host: str, repo: str, s) -> dict[str, int]:
    """Signatures that verify at ``repo`` (index + every platform), by kind; SBOM referrers; the .att tag."""
    out: dict[str, int] = {}
    for flag, trust in (("--key", s["pub"]), ("--gpg-keyring", s["gpg"].public_key)):
        p = run_ocikit("--format", "json", "verify", "-r", flag, trust, "--registries.d", s["regd"],
                       "--tls-verify=false", "--identity", f"{serve_host}/carry/src:v1",
                       f"docker://{serve_host}/{repo}:v1", check=False)
        for sig in json.loads(p.stdout)["signatures"] if p.stdout else []:
            out[sig["kind"]] = out.get(sig["kind"], 0) + bool(sig["ok"])
    p = run_ocikit("--format", "json", "referrers", "--tls-verify=false", "--artifact-type", SBOM,
                   f"docker://{serve_host}/{repo}@{s['digest']}")
    out["sbom"] = len(json.loads(p.stdout)["referrers"])
    tags = run_ocikit("list-tags", "--tls-verify=false", f"docker://{serve_host}/{repo}").stdout.decode()
    out["att"] = int(s["att"] in tags)
    return out


def test_copy_carries_every_signature(serve_host, signed) -> None:
    assert counts(serve_host, "carry/src", signed) == {"cosign": 4, "bundle": 4, "gpg": 4, "sbom": 1, "att": 1}
    p = run_ocikit("--format", "json", "copy", "--all", *NO_TLS, "--registries.d", signed["regd"], signed["ref"],
                   f"docker://{serve_host}/carry/copy:v1")
    carried = json.loads(p.stdout)["signatures"]
    assert len(carried["tags"]) == 5 and len(carried["lookaside"]) == 4
    assert counts(serve_host, "carry/copy", signed) == {"cosign": 4, "bundle": 4, "gpg": 4, "sbom": 1, "att": 1}
    # an OCI layout has no lookaside store: such signatures are left behind only on request
    lay = str(signed["tmp"] / "layout")
    bad = run_ocikit("copy", "--all", *NO_TLS, "--registries.d", signed["regd"], signed["ref"], f"oci:{lay}:v1",
                     check=False)
    assert bad.returncode == 2 and b"--remove-signatures" in bad.stderr
    index = os.path.join(lay, "index.json")
    assert not os.path.exists(index) or json.load(open(index))["manifests"] == []  # nothing written
    run_ocikit("copy", "--all", *NO_TLS, "--remove-signatures", signed["ref"], f"oci:{lay}:v1")


def test_remove_signatures_leaves_none(serve_host, signed) -> None:
    run_ocikit("copy", "--all", *NO_TLS, "--registries.d", signed["regd"], "--remove-signatures", signed["ref"],
               f"docker://{serve_host}/carry/bare:v1")
    assert counts(serve_host, "carry/bare", signed) == {"sbom": 0, "att": 0}
    assert glob.glob(os.path.join(signed["look"], "carry/bare@*")) == []


def test_policy_copy_writes_nothing_when_rejected(serve_host, signed, tmp_path) -> None:
    unsigned = f"docker://{serve_host}/carry/unsigned:v1"
    push_image(str(tmp_path / "u"), unsigned, seed=22)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
        f"{serve_host}/carry": [{"type": "sigstoreSigned", "keyPath": signed["pub"],
                               "signedIdentity": {"type": "matchRepository"}}]}}}))
    p = run_ocikit("copy", *NO_TLS, "--policy", str(policy), unsigned, f"docker://{serve_host}/carry/guarded:v1",
                   check=False)
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    assert b"carry/unsigned:v1" in p.stderr and b"rejected" in p.stderr
    tags = run_ocikit("list-tags", "--tls-verify=false", f"docker://{serve_host}/carry/guarded", check=False)
    assert tags.returncode != 0 or b"v1" not in tags.stdout
    run_ocikit("copy", "--all", *NO_TLS, "--policy", str(policy), "--registries.d", signed["regd"], signed["ref"],
               f"docker://{serve_host}/carry/guarded:v1")
    assert b"v1" in run_ocikit("list-tags", "--tls-verify=false", f"docker://{serve_host}/carry/guarded").stdout


def test_copy_signs_and_skopeo_accepts(serve_host, signed, tmp_path) -> None:
    src = f"docker://{serve_host}/carry/tosign:v1"
    push_image(str(tmp_path / "s"), src, seed=23)
    dst = f"docker://{serve_host}/carry/signed-in-copy:v1"
    p = subprocess.run([sys.executable, "-m", "ocikit", "--format", "json", "copy", *NO_TLS, "--registries.d",
                        signed["regd"], "--sign-by", signed["gpg"].fingerprint, src, dst],
                       env=signed["gpg"].env, capture_output=True)  # the key is found through GNUPGHOME, as skopeo's
    assert p.returncode == 0, p.stderr
    assert [s["kind"] for s in json.loads(p.stdout)["signatures"]["signed"]] == ["gpg"]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {
        "docker": {f"{serve_host}/carry": [{"type": "signedBy", "keyType": "GPGKeys",
                                          "keyPath": signed["gpg"].public_key}]},
        "dir": {"": [{"type": "insecureAcceptAnything"}]}}}))
    out = subprocess.run([require("skopeo"), "--policy", str(policy), "--registries.d", signed["regd"], "copy",
                          "--src-tls-verify=false", dst, f"dir:{tmp_path / 'out'}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([require("skopeo"), "--policy", str(policy), "--registries.d", signed["regd"], "copy",
                          "--src-tls-verify=false", src, f"dir:{tmp_path / 'out2'}"], capture_output=True, text=True)
    assert out.returncode != 0


def test_sigstore_signatures_into_a_layout_and_back(serve_host, cosign_key, tmp_path) -> None:
    """Tag-schema signatures and bundle referrers travel registry -> OCI layout -> registry; a docker-archive
    cannot keep them and refuses unless --remove-signatures."""
    key, pub, pf = cosign_key
    ref = f"docker://{serve_host}/carry/sigstore-only:v1"
    push_image(str(tmp_path / "src"), ref, index=True, seed=24)
    for extra in ((), ("--bundle",)):
        run_ocikit("sign", "-r", "--key", key, "--passphrase-file", pf, "--tls-verify=false", *extra, ref)
    lay = f"oci:{tmp_path / 'lay'}:v1"
    run_ocikit("copy", "--all", *NO_TLS, ref, lay)
    ident = ("--identity", f"{serve_host}/carry/sigstore-only:v1")
    doc = json.loads(run_ocikit("--format", "json", "verify", "-r", "--key", pub, *ident, lay).stdout)
    assert doc["ok"] and sorted(s["kind"] for s in doc["signatures"] if s["ok"]) == ["bundle"] * 4 + ["cosign"] * 4
    back = f"docker://{serve_host}/carry/sigstore-back:v1"
    run_ocikit("copy", "--all", *NO_TLS, lay, back)
    doc = json.loads(run_ocikit("--format", "json", "verify", "-r", "--key", pub, "--tls-verify=false", *ident,
                                back).stdout)
    assert doc["ok"] and len([s for s in doc["signatures"] if s["ok"]]) == 8
    archive = str(tmp_path / "img.tar")
    p = run_ocikit("copy", *NO_TLS, ref, f"docker-archive:{archive}", check=False)  # this host's platform, signed
    assert p.returncode == 2 and b"docker-archive cannot keep" in p.stderr and not os.path.exists(archive)
    run_ocikit("copy", *NO_TLS, "--remove-signatures", ref, f"docker-archive:{archive}")
    assert os.path.getsize(archive) > 0


def test_copy_sign_by_unknown_key_writes_nothing(serve_host, signed, tmp_path) -> None:
    src = f"docker://{serve_host}/carry/tosign:v1"
    push_image(str(tmp_path / "s"), src, seed=23)
    p = subprocess.run([sys.executable, "-m", "ocikit", "copy", *NO_TLS, "--sign-by", "0" * 40, src,
                        f"docker://{serve_host}/carry/never-signed:v1"], env=signed["gpg"].env, capture_output=True)
    assert p.returncode == 1 and b"no secret GPG key" in p.stderr and len(p.stderr.splitlines()) == 1
    tags = run_ocikit("list-tags", "--tls-verify=false", f"docker://{serve_host}/carry/never-signed", check=False)
    assert tags.returncode != 0 or b"v1" not in tags.stdout


def test_copy_signs_with_a_cosign_key(serve_host, cosign_key, tmp_path) -> None:
    key, pub, pf = cosign_key
    src = f"docker://{serve_host}/carry/cosign-in-copy:v1"
    push_image(str(tmp_path / "s"), src, seed=25)
    dst = f"docker://{serve_host}/carry/cosign-in-copy-dst:v1"
    run_ocikit("copy", *NO_TLS, "--sign-by-sigstore-private-key", key, "--sign-passphrase-file", pf,
               "--sign-identity", "example.com/released/app:1.0", src, dst)
    doc = json.loads(run_ocikit("--format", "json", "verify", "--key", pub, "--tls-verify=false", "--identity",
                                "example.com/released/app:1.0", dst).stdout)
    assert doc["ok"] and [s["identity"] for s in doc["signatures"]] == ["example.com/released/app:1.0"]
    assert run_ocikit("verify", "--key", pub, "--tls-verify=false", src, check=False).returncode == 1

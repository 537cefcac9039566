"""The seed-000 air-gap scenario with signatures, against real servers and Debian's skopeo.

Registry A (``ocikit serve``) holds a 3-platform index, GPG-signed (``ocikit sign --sign-by -r``,
into A's lookaside directory) and sigstore-signed (``ocikit sign --key -r``: cosign tags and
sigstore-bundle referrers, index and each platform), with an SBOM referrer. It is mirrored
A -> bundle -> registry B with A stopped; at B, skopeo under a signedBy policy pulls every
platform by the index digest, and ``mirror verify --signatures`` passes, and fails naming the
image once a signature is deleted.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import urllib.request

import pytest

from helpers.cli import run_json, run_ocikit
from helpers.peers import require
from helpers.servers import free_port, start_ocikit_serve
from helpers.trust import drop_gpg_key, make_gpg_key, push_image, registries_d

pytestmark = pytest.mark.peer
PASSPHRASE = "correct horse"


@pytest.fixture
def gpg_key():
    key = make_gpg_key("mirror-signer")
    yield key
    drop_gpg_key(key)


def _sigs(look: str, repo: str) -> list[str]:
    return sorted(glob.glob(os.path.join(look, repo + "@sha256=*", "signature-*")))


def _tags(host: str, repo: str) -> list[str]:
    with urllib.request.urlopen(f"http://{host}/v2/{repo}/tags/list") as r:
        return json.loads(r.read())["tags"] or []


def _skopeo_pull(policy: str, regd: str, ref: str, out: str, platform: dict) -> subprocess.CompletedProcess:
    args = ["--override-arch", platform["architecture"]]
    if platform.get("variant"):
        args += ["--override-variant", platform["variant"]]
    return subprocess.run([require("skopeo"), "--policy", policy, "--registries.d", regd, *args, "copy",
                           "--src-tls-verify=false", ref, f"dir:{out}"], capture_output=True, text=True)


def test_signed_index_through_a_bundle_to_registry_b(tmp_path, gpg_key) -> None:
    require("skopeo")
    look_a, look_b = str(tmp_path / "look-a"), str(tmp_path / "look-b")
    regd_a = registries_d(str(tmp_path / "regd-a"), look_a)
    regd_b = registries_d(str(tmp_path / "regd-b"), look_b)
    pf = tmp_path / "pass"
    pf.write_text(PASSPHRASE + "\n")
    run_ocikit("generate-key", str(tmp_path / "k"), "--passphrase-file", str(pf))
    bundle = str(tmp_path / "bundle")
    cfg = tmp_path / "m.yaml"
    with start_ocikit_serve(str(tmp_path / "a")) as a:
        src = f"docker://{a.host}/app/multi:v1"
        idx = push_image(str(tmp_path / "layout"), src, index=True)
        run_ocikit("sign", "--sign-by", gpg_key.fingerprint, "--gnupghome", gpg_key.home, "--registries.d",
                   regd_a, "--tls-verify=false", "-r", src)
        run_ocikit("sign", "--key", str(tmp_path / "k.key"), "--passphrase-file", str(pf), "--bundle",
                   "--tag-schema", "--tls-verify=false", "-r", src)
        sbom = tmp_path / "sbom.json"
        sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
        run_ocikit("artifact", "push", "--artifact-type", "application/spdx+json", "--subject", idx,
                   "--tls-verify=false", f"docker://{a.host}/app/multi:sbom", str(sbom))
        manifests = 4  # the index and 3 platform manifests
        assert len(_sigs(look_a, "app/multi")) == manifests
        assert len([t for t in _tags(a.host, "app/multi") if t.endswith(".sig")]) == manifests
        cfg.write_text(f"images:\n  - source: {src}\n")
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"dir:{bundle}", "--src-tls-verify=false",
                           "--registries.d", regd_a, "--journal", "", "--state", "")
        assert rc == 0 and rep["ok"], rep
        assert rep["lookasideSignatures"] == manifests
    # A is stopped: the signatures travel inside the bundle, and its checksums cover them
    inside = glob.glob(os.path.join(bundle, "signatures", "app", "multi@sha256=*", "signature-1"))
    assert len(inside) == manifests
    sums = open(os.path.join(bundle, "SHA256SUMS")).read()
    assert sums.count("signatures/app/multi@sha256=") == manifests
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle).returncode == 0

    with start_ocikit_serve(str(tmp_path / "b")) as b:
        rc, rep = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/mirror",
                           "--dest-tls-verify=false", "--registries.d", regd_b, "--journal", "", "--state", "")
        assert rc == 0 and rep["ok"], rep
        assert rep["lookasideSignatures"] == manifests
        repo_b = "mirror/app/multi"
        assert len(_sigs(look_b, repo_b)) == manifests
        tags_b = _tags(b.host, repo_b)
        assert len([t for t in tags_b if t.endswith(".sig")]) == manifests
        with urllib.request.urlopen(f"http://{b.host}/v2/{repo_b}/referrers/{idx}") as r:
            kinds = sorted(m.get("artifactType", "") for m in json.loads(r.read())["manifests"])
        assert "application/spdx+json" in kinds
        assert "application/vnd.dev.sigstore.bundle.v0.3+json" in kinds

        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({
            "default": [{"type": "reject"}],
            "transports": {"docker": {f"{b.host}/mirror": [{
                "type": "signedBy", "keyType": "GPGKeys", "keyPath": gpg_key.public_key,
                "signedIdentity": {"type": "remapIdentity", "prefix": f"{b.host}/mirror",
                                   "signedPrefix": a.host}}]},
                "dir": {"": [{"type": "insecureAcceptAnything"}]}}}))
        ref_b = f"docker://{b.host}/{repo_b}@{idx}"
        index = json.loads(run_ocikit("inspect", "--raw", "--tls-verify=false", ref_b, text=True).stdout)
        assert len(index["manifests"]) == 3
        for n, child in enumerate(index["manifests"]):
            p = _skopeo_pull(str(policy), regd_b, ref_b, str(tmp_path / f"pull{n}"), child["platform"])
            assert p.returncode == 0, p.stderr
            got = json.loads(open(tmp_path / f"pull{n}" / "manifest.json").read())
            assert got["config"]["digest"]  # a platform image, not the index

        verify = ["mirror", "verify", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/mirror",
                  "--dest-tls-verify=false", "--registries.d", regd_b, "--signatures"]
        for how in (["--gpg-keyring", gpg_key.public_key, "-r"], ["--key", str(tmp_path / "k.pub"), "-r"],
                    ["--policy", str(policy)]):
            ok = run_ocikit(*verify, *how, check=False, text=True)
            assert ok.returncode == 0, (how, ok.stdout, ok.stderr)
        # a key that signed nothing here: every image is named
        other = make_gpg_key("stranger")
        try:
            bad = run_ocikit(*verify, "--gpg-keyring", other.public_key, check=False, text=True)
        finally:
            drop_gpg_key(other)
        assert bad.returncode == 1 and f"{b.host}/{repo_b}:v1" in bad.stdout, bad.stdout

        # one signature deleted at B: the index's GPG signature
        index_sig = os.path.join(look_b, f"{repo_b}@sha256={idx.split(':')[1]}", "signature-1")
        os.unlink(index_sig)
        gone = run_ocikit(*verify, "--gpg-keyring", gpg_key.public_key, check=False, text=True)
        assert gone.returncode == 1, gone.stdout
        assert f"{b.host}/{repo_b}:v1" in gone.stdout and idx in gone.stdout, gone.stdout
        assert run_ocikit(*verify, "--policy", str(policy), check=False).returncode == 1
        # skopeo checks the platform manifest it copies: delete the first one's signature too
        first = index["manifests"][0]
        os.unlink(os.path.join(look_b, f"{repo_b}@sha256={first['digest'].split(':')[1]}", "signature-1"))
        p = _skopeo_pull(str(policy), regd_b, ref_b, str(tmp_path / "refused"), first["platform"])
        assert p.returncode != 0 and "signature" in p.stderr.lower(), p.stderr
        lost = run_ocikit(*verify, "--gpg-keyring", gpg_key.public_key, "-r", check=False, text=True)
        assert lost.returncode == 1 and f"platform manifest {first['digest']}" in lost.stdout, lost.stdout
        # the sigstore signatures are still there
        assert run_ocikit(*verify, "--key", str(tmp_path / "k.pub"), "-r", check=False).returncode == 0

        # --remove-signatures: nothing carried
        look_c = str(tmp_path / "look-c")
        regd_c = registries_d(str(tmp_path / "regd-c"), look_c)
        rc, rep = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/plain",
                           "--dest-tls-verify=false", "--registries.d", regd_c, "--journal", "", "--state", "",
                           "--remove-signatures")
        assert rc == 0 and rep["ok"], rep
        assert [i["kind"] for i in rep["images"]] == ["image"]
        assert rep["lookasideSignatures"] == 0 and not os.path.exists(look_c)
        assert _tags(b.host, "plain/app/multi") == ["v1"]
        unsigned = run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/plain",
                              "--dest-tls-verify=false", "--registries.d", regd_c, "--signatures", "--key",
                              str(tmp_path / "k.pub"), check=False, text=True)
        assert unsigned.returncode == 1
        assert f"{b.host}/plain/app/multi:v1: index/root manifest {idx}: signature missing" in unsigned.stdout


def test_registry_to_registry_carries_lookaside_and_cosign_tags(tmp_path, gpg_key) -> None:
    look_a, look_b = str(tmp_path / "look-a"), str(tmp_path / "look-b")
    regd_a = registries_d(str(tmp_path / "regd-a"), look_a)
    # one registries.d for both sides: A's scope reads look-a, B's scope writes look-b
    with start_ocikit_serve(str(tmp_path / "a")) as a, start_ocikit_serve(str(tmp_path / "b")) as b:
        with open(os.path.join(regd_a, "b.yaml"), "w") as f:
            f.write(f"docker:\n  {b.host}:\n    lookaside: file://{look_b}\n")
        src = f"docker://{a.host}/app/one:v1"
        digest = push_image(str(tmp_path / "layout"), src)
        run_ocikit("sign", "--sign-by", gpg_key.fingerprint, "--gnupghome", gpg_key.home, "--registries.d",
                   regd_a, "--tls-verify=false", src)
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f"images:\n  - source: {src}\n")
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false",
                           "--registries.d", regd_a, "--journal", "", "--state", "",
                           "--results", str(tmp_path / "results"), "--results-gpg-key", gpg_key.public_key)
        assert rc == 0 and rep["ok"] and rep["lookasideSignatures"] == 1, rep
        # the written policy.json + registries.d let skopeo pull from the mirror, and nothing unsigned
        results = tmp_path / "results"
        assert not (results / "clusterimagepolicy.yaml").exists()
        pulled = subprocess.run([require("skopeo"), "--policy", str(results / "policy.json"), "--registries.d",
                                 str(results / "registries.d"), "copy", "--src-tls-verify=false",
                                 f"docker://{b.host}/m/app/one:v1", f"dir:{tmp_path / 'pulled'}"],
                                capture_output=True, text=True)
        assert pulled.returncode == 0, pulled.stderr
        assert len(_sigs(look_b, "m/app/one")) == 1
        with open(_sigs(look_b, "m/app/one")[0], "rb") as f, open(_sigs(look_a, "app/one")[0], "rb") as g:
            assert f.read() == g.read()
        assert digest in _sigs(look_b, "m/app/one")[0].replace("sha256=", "sha256:")
        # OpenShift's release-signature ConfigMap carries the same signature bytes
        import base64
        import yaml
        cms = list(yaml.safe_load_all((results / "release-signatures.yaml").read_text()))
        hexpart = digest.split(":", 1)[1]
        assert [(c["kind"], c["metadata"]["name"], c["metadata"]["namespace"]) for c in cms] == \
            [("ConfigMap", f"sha256-{hexpart}", "openshift-config-managed")]
        assert "release.openshift.io/verification-signatures" in cms[0]["metadata"]["labels"]
        with open(_sigs(look_b, "m/app/one")[0], "rb") as f:
            assert base64.b64decode(cms[0]["binaryData"][f"sha256-{hexpart}-1"]) == f.read()
        ok = run_ocikit("mirror", "verify", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false",
                        "--registries.d", regd_a, "--signatures", "--gpg-keyring", gpg_key.public_key, check=False,
                        text=True)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        os.unlink(_sigs(look_b, "m/app/one")[0])
        refused = subprocess.run([require("skopeo"), "--policy", str(results / "policy.json"), "--registries.d",
                                  str(results / "registries.d"), "copy", "--src-tls-verify=false",
                                  f"docker://{b.host}/m/app/one:v1", f"dir:{tmp_path / 'refused'}"],
                                 capture_output=True, text=True)
        assert refused.returncode != 0
        # a re-run leaves the image alone (unchanged) and still puts the deleted signature back
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--registries.d", regd_a, "--journal", "", "--state", "")
        assert rc == 0 and [i["status"] for i in rep["images"]] == ["unchanged"], rep
        assert rep["lookasideSignatures"] == 1 and len(_sigs(look_b, "m/app/one")) == 1

        # a source lookaside that cannot be read fails the image, naming it and the reason
        broken = str(tmp_path / "regd-broken")
        os.makedirs(broken)
        with open(os.path.join(broken, "a.yaml"), "w") as f:
            f.write(f"docker:\n  {a.host}:\n    lookaside: http://127.0.0.1:{free_port()}/sigs\n"
                    f"  {b.host}:\n    lookaside: file://{look_b}\n")
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m2", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--registries.d", broken, "--journal", "", "--state", "",
                           check=False)
        assert rc == 1 and not rep["ok"]
        assert rep["failures"][0]["source"] == src and "lookaside" in rep["failures"][0]["error"], rep

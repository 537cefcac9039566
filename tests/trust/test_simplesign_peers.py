"""GPG simple signing, both ways with Debian's skopeo, through a lookaside directory named by registries.d.

skopeo signs (``copy --sign-by``) -> ``ocikit verify`` accepts; ``ocikit sign --sign-by`` -> ``skopeo copy
--policy`` (signedBy) accepts; an unsigned image, a signature for another digest, another identity and
another key are refused by both.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from helpers.trust import push_image, registries_d
from helpers.cli import run_ocikit
from helpers.peers import require

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def setup(tmp_path_factory, serve_host, gpg_key):
    """A registries.d with a lookaside dir, a signedBy policy for REGISTRY/gpg, and the source layout."""
    tmp = tmp_path_factory.mktemp("gpg")
    look = str(tmp / "lookaside")
    regd = registries_d(str(tmp / "registries.d"), look)
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({
        "default": [{"type": "reject"}],
        "transports": {"docker": {f"{serve_host}/gpg": [{"type": "signedBy", "keyType": "GPGKeys",
                                                        "keyPath": gpg_key.public_key}]},
                       "dir": {"": [{"type": "insecureAcceptAnything"}]},
                       "oci": {"": [{"type": "insecureAcceptAnything"}]}}}))
    return {"tmp": tmp, "look": look, "regd": regd, "policy": str(policy)}


def skopeo_sign_copy(setup, key, src: str, dst: str) -> None:
    p = subprocess.run([require("skopeo"), "copy", "--sign-by", key.fingerprint, "--registries.d", setup["regd"],
                        "--dest-tls-verify=false", src, dst], env=key.env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def skopeo_pull(setup, ref: str, out: str) -> subprocess.CompletedProcess:
    return subprocess.run([require("skopeo"), "--policy", setup["policy"], "--registries.d", setup["regd"], "copy",
                           "--src-tls-verify=false", ref, f"dir:{out}"], capture_output=True, text=True)


def ocikit_verify_policy(setup, ref: str, *extra: str):
    return run_ocikit("verify", "--policy", setup["policy"], "--registries.d", setup["regd"], "--tls-verify=false",
                      *extra, ref, check=False)


def ocikit_sign(setup, key, ref: str, *extra: str) -> None:
    run_ocikit("sign", "--sign-by", key.fingerprint, "--gnupghome", key.home, "--registries.d", setup["regd"],
               "--tls-verify=false", *extra, ref)


def plant_signature(setup, repo: str, digest: str, data: bytes) -> None:
    """Put ``data`` where the lookaside keeps the first signature of ``repo@digest``."""
    path = os.path.join(setup["look"], f"{repo}@sha256={digest.split(':')[1]}", "signature-1")
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as f:
        f.write(data)


def lookaside_files(setup, repo: str) -> list[str]:
    return sorted(glob.glob(os.path.join(setup["look"], repo + "@sha256=*", "signature-*")))


def test_skopeo_signs_ocikit_verifies(setup, serve_host, gpg_key) -> None:
    src = str(setup["tmp"] / "src1")
    push_image(src, f"docker://{serve_host}/gpg/base:v1")
    skopeo_sign_copy(setup, gpg_key, f"oci:{src}:v1", f"docker://{serve_host}/gpg/by-skopeo:v1")
    assert len(lookaside_files(setup, "gpg/by-skopeo")) == 1
    p = ocikit_verify_policy(setup, f"docker://{serve_host}/gpg/by-skopeo:v1")
    assert p.returncode == 0, p.stderr
    assert b"Accepted" in p.stdout and b"PASS gpg" in p.stdout
    # the same with the keyring given directly, as JSON
    p = run_ocikit("--format", "json", "verify", "--gpg-keyring", gpg_key.public_key, "--registries.d", setup["regd"],
                   "--tls-verify=false", f"docker://{serve_host}/gpg/by-skopeo:v1")
    doc = json.loads(p.stdout)
    assert doc["ok"] and [s["kind"] for s in doc["signatures"]] == ["gpg"]
    assert doc["signatures"][0]["signer"] == gpg_key.fingerprint
    assert doc["signatures"][0]["identity"] == f"{serve_host}/gpg/by-skopeo:v1"


def test_ocikit_signs_skopeo_verifies(setup, serve_host, gpg_key, tmp_path) -> None:
    ref = f"docker://{serve_host}/gpg/by-ocikit:v1"
    digest = push_image(str(tmp_path / "src"), ref, seed=2)
    ocikit_sign(setup, gpg_key, ref)
    files = lookaside_files(setup, "gpg/by-ocikit")
    assert [os.path.basename(os.path.dirname(f)) for f in files] == [f"by-ocikit@sha256={digest.split(':')[1]}"]
    p = skopeo_pull(setup, ref, str(tmp_path / "out"))
    assert p.returncode == 0, p.stderr
    # by digest too (matchRepoDigestOrExact: same repository)
    p = skopeo_pull(setup, f"docker://{serve_host}/gpg/by-ocikit@{digest}", str(tmp_path / "out2"))
    assert p.returncode == 0, p.stderr
    assert ocikit_verify_policy(setup, ref).returncode == 0


def test_unsigned_refused_by_both(setup, serve_host, tmp_path) -> None:
    ref = f"docker://{serve_host}/gpg/unsigned:v1"
    push_image(str(tmp_path / "src"), ref, seed=3)
    p = skopeo_pull(setup, ref, str(tmp_path / "out"))
    assert p.returncode != 0 and "signature" in p.stderr.lower()
    p = ocikit_verify_policy(setup, ref)
    assert p.returncode == 1
    err = p.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "gpg/unsigned:v1" in err and "rejected" in err and "no signature" in err


def test_signature_for_another_digest_refused_by_both(setup, serve_host, gpg_key, tmp_path) -> None:
    signed = f"docker://{serve_host}/gpg/moved-a:v1"
    push_image(str(tmp_path / "a"), signed, seed=4)
    ocikit_sign(setup, gpg_key, signed)
    other = f"docker://{serve_host}/gpg/moved-a:v2"
    digest_b = push_image(str(tmp_path / "b"), other, seed=5)
    # the signature of image A, put where image B's signature would be
    (sig_a,) = lookaside_files(setup, "gpg/moved-a")
    with open(sig_a, "rb") as f:
        plant_signature(setup, "gpg/moved-a", digest_b, f.read())
    p = skopeo_pull(setup, other, str(tmp_path / "out"))
    assert p.returncode != 0, "skopeo accepted a signature of another digest"
    p = ocikit_verify_policy(setup, other)
    assert p.returncode == 1 and f"not {digest_b}" in p.stderr.decode()


def test_other_identity_and_other_key_refused_by_both(setup, serve_host, gpg_key, other_gpg_key, tmp_path) -> None:
    ref = f"docker://{serve_host}/gpg/wrong-identity:v1"
    push_image(str(tmp_path / "a"), ref, seed=6)
    ocikit_sign(setup, gpg_key, ref, "--sign-identity", f"{serve_host}/gpg/somewhere-else:v1")
    assert skopeo_pull(setup, ref, str(tmp_path / "o1")).returncode != 0
    p = ocikit_verify_policy(setup, ref)
    assert p.returncode == 1 and "somewhere-else" in p.stderr.decode()

    ref2 = f"docker://{serve_host}/gpg/stranger:v1"
    push_image(str(tmp_path / "b"), ref2, seed=7)
    skopeo_sign_copy(setup, other_gpg_key, f"oci:{tmp_path / 'b'}:v1", ref2)
    assert skopeo_pull(setup, ref2, str(tmp_path / "o2")).returncode != 0
    p = ocikit_verify_policy(setup, ref2)
    assert p.returncode == 1 and "does not verify" in p.stderr.decode()


def test_garbage_lookaside_signature(setup, serve_host, gpg_key, tmp_path) -> None:
    ref = f"docker://{serve_host}/gpg/garbage:v1"
    digest = push_image(str(tmp_path / "a"), ref, seed=8)
    plant_signature(setup, "gpg/garbage", digest, b"<html>not a signature</html>")
    p = run_ocikit("verify", "--gpg-keyring", gpg_key.public_key, "--registries.d", setup["regd"],
                   "--tls-verify=false", ref, check=False)
    assert p.returncode == 1 and "gpg/garbage:v1" in p.stderr.decode()
    assert b"FAIL gpg" in p.stdout


def test_http_lookaside(setup, serve_host, gpg_key, tmp_path) -> None:
    """A lookaside store served over HTTP (read-only): a good signature passes, garbage fails in one line."""
    import sys

    from helpers.servers import free_port, stop_pid, wait_http

    good = f"docker://{serve_host}/gpg/http-good:v1"
    push_image(str(tmp_path / "a"), good, seed=9)
    ocikit_sign(setup, gpg_key, good)  # into the file lookaside, which the HTTP server then serves
    bad = f"docker://{serve_host}/gpg/http-bad:v1"
    digest = push_image(str(tmp_path / "b"), bad, seed=10)
    plant_signature(setup, "gpg/http-bad", digest, b"<!doctype html><title>Welcome to nginx</title>")
    port = free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory",
                             setup["look"]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/", proc=http)
        regd = registries_d(str(tmp_path / "regd"), "")
        with open(os.path.join(regd, "default.yaml"), "w") as f:
            f.write(f"docker:\n  {serve_host}/gpg:\n    lookaside: http://127.0.0.1:{port}\n")
        args = ("verify", "--gpg-keyring", gpg_key.public_key, "--registries.d", regd, "--tls-verify=false")
        p = run_ocikit(*args, good)
        assert f"http://127.0.0.1:{port}/gpg/http-good@sha256=".encode() in p.stdout
        p = run_ocikit(*args, bad, check=False)
        assert p.returncode == 1 and len(p.stderr.splitlines()) == 1 and b"gpg/http-bad:v1" in p.stderr
        assert b"FAIL gpg" in p.stdout and b"does not verify" in p.stdout
    finally:
        stop_pid(http)


def test_podman_pull_under_the_same_policy(setup, serve_host, gpg_key, tmp_path, request) -> None:
    """podman reads registries.d from $HOME/.config/containers/registries.d: the same lookaside, the same verdicts."""
    podman = require("podman")
    home = tmp_path / "home"
    shutil.copytree(setup["regd"], home / ".config" / "containers" / "registries.d")
    env = {**os.environ, "HOME": str(home)}
    short = tempfile.mkdtemp(prefix="okp-", dir="/tmp")  # podman refuses a runroot longer than 50 characters
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    base = [podman, "--root", f"{short}/storage", "--runroot", f"{short}/run", "--storage-driver", "vfs",
            "pull", "--signature-policy", setup["policy"], "--tls-verify=false"]
    signed = f"docker://{serve_host}/gpg/for-podman:v1"
    push_image(str(tmp_path / "a"), signed, seed=31)
    ocikit_sign(setup, gpg_key, signed)
    p = subprocess.run([*base, signed], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    unsigned = f"docker://{serve_host}/gpg/for-podman-unsigned:v1"
    push_image(str(tmp_path / "b"), unsigned, seed=32)
    p = subprocess.run([*base, unsigned], env=env, capture_output=True, text=True)
    assert p.returncode != 0 and "signature" in p.stderr
    assert ocikit_verify_policy(setup, unsigned).returncode == 1

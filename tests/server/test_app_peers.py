"""Real clients against ``ocikit serve``: skopeo copies both ways, podman and buildah push and pull."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from ocikit.core.digest import Digest
from ocikit.testing import write_image, write_index
from ocikit.transports.layout import OCILayout

from helpers.peers import require, sh, skopeo_digest, skopeo_raw

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("peer-images") / "layout")
    lay = OCILayout(path, create=True)
    write_index(lay, "multi")
    write_image(lay, "single")
    return path


def layout_manifest(path: str, tag: str) -> bytes:
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    for m in index["manifests"]:
        if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
            alg, enc = m["digest"].split(":")
            with open(os.path.join(path, "blobs", alg, enc), "rb") as b:
                return b.read()
    raise KeyError(tag)


def test_skopeo_single_both_ways(serve, images, tmp_path):
    skopeo = require("skopeo")
    dst = f"docker://{serve.host}/peers/single:v1"
    sh(skopeo, "copy", "--dest-tls-verify=false", f"oci:{images}:single", dst)
    raw = skopeo_raw(dst)
    digest = str(Digest.of(raw))
    assert raw == layout_manifest(images, "single")
    out = tmp_path / "back"
    sh(skopeo, "copy", "--src-tls-verify=false", dst, f"oci:{out}:v1")
    assert layout_manifest(str(out), "v1") == raw
    inspect = json.loads(sh(skopeo, "inspect", "--tls-verify=false", dst).stdout)
    assert inspect["Digest"] == digest


def test_skopeo_all_both_ways(serve, images, tmp_path):
    skopeo = require("skopeo")
    dst = f"docker://{serve.host}/peers/multi:latest"
    sh(skopeo, "copy", "--all", "--dest-tls-verify=false", f"oci:{images}:multi", dst)
    raw = skopeo_raw(dst)
    digest = str(Digest.of(raw))
    assert raw == layout_manifest(images, "multi")
    children = json.loads(raw)["manifests"]
    for child in children:
        cd = skopeo_digest(f"docker://{serve.host}/peers/multi@{child['digest']}")
        assert cd == child["digest"]
    out = tmp_path / "back"
    sh(skopeo, "copy", "--all", "--src-tls-verify=false", dst, f"oci:{out}:all")
    assert layout_manifest(str(out), "all") == raw
    # registry to registry within the server (blobs mounted across repositories)
    sh(skopeo, "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false", dst,
       f"docker://{serve.host}/peers/multi-copy:latest")
    assert skopeo_digest(f"docker://{serve.host}/peers/multi-copy:latest") == digest


def test_skopeo_v2s2(serve, images, tmp_path):
    skopeo = require("skopeo")
    dst = f"docker://{serve.host}/peers/v2s2:v1"
    sh(skopeo, "copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{images}:single", dst)
    raw = skopeo_raw(dst)
    assert json.loads(raw)["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    out = tmp_path / "back"
    sh(skopeo, "copy", "--src-tls-verify=false", dst, f"docker-archive:{out}.tar:x/y:z")
    # a docker v2s2 image stored as written, pulled digest-exact into another repository
    sh(skopeo, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", dst,
       f"docker://{serve.host}/peers/v2s2-copy:v1")
    assert skopeo_raw(f"docker://{serve.host}/peers/v2s2-copy:v1") == raw


@pytest.fixture
def runroot():
    """podman refuses a runroot longer than 50 characters: a short one in /tmp, removed after."""
    path = tempfile.mkdtemp(prefix="ock-run-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _containers(tool: str, tmp_path, runroot: str) -> list[str]:
    return [require(tool), "--root", str(tmp_path / "storage"), "--runroot", runroot, "--storage-driver", "vfs"]


def test_podman_push_and_pull(serve, images, tmp_path, runroot):
    require("skopeo")
    podman = _containers("podman", tmp_path, runroot)
    sh(*podman, "pull", "-q", f"oci:{images}:single")
    local = sh(*podman, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode().split()[0]
    ref = f"{serve.host}/peers/podman:v1"
    digestfile = tmp_path / "digest"
    sh(*podman, "push", "--tls-verify=false", "--digestfile", str(digestfile), local, f"docker://{ref}")
    pushed = digestfile.read_text().strip()
    assert skopeo_digest(f"docker://{ref}") == pushed
    sh(*podman, "rmi", "-a", "-f")
    sh(*podman, "pull", "--tls-verify=false", f"docker://{ref}")
    assert sh(*podman, "image", "inspect", "--format", "{{.Digest}}", ref).stdout.decode().strip() == pushed


def test_buildah_push(serve, images, tmp_path, runroot):
    require("skopeo")
    buildah = _containers("buildah", tmp_path, runroot)
    sh(*buildah, "pull", "-q", f"oci:{images}:single")
    image_id = sh(*buildah, "images", "-q").stdout.decode().split()[0]
    ref = f"{serve.host}/peers/buildah:v1"
    digestfile = tmp_path / "digest"
    sh(*buildah, "push", "--tls-verify=false", "--digestfile", str(digestfile), image_id, f"docker://{ref}")
    assert skopeo_digest(f"docker://{ref}") == digestfile.read_text().strip()
    sh(*buildah, "rmi", "-a", "-f")
    sh(*buildah, "pull", "-q", "--tls-verify=false", f"docker://{ref}")
    assert sh(*buildah, "images", "-q").stdout.decode().split()[0] == image_id


def test_ocikit_copy_both_ways(serve, images, tmp_path, ocikit):
    require("skopeo")
    dst = f"docker://{serve.host}/peers/ocikit:latest"
    ocikit("copy", "--all", "--dest-tls-verify=false", f"oci:{images}:multi", dst)
    assert skopeo_raw(dst) == layout_manifest(images, "multi")
    out = tmp_path / "back"
    ocikit("copy", "--all", "--src-tls-verify=false", dst, f"oci:{out}:all")
    assert layout_manifest(str(out), "all") == layout_manifest(images, "multi")

"""Seed 000 on real registries: three per-arch images pushed, a list assembled with `ocikit manifest`,
pushed to Debian's docker-registry and to `ocikit serve`; skopeo and podman read and pull it per platform."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from typing import Iterator

import pytest

from ocikit.core import mediatypes as mt
from ocikit.testing import write_image
from ocikit.transports.layout import OCILayout
from helpers.cli import invoke as ocikit
from helpers.peers import require, sh
from helpers.servers import docker_registry, start_ocikit_serve

pytestmark = pytest.mark.peer
ARCHES = ("amd64", "arm64", "ppc64le")


@pytest.fixture(scope="module", params=["docker-registry", "ocikit-serve"])
def server(request, tmp_path_factory) -> Iterator[str]:
    tmp = str(tmp_path_factory.mktemp(request.param))
    start = docker_registry if request.param == "docker-registry" else start_ocikit_serve
    with start(tmp) as srv:
        yield srv.host


@pytest.fixture(scope="module")
def arch_layouts(tmp_path_factory) -> dict[str, str]:
    """One layout per architecture, tag v1 an OCI image and tag d1 a Docker v2s2 image."""
    out = {}
    base = tmp_path_factory.mktemp("arches")
    for i, arch in enumerate(ARCHES):
        lay = OCILayout(str(base / arch), create=True)
        write_image(lay, "v1", platform=f"linux/{arch}", seed=10 + i)
        write_image(lay, "d1", platform=f"linux/{arch}", seed=20 + i, docker=True)
        out[arch] = lay.path
    return out


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_seed_000_multi_arch_list(server, arch_layouts, xdg, tmp_path) -> None:
    skopeo, podman = require("skopeo"), require("podman")
    repo = f"docker://{server}/openshift-examples/multi-arch"
    want = {}
    for arch in ARCHES:  # build & push each architecture's image (the seed's `podman push`)
        p = ocikit("--format", "json", "copy", f"oci:{arch_layouts[arch]}:v1", f"{repo}:{arch}")
        want[arch] = json.loads(p.stdout)["digest"]
    ocikit("manifest", "create", "mylist")
    for arch in ARCHES:
        ocikit("manifest", "add", "mylist", f"{repo}:{arch}")
    p = ocikit("manifest", "push", "mylist", f"{repo}:multi", "--digestfile", str(tmp_path / "digest"))
    digest = open(tmp_path / "digest").read()

    raw = sh(skopeo, "inspect", "--raw", "--tls-verify=false", f"{repo}:multi").stdout
    index = json.loads(raw)
    assert index["mediaType"] == mt.OCI_INDEX
    assert [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]] == \
        [("linux", a) for a in ARCHES]
    assert [m["digest"] for m in index["manifests"]] == [want[a] for a in ARCHES]
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == digest

    for arch in ("arm64", "ppc64le"):
        dest = tmp_path / f"sk-{arch}"
        sh(skopeo, "copy", "--override-arch", arch, "--src-tls-verify=false", f"{repo}:multi", f"oci:{dest}:x")
        assert OCILayout(str(dest)).resolve_sync("x").digest == want[arch]

    name = repo.removeprefix("docker://") + ":multi"
    with tempfile.TemporaryDirectory(prefix="ocikit-prun-") as runroot:  # podman wants a short runroot
        store = ["--storage-driver", "vfs", "--root", str(tmp_path / "proot"), "--runroot", runroot]
        for arch, how in (("arm64", ["--platform", "linux/arm64"]), ("ppc64le", ["--arch", "ppc64le"])):
            sh(podman, *store, "pull", "--tls-verify=false", *how, name)
            out = sh(podman, *store, "image", "inspect", "--format", "{{.Architecture}} {{.Os}}",
                     name).stdout.decode().split()
            assert out == [arch, "linux"]
            sh(podman, *store, "rmi", "-f", name)


def test_docker_manifest_list_from_layouts(server, arch_layouts, xdg, tmp_path) -> None:
    """A Docker v2s2 manifest list of Docker images, assembled from local layouts, pushed with --all."""
    skopeo = require("skopeo")
    repo = f"docker://{server}/dl/app"
    ocikit("manifest", "create", "--format", "docker", "dlist",
           *[f"oci:{arch_layouts[a]}:d1" for a in ARCHES])
    ocikit("manifest", "push", "dlist", f"{repo}:v1")
    index = json.loads(sh(skopeo, "inspect", "--raw", "--tls-verify=false", f"{repo}:v1").stdout)
    assert index["mediaType"] == mt.DOCKER_MANIFEST_LIST
    assert {m["mediaType"] for m in index["manifests"]} == {mt.DOCKER_MANIFEST}
    assert [m["platform"]["architecture"] for m in index["manifests"]] == list(ARCHES)
    sh(skopeo, "copy", "--override-arch", "amd64", "--src-tls-verify=false", f"{repo}:v1", f"dir:{tmp_path}/o")
    raw = open(tmp_path / "o" / "manifest.json", "rb").read()  # dir: keeps the Docker manifest as it is
    assert f"sha256:{hashlib.sha256(raw).hexdigest()}" == index["manifests"][0]["digest"]


def test_index_filter_and_append_remote(server, arch_layouts, tmp_path) -> None:
    skopeo = require("skopeo")
    repo = f"docker://{server}/edit/app"
    for arch in ARCHES:
        ocikit("copy", f"oci:{arch_layouts[arch]}:v1", f"{repo}:{arch}")
    p = ocikit("index", "append", "-m", f"{repo}:amd64", "-m", f"{repo}:arm64", "-t", f"{repo}:two")
    two = p.stdout.decode().strip()
    p = ocikit("index", "append", f"{repo}:two", "-m", f"{repo}:ppc64le", "-t", f"{repo}:three")
    three = p.stdout.decode().strip()
    idx = json.loads(sh(skopeo, "inspect", "--raw", "--tls-verify=false", f"{repo}:three").stdout)
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == list(ARCHES)
    p = ocikit("index", "filter", f"{repo}:three", "--platform", "linux/ppc64le", "-t", f"{repo}:ppc")
    idx = json.loads(sh(skopeo, "inspect", "--raw", "--tls-verify=false", f"{repo}:ppc").stdout)
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["ppc64le"]
    assert len({two, three, p.stdout.decode().strip()}) == 3
    bad = ocikit("index", "append", f"{repo}:three", "-m", f"{repo}:amd64-nope", check=False)
    assert bad.returncode != 0 and "amd64-nope" in bad.stderr.decode()


def test_missing_image_on_a_registry(server, xdg) -> None:
    ocikit("manifest", "create", "m")
    p = ocikit("manifest", "add", "m", f"docker://{server}/nothing/here:v1", check=False)
    assert p.returncode != 0
    err = p.stderr.decode()
    assert err.startswith("ocikit: error: cannot add") and err.count("\n") == 1
    assert os.environ.get("XDG_DATA_HOME")

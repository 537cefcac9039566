"""Artifacts and referrers on real registries: `ocikit serve` (the referrers API) and Debian's
docker-registry 2.8 (no API: the `sha256-<hex>` tag schema), and `copy --referrers` between them."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Iterator

import pytest

from helpers.cli import invoke as ocikit
from ocikit.testing import write_index
from ocikit.transports.layout import OCILayout
from helpers.peers import require
from helpers.servers import docker_registry, start_ocikit_serve

pytestmark = pytest.mark.peer
SBOM = "application/spdx+json"
SIG = "application/vnd.example.signature"
VIA = {"docker-registry": "tag-schema", "ocikit-serve": "api"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, str]]:
    tmp = str(tmp_path_factory.mktemp("registries"))
    with docker_registry(tmp) as reg, start_ocikit_serve(tmp) as serve:
        yield {"docker-registry": reg.host, "ocikit-serve": serve.host}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    lay = OCILayout(str(tmp_path_factory.mktemp("src") / "multi"), create=True)
    write_index(lay, "multi")
    return lay.path


@pytest.fixture
def files(tmp_path) -> list[str]:
    a, b = tmp_path / "sbom.spdx.json", tmp_path / "sig.bin"
    a.write_text('{"spdxVersion": "SPDX-2.3", "name": "multi"}')
    b.write_bytes(os.urandom(70_000))
    return [str(a), str(b)]


def tags(repo: str) -> list[str]:
    p = subprocess.run([require("skopeo"), "list-tags", "--tls-verify=false", repo], capture_output=True, check=True)
    return json.loads(p.stdout)["Tags"]


def referrers(ref: str, *extra: str) -> dict:
    return json.loads(ocikit("--format", "json", "referrers", ref, *extra).stdout)


def push(ref: str, *args: str) -> dict:
    return json.loads(ocikit("--format", "json", "artifact", "push", ref, *args).stdout)


@pytest.mark.parametrize("kind", ["docker-registry", "ocikit-serve"])
def test_attach_discover_pull(servers, kind, source, files, tmp_path) -> None:
    repo = f"docker://{servers[kind]}/art/app"
    digest = json.loads(ocikit("--format", "json", "copy", "--all", f"oci:{source}:multi", f"{repo}:v1").stdout)["digest"]
    sbom = push(repo, files[0], "--artifact-type", SBOM, "--subject", "v1", "--annotation", "org.example=1")
    assert sbom["referrersVia"] == VIA[kind] and sbom["subject"] == digest
    sig = push(repo, files[1], "--artifact-type", SIG, "--subject", f"{repo}@{digest}")
    sig_of_sbom = push(repo, files[1], "--artifact-type", SIG, "--subject", sbom["digest"])

    found = referrers(f"{repo}:v1")
    assert found["source"] == VIA[kind]
    assert {r["digest"] for r in found["referrers"]} == {sbom["digest"], sig["digest"]}
    by_digest = {r["digest"]: r for r in found["referrers"]}
    assert by_digest[sbom["digest"]]["artifactType"] == SBOM
    assert by_digest[sbom["digest"]]["annotations"] == {"org.example": "1"}
    only = referrers(f"{repo}:v1", "--artifact-type", SIG)
    assert [r["digest"] for r in only["referrers"]] == [sig["digest"]]
    assert [r["digest"] for r in referrers(f"{repo}@{sbom['digest']}")["referrers"]] == [sig_of_sbom["digest"]]

    fallback = "sha256-" + digest.split(":")[1]
    if kind == "docker-registry":  # the fallback index is kept up to date by each push
        assert fallback in tags(repo)
        idx = json.loads(subprocess.run([require("skopeo"), "inspect", "--raw", "--tls-verify=false",
                                         f"{repo}:{fallback}"], capture_output=True, check=True).stdout)
        assert {m["digest"] for m in idx["manifests"]} == {sbom["digest"], sig["digest"]}
    else:  # the registry has the API: no tag is written
        assert fallback not in tags(repo)

    ocikit("artifact", "pull", f"{repo}@{sbom['digest']}", str(tmp_path / "out"))
    assert open(tmp_path / "out" / "sbom.spdx.json").read() == open(files[0]).read()
    tree = json.loads(ocikit("--format", "json", "tree", "--referrers", f"{repo}:v1").stdout)
    assert {r["digest"] for r in tree["referrers"]} == {sbom["digest"], sig["digest"]}


@pytest.mark.parametrize("src_kind,dst_kind", [("docker-registry", "ocikit-serve"),
                                               ("ocikit-serve", "docker-registry")])
def test_copy_referrers_between_registries(servers, src_kind, dst_kind, source, files, tmp_path) -> None:
    src = f"docker://{servers[src_kind]}/cr/{src_kind}"
    dst = f"docker://{servers[dst_kind]}/cr/from-{src_kind}"
    digest = json.loads(ocikit("--format", "json", "copy", "--all", f"oci:{source}:multi", f"{src}:v1").stdout)["digest"]
    sbom = push(src, files[0], "--artifact-type", SBOM, "--subject", "v1")
    sig = push(src, files[1], "--artifact-type", SIG, "--subject", sbom["digest"])

    res = json.loads(ocikit("--format", "json", "copy", "--all", "--referrers", f"{src}:v1", f"{dst}:v1").stdout)
    assert res["digest"] == digest and {sbom["digest"], sig["digest"]} <= set(res["manifests"])
    at_dst = referrers(f"{dst}:v1")
    assert at_dst["source"] == VIA[dst_kind]
    assert [r["digest"] for r in at_dst["referrers"]] == [sbom["digest"]]
    assert [r["digest"] for r in referrers(f"{dst}@{sbom['digest']}")["referrers"]] == [sig["digest"]]
    # and down to a layout, where they become index.json entries found by scanning
    ocikit("copy", "--all", "--referrers", f"{dst}:v1", f"oci:{tmp_path / 'lay'}:v1")
    lay = referrers(f"oci:{tmp_path / 'lay'}:v1")
    assert lay["source"] == "layout" and [r["digest"] for r in lay["referrers"]] == [sbom["digest"]]
    assert OCILayout(str(tmp_path / "lay")).validate() == []
    # a plain copy carries them too (referrers are signatures, SBOMs: see docs/trust.md);
    # --remove-signatures leaves them behind
    ocikit("copy", "--all", f"{src}:v1", f"{dst}-plain:v1")
    assert [r["digest"] for r in referrers(f"{dst}-plain:v1")["referrers"]] == [sbom["digest"]]
    ocikit("copy", "--all", "--remove-signatures", f"{src}:v1", f"{dst}-bare:v1")
    assert referrers(f"{dst}-bare:v1")["referrers"] == []


def test_bad_artifact_input_on_a_registry(servers, files) -> None:
    repo = f"docker://{servers['docker-registry']}/art/bad"
    p = ocikit("artifact", "push", repo, files[0], "--artifact-type", SBOM, "--subject", "nope", check=False)
    assert p.returncode == 1 and p.stderr.decode() == f"ocikit: error: {repo}: manifest nope: HTTP 404 Not Found\n"
    p = ocikit("artifact", "push", repo, files[0], "--artifact-type", SBOM, check=False)
    assert p.returncode != 0 and "name a tag" in p.stderr.decode()
    p = ocikit("referrers", f"{repo}:missing", check=False)
    assert p.returncode == 1 and p.stderr.decode() == f"ocikit: error: {repo}: manifest missing: HTTP 404 Not Found\n"

"""``ocikit build``: images from directories and tarballs, checked with real peers.

oci-image-tool validates, umoci unpacks to the source tree, skopeo carries the image through
Debian's docker-registry digest-exact, and building twice (even from touched, chowned copies)
gives the same digest.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ocikit.transports.layout import OCILayout

from helpers.cli import invoke, run_ocikit
from helpers.images import digest_of, image_config, manifest
from helpers.peers import oci_image_tool_validate, skopeo, skopeo_raw
from helpers.trees import diff_snapshots, disturb, make_tree, ocikit_unpack, snapshot, umoci_unpack, write

pytestmark = pytest.mark.peer


def test_build_from_scratch_validates_unpacks_and_reproduces(tmp_path, ocikit, peer):
    peer("umoci")
    src = make_tree(str(tmp_path / "src"))
    out = str(tmp_path / "out")
    flags = ["--entrypoint", '["/bin/tool", "--serve"]', "--cmd", "-v 2", "--env", "A=1", "--env", "PATH=/bin",
             "--workdir", "/srv", "--user", "1000:1000", "--label", "org.example=yes", "--expose", "8080",
             "--expose", "53/udp", "--annotation", "org.opencontainers.image.title=demo"]
    ocikit("build", "-o", f"oci:{out}:v1", src, *flags)
    oci_image_tool_validate(out, "v1")
    rootfs = umoci_unpack(out, "v1", str(tmp_path / "bundle"))
    assert diff_snapshots(snapshot(src), snapshot(rootfs)) == []
    ours = ocikit_unpack(f"oci:{out}:v1", str(tmp_path / "ours"))
    assert diff_snapshots(snapshot(src), snapshot(ours)) == []
    with open(tmp_path / "bundle" / "config.json") as f:
        runtime = json.load(f)
    assert runtime["process"]["args"] == ["/bin/tool", "--serve", "-v", "2"]
    assert "A=1" in runtime["process"]["env"] and runtime["process"]["cwd"] == "/srv"
    assert runtime["process"]["user"]["uid"] == 1000
    cfg = image_config(out, "v1")
    assert cfg["created"] == "1970-01-01T00:00:00Z"
    assert cfg["config"]["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["config"]["Labels"] == {"org.example": "yes"}
    assert [h.get("empty_layer", False) for h in cfg["history"]] == [False, True]
    assert manifest(out, "v1")["annotations"] == {"org.opencontainers.image.title": "demo"}

    # same inputs, another day, other owners and mtimes: same digest
    copy = make_tree(str(tmp_path / "copy"))
    disturb(copy)
    out2 = str(tmp_path / "out2")
    ocikit("build", "-o", f"oci:{out2}:v1", copy, *flags)
    assert digest_of(out2, "v1") == digest_of(out, "v1")
    # SOURCE_DATE_EPOCH moves created and the mtimes, so the digest
    run_ocikit("build", "-o", f"oci:{out2}:epoch", src, *flags, env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert image_config(out2, "epoch")["created"] == "2023-11-14T22:13:20Z"
    assert digest_of(out2, "epoch") != digest_of(out, "v1")


def test_build_on_a_base_appends_layers_and_history(tmp_path, ocikit, peer):
    peer("umoci")
    base_tree = make_tree(str(tmp_path / "base"))
    add = str(tmp_path / "add")
    write(f"{add}/etc/hostname", "replaced\n")
    write(f"{add}/opt/app/run.sh", "#!/bin/sh\necho hi\n", 0o755)
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:base", base_tree, "--env", "PATH=/usr/bin", "--cmd", "sh")
    ocikit("build", "-o", f"oci:{lay}:app", "--from", f"oci:{lay}:base", add, "--env", "PATH=/opt/app",
           "--env", "MODE=prod")
    oci_image_tool_validate(lay, "app")
    base_m, app_m = manifest(lay, "base"), manifest(lay, "app")
    assert app_m["layers"][0] == base_m["layers"][0]
    assert app_m["annotations"]["org.opencontainers.image.base.digest"] == digest_of(lay, "base")
    cfg = image_config(lay, "app")
    assert len(cfg["rootfs"]["diff_ids"]) == 2
    assert cfg["config"]["Env"] == ["PATH=/opt/app", "MODE=prod"]   # replaced in place, then appended
    assert cfg["config"]["Cmd"] == ["sh"]
    assert len([h for h in cfg["history"] if not h.get("empty_layer")]) == 2
    rootfs = umoci_unpack(lay, "app", str(tmp_path / "bundle"))
    expected = str(tmp_path / "expected")
    subprocess.run(["cp", "-a", base_tree, expected], check=True)
    os.unlink(f"{expected}/etc/hostname")   # replaced by the layer's (without the xattr)
    subprocess.run(["cp", "-a", f"{add}/.", expected], check=True)
    assert diff_snapshots(snapshot(expected), snapshot(rootfs)) == []


def test_zstd_layers(tmp_path, ocikit):
    """oci-image-tool 1.0.0-rc1 and umoci 0.4.7 predate zstd: GNU tar + zstd(1) read the layer."""
    src = make_tree(str(tmp_path / "src"), devices=False)
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:z", src, "--compression", "zstd")
    layer = manifest(lay, "z")["layers"][0]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    out = str(tmp_path / "x")
    os.makedirs(out)
    subprocess.run(f"zstd -dc {OCILayout(lay).blob_path(layer['digest'])} | tar -xpf - --xattrs "
                   f"--xattrs-include='user.*' -C {out}", shell=True, check=True)
    assert diff_snapshots(snapshot(src), snapshot(out)) == []
    ours = ocikit_unpack(f"oci:{lay}:z", str(tmp_path / "ours"))
    assert diff_snapshots(snapshot(src), snapshot(ours)) == []


def test_tarball_layers_kept_as_they_are(tmp_path, ocikit, peer):
    peer("umoci")
    src = str(tmp_path / "src")
    write(f"{src}/hello.txt", "hello\n")
    write(f"{src}/sub/x", "x\n")
    tgz = str(tmp_path / "l.tar.gz")
    plain = str(tmp_path / "l2.tar")
    subprocess.run(["tar", "-czf", tgz, "-C", src, "hello.txt"], check=True)
    subprocess.run(["tar", "-cf", plain, "-C", src, "sub"], check=True)
    lay = str(tmp_path / "lay")
    out = json.loads(ocikit("build", "--format", "json", "-o", f"oci:{lay}:t", tgz, plain).stdout)
    assert out["digest"] == digest_of(lay, "t") and len(out["images"][0]["layers"]) == 2
    oci_image_tool_validate(lay, "t")
    layers = manifest(lay, "t")["layers"]
    import hashlib
    with open(tgz, "rb") as f:
        assert layers[0]["digest"] == "sha256:" + hashlib.sha256(f.read()).hexdigest()
    assert layers[1]["mediaType"].endswith("+gzip")   # a plain tar is compressed
    with open(plain, "rb") as f:
        assert image_config(lay, "t")["rootfs"]["diff_ids"][1] == "sha256:" + hashlib.sha256(f.read()).hexdigest()
    rootfs = umoci_unpack(lay, "t", str(tmp_path / "b"))
    assert open(f"{rootfs}/hello.txt").read() == "hello\n" and open(f"{rootfs}/sub/x").read() == "x\n"


def test_multi_platform_build_and_registry_roundtrip(tmp_path, ocikit, peer, registry):
    peer("skopeo")
    src = make_tree(str(tmp_path / "src"), devices=False)
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:multi", src, "--platform", "linux/amd64,linux/arm64")
    idx = json.loads(OCILayout(lay).get_manifest_sync("multi").raw)
    assert idx["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["platform"]["architecture"] for m in idx["manifests"]] == ["amd64", "arm64"]
    ocikit("build", "-o", f"oci:{lay}:single", src, "--cmd", "x")
    for tag, all_ in (("single", []), ("multi", ["--all"])):
        dest = f"docker://{registry.host}/built/{tag}:{tag}"
        skopeo("copy", "-q", *all_, "--dest-tls-verify=false", f"oci:{lay}:{tag}", dest)
        back = str(tmp_path / f"back-{tag}")
        skopeo("copy", "-q", *all_, "--src-tls-verify=false", dest, f"oci:{back}:{tag}")
        assert digest_of(back, tag) == digest_of(lay, tag)
    oci_image_tool_validate(str(tmp_path / "back-single"), "single")

    # straight to the registry through ocikit's own transport: the same bytes as in the layout
    reg = f"docker://{registry.host}/direct"
    ocikit("build", "-o", f"{reg}:v1", src, "--cmd", "x")
    assert skopeo_raw(f"{reg}:v1") == OCILayout(lay).get_manifest_sync("single").raw
    # a base in the registry, the result in the registry, compared with the layout's
    ocikit("append", f"{reg}:v1", src, "-o", f"{reg}:v2", "--env", "X=1")
    ocikit("append", f"oci:{lay}:single", src, "-o", f"oci:{lay}:v2", "--env", "X=1")
    d = json.loads(ocikit("--format", "json", "diff", f"{reg}:v2", f"oci:{lay}:v2").stdout)
    # the same config and blobs; only the manifests' base.name annotation tells them apart
    assert d["config"] == [] and all(r["sameBlob"] for r in d["layers"]["a"] + d["layers"]["b"])
    m = json.loads(skopeo_raw(f"{reg}:v2"))
    assert m["annotations"]["org.opencontainers.image.base.name"] == f"{registry.host}/direct:v1"


def test_build_to_other_transports(tmp_path, ocikit, peer):
    peer("skopeo")
    src = str(tmp_path / "src")
    write(f"{src}/a", "a\n")
    lay = str(tmp_path / "lay")
    ocikit("build", "-o", f"oci:{lay}:ref", src)
    arch = str(tmp_path / "img.tar")
    ocikit("build", "-o", f"oci-archive:{arch}:ref", src)
    out = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{arch}:ref"], check=True,
                         capture_output=True).stdout
    assert OCILayout(lay).get_manifest_sync("ref").raw == out


@pytest.fixture(scope="module")
def small_base(tmp_path_factory):
    d = tmp_path_factory.mktemp("base")
    src = str(d / "src")
    write(f"{src}/a", "a\n")
    lay = str(d / "lay")
    invoke("build", "-o", f"oci:{lay}:base", src)
    write(str(d / "nottar"), "just text, long enough to fill a header? no." * 20)
    return d, src, lay


@pytest.mark.parametrize("args, message", [
    (["MISSING"], "MISSING: no such file or directory"),
    (["SRC", "--env", "NOEQUALS"], "bad --env 'NOEQUALS'"),
    (["SRC", "--env", "1X=2"], "bad --env"),
    (["SRC", "--expose", "http"], "bad --expose 'http'"),
    (["SRC", "--expose", "70000"], "bad --expose"),
    (["SRC", "--entrypoint", "[1, 2]"], "bad --entrypoint"),
    (["SRC", "--cmd", "'unclosed"], "bad --cmd"),
    (["SRC", "--label", "nokey"], "bad --label"),
    (["SRC", "--from", "oci:NOLAYOUT:x"], "no such OCI layout"),
    (["SRC", "--from", "oci:LAY:nosuchtag"], "no tag 'nosuchtag'"),
    (["SRC", "--from", "oci:LAY:base", "--platform", "linux/s390x"], "not linux/s390x"),
    (["SRC", "--from", "nonsense-ref"], "invalid image location"),
    (["NOTTAR"], "not a layer tarball"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, small_base, args, message):
    d, src, lay = small_base
    subst = {"SRC": src, "MISSING": str(d / "missing"), "NOTTAR": str(d / "nottar")}
    args = [subst.get(a, a.replace("NOLAYOUT", str(d / "nolayout")).replace("LAY", lay)) for a in args]
    target = str(tmp_path / "target")
    p = invoke("build", "-o", f"oci:{target}:x", *args, check=False)
    err = p.stderr.decode()
    assert p.returncode in (1, 2), (p.returncode, err)   # 2: usage errors
    assert err.startswith("ocikit: error: ") and err.count("\n") == 1, err
    assert message.replace("MISSING", str(d / "missing")) in err
    if os.path.exists(target):   # a layout may have been created, but holds no image
        assert OCILayout(target).entries() == []

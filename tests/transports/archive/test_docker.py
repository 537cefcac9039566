"""docker-archive: skopeo-identical digests both ways, several tags, podman load, hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from ocikit import CopyOptions, copy
from ocikit.core.digest import Digest
from ocikit.core.errors import ArchiveInvalid, ManifestUnknown, Unsupported, UsageError
from ocikit.testing import write_image, write_index
from ocikit.testing.images import LayerSpec
from ocikit.transports.archive.docker import DockerArchiveReader
from ocikit.transports.layout import OCILayout

from helpers.cli import expect_failure
from helpers.peers import skopeo, skopeo_digest, skopeo_raw

pytestmark = pytest.mark.peer




def ocikit_digest(ocikit, ref: str) -> str:
    return json.loads(ocikit("inspect", ref).stdout)["Digest"]


@pytest.fixture
def src(tmp_path) -> OCILayout:
    lay = OCILayout(str(tmp_path / "src"), create=True)
    write_image(lay, "one", layers=(LayerSpec(random_bytes=3000), LayerSpec(random_bytes=2000, compression="none"),
                                    LayerSpec(random_bytes=1000, compression="zstd")))
    write_image(lay, "two", seed=7, docker=True)
    write_image(lay, "three", seed=9, layers=(LayerSpec(random_bytes=1500), LayerSpec(random_bytes=500)))
    write_index(lay, "multi", seed=3)
    return lay


def test_ocikit_writes_skopeo_and_podman_read(tmp_path, src, peer, ocikit):
    peer("skopeo")
    arch = tmp_path / "d.tar"
    r1 = copy(f"oci:{src.path}:one", f"docker-archive:{arch}:example.com/app:v1")
    assert r1.digest_changed  # layers are stored uncompressed: a new manifest, reported
    assert r1.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    r2 = copy(f"oci:{src.path}:two", f"docker-archive:{arch}:app:v2")  # added to the same archive
    for ref, r in ((f"docker-archive:{arch}:example.com/app:v1", r1), (f"docker-archive:{arch}:app:v2", r2)):
        assert skopeo_digest(ref) == r.digest == ocikit_digest(ocikit, ref)
    assert skopeo_digest(f"docker-archive:{arch}:@1") == r2.digest
    with tarfile.open(arch) as tf:
        man = json.loads(tf.extractfile("manifest.json").read())
        assert [m["RepoTags"] for m in man] == [["example.com/app:v1"], ["docker.io/library/app:v2"]]
        for layer in man[0]["Layers"]:  # stored as plain tar, named by diff ID
            data = tf.extractfile(layer).read()
            assert f"sha256:{layer[:-4]}" == Digest.of(data)
            tarfile.open(fileobj=io.BytesIO(data)).getmembers()
        repos = json.loads(tf.extractfile("repositories").read())
        assert set(repos) == {"example.com/app", "docker.io/library/app"}
    # skopeo takes an image out of it; the config (image ID) is the source's
    skopeo("copy", f"docker-archive:{arch}:app:v2", f"oci:{tmp_path}/sk:v2")
    assert skopeo_raw(f"oci:{tmp_path}/sk:v2", "--config") == \
        ocikit("inspect", "--config", f"oci:{src.path}:two").stdout
    assert json.loads(ocikit("inspect", f"oci:{tmp_path}/sk:v2").stdout)["ImageID"] == \
        json.loads(ocikit("inspect", f"oci:{src.path}:two").stdout)["ImageID"]
    podman = shutil.which("podman")
    if podman:
        root = tmp_path / "pod"
        base = [podman, "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs"]
        p = subprocess.run([*base, "load", "-i", str(arch)], capture_output=True, text=True, timeout=120)
        if p.returncode == 0:
            p = subprocess.run([*base, "images", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"],
                               capture_output=True, text=True, timeout=60)
            got = dict(line.split() for line in p.stdout.splitlines())
            assert got["example.com/app:v1"] == r1.digest
            assert got["docker.io/library/app:v2"] == r2.digest


def test_skopeo_writes_ocikit_reads_with_identical_digests(tmp_path, src, peer, ocikit):
    peer("skopeo")
    arch = tmp_path / "sk.tar"
    skopeo("copy", f"oci:{src.path}:three", f"docker-archive:{arch}:foo/bar:v1")
    want = skopeo_digest(f"docker-archive:{arch}")
    for ref in ("", ":foo/bar:v1", ":docker.io/foo/bar:v1", ":@0"):
        assert ocikit_digest(ocikit, f"docker-archive:{arch}{ref}") == want
    assert ocikit("inspect", "--raw", f"docker-archive:{arch}").stdout == \
        skopeo_raw(f"docker-archive:{arch}")
    r = copy(f"docker-archive:{arch}", f"oci:{tmp_path}/l:x")
    assert r.digest == want
    assert OCILayout(str(tmp_path / "l")).validate() == []
    # and ocikit writes it again as a docker-archive: same digest skopeo gave
    r2 = copy(f"oci:{tmp_path}/l:x", f"docker-archive:{tmp_path}/again.tar:foo/bar:v1")
    assert r2.digest == want and not r2.digest_changed
    assert skopeo_digest(f"docker-archive:{tmp_path}/again.tar") == want


def test_compressed_layers_in_an_archive_match_skopeo(tmp_path, src, peer, ocikit):
    """docker-archives from other tools may hold gzip layers: sizes are the uncompressed ones, as in skopeo."""
    peer("skopeo")
    plain = tmp_path / "p.tar"
    copy(f"oci:{src.path}:two", f"docker-archive:{plain}:x:y")
    gz = tmp_path / "gz.tar"
    with tarfile.open(plain) as tin, tarfile.open(gz, "w") as tout:
        for ti in tin.getmembers():
            data = tin.extractfile(ti).read() if ti.isreg() else None
            if data is not None and ti.name.endswith(".tar"):
                data = gzip.compress(data)
            if data is not None:
                ti.size = len(data)
                tout.addfile(ti, io.BytesIO(data))
            else:
                tout.addfile(ti)
    want = skopeo_digest(f"docker-archive:{gz}")
    assert ocikit_digest(ocikit, f"docker-archive:{gz}") == want == skopeo_digest(f"docker-archive:{plain}")
    r = copy(f"docker-archive:{gz}", f"oci:{tmp_path}/l:x")  # served decompressed, verified against diff IDs
    assert r.digest == want


def test_two_images_need_a_reference(tmp_path, src):
    arch = tmp_path / "d.tar"
    copy(f"oci:{src.path}:one", f"docker-archive:{arch}:a:1")
    copy(f"oci:{src.path}:two", f"docker-archive:{arch}:b:2")
    copy(f"oci:{src.path}:two", f"docker-archive:{arch}:c:3")  # same image: one item, two tags
    r = DockerArchiveReader(str(arch))
    try:
        assert [it.repo_tags for it in r.items] == [["docker.io/library/a:1"],
                                                    ["docker.io/library/b:2", "docker.io/library/c:3"]]
        with pytest.raises(ManifestUnknown, match="2 images"):
            r.find_image(None)
        with pytest.raises(ManifestUnknown, match="@5"):
            r.find_image("@5")
        with pytest.raises(ManifestUnknown, match="no image tagged"):
            r.find_image("a:2")
        assert r.find_image("c:3").digest == r.find_image("@1").digest
    finally:
        r.tar.close()
    copy(f"oci:{src.path}:two", f"docker-archive:{arch}:a:1")  # the tag moves; image one goes with it
    r = DockerArchiveReader(str(arch))
    try:
        assert len(r.items) == 1
    finally:
        r.tar.close()


def test_refusals(tmp_path, src):
    arch = tmp_path / "d.tar"
    with pytest.raises(Unsupported, match="single images"):
        copy(f"oci:{src.path}:multi", f"docker-archive:{arch}:m:1", CopyOptions(all_platforms=True))
    with pytest.raises(Unsupported, match="preserve-digests"):
        copy(f"oci:{src.path}:two", f"docker-archive:{arch}:m:1", CopyOptions(preserve_digests=True))
    with pytest.raises(UsageError, match="only"):
        copy(f"oci:{src.path}:two", f"docker-archive:{arch}:m:1", CopyOptions(manifest_format="oci"))
    with pytest.raises(UsageError, match="@N"):
        copy(f"oci:{src.path}:two", f"docker-archive:{arch}:@0")
    assert not arch.exists()
    assert [n for n in os.listdir(tmp_path) if "ocikit-" in n] == []


def _rewrite(src_tar, dst_tar, *, drop=(), replace=None, extra=()) -> None:
    replace = replace or {}
    with tarfile.open(src_tar) as tin, tarfile.open(dst_tar, "w") as tout:
        for ti in tin.getmembers():
            if ti.name in drop:
                continue
            data = tin.extractfile(ti).read() if ti.isreg() else None
            if ti.name in replace:
                data = replace[ti.name](data)
            if data is not None:
                ti.size = len(data)
                tout.addfile(ti, io.BytesIO(data))
            else:
                tout.addfile(ti)
        for name, data in extra:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tout.addfile(ti, io.BytesIO(data))


MALFORMED_DOCKER = {   # case -> the one-line error it must give
    "no-manifest": r"bad\.tar: no manifest\.json; not a docker save archive$",
    "bad-manifest": r"bad\.tar/manifest\.json: \[0\]\.Config: expected a file name$",
    "missing-layer": r"bad\.tar: layer '[0-9a-f]{64}\.tar' is missing from the archive$",
    "wrong-layer": r"^ocikit: error: blob: digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:",
    "count": r"bad\.tar: image 0 lists 2 layers, its config 1 diff IDs$",
    "traversal": r"bad\.tar: member '\.\./evil' escapes the archive \(path traversal\)$",
    "traversal-ref": r"bad\.tar: layer '\.\./\.\./etc/passwd' is missing from the archive$",
}


@pytest.mark.parametrize("case", list(MALFORMED_DOCKER))
def test_malformed_docker_archives(tmp_path, src, case):
    good = tmp_path / "good.tar"
    copy(f"oci:{src.path}:two", f"docker-archive:{good}:x:y")
    with tarfile.open(good) as tf:
        man = json.loads(tf.extractfile("manifest.json").read())
    layer = man[0]["Layers"][0]
    bad = tmp_path / "bad.tar"
    if case == "no-manifest":
        _rewrite(good, bad, drop=("manifest.json",))
    elif case == "bad-manifest":
        _rewrite(good, bad, replace={"manifest.json": lambda d: b'[{"Config": 3}]'})
    elif case == "missing-layer":
        _rewrite(good, bad, drop=(layer,))
    elif case == "wrong-layer":
        _rewrite(good, bad, replace={layer: lambda d: d[:-1024] + b"\x01" + d[-1023:]})
    elif case == "count":
        _rewrite(good, bad, replace={"manifest.json": lambda d: json.dumps(
            [{**man[0], "Layers": man[0]["Layers"] * 2}]).encode()})
    elif case == "traversal":
        _rewrite(good, bad, extra=(("../evil", b"x"),))
    else:
        _rewrite(good, bad, replace={"manifest.json": lambda d: json.dumps(
            [{**man[0], "Layers": ["../../etc/passwd"]}]).encode()})
    p = expect_failure("copy", f"docker-archive:{bad}", f"oci:{tmp_path}/out:x", match=MALFORMED_DOCKER[case],
                       code=1)
    err = p.stderr
    if case == "wrong-layer":
        assert "digest" in err and man[0]["Layers"][0][:12] in err
        out = OCILayout(str(tmp_path / "out"))
        assert out.tags() == []  # nothing tagged after a failed verification
        return
    with pytest.raises(ArchiveInvalid, match=MALFORMED_DOCKER[case].replace("^ocikit: error: ", "")):
        r = DockerArchiveReader(str(bad))
        try:
            r.find_image(None)
        finally:
            r.tar.close()


def test_registry_to_archives(tmp_path, src, registry, peer, ocikit):
    """Blobs streamed from a registry (verified by the archive writers) into both archive kinds."""
    peer("skopeo")
    ref = f"docker://{registry.host}/arch/one:v1"
    pushed = copy(f"oci:{src.path}:three", ref)
    d = copy(ref, f"docker-archive:{tmp_path}/r.tar:arch/one:v1")
    assert skopeo_digest(f"docker-archive:{tmp_path}/r.tar") == d.digest != pushed.digest
    o = copy(ref, f"oci-archive:{tmp_path}/r-oci.tar:v1")
    assert o.digest == pushed.digest == skopeo_digest(f"oci-archive:{tmp_path}/r-oci.tar:v1")
    assert [n for n in os.listdir(tmp_path) if "ocikit-" in n] == []

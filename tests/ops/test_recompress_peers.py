"""``copy --dest-compress-format``: a 3-platform image recompressed to zstd (and back to gzip).

The recompressed copy in ``ocikit serve`` is pulled by skopeo (each platform); its zstd layers
decompress to the original diff_ids and unpack (ocikit: Debian's umoci 0.4 reads no zstd) to
the tree umoci unpacks from the original, and recompressed back to gzip umoci unpacks it too; the configs (so the diff_ids) are unchanged; every
changed digest is reported old -> new; ``--preserve-digests`` refuses recompression.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import zstandard

from ocikit.testing import write_index
from ocikit.testing.images import FileEntry, LayerSpec
from ocikit.transports.layout import OCILayout

from helpers.cli import expect_failure, run_json
from helpers.peers import require, sh
from helpers.servers import start_ocikit_serve
from helpers.trees import diff_snapshots, ocikit_unpack, snapshot, umoci_unpack

pytestmark = pytest.mark.peer
ARCHES = {"amd64": (), "arm64": ("--override-variant", "v8"), "ppc64le": ()}
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@pytest.fixture
def multi(tmp_path):
    lay = OCILayout(str(tmp_path / "src"), create=True)
    layers = (LayerSpec(entries=(FileEntry("etc/app.conf", data=b"answer = 42\n" * 300),
                                 FileEntry("usr/bin/tool", data=os.urandom(20000), mode=0o755))),
              LayerSpec(random_bytes=4096))
    idx = write_index(lay, "multi", layers=layers, docker=True)  # Docker types: rewritten as OCI ones
    return lay, idx


def per_platform(skopeo: str, ref: str, dest: str, arch: str, *flags: str) -> None:
    sh(skopeo, "copy", "--override-os", "linux", "--override-arch", arch, *ARCHES[arch], *flags, ref, f"oci:{dest}:{arch}")


def manifests_of(layout: str, tag: str) -> dict:
    lay = OCILayout(layout)
    return json.loads(lay.get_manifest_sync(tag).raw)


def test_zstd_recompressed_copy_unpacks_to_the_same_tree_and_skopeo_pulls_it(tmp_path, multi):
    skopeo = require("skopeo")
    require("umoci")
    lay, idx = multi
    with start_ocikit_serve(str(tmp_path)) as reg:
        ref = f"docker://{reg.host}/re/multi:z"
        expect_failure("copy", "--all", "--dest-compress-format", "zstd", "--preserve-digests",
                       f"oci:{lay.path}:multi", ref, "--dest-tls-verify=false", match="--preserve-digests refuses",
                       code=2)
        rc, rep = run_json("copy", "--all", "--dest-compress-format", "zstd", "--dest-compress-level", "5",
                           f"oci:{lay.path}:multi", ref, "--dest-tls-verify=false")
        assert rc == 0 and rep["sourceDigest"] == str(idx.digest) and rep["digest"] != str(idx.digest)
        changes = rep["recompressed"]
        assert changes[str(idx.digest)] == rep["digest"]  # the index changed with its children
        src_index = json.loads(lay.get_manifest_sync("multi").raw)
        children = [json.loads(lay.get_manifest_sync(c["digest"]).raw) for c in src_index["manifests"]]
        configs = {m["config"]["digest"] for m in children}
        layers = {x["digest"] for m in children for x in m["layers"]}
        assert len(configs) == 3 and not configs & set(changes)  # the configs (their diff_ids) stay byte-exact
        # the index, its 3 manifests and every unique layer (the first is the same on all platforms)
        assert set(changes) == {str(idx.digest), *(c["digest"] for c in src_index["manifests"]), *layers}
        assert len(layers) == 4
        orig_ref = f"docker://{reg.host}/re/orig:multi"  # the original, Docker types and all, as a registry serves it
        run_json("copy", "--all", f"oci:{lay.path}:multi", orig_ref, "--dest-tls-verify=false")
        for arch in ARCHES:
            per_platform(skopeo, orig_ref, str(tmp_path / "orig"), arch, "--src-tls-verify=false")
            per_platform(skopeo, ref, str(tmp_path / "pulled"), arch, "--src-tls-verify=false")
            orig = manifests_of(str(tmp_path / "orig"), arch)
            got = manifests_of(str(tmp_path / "pulled"), arch)
            # every layer zstd now, each change reported
            assert [x["mediaType"] for x in got["layers"]] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
            for old, new in zip(orig["layers"], got["layers"]):
                assert changes[old["digest"]] == new["digest"]
                with open(os.path.join(tmp_path / "pulled", "blobs", "sha256", new["digest"][7:]), "rb") as f:
                    assert f.read(4) == ZSTD_MAGIC
            # each zstd layer decompresses to exactly its diff_id (the uncompressed tar is unchanged)
            with open(os.path.join(tmp_path / "pulled", "blobs", "sha256", got["config"]["digest"][7:]), "rb") as f:
                cfg = json.load(f)
            with open(os.path.join(tmp_path / "orig", "blobs", "sha256", orig["config"]["digest"][7:]), "rb") as f:
                assert json.load(f)["rootfs"]["diff_ids"] == cfg["rootfs"]["diff_ids"]
            for layer, diff_id in zip(got["layers"], cfg["rootfs"]["diff_ids"]):
                path = os.path.join(tmp_path / "pulled", "blobs", "sha256", layer["digest"][7:])
                with open(path, "rb") as f:
                    plain = zstandard.ZstdDecompressor().stream_reader(f).read()
                assert "sha256:" + hashlib.sha256(plain).hexdigest() == diff_id
            # umoci unpacks the original; the zstd copy (this umoci reads no zstd) unpacks with
            # ocikit to the same tree
            a = umoci_unpack(str(tmp_path / "orig"), arch, str(tmp_path / f"u-orig-{arch}"))
            b = ocikit_unpack(f"oci:{tmp_path / 'pulled'}:{arch}", str(tmp_path / f"u-new-{arch}"))
            assert diff_snapshots(snapshot(a), snapshot(b)) == []
        # and back to gzip: the same tree again, the layer digests new once more
        back = f"docker://{reg.host}/re/multi:gz"
        rc, rep2 = run_json("copy", "--all", "--dest-compress-format", "gzip", ref, back,
                            "--src-tls-verify=false", "--dest-tls-verify=false")
        assert rc == 0 and set(rep2["recompressed"]).isdisjoint(changes)
        per_platform(skopeo, back, str(tmp_path / "gz"), "amd64", "--src-tls-verify=false")
        c = umoci_unpack(str(tmp_path / "gz"), "amd64", str(tmp_path / "u-gz"))  # gzip again: umoci reads it
        assert diff_snapshots(snapshot(str(tmp_path / "u-orig-amd64" / "rootfs")), snapshot(c)) == []


def test_compress_level_out_of_range_is_a_usage_error(tmp_path, multi):
    lay, _ = multi
    expect_failure("copy", "--all", "--dest-compress-format", "gzip", "--dest-compress-level", "12",
                   f"oci:{lay.path}:multi", f"oci:{tmp_path / 'out'}:x", match="gzip takes 0..9", code=2)
    expect_failure("copy", "--dest-compress-level", "3", f"oci:{lay.path}:multi", f"oci:{tmp_path / 'out'}:x",
                   match="needs --dest-compress-format", code=2)

"""The command line, run as a user runs it (subprocesses): versions, help, errors, JSON output."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

import ocikit
from ocikit.model import ImageIndex, ImageManifest, parse_manifest
from ocikit.transports.layout import OCILayout

from helpers.cli import OCIKIT


def one_line_error(p, code: int = 1) -> str:  # type: ignore[no-untyped-def]
    err = p.stderr.decode()
    assert p.returncode == code, (p.returncode, err)
    assert err.count("\n") == 1 and err.startswith("ocikit: error: "), err
    assert "Traceback" not in err
    return err


def test_version_and_help(ocikit) -> None:  # type: ignore[no-untyped-def]
    p = ocikit("--version")
    assert p.stdout.decode().strip() == f"ocikit, version {ocikit_version()}"
    h = ocikit("--help").stdout.decode()
    for cmd in ("copy", "inspect", "tree", "manifest-digest", "layout"):
        assert cmd in h
    assert "--debug" in h and "--format" in h
    assert "ls" in ocikit("layout", "--help").stdout.decode()


def ocikit_version() -> str:
    return ocikit.__version__


def test_error_is_one_line_and_debug_shows_traceback(multi_layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    p = ocikit("inspect", f"oci:{multi_layout.path}:nope", check=False)
    assert "no tag 'nope'" in one_line_error(p)
    assert p.stdout == b""
    p = ocikit("--debug", "inspect", f"oci:{multi_layout.path}:nope", check=False)
    assert p.returncode == 1
    assert "Traceback" in p.stderr.decode() and "ManifestUnknown" in p.stderr.decode()


@pytest.mark.parametrize("args, fragment", [
    (["inspect", "oci:/nonexistent/ocikit-test:x"], "no such OCI layout directory"),
    (["inspect", "docker://NGINX"], "must be lowercase"),
    (["copy", "oci:/nonexistent/ocikit-test:x", "dir:/tmp/x"], "invalid image location 'dir:/tmp/x'"),
    (["copy", "--platform", "linux//x", "oci:/a:b", "oci:/c:d"], "invalid platform"),
])
def test_errors(args: list[str], fragment: str, ocikit) -> None:  # type: ignore[no-untyped-def]
    assert fragment in one_line_error(ocikit(*args, check=False))


@pytest.mark.parametrize("args", [
    ["copy"],
    ["--format", "yaml", "layout", "ls", "."],
    ["copy", "--jobs", "0", "oci:/a:b", "oci:/c:d"],
    ["no-such-command"],
])
def test_usage_errors_exit_2(args: list[str], ocikit) -> None:  # type: ignore[no-untyped-def]
    p = ocikit(*args, check=False)
    assert "--help" in one_line_error(p, 2)


def test_ocikit_usage_error_exits_2(multi_layout: OCILayout, tmp_path, ocikit) -> None:  # type: ignore[no-untyped-def]
    p = ocikit("copy", "--all", "--platform", "linux/amd64", f"oci:{multi_layout.path}:multi",
               f"oci:{tmp_path}/B:x", check=False)
    assert "exclude each other" in one_line_error(p, 2)


def test_inspect_fields_raw_and_config(multi_layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    ref = f"oci:{multi_layout.path}:single"
    fields = json.loads(ocikit("inspect", ref).stdout)
    for key in ("Name", "Digest", "RepoTags", "Created", "Architecture", "Os", "Layers", "LayersData", "Env",
                "Labels", "ImageID"):
        assert key in fields
    assert sorted(fields["RepoTags"]) == ["multi", "single"]
    raw = ocikit("inspect", "--raw", ref).stdout
    assert raw == multi_layout.get_manifest_sync("single").raw
    assert fields["Digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    m = parse_manifest(raw)
    assert isinstance(m, ImageManifest)
    assert fields["Layers"] == [str(x.digest) for x in m.layers]
    cfg = ocikit("inspect", "--config", ref).stdout
    assert cfg == open(multi_layout.blob_path(m.config.digest), "rb").read()
    assert fields["ImageID"] == "sha256:" + hashlib.sha256(cfg).hexdigest() == m.config.digest
    assert ocikit("--format", "json", "inspect", ref).stdout == ocikit("inspect", ref).stdout


def test_inspect_index_picks_platform(multi_layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    ref = f"oci:{multi_layout.path}:multi"
    idx = parse_manifest(multi_layout.get_manifest_sync("multi").raw)
    assert isinstance(idx, ImageIndex)
    f = json.loads(ocikit("inspect", "--override-arch", "arm64", ref).stdout)
    assert f["Architecture"] == "arm64" and f["Variant"] == "v8"
    assert f["Digest"] == idx.digest and f["ManifestDigest"] == idx.manifests[1].digest
    assert ocikit("inspect", "--raw", ref).stdout == idx.raw


def test_tree_json_and_text(multi_layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    ref = f"oci:{multi_layout.path}:multi"
    t = json.loads(ocikit("tree", "--format", "json", ref).stdout)
    idx = parse_manifest(multi_layout.get_manifest_sync("multi").raw)
    assert t["digest"] == idx.digest and len(t["manifests"]) == 3
    assert [m["platform"] for m in t["manifests"]] == ["linux/amd64", "linux/arm64/v8", "linux/ppc64le"]
    assert all("config" in m and len(m["layers"]) == 1 for m in t["manifests"])
    text = ocikit("tree", ref).stdout.decode()
    assert "linux/arm64/v8" in text and "config" in text and "layer 0" in text


def test_manifest_digest(multi_layout: OCILayout, tmp_path, ocikit) -> None:  # type: ignore[no-untyped-def]
    raw = multi_layout.get_manifest_sync("multi").raw
    f = tmp_path / "m.json"
    f.write_bytes(raw)
    assert ocikit("manifest-digest", str(f)).stdout.decode().strip() == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert ocikit("manifest-digest", "-", input=raw).stdout.decode().strip() == "sha256:" + hashlib.sha256(raw).hexdigest()
    f.write_bytes(b'{"schemaVersion": 1, "fsLayers": []}')
    assert "schema 1" in one_line_error(ocikit("manifest-digest", str(f), check=False))
    f.write_bytes(raw[:-5])
    assert "not valid JSON" in one_line_error(ocikit("manifest-digest", str(f), check=False))


def test_layout_ls_gc_validate(multi_layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    path = multi_layout.path
    ls = json.loads(ocikit("layout", "ls", "--format", "json", path).stdout)
    assert [e["tag"] for e in ls] == ["multi", "single"]
    assert json.loads(ocikit("--format", "json", "layout", "ls", path).stdout) == ls
    assert "multi\t" in ocikit("layout", "ls", path).stdout.decode()

    stray = multi_layout.put_bytes(b"stray")
    dry = json.loads(ocikit("layout", "gc", "--dry-run", "--format", "json", path).stdout)
    assert dry == {"removed": [str(stray.digest)], "bytesFreed": 5, "kept": dry["kept"], "dryRun": True}
    assert os.path.exists(multi_layout.blob_path(stray.digest))
    out = ocikit("layout", "gc", path).stdout.decode()
    assert f"removed {stray.digest}" in out and not os.path.exists(multi_layout.blob_path(stray.digest))

    assert json.loads(ocikit("layout", "validate", "--format", "json", path).stdout) == {"valid": True, "problems": []}
    assert "valid" in ocikit("layout", "validate", path).stdout.decode()
    m = parse_manifest(multi_layout.get_manifest_sync("single").raw)
    assert isinstance(m, ImageManifest)
    os.unlink(multi_layout.blob_path(m.layers[0].digest))
    p = ocikit("layout", "validate", path, check=False)
    assert f"blob {m.layers[0].digest}" in p.stdout.decode() and "is missing" in p.stdout.decode()
    assert "1 problem(s)" in one_line_error(p)
    p = ocikit("layout", "validate", "--format", "json", path, check=False)
    assert p.returncode == 1 and json.loads(p.stdout)["valid"] is False


def test_malformed_content_in_a_layout_is_one_line(layout: OCILayout, ocikit) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from ocikit.core import mediatypes as mt
    from ocikit.model import build_manifest

    schema1 = b'{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}'
    asyncio.run(layout.put_manifest(schema1, mt.OCI_MANIFEST, "old"))
    cfg = layout.put_bytes(b"\x1f\x8b not json", mt.OCI_CONFIG)
    m = build_manifest(cfg, [])
    asyncio.run(layout.put_manifest(m.raw, m.media_type, "badcfg"))
    assert "schema 1" in one_line_error(ocikit("inspect", f"oci:{layout.path}:old", check=False))
    assert "config: not valid JSON" in one_line_error(ocikit("inspect", f"oci:{layout.path}:badcfg", check=False))
    p = ocikit("layout", "validate", layout.path, check=False)
    assert "2 problem(s)" in one_line_error(p)


def test_a_reader_that_goes_away_is_not_an_error(multi_layout: OCILayout, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`ocikit copy ... | head -1`: a closed pipe ends ocikit quietly (exit 141, as SIGPIPE would)."""
    import subprocess
    p = subprocess.Popen([*OCIKIT, "copy", f"oci:{multi_layout.path}:single",
                          f"oci:{tmp_path}/out:x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader is gone before ocikit prints its report
    err = p.stderr.read().decode()
    assert p.wait(60) == 141, err
    assert err == ""

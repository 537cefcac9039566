"""`ocikit unpack` as a user runs it: text and JSON output, platforms, zstd, rootless, failures."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

from ocikit.layers.rootless import ROOTLESS_XATTR, parse_rootless_payload
from ocikit.ops.unpack import MARKER, aunpack
from ocikit.testing import write_index

from helpers.cli import expect_failure
from helpers.layers import D, F, S, image_from_tars, snapshot, tar_bytes
from helpers.servers import start_ocikit_serve


def _image(tmp_path, **kw) -> str:
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [tar_bytes([D("etc/"), F("etc/os-release", b"ID=test\n"),
                                             F("etc/owned", b"o", uid=12, gid=34), S("lnk", "etc/os-release")]),
                                  tar_bytes([D("etc/"), F("etc/.wh.os-release", b""), F("new", b"n")])], **kw)
    return layout


def test_unpack_text_and_json(tmp_path, ocikit) -> None:
    layout = _image(tmp_path)
    p = ocikit("unpack", f"oci:{layout}:t", str(tmp_path / "a"))
    out = p.stdout.decode()
    assert "Unpacked" in out and "2 layer(s)" in out and "1 whiteouts" in out
    assert sorted(os.listdir(tmp_path / "a")) == ["etc", "lnk", "new"]
    assert not (tmp_path / "a.partial").exists()
    p = ocikit("--format", "json", "unpack", f"oci:{layout}:t", str(tmp_path / "b"))
    doc = json.loads(p.stdout)
    assert doc["rootfs"] == str(tmp_path / "b") and len(doc["layers"]) == 2 and doc["whiteouts"] == 1
    assert snapshot(str(tmp_path / "a")) == snapshot(str(tmp_path / "b"))


def test_unpack_from_a_tls_registry_with_cert_dir_or_tls_verify_false(tmp_path, ocikit, tls_cert) -> None:
    """``--cert-dir`` (a CA named *.crt, as podman reads it) and ``--tls-verify=false`` reach a
    registry serving a self-signed certificate; without either, one line says verification failed."""
    layout = _image(tmp_path)
    certs = tmp_path / "certs.d"
    certs.mkdir()
    shutil.copy(tls_cert[0], certs / "ca.crt")
    with start_ocikit_serve(str(tmp_path), tls=tls_cert) as srv:
        image = f"docker://{srv.host}/unpack/tls:t"
        ocikit("copy", "--dest-cert-dir", str(certs), f"oci:{layout}:t", image)
        expect_failure("unpack", image, str(tmp_path / "refused"), match=r"(?i)certificate")
        assert not (tmp_path / "refused").exists()
        ocikit("unpack", "--cert-dir", str(certs), image, str(tmp_path / "a"))
        ocikit("unpack", "--tls-verify=false", image, str(tmp_path / "b"))
        ocikit("unpack", "--src-cert-dir", str(certs), image, str(tmp_path / "c"))
    local = str(tmp_path / "local")
    ocikit("unpack", f"oci:{layout}:t", local)
    for d in "abc":
        assert snapshot(str(tmp_path / d)) == snapshot(local)


def test_unpack_bundle_cli(tmp_path, ocikit) -> None:
    layout = _image(tmp_path, compression="zstd")
    ocikit("unpack", "--bundle", f"oci:{layout}:t", str(tmp_path / "bundle"))
    cfg = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert cfg["root"]["path"] == "rootfs" and cfg["process"]["args"] == ["/bin/sh"]
    assert (tmp_path / "bundle" / "rootfs" / "new").read_bytes() == b"n"


def test_unpack_rootless_records_owners(tmp_path, ocikit) -> None:
    layout = _image(tmp_path)
    ocikit("unpack", "--rootless", f"oci:{layout}:t", str(tmp_path / "r"))
    st = os.lstat(tmp_path / "r" / "etc" / "owned")
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert parse_rootless_payload(os.getxattr(tmp_path / "r" / "etc" / "owned", ROOTLESS_XATTR)) == (12, 34)
    assert ROOTLESS_XATTR not in os.listxattr(tmp_path / "r" / "new")
    record = json.loads((tmp_path / "r.ocikit-owners.json").read_text())
    assert record["owners"] == {"/etc/owned": {"uid": 12, "gid": 34}}
    ocikit("unpack", "--rootless", "--bundle", f"oci:{layout}:t", str(tmp_path / "b"))
    record = json.loads((tmp_path / "b" / "ocikit-owners.json").read_text())
    assert record["owners"] == {"/etc/owned": {"uid": 12, "gid": 34}}


def test_unpack_platform_from_an_index(tmp_path, ocikit) -> None:
    from ocikit.transports.layout import OCILayout
    lay = OCILayout(str(tmp_path / "multi"), create=True)
    write_index(lay, "m", platforms=("linux/amd64", "linux/arm64/v8"))
    p = ocikit("--format", "json", "unpack", "--platform", "linux/arm64/v8", f"oci:{lay.path}:m", str(tmp_path / "r"))
    doc = json.loads(p.stdout)
    idx = json.loads(open(lay.blob_path(lay.resolve_sync("m").digest)).read())
    arm = [m for m in idx["manifests"] if m["platform"]["architecture"] == "arm64"][0]
    assert doc["manifest"] == arm["digest"]
    assert (tmp_path / "r" / "blob.bin").stat().st_size == 1024


def test_unpack_failure_leaves_no_target_and_a_marked_partial(tmp_path, ocikit) -> None:
    layout = _image(tmp_path, diff_ids=["sha256:" + "0" * 64, "sha256:" + "0" * 64])
    p = ocikit("unpack", "--keep-partial", f"oci:{layout}:t", str(tmp_path / "r"), check=False)
    assert p.returncode != 0
    err = p.stderr.decode().strip()
    assert err.startswith("ocikit: error:") and "diff_id" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()
    marker = json.loads((tmp_path / "r.partial" / MARKER).read_text())
    assert marker["status"] == "incomplete" and "diff_id" in marker["error"]
    # a retry with a good image replaces our own staging directory
    good = _image(tmp_path / "good")
    ocikit("unpack", f"oci:{good}:t", str(tmp_path / "r"))
    assert (tmp_path / "r" / "new").exists() and not (tmp_path / "r.partial").exists()


def test_unpack_refuses_a_non_empty_target(tmp_path, ocikit) -> None:
    layout = _image(tmp_path)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep").write_text("mine")
    p = ocikit("unpack", f"oci:{layout}:t", str(tmp_path / "r"), check=False)
    assert p.returncode == 2 and "not empty" in p.stderr.decode()
    assert os.listdir(tmp_path / "r") == ["keep"]
    (tmp_path / "e").mkdir()
    ocikit("unpack", f"oci:{layout}:t", str(tmp_path / "e"))          # an empty directory is fine
    assert (tmp_path / "e" / "new").exists()


def test_rootless_owner_record_follows_whiteouts_and_replacements(tmp_path) -> None:
    from ocikit.ops.unpack import UnpackOptions, unpack
    layout = str(tmp_path / "layout")
    image_from_tars(layout, "t", [
        tar_bytes([D("d/", uid=5, gid=5), F("d/a", b"a", uid=1, gid=1), F("b", b"b", uid=2, gid=2),
                   F("c", b"c", uid=3, gid=3)]),
        tar_bytes([F(".wh.d", b""), F("b", b"root now"), F("e", b"e", uid=0, gid=9)])])
    res = unpack(f"oci:{layout}:t", str(tmp_path / "r"), UnpackOptions(rootless=True))
    record = json.loads(open(res.owners_file).read())
    assert record["owners"] == {"/c": {"uid": 3, "gid": 3}, "/e": {"uid": 0, "gid": 9}}


def test_unpacking_a_layout_loads_no_event_loop(tmp_path) -> None:
    """`ocikit unpack oci:...` runs in one thread without asyncio (its import alone costs more
    than a small image's unpack is allowed to): the CLI, run in a fresh interpreter, never
    imports it, and the result is the same as through the async path."""
    layout = _image(tmp_path)
    code = ("import sys; from ocikit.cli.main import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'asyncio' not in sys.modules, 'asyncio was imported'\n")
    p = subprocess.run([sys.executable, "-c", code, "unpack", f"oci:{layout}:t", str(tmp_path / "sync")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    asyncio.run(aunpack(f"oci:{layout}:t", str(tmp_path / "async")))
    assert snapshot(str(tmp_path / "sync")) == snapshot(str(tmp_path / "async"))

"""``ocikit diff IMAGE_A IMAGE_B``: layers, config and files, as one compares httpd 2.4.47 and 2.4.48."""

from __future__ import annotations

import json
import os

import pytest

from ocikit.model import Descriptor
from ocikit.ops.imagediff import compare_configs, compare_layers, compare_trees

from helpers.cli import expect_failure, run_ocikit
from helpers.peers import skopeo

D1, D2, D3, D4 = (f"sha256:{c * 64}" for c in "1234")


def _desc(d: str, size: int = 10) -> Descriptor:
    return Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", d, size)


def test_compare_layers_by_diff_id():
    c = compare_layers([_desc(D1), _desc(D2)], ["sha256:" + "a" * 64, "sha256:" + "b" * 64],
                       [_desc(D3), _desc(D4)], ["sha256:" + "a" * 64, "sha256:" + "c" * 64])
    assert c.common_prefix == 1 and c.shared == 1
    assert [r.shared for r in c.a] == [True, False] and [r.shared for r in c.b] == [True, False]
    assert not c.a[0].same_blob   # same tar, another compression
    same = compare_layers([_desc(D1)], ["sha256:" + "a" * 64], [_desc(D1)], ["sha256:" + "a" * 64])
    assert same.a[0].same_blob and same.common_prefix == 1


def test_compare_configs_like_httpd():
    a = {"created": "2021-05-12T01:21:22Z", "architecture": "amd64", "os": "linux",
         "config": {"Env": ["PATH=/usr/bin", "HTTPD_VERSION=2.4.47", "GONE=1"], "Cmd": ["httpd-foreground"],
                    "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGWINCH"},
         "history": [{}, {}]}
    b = {"created": "2021-05-26T00:23:59Z", "architecture": "amd64", "os": "linux",
         "config": {"Env": ["PATH=/usr/bin", "HTTPD_VERSION=2.4.48", "NEW="], "Cmd": ["httpd-foreground"],
                    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}, "StopSignal": "SIGWINCH"},
         "history": [{}, {}]}
    got = [c.describe() for c in compare_configs(a, b)]
    assert got == ["created: 2021-05-12T01:21:22Z -> 2021-05-26T00:23:59Z", "Env GONE: - 1", "Env HTTPD_VERSION: "
                   "2.4.47 -> 2.4.48", "Env NEW: + ", "ExposedPorts 443/tcp: + {}"]
    assert compare_configs(a, a) == []


def test_compare_trees():
    f = {"type": "file", "mode": 0o644, "owner": (0, 0), "size": 1, "sha256": "x"}
    a = {"etc": {"type": "directory", "mode": 0o755, "owner": (0, 0)}, "etc/a": f, "etc/b": f,
         "old": {"type": "directory", "mode": 0o755, "owner": (0, 0)}, "old/x": f, "ln": {**f, "type": "symlink",
                                                                                         "target": "a"}}
    b = {"etc": {"type": "directory", "mode": 0o755, "owner": (0, 0)}, "etc/a": {**f, "sha256": "y", "size": 2},
         "etc/b": {**f, "mode": 0o600, "owner": (1, 1)}, "etc/c": f,
         "ln": {**f, "type": "symlink", "target": "b"}}
    got = [c.describe() for c in compare_trees(a, b)]
    assert got == ["M etc/a  (content, size 1 -> 2)", "M etc/b  (mode 644 -> 600, owner 0:0 -> 1:1)", "+ etc/c",
                   "M ln  (link a -> b)", "- old"]


@pytest.fixture(scope="module")
def httpd_pair(tmp_path_factory):
    """Two images sharing a base layer, the way httpd:2.4.47 and httpd:2.4.48 do."""
    def w(path: str, data: str, mode: int = 0o644) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(data)
        os.chmod(path, mode)

    ocikit = run_ocikit
    tmp_path = tmp_path_factory.mktemp("httpd")
    base = str(tmp_path / "debian")
    w(f"{base}/etc/os-release", "ID=debian\n")
    w(f"{base}/bin/sh", "shell", 0o755)
    v47, v48 = str(tmp_path / "v47"), str(tmp_path / "v48")
    w(f"{v47}/usr/local/apache2/bin/httpd", "httpd 2.4.47", 0o755)
    w(f"{v47}/usr/local/apache2/conf/httpd.conf", "Listen 80\n")
    w(f"{v47}/usr/local/apache2/modules/mod_old.so", "old")
    w(f"{v48}/usr/local/apache2/bin/httpd", "httpd 2.4.48!", 0o755)
    w(f"{v48}/usr/local/apache2/conf/httpd.conf", "Listen 80\n", 0o600)
    w(f"{v48}/usr/local/apache2/modules/mod_new.so", "new")
    lay = str(tmp_path / "httpd")
    ocikit("build", "-o", f"oci:{lay}:base", base)
    common = ["--from", f"oci:{lay}:base", "--cmd", "httpd-foreground", "--expose", "80", "--env",
              "HTTPD_PREFIX=/usr/local/apache2"]
    ocikit("build", "-o", f"oci:{lay}:2.4.47", v47, *common, "--env", "HTTPD_VERSION=2.4.47")
    ocikit("build", "-o", f"oci:{lay}:2.4.48", v48, *common, "--env", "HTTPD_VERSION=2.4.48")
    return lay


def test_diff_httpd_versions(httpd_pair, ocikit):
    lay = httpd_pair
    p = ocikit("diff", f"oci:{lay}:2.4.47", f"oci:{lay}:2.4.48", "--files")
    text = p.stdout.decode()
    assert "Layers: 1 shared (1 as a common base), 1 only in A, 1 only in B" in text
    assert "Env HTTPD_VERSION: 2.4.47 -> 2.4.48" in text
    assert "M usr/local/apache2/bin/httpd  (content, size 12 -> 13)" in text
    assert "M usr/local/apache2/conf/httpd.conf  (mode 644 -> 600)" in text
    assert "- usr/local/apache2/modules/mod_old.so" in text and "+ usr/local/apache2/modules/mod_new.so" in text
    assert "etc/os-release" not in text
    p = ocikit("--format", "json", "diff", f"oci:{lay}:2.4.47", f"oci:{lay}:2.4.48", "--files")
    d = json.loads(p.stdout)
    assert d["layers"]["shared"] == 1 and not d["identical"]
    assert {f["path"]: f["change"] for f in d["files"]} == {
        "usr/local/apache2/bin/httpd": "M", "usr/local/apache2/conf/httpd.conf": "M",
        "usr/local/apache2/modules/mod_new.so": "+", "usr/local/apache2/modules/mod_old.so": "-"}
    assert ocikit("diff", f"oci:{lay}:2.4.47", f"oci:{lay}:2.4.48", "--exit-code", check=False).returncode == 1
    same = ocikit("diff", f"oci:{lay}:2.4.47", f"oci:{lay}:2.4.47", "--exit-code", "--files")
    assert "identical images" in same.stdout.decode() and "Files: 0 added, 0 removed, 0 modified" in same.stdout.decode()


def test_diff_across_transports(httpd_pair, ocikit, peer, registry):
    """One side in Debian's docker-registry (pushed by skopeo), the other in a layout."""
    peer("skopeo")
    lay = httpd_pair
    skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{lay}:2.4.48", f"docker://{registry.host}/httpd:2.4.48")
    p = ocikit("--format", "json", "diff", f"oci:{lay}:2.4.47", f"docker://{registry.host}/httpd:2.4.48", "--files")
    d = json.loads(p.stdout)
    assert len(d["files"]) == 4 and d["layers"]["shared"] == 1


def test_diff_bad_input(tmp_path, ocikit):
    expect_failure("diff", f"oci:{tmp_path}/none:x", f"oci:{tmp_path}/none:y",
                   match=r"^ocikit: error: .*/none: no such OCI layout directory$", code=1)

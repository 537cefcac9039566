"""``--bundle``: the runtime config converted from the image config (image-spec conversion.md),
users resolved through the rootfs, compared with umoci's bundle where the two must agree."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from ocikit.errors import ConfigInvalid
from ocikit.layers.runtime_bundle import parse_group, parse_passwd, read_rootfs_file, resolve_user, runtime_config
from ocikit.ops.unpack import UnpackOptions, unpack

from helpers.layers import D, F, S, image_from_tars, tar_bytes

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\nbad line\nsvc:x:42:42::/:/x\n"
GROUP = "root:x:0:\napp:x:1001:\nwheel:x:10:app,svc\naudio:x:29:app\nsvc:x:42:\n"


@pytest.mark.parametrize("spec, uid, gid, extra", [
    ("app", 1000, 1001, (10, 29)),
    ("1000", 1000, 1001, None),
    ("1000:7", 1000, 7, None),
    ("app:wheel", 1000, 10, None),
    ("app:5", 1000, 5, None),
    ("77", 77, 0, None),
    ("77:78", 77, 78, None),
    ("svc", 42, 42, (10,)),
    ("root", 0, 0, ()),
])
def test_resolve_user(spec, uid, gid, extra) -> None:
    ru = resolve_user(spec, parse_passwd(PASSWD), parse_group(GROUP))
    assert (ru.uid, ru.gid, ru.additional_gids) == (uid, gid, extra)


@pytest.mark.parametrize("spec", ["nobody", "app:nogroup", ":5", "app:"])
def test_resolve_user_errors(spec) -> None:
    with pytest.raises(ConfigInvalid):
        resolve_user(spec, parse_passwd(PASSWD), parse_group(GROUP))


def test_resolve_user_without_passwd_file() -> None:
    assert resolve_user("5:6", None, None).uid == 5
    with pytest.raises(ConfigInvalid):
        resolve_user("app", None, None)


def _image_config(**cfg) -> dict:
    return {"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z", "author": "me",
            "config": cfg}


def test_runtime_config_fields(tmp_path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    doc = runtime_config(_image_config(
        Entrypoint=["/bin/app", "--serve"], Cmd=["-v"], Env=["A=1", "PATH=/x"], WorkingDir="/srv", User="app",
        ExposedPorts={"80/tcp": {}, "53/udp": {}}, Volumes={"/data": {}, "/logs": {}}, StopSignal="SIGQUIT",
        Labels={"org.opencontainers.image.os": "label-wins", "l": "v"}), str(root))
    p = doc["process"]
    assert p["args"] == ["/bin/app", "--serve", "-v"]
    assert p["env"] == ["A=1", "PATH=/x", "HOME=/home/app"]
    assert p["cwd"] == "/srv"
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [10, 29]}
    a = doc["annotations"]
    assert a["org.opencontainers.image.exposedPorts"] == "53/udp,80/tcp"
    assert a["org.opencontainers.image.volumes"] == "/data,/logs"
    assert a["org.opencontainers.image.stopSignal"] == "SIGQUIT"
    assert a["org.opencontainers.image.os"] == "label-wins"       # Labels take precedence
    assert a["org.opencontainers.image.architecture"] == "amd64"
    assert a["org.opencontainers.image.author"] == "me"
    assert a["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert a["l"] == "v"
    check_runtime_spec(doc)


def test_runtime_config_defaults(tmp_path) -> None:
    (tmp_path / "r").mkdir()
    doc = runtime_config(_image_config(Cmd=["sh"]), str(tmp_path / "r"))
    assert doc["process"]["cwd"] == "/" and doc["process"]["user"] == {"uid": 0, "gid": 0}
    assert any(e.startswith("PATH=") for e in doc["process"]["env"])
    rootless = runtime_config(_image_config(Cmd=["sh"]), str(tmp_path / "r"), rootless=True)
    assert {"type": "user"} in rootless["linux"]["namespaces"]
    assert rootless["linux"]["uidMappings"][0]["hostID"] == os.geteuid()
    check_runtime_spec(doc)
    check_runtime_spec(rootless)


def test_passwd_symlinked_out_of_the_rootfs_is_read_inside(tmp_path) -> None:
    outside = tmp_path / "outside-passwd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.symlink(str(outside), root / "etc/passwd")
    assert read_rootfs_file(str(root), "/etc/passwd") is None          # resolved inside: no such file
    (root / str(outside).lstrip("/")).parent.mkdir(parents=True)
    (root / str(outside).lstrip("/")).write_text("inside:x:5:5::/:/bin/sh\n")
    assert read_rootfs_file(str(root), "/etc/passwd").startswith("inside:")
    os.unlink(root / "etc/passwd")
    os.symlink("../../../../outside-passwd", root / "etc/passwd")
    assert read_rootfs_file(str(root), "/etc/passwd") is None


SEMVER = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


def check_runtime_spec(doc: dict) -> None:
    """The REQUIRED parts of runtime-spec config.md (and config-linux.md) that a runtime checks."""
    assert SEMVER.match(doc["ociVersion"])
    assert isinstance(doc["root"]["path"], str) and doc["root"]["path"]
    p = doc["process"]
    assert p["cwd"].startswith("/")
    assert p["args"] and all(isinstance(a, str) for a in p["args"])
    assert all("=" in e for e in p["env"])
    assert isinstance(p["user"]["uid"], int) and isinstance(p["user"]["gid"], int)
    for m in doc["mounts"]:
        assert m["destination"].startswith("/")
    kinds = {n["type"] for n in doc["linux"]["namespaces"]}
    assert kinds <= {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}
    for k in ("bounding", "effective", "permitted"):
        assert all(c.startswith("CAP_") for c in p["capabilities"][k])
    json.dumps(doc)


def test_bundle_matches_umoci_bundle(tmp_path) -> None:
    umoci = shutil.which("umoci")
    if umoci is None:
        from helpers.peers import require
        require("umoci")
    layout = str(tmp_path / "layout")
    layer = tar_bytes([D("etc/"), F("etc/passwd", PASSWD.encode()), F("etc/group", GROUP.encode()),
                       D("srv/"), S("bin", "usr/bin")])
    cfg = {"Entrypoint": ["/bin/app"], "Cmd": ["--port", "80"], "Env": ["A=1", "PATH=/usr/bin"],
           "WorkingDir": "/srv", "User": "app", "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM",
           "Labels": {"k": "v"}}
    image_from_tars(layout, "t", [layer], config=cfg)
    ours = tmp_path / "ours"
    unpack(f"oci:{layout}:t", str(ours), UnpackOptions(bundle=True))
    subprocess.run([umoci, "unpack", "--image", f"{layout}:t", str(tmp_path / "theirs")], check=True,
                   capture_output=True)
    a = json.loads((ours / "config.json").read_text())
    b = json.loads((tmp_path / "theirs" / "config.json").read_text())
    for key in ("args", "cwd"):
        assert a["process"][key] == b["process"][key], key
    assert sorted(a["process"]["env"]) == sorted(e for e in b["process"]["env"] if not e.startswith("TERM="))
    assert a["process"]["user"]["uid"] == b["process"]["user"]["uid"]
    assert a["process"]["user"]["gid"] == b["process"]["user"]["gid"]
    assert sorted(a["process"]["user"].get("additionalGids", [])) == sorted(
        g for g in b["process"]["user"].get("additionalGids", []) if g != b["process"]["user"]["gid"])
    for k in ("org.opencontainers.image.exposedPorts", "org.opencontainers.image.stopSignal", "k"):
        assert a["annotations"][k] == b["annotations"][k], k
    assert a["root"]["path"] == "rootfs" and (ours / "rootfs/etc/passwd").is_file()
    check_runtime_spec(a)

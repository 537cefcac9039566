"""The pure parts of build: flag parsing, config edits, new configs, the merged-tree model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import LayerInvalid, UsageError
from ocikit.layers.merge import MergedTree
from ocikit.layers.reader import TarMember
from ocikit.ops.buildconfig import (
    ConfigChanges,
    apply_changes,
    history_entries,
    new_config,
    parse_command,
    parse_env,
    parse_key_value,
    parse_port,
    rfc3339,
)
from ocikit.core.platforms import Platform


def test_parse_flags():
    assert parse_env("A=1") == ("A", "1") and parse_env("_x.y=a=b") == ("_x.y", "a=b") and parse_env("E=") == ("E", "")
    for bad in ("A", "=1", "1A=2", "A B=1", ""):
        with pytest.raises(UsageError, match="--env"):
            parse_env(bad)
    assert parse_port("80") == "80/tcp" and parse_port("53/udp") == "53/udp" and parse_port("0080") == "80/tcp"
    for bad in ("0", "65536", "http", "80/icmp", "-1", "80/"):
        with pytest.raises(UsageError, match="--expose"):
            parse_port(bad)
    assert parse_command('["/bin/sh", "-c", "echo hi"]', "--cmd") == ("/bin/sh", "-c", "echo hi")
    assert parse_command("/app --flag 'two words'", "--cmd") == ("/app", "--flag", "two words")
    assert parse_command("", "--cmd") == ()
    for bad in ('["a", 1]', '["a", {}]', "[broken", "'open"):
        with pytest.raises(UsageError, match="--cmd"):
            parse_command(bad, "--cmd")
    assert parse_key_value("a=b=c", "--label") == ("a", "b=c")
    with pytest.raises(UsageError):
        parse_key_value("=v", "--label")


@given(st.integers(1, 65535), st.sampled_from(["", "/tcp", "/udp", "/sctp"]))
def test_parse_port_roundtrip(port, proto):
    assert parse_port(f"{port}{proto}") == f"{port}{proto or '/tcp'}"


def test_apply_changes_keeps_order_and_replaces_in_place():
    base = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Labels": {"x": "1"}, "Entrypoint": ["/e"]}
    c = apply_changes(base, ConfigChanges(env=(("A", "2"), ("B", "3")), cmd=(), entrypoint=("/new",),
                                          labels=(("y", "2"),), exposed_ports=("80/tcp",), workdir="/w", user="u"))
    assert list(c) == ["Env", "Labels", "Entrypoint", "WorkingDir", "User", "ExposedPorts"]
    assert c["Env"] == ["PATH=/bin", "A=2", "B=3"] and "Cmd" not in c and c["Entrypoint"] == ["/new"]
    assert c["Labels"] == {"x": "1", "y": "2"} and c["ExposedPorts"] == {"80/tcp": {}}
    assert base["Env"] == ["PATH=/bin", "A=1"]   # the input is not touched
    assert apply_changes(None, ConfigChanges()) == {}


def test_new_config_from_scratch_and_on_a_base():
    created = rfc3339(1_700_000_000)
    assert created == "2023-11-14T22:13:20Z" and rfc3339(0) == "1970-01-01T00:00:00Z"
    changes = ConfigChanges(cmd=("x",))
    hist = history_entries(created, "ocikit build", 1, changes, ["directory"])
    assert [h.get("empty_layer", False) for h in hist] == [False, True]
    assert hist[1]["created_by"] == 'ocikit build: CMD ["x"]'
    doc = new_config(None, Platform("linux", "arm64", "v8"), diff_ids=["sha256:" + "a" * 64], history=hist,
                     changes=changes, created=created)
    assert list(doc) == ["created", "architecture", "os", "variant", "config", "rootfs", "history"]
    assert doc["rootfs"] == {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}
    on = new_config(doc, Platform("linux", "amd64"), diff_ids=["sha256:" + "b" * 64], history=hist[:1],
                    changes=ConfigChanges(), created="2024-01-01T00:00:00Z")
    assert on["architecture"] == "arm64"   # a base's platform wins
    assert on["rootfs"]["diff_ids"] == ["sha256:" + "a" * 64, "sha256:" + "b" * 64] and len(on["history"]) == 3
    flat = new_config(doc, Platform("linux", "amd64"), diff_ids=["sha256:" + "c" * 64], history=hist[:1],
                      changes=ConfigChanges(), created=created, replace_layers=True)
    assert flat["rootfs"]["diff_ids"] == ["sha256:" + "c" * 64] and len(flat["history"]) == 1


def _m(name: str, type_: str = "0", linkname: str = "") -> TarMember:
    return TarMember(name=name, type=type_, mode=0o644, uid=0, gid=0, size=0, mtime_ns=0, linkname=linkname)


def test_merged_tree_edge_cases():
    t = MergedTree()
    t.apply(0, _m("../../etc/passwd"))               # cleaned into the root
    t.apply(0, _m("/abs/file"))
    t.apply(0, _m("up", "2", "../../.."))            # a symlink pointing out of the root...
    t.apply(0, _m("up/inside"))                      # ...is followed inside it: the root
    t.apply(0, _m("d", "5"))
    t.apply(0, _m("d/low"))
    t.apply(1, _m("d", "5"))                          # the same layer writes d and whites it out:
    t.apply(1, _m("d/mine"))
    t.apply(1, _m(".wh.d"))                           # only the lower contents go
    t.apply(1, _m("e/.wh..wh..opq"))                  # opaque of a missing dir: nothing
    t.apply(1, _m(".wh..wh.plnk"))                    # AUFS bookkeeping: ignored
    assert sorted(p for p, _ in t.walk()) == ["abs", "abs/file", "d", "d/mine", "etc", "etc/passwd", "inside", "up"]
    with pytest.raises(LayerInvalid, match="hardlink"):
        t.apply(2, _m("x", "1", "missing"))
    with pytest.raises(LayerInvalid, match="hardlink"):
        t.apply(2, _m("x", "1", "d"))                 # to a directory
    t.apply(2, _m("loop", "2", "loop"))
    with pytest.raises(LayerInvalid, match="symbolic links"):
        t.apply(2, _m("loop/x"))

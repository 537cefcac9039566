"""Pure pieces of the UI: the escaping builder, session cookies, pull commands, graph layout, options."""

from __future__ import annotations

import glob
import os
import urllib.error
import urllib.request

import pytest

from ocikit.server.config import parse_config
from ocikit.server.ui import session
from ocikit.server.ui.commands import pull_commands, registry_host
from ocikit.server.ui.graphsvg import NODE_H, layout, render_svg
from ocikit.server.ui.inventory import GraphNode
from ocikit.server.ui.markup import Safe, el, esc, human_size, repo_url, url

from servers import start_ocikit_serve

PROBE = '<script>alert(1)</script>"onerror="x\' &amp;'


def test_text_and_attributes_are_escaped():
    out = el("a", PROBE, href="/ui/?q=" + PROBE, title=PROBE, data_x=PROBE)
    assert "<script>" not in out and '"onerror' not in out
    assert out.count("&lt;script&gt;") == 4 and "&quot;onerror=&quot;x&#x27; &amp;amp;" in out
    assert el("p", Safe("<b>kept</b>"), "<i>") == "<p><b>kept</b>&lt;i&gt;</p>"
    assert el("input", value=PROBE, disabled=True, hidden=None) == \
        '<input value="&lt;script&gt;alert(1)&lt;/script&gt;&quot;onerror=&quot;x&#x27; &amp;amp;" disabled>'
    assert esc(esc("<")) == "&lt;"  # escaping is not applied twice


def test_urls_quote_every_component():
    assert repo_url("a/b") == "/ui/r/a/b"
    assert repo_url("a/b", "m", "sha256:abc") == "/ui/r/a/b/-/m/sha256:abc"
    assert repo_url("a", "m", "x/../y?z") == "/ui/r/a/-/m/x%2F..%2Fy%3Fz"
    assert url("/ui/", q="a b&c", page=None) == "/ui/?q=a+b%26c"
    assert human_size(0) == "0 B" and human_size(1536) == "1.5 KiB" and human_size(None) == "?"


def test_session_cookie_round_trip_and_tampering():
    key = session.session_key(b"secret")
    cookie, s = session.issue(key, "alice", now=1000)
    assert session.read(key, cookie, now=1001) == s
    assert session.read(session.session_key(b"other"), cookie, now=1001) is None
    body, sig = cookie.split(".")
    forged = session._b64(b'{"u":"bob","e":99999999999,"c":"x"}')
    assert session.read(key, f"{forged}.{sig}", now=1001) is None
    assert session.read(key, cookie, now=1000 + session.SESSION_SECONDS + 1) is None
    for junk in (None, "", "a.b.c", "!!!.???", "e30.e30"):
        assert session.read(key, junk) is None


def test_sign_in_redirects_stay_inside_the_ui():
    assert session.safe_next("/ui/r/a/-/m/latest?x=1") == "/ui/r/a/-/m/latest?x=1"
    for bad in (None, "", "https://evil.example/", "//evil.example/ui/", "/v2/_catalog", "/ui/\\evil",
                "/ui/../x://y"):
        assert session.safe_next(bad) == "/ui/"
    assert session.origin_ok(None, "http", "h:1") and session.origin_ok("http://h:1", "http", "h:1")
    assert not session.origin_ok("http://evil", "http", "h:1")
    assert session.same_token("abc", "abc") and not session.same_token("", "") and not session.same_token("a", None)


def test_pull_commands():
    cmds = dict(pull_commands("127.0.0.1:5000", "sample/multiarch", "latest", index=True, tls=False))
    assert cmds["skopeo"] == ("skopeo copy --all --src-tls-verify=false "
                              "docker://127.0.0.1:5000/sample/multiarch:latest oci:multiarch:latest")
    assert cmds["ocikit"].startswith("ocikit copy --all --src-tls-verify=false docker://")
    assert cmds["podman"] == "podman pull --tls-verify=false 127.0.0.1:5000/sample/multiarch:latest"
    d = "sha256:" + "a" * 64
    cmds = dict(pull_commands("reg.example:443", "x", d, index=False, tls=True))
    assert cmds["skopeo"] == f"skopeo copy docker://reg.example:443/x@{d} oci:x"
    assert registry_host("evil\"host;rm -rf /", "127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_host("[::1]:5000", "x") == "[::1]:5000"


def test_graph_layout_and_svg():
    leaf = [GraphNode("config", "c", "sha256:" + "1" * 64, 10), GraphNode("layer", "l", "sha256:" + "2" * 64, 20)]
    child = GraphNode("manifest", "m", "sha256:" + "3" * 64, 30, "linux/amd64", children=leaf)
    ref = GraphNode("referrer", "m", "sha256:" + "4" * 64, 5, PROBE, edge="subject")
    root = GraphNode("index", "i", "sha256:" + "5" * 64, 40, children=[child, ref])
    placed, edges, width, height = layout(root)
    by = {p.node.kind: p for p in placed}
    assert len(edges) == 4 and by["index"].x < by["manifest"].x < by["config"].x
    assert by["manifest"].y == (by["config"].y + by["layer"].y) // 2  # a parent sits level with its children
    assert height >= 3 * NODE_H
    svg = render_svg(root)
    assert svg.count("<rect") == 5 and 'marker-end="url(#arrow)"' in svg and "<script" not in svg


def test_ui_option_in_the_config_file():
    assert parse_config({}).ui is True
    assert parse_config({"ui": {"enabled": False}}).ui is False


def test_no_ui_and_the_banner(tmp_path):
    with start_ocikit_serve(str(tmp_path), args=("--no-ui",)) as srv:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "/ui/")
        assert e.value.code == 404 and b"no such endpoint: /ui/" in e.value.read()
    with start_ocikit_serve(str(tmp_path), args=("--seed-sample",)) as srv:
        with urllib.request.urlopen(srv.url + "/") as r:  # the root sends a browser to the UI
            assert r.url == srv.url + "/ui/" and b"sample/multiarch" in r.read()
    logs = "".join(open(p).read() for p in glob.glob(os.path.join(str(tmp_path), "ocikit-serve-*.log")))
    assert f"web UI: http://{srv.host}/ui/" in logs

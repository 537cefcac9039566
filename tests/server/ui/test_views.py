"""The web UI in headless Chromium against a real ``ocikit serve`` seeded by the test.

Seeded before the server starts (``uiseed``): the sample 3-platform index, seed 002's httpd
2.4.47/2.4.48 with a signature and an SBOM referring to 2.4.48, a repository of 2,000 tags,
an XSS probe and a damaged manifest. Every page is checked for visible content and for no
console error; a screenshot of each is saved.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any, Iterator

import pytest
expect = pytest.importorskip("playwright.sync_api").expect

from helpers.browser import Tab, open_tab
from helpers.servers import RunningServer, start_ocikit_serve
from helpers.uicontent import SBOM_TYPE, SIGNATURE_TYPE, XSS, seed


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("ui")
    root = str(tmp / "root")
    info = seed(root, tags=2000, distinct=40)
    with start_ocikit_serve(str(tmp), root=root) as srv:
        yield srv, info


@pytest.fixture
def tab(browser, server, artifacts) -> Iterator[Tab]:
    t = open_tab(browser, server[0].url, artifacts)
    yield t
    t.page.context.close()


def v2(server: RunningServer, path: str) -> Any:
    with urllib.request.urlopen(server.url + path) as r:
        return json.loads(r.read())


def test_repository_list(tab):
    resp = tab.go("/ui/")
    assert resp.status == 200
    rows = tab.page.locator("#repos tbody tr")
    names = [rows.nth(i).get_attribute("data-name") for i in range(rows.count())]
    assert names == ["broken/manifest", "many/tags", "sample/multiarch", "web/httpd", "xss/probe"]
    many = tab.page.locator("#repos tr[data-name='many/tags'] td")
    assert many.nth(1).inner_text() == "2000"
    assert "KiB" in many.nth(2).inner_text() and "UTC" in many.nth(3).inner_text()
    tab.shot("repositories")
    tab.page.fill("#filter", "httpd")  # the live filter (ui.js)
    assert tab.page.locator("#repos tbody tr:visible").count() == 1
    tab.go("/ui/?q=sample")  # the server-side search
    assert tab.page.locator("#repos tbody tr").count() == 1
    assert tab.page.locator("#repos").inner_text().count("sample/multiarch") == 1
    assert tab.errors == []


def test_repository_with_2000_tags_is_paginated(tab):
    tab.go("/ui/r/many/tags")
    assert "2000 tags; showing 1\u201350" in tab.text()
    tags = tab.page.locator("#tags td.tag")
    assert tags.count() == 50
    assert tags.first.inner_text() == "v0000" and tags.last.inner_text() == "v0049"
    first = tab.page.locator("#tags tbody tr").first.inner_text()
    assert "linux/amd64" in first and "oci.image.manifest.v1+json" in first and "2023-11-14T22:13:20Z" in first
    tab.shot("repository-2000-tags")
    tab.page.locator("nav.pager a[rel=next]").first.click()
    assert tab.page.locator("#tags td.tag").first.inner_text() == "v0050"
    tab.go("/ui/r/many/tags?page=40")
    assert tab.page.locator("#tags td.tag").last.inner_text() == "v1999"
    tab.go("/ui/r/many/tags?q=v199")
    assert [t.strip() for t in tab.page.locator("#tags td.tag").all_inner_texts()] == [f"v199{i}" for i in range(10)]
    # the pull commands by tag and digest, with copy buttons
    row = tab.page.locator("#tags tbody tr").first
    row.locator("details summary").click()
    cmds = row.locator("code.cmd").all_inner_texts()
    assert any(c.startswith("skopeo copy --src-tls-verify=false docker://") and c.endswith(":v1990 oci:tags:v1990")
               for c in cmds)
    assert any(c.startswith("podman pull --tls-verify=false 127.0.0.1:") and "@sha256:" in c for c in cmds)
    assert any(c.startswith("ocikit copy") for c in cmds)
    tab.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    button = row.locator("button.copy").first
    button.click()
    expect(button).to_have_text("copied")
    assert tab.page.evaluate("navigator.clipboard.readText()") == cmds[0]
    assert tab.errors == []


def test_sample_index_graph(tab, server):
    srv, _ = server
    index = v2(srv, "/v2/sample/multiarch/manifests/latest")
    tab.go("/ui/r/sample/multiarch/-/m/latest")
    graph = tab.page.locator("#graph svg.graph")
    assert graph.is_visible()
    assert graph.locator("rect.index").count() == 1
    assert graph.locator("rect.manifest").count() == 3
    assert graph.locator("rect.config").count() == 3 and graph.locator("rect.layer").count() == 3
    text = " ".join(graph.locator("text").all_text_contents())
    for plat in ("linux/amd64", "linux/arm64/v8", "linux/ppc64le"):
        assert plat in text
    child = index["manifests"][0]["digest"]
    assert child[:19] in text  # sha256: + 12 hex
    assert "oci.image.config.v1+json" in text and "oci.image.layer.v1.tar+gzip" in text
    # the raw bytes and the digest they hash to
    assert tab.page.locator("#raw code.rawdigest").inner_text() == tab.page.locator("dl.kv dd code").first.inner_text()
    tab.shot("sample-index-graph")
    tab.page.locator("svg.graph a.gnode").filter(has_text="linux/arm64/v8").click()
    tab.page.wait_for_url(re.compile(r".*/-/m/sha256:[0-9a-f]{64}$"))
    assert "linux/arm64/v8" in tab.page.locator("#config").inner_text()
    assert tab.errors == []


def test_image_config(tab):
    tab.go("/ui/r/web/httpd/-/m/2.4.48")
    config = tab.page.locator("#config")
    text = config.inner_text()
    for expected in ('["httpd-foreground"]', "/usr/local/apache2", "HTTPD_VERSION=2.4.48",
                     "org.opencontainers.image.version", "linux/amd64", "SIGWINCH", '{"80/tcp": {}}'):
        assert expected in text, expected
    history = tab.page.locator("#history").inner_text()
    assert "ocikit.testing layer 0" in history and "ocikit.testing layer 1" in history
    assert tab.page.locator("#layers tbody tr").count() == 2
    tab.shot("image-config")
    assert tab.errors == []


def test_compare_httpd(tab):
    tab.go("/ui/compare?a=web/httpd:2.4.47&b=web/httpd:2.4.48")
    assert "1 of 2 layers of A are in B" in tab.text()
    rows = tab.page.locator("#layers tbody tr")
    assert rows.nth(0).get_attribute("class") == "same" and rows.nth(1).get_attribute("class") == "differs"
    diff = tab.page.locator("#config-diff").inner_text()
    assert "Env HTTPD_VERSION" in diff and "2.4.47" in diff and "2.4.48" in diff
    assert "Cmd" in tab.page.locator("#config-same").inner_text()
    tab.shot("compare")
    assert tab.errors == []


def test_referrers(tab, server):
    _, info = server
    tab.go("/ui/referrers")
    types = tab.page.locator("h2.atype").all_inner_texts()
    assert types == sorted([SBOM_TYPE, SIGNATURE_TYPE])
    text = tab.text()
    assert "MEUCIQDsignature" in text and str(info["httpd"]["2.4.48"].digest)[:19] in text
    tab.shot("referrers")
    tab.go("/ui/r/web/httpd/-/m/2.4.48")
    assert tab.page.locator("#referrers h3.atype").all_inner_texts() == sorted([SBOM_TYPE, SIGNATURE_TYPE])
    assert tab.page.locator("svg.graph rect.referrer").count() == 2
    assert tab.page.locator("svg.graph path.edge.subject").count() == 2
    tab.go(f"/ui/r/web/httpd/-/m/{info['httpd']['signature'].digest}")
    assert "this manifest refers to it" in tab.text()
    assert tab.errors == []


def test_blobs_and_gc_preview(tab, server):
    srv, info = server
    base = v2(srv, "/v2/web/httpd/manifests/2.4.47")["layers"][0]["digest"]
    tab.go("/ui/blobs")
    text = tab.text()
    assert "Storage per repository" in text and "sharing saves" in text
    assert base[:19] in tab.page.locator("section", has_text="Blobs shared").inner_text()
    tab.shot("blobs")
    tab.go(f"/ui/blobs/{base}")
    used = tab.page.locator("table").inner_text()
    assert used.count("web/httpd") == 2 and str(info["httpd"]["2.4.47"].digest)[:19] in used
    # broken/manifest holds a manifest that cannot be parsed: gc refuses to sweep, and the page says so
    tab.go("/ui/gc")
    tab.page.wait_for_selector("p.error:has-text(\"gc refuses\")", timeout=30000)  # computed in the background
    refusal = tab.page.locator("p.error").inner_text()
    assert "gc refuses to sweep" in refusal and "broken/manifest" in refusal
    assert tab.errors == []


@pytest.mark.parametrize("path", ["/ui/r/no/such", "/ui/r/many/tags/-/m/nope", "/ui/r/many/tags/-/m/sha256:" + "0" * 64,
                                  "/ui/r/many/tags/-/m/sha256:zz", "/ui/blobs/sha256:" + "1" * 64, "/ui/r/UPPER/case",
                                  "/ui/compare?a=no/such:1&b=many/tags:v0001", "/ui/r/many/tags/-/nothing"])
def test_not_found(tab, path):
    resp = tab.go(path)
    assert resp.status == 404
    assert tab.page.locator("h1").inner_text() == "Not found"
    assert tab.page.locator("p.error").is_visible()


def test_unparseable_manifest_shows_bytes_and_error(tab):
    resp = tab.go("/ui/r/broken/manifest/-/m/bad")
    assert resp.status == 200
    assert "cannot be parsed" in tab.text()
    assert tab.page.locator(".problem p.error").inner_text() == "manifest: config: required field missing"
    assert '"layers": "nope"' in tab.page.locator("pre.raw").inner_text()
    tab.go("/ui/r/broken/manifest")
    assert tab.page.locator("#tags td.tag").inner_text() == "bad"
    assert tab.errors == []


def test_xss_probe_renders_as_text(tab):
    tab.go("/ui/r/xss/probe/-/m/latest")
    assert tab.page.locator("script").count() == 1  # ours, from /ui/static/
    assert tab.page.locator("img").count() == 0
    assert tab.page.evaluate("window.__xss") is None
    assert tab.page.locator("#annotations").inner_text().count(XSS) == 1
    assert XSS in tab.page.locator("#config").inner_text()
    tab.shot("xss-probe")
    # typed: a tag in the URL, a search, a compare reference
    tab.go("/ui/r/xss/probe/-/m/%3Cscript%3Ewindow.__xss=4%3C%2Fscript%3E%22onerror=%22x")
    assert '<script>window.__xss=4</script>"onerror="x' in tab.page.locator("p.error").inner_text()
    tab.go("/ui/?q=%3Cscript%3Ewindow.__xss%3D5%3C%2Fscript%3E%22onerror%3D")
    assert tab.page.input_value("#filter") == '<script>window.__xss=5</script>"onerror='
    tab.go("/ui/compare?a=%3Cscript%3Ewindow.__xss=6%3C/script%3E%22onerror=&b=x")
    assert '<script>window.__xss=6</script>"onerror=' in tab.page.locator("p.error").inner_text()
    tab.go("/ui/r/many/tags?q=%3Cscript%3Ewindow.__xss%3D7%3C%2Fscript%3E%22onerror%3D")
    assert '<script>window.__xss=7</script>"onerror=' in tab.text()
    assert tab.page.locator("script").count() == 1
    assert tab.page.evaluate("window.__xss") is None
    assert tab.dialogs == []

"""The escaping HTML builder: text and attributes escaped, URLs quoted."""

from __future__ import annotations

from ocikit.server.ui.markup import Safe, el, esc, human_size, repo_url, url

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

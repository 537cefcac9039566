"""The escaping HTML builder: text and attributes escaped, URLs quoted."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

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


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@given(st.text(), st.text())
def test_any_text_comes_back_as_text(text, attr):
    """Whatever a user pushed or typed, a browser's parser sees one element with that text and attribute."""
    p = _Collect()
    p.feed(el("td", text, title=attr))
    p.close()
    assert p.tags == [("td", [("title", attr)])]
    assert "".join(p.text) == text

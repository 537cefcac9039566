"""A small escaping HTML builder: every string is escaped unless it is already :class:`Safe`.

Pages are built as nested calls (``el("td", digest, class_="digest")``); text and attribute
values that come from storage or from the request (repository names, tags, annotations,
config fields) pass through :func:`esc` on the way in, so nothing a user pushed or typed is
ever interpreted as markup or script. The page shell loads one stylesheet and one script from
``/ui/static/`` and nothing else (the Content-Security-Policy forbids inline script).
"""

from __future__ import annotations

import html
import time
from typing import Iterable, Union
from urllib.parse import quote, urlencode

Child = Union["Safe", str, int, float, None, Iterable["Child"]]

VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "wbr"})


class Safe(str):
    """Markup that is already escaped; :func:`esc` passes it through unchanged."""

    __slots__ = ()


def esc(value: object) -> Safe:
    """``value`` as HTML text (``<``, ``>``, ``&``, ``"`` and ``'`` escaped)."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape(str(value), quote=True))


def _children(items: Iterable[Child], out: list[str]) -> None:
    for c in items:
        if c is None or c is False:
            continue
        if isinstance(c, (str, int, float)):
            out.append(esc(c))
        else:
            _children(c, out)


def frag(*children: Child) -> Safe:
    """Children joined, each escaped unless Safe."""
    out: list[str] = []
    _children(children, out)
    return Safe("".join(out))


def el(name: str, /, *children: Child, **attrs: object) -> Safe:
    """An element. ``class_`` is ``class``, ``data_x`` is ``data-x``; ``None``/``False`` drop an attribute."""
    parts = [f"<{name}"]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(f" {attr}" if value is True else f' {attr}="{esc(value)}"')
    parts.append(">")
    if name in VOID:
        return Safe("".join(parts))
    out: list[str] = []
    _children(children, out)
    return Safe("".join(parts) + "".join(out) + f"</{name}>")


# --- URLs ---------------------------------------------------------------------------------


def url(path: str, **query: object) -> str:
    """``/ui/...`` with a query string of the non-empty values (escaped when put in an attribute)."""
    q = {k: str(v) for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(q) if q else "")


def repo_url(name: str, *rest: str) -> str:
    """``/ui/r/<name>`` and its sub-pages ``/ui/r/<name>/-/<rest>``; each component percent-quoted."""
    base = "/ui/r/" + quote(name, safe="/")
    return base + ("/-/" + "/".join(quote(r, safe=":") for r in rest) if rest else "")


# --- small widgets -----------------------------------------------------------------------


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def when(ts: float | None) -> str:
    """A UTC time stamp, or an em dash."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts else "\u2014"


def short_digest(digest: str) -> str:
    alg, _, enc = str(digest).partition(":")
    return f"{alg}:{enc[:12]}" if enc else str(digest)


def short_type(media_type: str | None) -> str:
    """``application/vnd.oci.image.index.v1+json`` -> ``oci.image.index.v1+json``."""
    if not media_type:
        return "\u2014"
    return media_type.removeprefix("application/").removeprefix("vnd.")


def digest_link(digest: str, href: str | None) -> Safe:
    code = el("code", short_digest(digest), title=str(digest))
    return el("a", code, href=href) if href else code


def copy_line(command: str, ident: str) -> Safe:
    """A shell command with a copy button (``ui.js`` copies the text of element ``ident``)."""
    return el("div", el("code", command, id=ident, class_="cmd"),
              el("button", "copy", type="button", class_="copy", data_copy_for=ident), class_="copyline")


def table(headers: Iterable[str], rows: Iterable[Iterable[Child]], **attrs: object) -> Safe:
    head = el("thead", el("tr", [el("th", h) for h in headers]))
    body = el("tbody", [el("tr", [el("td", c) for c in row]) for row in rows])
    return el("table", head, body, **attrs)


def dl(items: Iterable[tuple[str, Child]]) -> Safe:
    return el("dl", [frag(el("dt", k), el("dd", v)) for k, v in items], class_="kv")


def section(title: str, *body: Child, ident: str | None = None) -> Safe:
    return el("section", el("h2", title), *body, id=ident)


NAV = (("repositories", "/ui/", "Repositories"), ("blobs", "/ui/blobs", "Blobs"),
       ("referrers", "/ui/referrers", "Referrers"), ("compare", "/ui/compare", "Compare"))


def page(title: str, body: Child, *, active: str = "", user: str | None = None, logout_csrf: str | None = None,
         read_only: bool = False, refresh: int | None = None) -> Safe:
    """The whole document: header with navigation and the signed-in user, then ``body``."""
    nav = [el("a", label, href=href, class_="active" if key == active else None) for key, href, label in NAV]
    who: list[Child] = []
    if read_only:
        who.append(el("span", "read-only", class_="badge"))
    if user is not None:
        who.append(el("span", "signed in as ", el("b", user)))
        if logout_csrf is not None:
            who.append(el("form", el("input", type="hidden", name="csrf", value=logout_csrf),
                          el("button", "sign out", type="submit"), method="post", action="/ui/logout",
                          class_="inline"))
    head = el("head", el("meta", charset="utf-8"),
              el("meta", name="viewport", content="width=device-width, initial-scale=1"),
              el("title", f"{title} \u2014 ocikit"),
              el("meta", http_equiv="refresh", content=str(refresh)) if refresh else None,
              el("link", rel="icon", href="/ui/static/favicon.svg", type="image/svg+xml"),
              el("link", rel="stylesheet", href="/ui/static/ui.css"),
              el("script", src="/ui/static/ui.js", defer=True))
    header = el("header", el("a", "ocikit", href="/ui/", class_="brand"), el("nav", nav),
                el("div", who, class_="who"))
    return Safe("<!doctype html>\n" + el("html", head, el("body", header, el("main", body)), lang="en"))

"""The UI's aiohttp handlers under ``/ui/``: who is asking, what they may pull, which page.

Every page handler goes through :func:`_page`: it signs the viewer in (or sends them to the
sign-in form when auth is on), turns a missing or hidden repository, tag or digest into a 404
page (the same page either way, so a URL does not reveal what exists), and answers with a
strict Content-Security-Policy and a ``Server-Timing`` header (read by ``bench/ui``). The UI
only reads: it has no handler that writes to the registry.
"""

from __future__ import annotations

import logging
import time
import asyncio
from dataclasses import dataclass, field
from importlib import resources
from typing import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web

from ...digest import Digest
from ...errors import DigestInvalid, InvalidReference, ManifestUnreadable, NotFound, OcikitError
from ...model import ImageIndex, ImageManifest
from ...reference import validate_repository_name
from ..auth import Principal
from ..gc import GcReport
from ..context import REGISTRY, Registry
from ..routes import TAG_RE
from ..storage.registry import RegistryStorage
from . import session
from .commands import registry_host
from .graphsvg import render_svg
from .inventory import ConfigView, Inventory, ManifestView
from .markup import Safe, page
from .pages import (
    blob_body,
    blob_href,
    blobs_body,
    gc_body,
    login_body,
    manifest_href,
    message_body,
    referrers_body,
    repo_body,
    repos_body,
)

log = logging.getLogger("ocikit.server.ui")

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {"ui.css": "text/css", "ui.js": "text/javascript", "favicon.svg": "image/svg+xml"}
PER_PAGE = 50


class PageNotFound(NotFound):
    """A page for something that does not exist, or that the viewer may not pull."""


GC_FRESH_SECONDS = 60.0


@dataclass
class GcPreview:
    """The latest gc dry run (kept a minute), and the task computing the next one."""

    report: GcReport | None = None
    finished: float = 0.0
    error: str | None = None
    task: asyncio.Task[None] | None = None

    def start(self, storage: RegistryStorage, untagged: bool) -> None:
        async def run() -> None:
            from ..gc import collect_garbage
            try:
                self.report = await collect_garbage(storage, dry_run=True, untagged=untagged)
                self.finished, self.error = time.time(), None
            except ManifestUnreadable as e:  # gc itself would refuse: say so, as the CLI does
                self.error = f"gc refuses to sweep: {e}"
            except Exception as e:  # noqa: BLE001 - shown on the page, logged
                log.exception("gc dry run failed")
                self.error = f"the dry run failed: {e}"
            finally:
                self.task = None
        self.task = asyncio.get_running_loop().create_task(run())


@dataclass
class UiState:
    inventory: Inventory
    key: bytes
    static: dict[str, bytes]
    gc: dict[bool, GcPreview] = field(default_factory=dict)
    warming: asyncio.Task[None] | None = None


UI = web.AppKey("ocikit_ui", UiState)


@dataclass(frozen=True)
class Viewer:
    user: str | None
    csrf: str | None
    reg: Registry

    def may_pull(self, repo: str) -> bool:
        return self.reg.auth.allowed(Principal(self.user), repo, "pull")

    async def repos(self) -> list[str]:
        return [r for r in await self.reg.storage.catalog() if self.may_pull(r)]

    def require(self, repo: str) -> None:
        try:
            validate_repository_name(repo)
        except InvalidReference:
            raise PageNotFound(f"no repository {repo!r}") from None
        if not self.may_pull(repo):
            raise PageNotFound(f"no repository {repo!r} (or you may not pull it)")


Handler = Callable[[web.Request, Viewer], Awaitable["Safe | tuple[str, Safe, str] | web.StreamResponse"]]


def _html(title: str, body: Safe, viewer: Viewer | None, active: str = "", status: int = 200,
          refresh: int | None = None) -> web.Response:
    reg = viewer.reg if viewer else None
    doc = page(title, body, active=active, user=viewer.user if viewer else None,
               logout_csrf=viewer.csrf if viewer and viewer.user else None,
               read_only=bool(reg and reg.config.read_only), refresh=refresh)
    return web.Response(text=doc, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def _redirect(location: str, status: int = 303) -> web.Response:
    """A redirect as a plain response (so cookies can be set on it)."""
    return web.Response(status=status, headers={**HEADERS, "Location": location})


def _viewer(request: web.Request) -> Viewer | None:
    reg = request.app[REGISTRY]
    if reg.auth.mode == "none":
        return Viewer(None, None, reg)
    s = session.read(request.app[UI].key, request.cookies.get(session.SESSION_COOKIE))
    if s is None or s.user not in reg.auth.users:
        return None
    return Viewer(s.user, s.csrf, reg)


def _page(fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        viewer = _viewer(request)
        if viewer is None:
            resp: web.StreamResponse = _redirect("/ui/login?" + urlencode({"next": request.path_qs}))
        else:
            try:
                out = await fn(request, viewer)
                if isinstance(out, web.StreamResponse):
                    resp = out
                elif isinstance(out, tuple):
                    resp = _html(out[0], out[1], viewer, out[2])
                else:
                    resp = _html("ocikit", out, viewer)
            except (NotFound, DigestInvalid, InvalidReference) as e:
                resp = _html("Not found", message_body("Not found", str(e)), viewer, status=404)
            except OcikitError as e:
                resp = _html("Cannot show this", message_body("Cannot show this", str(e)), viewer, status=400)
            except web.HTTPException:
                raise
            except Exception:  # noqa: BLE001 - a bug shows an error page and the server stays up
                log.exception("UI %s failed", request.path)
                resp = _html("Error", message_body("Error", "internal error; see the server log"), viewer, status=500)
        resp.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return resp
    return handler


def _inv(request: web.Request) -> Inventory:
    return request.app[UI].inventory


def _host(request: web.Request, viewer: Viewer) -> tuple[str, bool]:
    cfg = viewer.reg.config
    return registry_host(request.host, cfg.listen), bool(cfg.tls_cert)


def _int(request: web.Request, key: str, default: int, lo: int, hi: int) -> int:
    value = request.query.get(key, "")
    return max(lo, min(hi, int(value))) if value.isdigit() else default


# --- pages ----------------------------------------------------------------------------------


async def repositories(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    q = request.query.get("q", "").strip()
    names = [r for r in await viewer.repos() if q.lower() in r.lower()]
    rows = [await _inv(request).repo_summary(r) for r in names]
    return "Repositories", repos_body(rows, q), "repositories"


def _split_repo_path(path: str) -> tuple[str, list[str]]:
    name, sep, rest = path.partition("/-/")
    return name.rstrip("/"), rest.split("/", 1) if sep else []


def _reference(ref: str) -> str | Digest:
    if ":" in ref:
        return Digest(ref)
    if not TAG_RE.match(ref):
        raise PageNotFound(f"no tag {ref[:140]!r}")
    return ref


async def repo_pages(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    name, rest = _split_repo_path(request.match_info["path"])
    viewer.require(name)
    if not rest:
        return await _tags_page(request, viewer, name)
    if rest[0] == "m" and len(rest) == 2:
        return await _image_page(request, viewer, name, rest[1])
    if rest == ["referrers"]:
        return await _referrers_page(request, viewer, [name], name)
    raise PageNotFound(f"no such page: {request.path}")


async def _tags_page(request: web.Request, viewer: Viewer, name: str) -> tuple[str, Safe, str]:
    tags = await viewer.reg.storage.list_tags(name)
    if tags is None:
        raise PageNotFound(f"no repository {name!r} (or you may not pull it)")
    q = request.query.get("q", "").strip()
    if q:
        tags = [t for t in tags if q in t]
    per = _int(request, "n", PER_PAGE, 10, 500)
    pages = max(1, -(-len(tags) // per))
    pg = _int(request, "page", 1, 1, pages)
    rows = await _inv(request).tag_rows(name, tags[(pg - 1) * per:pg * per])
    host, tls = _host(request, viewer)
    return name, repo_body(name, rows, total=len(tags), page=pg, pages=pages, q=q, per=per, host=host,
                           tls=tls), "repositories"


async def _image_page(request: web.Request, viewer: Viewer, name: str, ref: str) -> tuple[str, Safe, str]:
    from .imagepage import image_body

    inv = _inv(request)
    view = await inv.manifest(name, _reference(ref))
    m = view.manifest
    summary = await inv.summary(name, view) if m is not None else None
    graph = None
    if m is not None:
        root = await inv.graph(name, view, lambda kind, d: manifest_href(name, d) if kind == "manifest"
                               else blob_href(d))
        if ":" not in ref:
            root.label = root.label or ref  # the tag the page was opened by
        graph = render_svg(root)
    cfg = await inv.config(name, m.config) if isinstance(m, ImageManifest) else None
    referrers = await inv.referrers(name, view.digest)
    host, tls = _host(request, viewer)
    return f"{name} {ref}", image_body(name, ref, view, summary, graph, cfg, referrers, host=host, tls=tls), \
        "repositories"


async def _referrers_page(request: web.Request, viewer: Viewer, repos: list[str], repo: str | None
                          ) -> tuple[str, Safe, str]:
    inv = _inv(request)
    want = request.query.get("type")
    groups: dict[str, list[ManifestView]] = {}
    for v in await inv.referrer_views(repos):
        assert v.manifest is not None
        atype = v.manifest.artifact_type or (v.manifest.config.media_type if isinstance(v.manifest, ImageManifest)
                                             else "") or "(no artifact type)"
        if want and atype != want:
            continue
        groups.setdefault(atype, []).append(v)
    return "Referrers", referrers_body(groups, repo), "referrers"


async def referrers_all(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    return await _referrers_page(request, viewer, await viewer.repos(), None)


async def blobs(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    inv = _inv(request)
    repos = await viewer.repos()
    per_repo = []
    every: set[Digest] = set()
    for r in repos:
        every |= (await inv.repo_size(r))[0]
        per_repo.append(await inv.repo_summary(r))
    total = sum([await inv.blob_bytes(d) for d in every])
    shared = []
    for d, uses in (await inv.usage(repos)).items():
        if len({(u.repo, u.manifest) for u in uses}) > 1 and any(u.role != "child" for u in uses):
            shared.append((d, await inv.blob_bytes(d), uses))
    shared.sort(key=lambda s: (-s[1] * (len(s[2]) - 1), str(s[0])))
    gc_allowed = set(repos) == set(await viewer.reg.storage.catalog())
    return "Blobs", blobs_body(per_repo, total, shared[:100], gc_allowed), "blobs"


async def blob(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    inv = _inv(request)
    digest = Digest(request.match_info["digest"])
    repos = await viewer.repos()
    uses = (await inv.usage(repos)).get(digest, [])
    if not uses:
        raise PageNotFound(f"no blob {digest} in a repository you may pull")
    return "Blob", blob_body(digest, await inv.blob_bytes(digest), uses), "blobs"


async def gc_preview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The dry run runs in the background (it walks the whole storage); the page shows its latest result."""
    storage = viewer.reg.storage
    if set(await viewer.repos()) != set(await storage.catalog()):
        raise PageNotFound("the gc preview needs pull access to every repository")
    untagged = request.query.get("untagged") == "1"
    previews = request.app[UI].gc
    entry = previews.get(untagged)
    if entry is None:
        entry = previews[untagged] = GcPreview()
    if entry.task is None and (entry.report is None or time.time() - entry.finished > GC_FRESH_SECONDS):
        entry.start(storage, untagged)
    if entry.report is None:
        return _html("Garbage collection", message_body("Garbage collection", entry.error or
                     "Computing the dry run\u2026 this page reloads by itself."), viewer, "blobs",
                     refresh=None if entry.error else 1)
    return _html("Garbage collection", gc_body(entry.report, untagged, entry.finished, entry.task is not None),
                 viewer, "blobs")


def _parse_image(text: str) -> tuple[str, str | Digest]:
    if "@" in text:
        name, _, ref = text.partition("@")
        return name, Digest(ref)
    name, sep, tag = text.rpartition(":")
    if not sep or "/" in tag:
        return text, "latest"
    return name, _reference(tag)


async def _compare_side(inv: Inventory, viewer: Viewer, text: str, platform: str) -> tuple[ManifestView, ConfigView]:
    name, ref = _parse_image(text)
    viewer.require(name)
    view = await inv.manifest(name, ref)
    if isinstance(view.manifest, ImageIndex):
        children = view.manifest.manifests
        pick = next((c for c in children if c.platform and str(c.platform) == platform), None) or \
            next((c for c in children if c.platform and str(c.platform) == "linux/amd64"), None) or \
            (children[0] if children else None)
        if pick is None:
            raise OcikitError(f"{text}: an empty index")
        view = await inv.manifest(name, pick.digest)
    if not isinstance(view.manifest, ImageManifest):
        raise OcikitError(f"{text}: {view.error or 'not an image manifest'}")
    return view, await inv.config(name, view.manifest.config)


async def compare(request: web.Request, viewer: Viewer) -> tuple[str, Safe, str]:
    from ...ops.imagediff import compare_configs, compare_layers
    from .imagepage import compare_body, compare_form

    a, b = request.query.get("a", "").strip(), request.query.get("b", "").strip()
    platform = request.query.get("platform", "").strip()
    if not a or not b:
        return "Compare", compare_form(a, b, platform), "compare"
    inv = _inv(request)
    (va, ca), (vb, cb) = [await _compare_side(inv, viewer, t, platform) for t in (a, b)]
    ma, mb = va.manifest, vb.manifest
    assert isinstance(ma, ImageManifest) and isinstance(mb, ImageManifest)
    da, db = ca.doc or {}, cb.doc or {}

    def ids(doc: dict) -> list[str]:  # type: ignore[type-arg]
        return [str(x) for x in ((doc.get("rootfs") or {}).get("diff_ids") or [])]
    layers = compare_layers(ma.layers, ids(da), mb.layers, ids(db))
    return "Compare", compare_body(a, b, platform, [(va, ca), (vb, cb)], layers,
                                   compare_configs(da, db)), "compare"


# --- sign-in --------------------------------------------------------------------------------


def _cookie_args(request: web.Request) -> dict[str, object]:
    return {"path": "/ui/", "httponly": True, "samesite": "Strict", "secure": request.secure or None}


def _login_form(request: web.Request, error: str | None, status: int) -> web.Response:
    token = session.new_login_token()
    resp = _html("Sign in", login_body(token, session.safe_next(request.query.get("next")), error), None, status=status)
    resp.set_cookie(session.LOGIN_COOKIE, token, **_cookie_args(request))  # type: ignore[arg-type]
    return resp


async def login_get(request: web.Request) -> web.StreamResponse:
    if request.app[REGISTRY].auth.mode == "none":
        raise web.HTTPSeeOther("/ui/")
    return _login_form(request, None, 200)


async def login_post(request: web.Request) -> web.StreamResponse:
    reg = request.app[REGISTRY]
    if reg.auth.mode == "none":
        raise web.HTTPSeeOther("/ui/")
    form = await request.post()
    if not session.origin_ok(request.headers.get("Origin"), request.scheme, request.host) or \
            not session.same_token(request.cookies.get(session.LOGIN_COOKIE), str(form.get("csrf", ""))):
        return _login_form(request, "The form expired; please sign in again.", 403)
    user, password = str(form.get("user", "")), str(form.get("password", ""))
    if not user or not await reg.auth.check_password(user, password):
        return _login_form(request, "Invalid user name or password.", 401)
    cookie, _ = session.issue(request.app[UI].key, user)
    resp = _redirect(session.safe_next(str(form.get("next", ""))))
    resp.set_cookie(session.SESSION_COOKIE, cookie, max_age=session.SESSION_SECONDS,
                    **_cookie_args(request))  # type: ignore[arg-type]
    resp.del_cookie(session.LOGIN_COOKIE, path="/ui/")
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    s = session.read(request.app[UI].key, request.cookies.get(session.SESSION_COOKIE))
    resp = _redirect("/ui/login")
    if s is not None and session.same_token(s.csrf, str(form.get("csrf", ""))) and \
            session.origin_ok(request.headers.get("Origin"), request.scheme, request.host):
        resp.del_cookie(session.SESSION_COOKIE, path="/ui/")
    return resp


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    data = request.app[UI].static.get(name)
    if data is None:
        raise web.HTTPNotFound()
    return web.Response(body=data, content_type=STATIC_TYPES[name],
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})


async def to_ui(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


def setup_ui(app: web.Application, registry: Registry) -> None:
    """Mount the UI under ``/ui/`` (call before the application's catch-all route)."""
    files = resources.files("ocikit.server.ui") / "static"
    app[UI] = UiState(Inventory(registry.storage), session.session_key(registry.auth.secret),
                      {n: (files / n).read_bytes() for n in STATIC_TYPES})
    async def warm(app: web.Application) -> None:
        state = app[UI]
        state.warming = asyncio.get_running_loop().create_task(state.inventory.warm())

    async def stop_warming(app: web.Application) -> None:
        if app[UI].warming is not None:
            app[UI].warming.cancel()
    app.on_startup.append(warm)
    app.on_cleanup.append(stop_warming)
    r = app.router
    r.add_get("/", to_ui)
    r.add_get("/ui", to_ui)
    r.add_get("/ui/", _page(repositories))
    r.add_get("/ui/static/{name}", static)
    r.add_get("/ui/login", login_get)
    r.add_post("/ui/login", login_post)
    r.add_post("/ui/logout", logout)
    r.add_get("/ui/r/{path:.+}", _page(repo_pages))
    r.add_get("/ui/blobs", _page(blobs))
    r.add_get("/ui/blobs/{digest}", _page(blob))
    r.add_get("/ui/gc", _page(gc_preview))
    r.add_get("/ui/referrers", _page(referrers_all))
    r.add_get("/ui/compare", _page(compare))

"""Page bodies: repositories, a repository's tags, blobs, gc preview, referrers, sign-in, not found.

Pure functions from data to :class:`~.markup.Safe` markup; the image and compare pages live in
:mod:`.imagepage`. Every value is escaped by the builder.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from ...digest import Digest
from ...model import ImageManifest
from ..gc import GcReport
from .commands import pull_commands
from .inventory import ManifestView, RepoSummary, TagRow, Use
from .markup import (
    Child,
    Safe,
    copy_line,
    digest_link,
    el,
    frag,
    human_size,
    repo_url,
    section,
    short_digest,
    short_type,
    table,
    url,
    when,
)


def manifest_href(repo: str, digest: object) -> str:
    return repo_url(repo, "m", str(digest))


def blob_href(digest: object) -> str:
    return "/ui/blobs/" + str(digest)


def repos_body(rows: Sequence[RepoSummary], q: str) -> Safe:
    search = el("form", el("input", type="search", name="q", value=q, placeholder="filter repositories",
                           id="filter", autocomplete="off", data_filter="#repos tbody tr"),
                el("button", "search", type="submit"), method="get", action="/ui/", class_="search")
    body_rows = [el("tr", el("td", el("a", r.name, href=repo_url(r.name))), el("td", r.tags, class_="num"),
                    el("td", human_size(r.size), class_="num"), el("td", when(r.last_push)), data_name=r.name)
                 for r in rows]
    tbl = el("table", el("thead", el("tr", el("th", "repository"), el("th", "tags"), el("th", "size"),
                                     el("th", "last push"))), el("tbody", body_rows), id="repos")
    empty = el("p", "No repositories match." if q else "No repositories yet: push one (see below).",
               class_="empty") if not rows else None
    return frag(el("h1", "Repositories"), search, tbl, empty)


def _pager(name: str, page: int, pages: int, q: str, per: int) -> Safe:
    if pages <= 1:
        return Safe("")
    shown = sorted({1, pages, *range(max(1, page - 2), min(pages, page + 2) + 1)})
    items: list[Child] = []
    if page > 1:
        items.append(el("a", "\u2190 previous", href=url(repo_url(name), page=page - 1, q=q, n=per), rel="prev"))
    last = 0
    for p in shown:
        if p - last > 1:
            items.append(el("span", "\u2026"))
        items.append(el("b", p) if p == page else el("a", p, href=url(repo_url(name), page=p, q=q, n=per)))
        last = p
    if page < pages:
        items.append(el("a", "next \u2192", href=url(repo_url(name), page=page + 1, q=q, n=per), rel="next"))
    return el("nav", items, class_="pager", aria_label="tag pages")


def _commands(host: str, repo: str, ref: str, index: bool, tls: bool, ident: str) -> list[Safe]:
    return [copy_line(cmd, f"{ident}-{label}") for label, cmd in pull_commands(host, repo, ref, index=index, tls=tls)]


def pull_block(host: str, repo: str, tag: str | None, digest: Digest, index: bool, tls: bool, ident: str) -> Safe:
    """Copy buttons for the pull commands, by tag (when there is one) and by digest."""
    parts: list[Child] = [el("p", "A tag can be moved to another image; a digest always names these exact bytes.",
                             class_="muted")]
    if tag is not None:
        parts += [el("h4", "by tag"), _commands(host, repo, tag, index, tls, f"{ident}-t")]
    parts += [el("h4", "by digest"), _commands(host, repo, str(digest), index, tls, f"{ident}-d")]
    return el("div", parts, class_="pull")


def repo_body(name: str, rows: Sequence[TagRow], *, total: int, page: int, pages: int, q: str, per: int,
              host: str, tls: bool) -> Safe:
    search = el("form", el("input", type="search", name="q", value=q, placeholder="filter tags"),
                el("input", type="hidden", name="n", value=per), el("button", "filter", type="submit"),
                method="get", action=repo_url(name), class_="search")
    trs = []
    for i, r in enumerate(rows):
        s = r.summary
        index = bool(s and s.media_type.endswith(("index.v1+json", "list.v2+json")))
        pull = el("details", el("summary", "pull"), pull_block(host, name, r.tag, r.digest, index, tls, f"p{i}")) \
            if r.digest is not None else ""
        trs.append(el("tr",
                      el("td", el("a", r.tag, href=repo_url(name, "m", r.tag)), class_="tag"),
                      el("td", digest_link(str(r.digest), manifest_href(name, r.digest)) if r.digest else "\u2014"),
                      el("td", short_type(s.media_type) if s else "missing", title=s.media_type if s else None),
                      el("td", ", ".join(s.platforms) if s and s.platforms else
                         (s.artifact_type or "\u2014") if s else "\u2014"),
                      el("td", human_size(s.size) if s else "?", class_="num"),
                      el("td", (s.created or "\u2014") if s else "\u2014"),
                      el("td", when(r.pushed)), el("td", pull)))
    tbl = el("table", el("thead", el("tr", [el("th", h) for h in ("tag", "digest", "media type", "platforms",
                                                                   "size", "created", "pushed", "")])),
             el("tbody", trs), id="tags")
    first = (page - 1) * per
    count = el("p", f"{total} tags" + (f" matching \u201c{q}\u201d" if q else "") +
               (f"; showing {first + 1}\u2013{first + len(rows)}" if rows else ""), class_="muted")
    links = el("p", el("a", "referrers in this repository", href=repo_url(name, "referrers")), " \u00b7 ",
               el("a", "compare two tags", href=url("/ui/compare", a=f"{name}:{rows[0].tag}" if rows else None,
                                                  b=f"{name}:{rows[1].tag}" if len(rows) > 1 else None)))
    return frag(el("h1", name), links, search, count, _pager(name, page, pages, q, per), tbl,
                _pager(name, page, pages, q, per))


def _uses(uses: Sequence[Use], limit: int = 8) -> Safe:
    items = [el("li", el("a", f"{u.repo}@{short_digest(str(u.manifest))}", href=manifest_href(u.repo, u.manifest)),
                f" ({u.role})") for u in uses[:limit]]
    more = el("li", f"\u2026 and {len(uses) - limit} more") if len(uses) > limit else None
    return el("ul", items, more, class_="uses")


def blobs_body(per_repo: Sequence[RepoSummary], total_unique: int, shared: Sequence[tuple[Digest, int, list[Use]]],
               gc_allowed: bool) -> Safe:
    summed = sum(r.size for r in per_repo)
    storage = section("Storage per repository", table(
        ("repository", "tags", "size"),
        [(el("a", r.name, href=repo_url(r.name)), r.tags, human_size(r.size)) for r in per_repo]),
        el("p", f"Total: {human_size(total_unique)} stored once for {len(per_repo)} repositories "
                f"(the repositories add up to {human_size(summed)}; sharing saves {human_size(summed - total_unique)})."))
    rows = [(digest_link(str(d), blob_href(d)), human_size(size), len({(u.repo, u.manifest) for u in uses}),
             _uses(uses)) for d, size, uses in shared]
    shared_s = section("Blobs shared by more than one image", table(("blob", "size", "images", "used by"), rows)
                       if rows else el("p", "No blob is used by two images.", class_="empty"))
    gc = section("Garbage collection", el("p", el("a", "What would gc free? (dry run, removes nothing)", href="/ui/gc"))
                 if gc_allowed else el("p", "The gc preview needs pull access to every repository.", class_="muted"))
    return frag(el("h1", "Blobs"), storage, shared_s, gc)


def blob_body(digest: Digest, size: int, uses: Sequence[Use]) -> Safe:
    rows = [(el("a", u.repo, href=repo_url(u.repo)), digest_link(str(u.manifest), manifest_href(u.repo, u.manifest)),
             u.role) for u in uses]
    return frag(el("h1", "Blob"), el("p", el("code", str(digest))),
                el("p", f"{human_size(size)} ({size} bytes); named by {len(uses)} manifest(s)"),
                section("Used by", table(("repository", "manifest", "as"), rows)))


def gc_body(report: GcReport, untagged: bool, computed: float, refreshing: bool) -> Safe:
    toggle = el("a", "preview without --untagged" if untagged else "preview with --untagged (manifests no tag reaches)",
                href=url("/ui/gc", untagged="1" if not untagged else None))
    blobs = table(("blob",), [(el("code", str(d)),) for d in report.blobs[:200]]) if report.blobs else \
        el("p", "No blob would be removed.", class_="empty")
    manifests = table(("repository", "manifest"), [(r, el("code", str(d))) for r, d in report.manifests[:200]]) \
        if report.manifests else el("p", "No manifest would be removed.", class_="empty")
    return frag(
        el("h1", "Garbage collection \u2014 dry run"),
        el("p", "What ", el("code", "ocikit registry gc --dry-run" + (" --untagged" if untagged else "")),
           " would remove now (content younger than the 1 h grace period is kept). Nothing is removed here."),
        el("p", f"Computed {when(computed)}" + ("; a newer run is under way." if refreshing else "."),
           " ", toggle, class_="muted"),
        el("p", el("b", f"{human_size(report.bytes_freed)} in {len(report.blobs)} blobs"),
           f"; {len(report.manifests)} manifests, {len(report.links)} repository links, "
           f"{len(report.uploads)} stale upload sessions; {report.blobs_kept} blobs kept.", class_="summary"),
        section("Blobs", blobs), section("Manifests", manifests))


def annotations_list(annotations: Any) -> Safe:
    if not annotations:
        return Safe("\u2014")
    return el("ul", [el("li", el("code", k), " = ", str(v)) for k, v in sorted(dict(annotations).items())],
              class_="annotations")


def referrers_body(groups: dict[str, list[ManifestView]], repo: str | None) -> Safe:
    parts: list[Child] = [el("h1", "Referrers" + (f" in {repo}" if repo else "")),
                          el("p", "Signatures, SBOMs and attestations: manifests whose ",
                             el("code", "subject"), " names another manifest, by artifact type.", class_="muted")]
    if not groups:
        parts.append(el("p", "No referrers.", class_="empty"))
    for atype in sorted(groups):
        rows = []
        for v in groups[atype]:
            m = v.manifest
            assert m is not None and m.subject is not None
            subj = m.subject.digest
            rows.append((el("a", v.repo, href=repo_url(v.repo)), digest_link(str(v.digest), manifest_href(v.repo, v.digest)),
                         digest_link(str(subj), manifest_href(v.repo, subj)),
                         human_size(len(v.raw) + (m.config.size + sum(x.size for x in m.layers)
                                                   if isinstance(m, ImageManifest) else 0)),
                         annotations_list(m.annotations)))
        parts.append(el("section", el("h2", atype, class_="atype"),
                        table(("repository", "referrer", "subject", "size", "annotations"), rows)))
    return frag(parts)


def login_body(csrf: str, next_url: str, error: str | None) -> Safe:
    return frag(el("h1", "Sign in"),
                el("p", error, class_="error") if error else None,
                el("form", el("input", type="hidden", name="csrf", value=csrf),
                   el("input", type="hidden", name="next", value=next_url),
                   el("label", "user", el("input", name="user", autocomplete="username", required=True)),
                   el("label", "password", el("input", name="password", type="password",
                                              autocomplete="current-password", required=True)),
                   el("button", "sign in", type="submit"), method="post", action="/ui/login", class_="login"),
                el("p", "Use the credentials of this registry (its htpasswd file); the UI shows what they may pull.",
                   class_="muted"))


def message_body(title: str, message: str, detail: Iterable[Child] = ()) -> Safe:
    return frag(el("h1", title), el("p", message, class_="error"), *detail,
                el("p", el("a", "back to the repositories", href="/ui/")))

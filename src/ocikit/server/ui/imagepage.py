"""The image page (graph, config, layers, history, referrers, raw bytes) and the compare page.

Seed 000's lesson: an index points to one manifest per platform, each manifest to a config
(whose digest is the image ID) and layers, and the digest of a manifest is the sha256 of its
exact bytes. Seed 002's: two versions of an image share their bottom layers. These pages
draw exactly that. Pure functions of data; every value is escaped by the builder.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from ...digest import Digest
from ...model import ImageIndex, ImageManifest
from .inventory import ConfigView, ImageSummary, ManifestView
from .markup import Child, Safe, digest_link, dl, el, frag, human_size, repo_url, section, short_digest, short_type, table
from .pages import annotations_list, blob_href, manifest_href, pull_block

CONFIG_FIELDS = ("Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "StopSignal")


def _show(value: Any) -> str:
    if value is None:
        return "\u2014"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def raw_block(raw: bytes, digest: Digest, what: str) -> Safe:
    """The exact bytes, and the digest they hash to (compared with the stored one)."""
    actual = Digest.of(raw, digest.algorithm)
    note = el("p", f"The digest is the {digest.algorithm} of exactly these bytes (re-encoding them would change it). "
                   f"{digest.algorithm} of these {len(raw)} bytes: ", el("code", str(actual), class_="rawdigest"),
              " \u2014 matches" if actual == digest else el("b", " \u2014 does NOT match the stored digest"),
              class_="muted")
    return el("div", note, el("pre", raw.decode("utf-8", errors="replace"), class_="raw"), class_="rawwrap",
              data_what=what)


def config_section(cfg: ConfigView) -> Safe:
    if cfg.doc is None:
        return section("Config", el("p", f"{short_type(cfg.media_type)} {short_digest(str(cfg.digest))}: ",
                                    cfg.error or "not an image config (an artifact's config)", class_="muted"),
                       raw_block(cfg.raw, cfg.digest, "config") if cfg.raw is not None else None, ident="config")
    doc = cfg.doc
    c = doc.get("config") or {}
    env = c.get("Env") or []
    labels = c.get("Labels") or {}
    items: list[tuple[str, Child]] = [
        ("image ID", el("code", str(cfg.digest), title="the sha256 of the config's bytes")),
        ("platform", "/".join(str(doc.get(k)) for k in ("os", "architecture", "variant") if doc.get(k))),
        ("created", _show(doc.get("created"))),
    ]
    items += [(k, el("code", _show(c.get(k)))) for k in CONFIG_FIELDS if c.get(k) is not None]
    items.append(("Env", el("ul", [el("li", el("code", str(e))) for e in env], class_="env") if env else "\u2014"))
    items.append(("Labels", annotations_list(labels)))
    history = doc.get("history") or []
    hist_rows = [(i, _show(h.get("created")), el("code", _show(h.get("created_by")), class_="wrap"),
                  "yes" if h.get("empty_layer") else "", _show(h.get("comment")) if h.get("comment") else "")
                 for i, h in enumerate(history) if isinstance(h, dict)]
    note = el("p", "The image ID is the sha256 of the config's bytes. The config says how to run the image and "
                   "lists the diff_id of each layer (the sha256 of its uncompressed tar).", class_="muted")
    return frag(section("Config", note, dl(items), el("details", el("summary", "raw config"),
                                                raw_block(cfg.raw or b"", cfg.digest, "config")), ident="config"),
                section("History", table(("#", "created", "created by", "empty layer", "comment"), hist_rows)
                        if hist_rows else el("p", "No history.", class_="empty"), ident="history"))


def _referrers_section(referrers: Sequence[dict[str, Any]], repo: str) -> Safe:
    if not referrers:
        return section("Referrers", el("p", "No signature, SBOM or attestation refers to this manifest.",
                                       class_="empty"), ident="referrers")
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in referrers:
        groups.setdefault(str(r.get("artifactType") or "(no artifact type)"), []).append(r)
    parts = [el("div", el("h3", atype, class_="atype"), table(
        ("referrer", "media type", "size", "annotations"),
        [(digest_link(str(r.get("digest")), manifest_href(repo, r.get("digest"))), short_type(str(r.get("mediaType"))),
          human_size(r.get("size") if isinstance(r.get("size"), int) else None), annotations_list(r.get("annotations")))
         for r in rs])) for atype, rs in sorted(groups.items())]
    return section("Referrers", parts, ident="referrers")


def image_body(repo: str, ref: str, view: ManifestView, summary: ImageSummary | None, graph: Safe | None,
               cfg: ConfigView | None, referrers: Sequence[dict[str, Any]], *, host: str, tls: bool) -> Safe:
    m = view.manifest
    tag = None if ":" in ref else ref
    title = f"{repo}:{ref}" if tag else f"{repo}@{short_digest(ref)}"
    facts: list[tuple[str, Child]] = [
        ("repository", el("a", repo, href=repo_url(repo))),
        ("digest", el("code", str(view.digest))),
        ("media type", el("code", view.media_type)),
        ("manifest size", f"{len(view.raw)} bytes"),
    ]
    if summary is not None:
        facts += [("total size", human_size(summary.size)), ("platforms", ", ".join(summary.platforms) or "\u2014"),
                  ("created", summary.created or "\u2014")]
    if m is not None and m.artifact_type:
        facts.append(("artifact type", el("code", m.artifact_type)))
    if m is not None and m.subject is not None:
        facts.append(("subject", frag(digest_link(str(m.subject.digest), manifest_href(repo, m.subject.digest)),
                                      " (this manifest refers to it)")))
    parts: list[Child] = [el("h1", title), dl(facts)]
    if m is None:
        parts.append(el("div", el("h2", "This manifest cannot be parsed"), el("p", view.error, class_="error"),
                        class_="problem"))
        parts.append(section("Raw manifest", raw_block(view.raw, view.digest, "manifest"), ident="raw"))
        return frag(parts)
    parts.append(el("details", el("summary", "pull commands"),
                    pull_block(host, repo, tag, view.digest, isinstance(m, ImageIndex), tls, "img")))
    if graph is not None:
        parts.append(section("Graph", el("div", graph, class_="graphwrap"),
                             el("p", "index \u2192 platform manifests \u2192 config and layers; dashed arrows: "
                                     "referrers pointing at their subject. Click a node to open it.",
                                class_="muted"), ident="graph"))
    if isinstance(m, ImageIndex):
        rows = [(str(d.platform) if d.platform else (d.artifact_type or "\u2014"),
                 digest_link(str(d.digest), manifest_href(repo, d.digest)), short_type(d.media_type),
                 human_size(d.size), annotations_list(d.annotations)) for d in m.manifests]
        parts.append(section("Manifests", el("p", "An index (a \u201cfat manifest\u201d) names one manifest per "
                                                  "platform; a client pulls the one that matches its own.",
                                                  class_="muted"),
                             table(("platform", "manifest", "media type", "size", "annotations"), rows),
                             ident="children"))
    elif isinstance(m, ImageManifest):
        diff_ids = list(((cfg.doc or {}).get("rootfs") or {}).get("diff_ids") or []) if cfg else []
        rows = [(i, digest_link(str(x.digest), blob_href(x.digest)), short_type(x.media_type), human_size(x.size),
                 el("code", short_digest(diff_ids[i]), title=diff_ids[i]) if i < len(diff_ids) else "\u2014")
                for i, x in enumerate(m.layers)]
        parts.append(section("Layers", el("p", "Applied bottom (0) to top. The blob digest is of the bytes as stored "
                                               "(usually gzip); the diff_id of the tar inside.", class_="muted"),
                             table(("#", "blob", "media type", "size", "diff_id (of the tar)"), rows)
                             if rows else el("p", "No layers.", class_="empty"), ident="layers"))
        if cfg is not None:
            parts.append(config_section(cfg))
    parts.append(section("Annotations", annotations_list(m.annotations), ident="annotations"))
    parts.append(_referrers_section(referrers, repo))
    parts.append(section("Raw manifest", raw_block(view.raw, view.digest, "manifest"), ident="raw"))
    return frag(parts)


# --- compare ----------------------------------------------------------------------------------


def compare_form(a: str, b: str, platform: str) -> Safe:
    return el("form", el("label", "A ", el("input", name="a", value=a, placeholder="repo:tag or repo@digest",
                                              required=True)),
              el("label", "B ", el("input", name="b", value=b, placeholder="repo:tag or repo@digest", required=True)),
              el("label", "platform ", el("input", name="platform", value=platform, placeholder="linux/amd64")),
              el("button", "compare", type="submit"), method="get", action="/ui/compare", class_="compare")


def _layer_cell(row: Any) -> Safe:
    if row is None:
        return Safe("")
    return frag(digest_link(row.digest, blob_href(row.digest)), " ", human_size(row.size), el("br"),
                el("small", "diff_id ", el("code", short_digest(row.diff_id), title=row.diff_id)))


def compare_body(a: str, b: str, platform: str, sides: Sequence[tuple[ManifestView, ConfigView]],
                 layers: Any, changes: Sequence[Any]) -> Safe:
    """Side by side: layers matched by diff_id (``ops.imagediff.compare_layers``), config changes."""
    (va, ca), (vb, cb) = sides
    heads = [frag(el("a", f"{v.repo}@{short_digest(str(v.digest))}", href=manifest_href(v.repo, v.digest)))
             for v in (va, vb)]
    n = max(len(layers.a), len(layers.b))
    rows = []
    for i in range(n):
        ra = layers.a[i] if i < len(layers.a) else None
        rb = layers.b[i] if i < len(layers.b) else None
        same = ra is not None and rb is not None and ra.diff_id == rb.diff_id
        mark = "same" if same else ("shared" if (ra and ra.shared) or (rb and rb.shared) else "differs")
        rows.append(el("tr", el("td", i), el("td", _layer_cell(ra)), el("td", mark, class_="mark"),
                       el("td", _layer_cell(rb)), class_=mark))
    ltable = el("table", el("thead", el("tr", el("th", "#"), el("th", "A: ", heads[0]), el("th", ""),
                                        el("th", "B: ", heads[1]))), el("tbody", rows), class_="side")
    summary = el("p", el("b", f"{layers.shared} of {len(layers.a)} layers of A are in B"),
                 f"; the bottom {layers.common_prefix} layers are the same stack.", class_="summary")
    lesson = el("p", "Layers match by diff_id (the same tar, whatever its compression). Images built on the same "
                     "base share its layers: the registry stores them once, and a pull fetches only what it lacks.",
                class_="muted")
    da, db = (ca.doc or {}), (cb.doc or {})
    ctable = table(("field", "A", "B"), [(el("code", ch.field), el("code", _show(ch.a)), el("code", _show(ch.b)))
                                        for ch in changes]) if changes else el("p", "The configs match.", class_="empty")
    same_rows = [(el("code", k), el("code", _show((da.get("config") or {}).get(k))))
                 for k in CONFIG_FIELDS if (da.get("config") or {}).get(k) == (db.get("config") or {}).get(k)
                 and (da.get("config") or {}).get(k) is not None]
    return frag(el("h1", "Compare"), compare_form(a, b, platform), summary, lesson,
                section("Layers", ltable, ident="layers"),
                section("Config fields that differ", ctable, ident="config-diff"),
                section("Config fields that are the same", table(("field", "value"), same_rows)
                        if same_rows else el("p", "\u2014"), ident="config-same"))

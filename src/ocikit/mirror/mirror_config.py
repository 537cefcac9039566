"""The mirror configuration (YAML): which images to mirror and how. Pure parsing, no I/O.

The minimal form::

    images:
      - source: docker://quay.io/openshift-examples/multi-arch:multi
      - source: docker://registry.example:5000/library/httpd:2.4.48

Each entry may add ``tags`` (several), ``digest``/``digests``, ``all-tags``, ``include`` /
``exclude`` (regexes), ``semver`` (a range), ``newest`` (N), ``platforms`` with an explicit
``platform-mode`` (``sparse``: keep the original index digest; ``rewrite``: a filtered index),
``referrers`` (default true) and ``destination`` (a path under the target prefix). A top-level
``rewrite`` list maps source repository prefixes to destination paths.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..core.digest import Digest
from ..core.errors import DigestInvalid, InvalidPlatform, InvalidReference, UsageError
from ..core.platforms import Platform, parse_platform
from ..core.reference import Reference, validate_repository_name
from ..core.transportref import TransportReference, parse_transport_reference
from .semver import SemverRange, parse_range, parse_version

PLATFORM_MODES = ("sparse", "rewrite")
_ENTRY_KEYS = {"source", "tags", "digest", "digests", "all-tags", "include", "exclude", "semver", "newest",
               "platforms", "platform-mode", "referrers", "destination"}
_TOP_KEYS = {"images", "rewrite"}


@dataclass(frozen=True)
class RewriteRule:
    """Images whose repository starts with ``source`` (a whole path-component prefix) land at ``destination``."""

    source: str
    destination: str

    def apply(self, repository: str) -> str | None:
        if repository == self.source:
            return self.destination
        if repository.startswith(self.source + "/"):
            rest = repository[len(self.source) + 1:]
            return f"{self.destination}/{rest}" if self.destination else rest
        return None


@dataclass(frozen=True)
class ImageEntry:
    """One ``images[]`` entry, checked."""

    source: TransportReference
    tags: tuple[str, ...] = ()
    digests: tuple[Digest, ...] = ()
    all_tags: bool = False
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    semver: SemverRange | None = None
    newest: int | None = None
    platforms: tuple[Platform, ...] = ()
    platform_mode: str | None = None
    referrers: bool = True
    destination: str | None = None
    where: str = ""
    """``images[3]``: where the entry is in the file, for messages."""
    source_selector: str | None = None
    """The tag or digest written in ``source`` itself (None when none was written)."""

    @property
    def needs_tag_list(self) -> bool:
        """True when the tags come from listing the repository (all-tags, regex, semver, newest)."""
        return self.all_tags or bool(self.include or self.exclude) or self.semver is not None \
            or self.newest is not None

    @property
    def repository(self) -> str:
        """``host/path`` for a docker source; the layout path for a local one."""
        if self.source.image is not None:
            return self.source.image.name
        return self.source.path

    @property
    def explicit_selectors(self) -> list[str]:
        """Tags and digests named outright: the source's own (when written), ``tags``, ``digests``.

        A docker source with nothing named and no tag listing means ``latest``.
        """
        out: list[str] = [self.source_selector] if self.source_selector else []
        out += [t for t in self.tags if t not in out]
        out += [str(d) for d in self.digests if str(d) not in out]
        if not out and not self.needs_tag_list and self.source.image is not None:
            out.append("latest")
        return out


@dataclass(frozen=True)
class MirrorConfig:
    images: tuple[ImageEntry, ...]
    rewrite: tuple[RewriteRule, ...] = ()
    path: str = ""


def _fail(path: str, where: str, message: str) -> UsageError:
    return UsageError(f"{path or 'mirror config'}: {where}: {message}")


def _str_list(value: Any, path: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if not isinstance(value, list):
        raise _fail(path, where, f"expected a string or a list of strings, got {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise _fail(path, f"{where}[{i}]", f"expected a string, got {type(v).__name__}")
        out.append(str(v))
    return out


def _regexes(value: Any, path: str, where: str) -> tuple[re.Pattern[str], ...]:
    out = []
    for i, s in enumerate(_str_list(value, path, where)):
        try:
            out.append(re.compile(s))
        except re.error as e:
            raise _fail(path, f"{where}[{i}]", f"bad regular expression {s!r}: {e}") from None
    return tuple(out)


def _parse_source(value: Any, path: str, where: str) -> tuple[TransportReference, str | None]:
    if not isinstance(value, str) or not value:
        raise _fail(path, where, "required: a docker:// or oci: reference")
    try:
        ref = parse_transport_reference(value, default_transport="docker")
    except InvalidReference as e:
        raise _fail(path, where, str(e)) from None
    if ref.transport not in ("docker", "oci"):
        raise _fail(path, where, f"{ref.transport}: sources are docker:// or oci: references")
    if ref.transport == "docker":
        assert ref.image is not None
        if ref.image.digest:
            return ref, str(ref.image.digest)
        # parse_reference fills in "latest" when no tag is written: tell the two apart
        body = value.split("://", 1)[1] if "://" in value else value
        written = ":" in body.rsplit("/", 1)[-1]
        return ref, (ref.image.tag if written else None)
    return ref, (str(ref.digest) if ref.digest else ref.reference)


def parse_entry(doc: Any, path: str, where: str) -> ImageEntry:
    """Check one ``images[]`` entry."""
    if isinstance(doc, str):
        doc = {"source": doc}
    if not isinstance(doc, dict):
        raise _fail(path, where, f"expected a mapping with 'source', got {type(doc).__name__}")
    unknown = sorted(set(doc) - _ENTRY_KEYS)
    if unknown:
        raise _fail(path, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_ENTRY_KEYS))})")
    source, selector = _parse_source(doc.get("source"), path, f"{where}.source")
    tags = tuple(_str_list(doc.get("tags", []), path, f"{where}.tags"))
    from ..core.reference import validate_tag
    for i, t in enumerate(tags):
        try:
            validate_tag(t)
        except InvalidReference as e:
            raise _fail(path, f"{where}.tags[{i}]", str(e)) from None
    digests: list[Digest] = []
    for key in ("digest", "digests"):
        for i, d in enumerate(_str_list(doc.get(key, []), path, f"{where}.{key}")):
            try:
                digests.append(Digest(d))
            except DigestInvalid as e:
                raise _fail(path, f"{where}.{key}", str(e)) from None
    all_tags = doc.get("all-tags", False)
    if not isinstance(all_tags, bool):
        raise _fail(path, f"{where}.all-tags", "expected true or false")
    semver = None
    if doc.get("semver") is not None:
        try:
            semver = parse_range(str(doc["semver"]))
        except ValueError as e:
            raise _fail(path, f"{where}.semver", str(e)) from None
    newest = doc.get("newest")
    if newest is not None and (isinstance(newest, bool) or not isinstance(newest, int) or newest < 1):
        raise _fail(path, f"{where}.newest", "expected a positive integer")
    platforms: list[Platform] = []
    for i, p in enumerate(_str_list(doc.get("platforms", []), path, f"{where}.platforms")):
        if p in ("all", "*"):
            continue
        try:
            platforms.append(parse_platform(p))
        except InvalidPlatform as e:
            raise _fail(path, f"{where}.platforms[{i}]", str(e)) from None
    mode = doc.get("platform-mode")
    if mode is not None and mode not in PLATFORM_MODES:
        raise _fail(path, f"{where}.platform-mode", f"expected one of {', '.join(PLATFORM_MODES)}, got {mode!r}")
    if platforms and mode is None:
        raise _fail(path, f"{where}.platform-mode",
                    "required with a platforms subset: 'sparse' keeps the original index digest (only the "
                    "chosen children are copied), 'rewrite' writes a filtered index with a new digest")
    if mode is not None and not platforms:
        raise _fail(path, f"{where}.platform-mode", "only meaningful with a platforms subset")
    referrers = doc.get("referrers", True)
    if not isinstance(referrers, bool):
        raise _fail(path, f"{where}.referrers", "expected true or false")
    dest = doc.get("destination")
    if dest is not None:
        if not isinstance(dest, str):
            raise _fail(path, f"{where}.destination", "expected a repository path")
        dest = dest.strip("/")
        try:
            validate_repository_name(dest)
        except InvalidReference as e:
            raise _fail(path, f"{where}.destination", str(e)) from None
    entry = ImageEntry(source, tags, tuple(digests), all_tags, _regexes(doc.get("include", []), path,
                       f"{where}.include"), _regexes(doc.get("exclude", []), path, f"{where}.exclude"), semver,
                       newest, tuple(platforms), mode, referrers, dest, where, selector)
    if source.transport == "oci" and dest is None:
        base = os.path.basename(os.path.normpath(source.path)).lower()
        try:
            validate_repository_name(base)
        except InvalidReference:
            raise _fail(path, f"{where}.destination",
                        f"required for a local source whose directory name {base!r} is not a repository name") \
                from None
    if source.digest or (source.image is not None and source.image.digest):
        if entry.needs_tag_list:
            raise _fail(path, where, "a source pinned by digest cannot also select tags")
    if not entry.explicit_selectors and not entry.needs_tag_list:
        raise _fail(path, where, "name a tag or digest in source, or select tags (tags, all-tags, include, ...)")
    return entry


def parse_config(doc: Any, path: str = "") -> MirrorConfig:
    """Check a decoded YAML document; every error names the key path."""
    if not isinstance(doc, dict):
        raise _fail(path, "top level", "expected a mapping with 'images'")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    images = doc.get("images")
    if not isinstance(images, list) or not images:
        raise _fail(path, "images", "required: a non-empty list")
    entries = tuple(parse_entry(e, path, f"images[{i}]") for i, e in enumerate(images))
    rules: list[RewriteRule] = []
    raw_rules = doc.get("rewrite") or []
    if not isinstance(raw_rules, list):
        raise _fail(path, "rewrite", "expected a list of {from, to}")
    for i, r in enumerate(raw_rules):
        if not isinstance(r, dict) or set(r) != {"from", "to"}:
            raise _fail(path, f"rewrite[{i}]", "expected a mapping with exactly 'from' and 'to'")
        src, dst = r["from"], r["to"]
        if not isinstance(src, str) or not src.strip("/"):
            raise _fail(path, f"rewrite[{i}].from", "expected a repository prefix such as quay.io/org")
        if not isinstance(dst, str):
            raise _fail(path, f"rewrite[{i}].to", "expected a destination path (may be empty)")
        dst = dst.strip("/")
        if dst:
            try:
                validate_repository_name(dst)
            except InvalidReference as e:
                raise _fail(path, f"rewrite[{i}].to", str(e)) from None
        rules.append(RewriteRule(src.strip("/"), dst))
    return MirrorConfig(entries, tuple(rules), path)


def load_config(path: str) -> MirrorConfig:
    """Read and check a YAML mirror configuration file.

    libyaml's safe loader where PyYAML has it (a 1,000-image config parses ~10x faster than in
    pure Python: a no-op re-run's start-up), the pure-Python one otherwise; both safe."""
    import yaml

    loader = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
    try:
        with open(path, "rb") as f:
            doc = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML: {e}") from None
    return parse_config(doc, path)


# ---- pure selection and naming ----------------------------------------------------------------


def select_tags(entry: ImageEntry, available: Sequence[str]) -> list[str]:
    """The tags of a listed repository an entry selects, in a stable order.

    include/exclude filter by regex (``re.search``); ``semver`` keeps tags that parse as
    versions inside the range; ``newest`` keeps the N highest versions (tags that do not parse
    as versions are not ordered and are dropped by ``newest``). Without ``all-tags`` and any
    filter the explicit tags alone are returned.
    """
    picked = list(available) if entry.needs_tag_list else []
    if entry.include:
        picked = [t for t in picked if any(r.search(t) for r in entry.include)]
    if entry.exclude:
        picked = [t for t in picked if not any(r.search(t) for r in entry.exclude)]
    if entry.semver is not None:
        picked = [t for t in picked if (v := parse_version(t)) is not None and entry.semver.contains(v)]
    if entry.newest is not None:
        versioned = [(v, t) for t in picked if (v := parse_version(t)) is not None]
        versioned.sort(key=lambda vt: (vt[0], vt[1]), reverse=True)
        picked = [t for _, t in versioned[:entry.newest]]
    else:
        picked = sorted(picked)
    return picked


def destination_path(entry: ImageEntry, rules: Sequence[RewriteRule]) -> str:
    """Where an entry's images land under the target prefix: ``host/path/name`` -> ``path/name``.

    ``destination`` on the entry wins; else the first rewrite rule that matches; else the
    source repository without its host.
    """
    if entry.destination:
        return entry.destination
    if entry.source.image is not None:
        ref: Reference = entry.source.image
        for rule in rules:
            got = rule.apply(ref.name)
            if got is not None:
                if not got:
                    raise UsageError(f"rewrite rule {rule.source!r} -> {rule.destination!r} leaves "
                                     f"{ref.name} with an empty path")
                return got
        return ref.path
    return os.path.basename(os.path.normpath(entry.source.path)).lower()


def join_prefix(prefix: str, path: str) -> str:
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path


__all__ = ["ImageEntry", "MirrorConfig", "PLATFORM_MODES", "RewriteRule", "destination_path", "join_prefix",
           "load_config", "parse_config", "parse_entry", "select_tags"]

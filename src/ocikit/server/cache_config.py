"""The cache-and-keeper sections of the server YAML: ``proxy:``, ``retention:``, ``notifications:``.

Example::

    proxy:
      - prefix: hub                       # LOCAL/hub/library/httpd -> upstream library/httpd
        upstream: docker://127.0.0.1:5001  # docker://HOST[/PREFIX]
        tls-verify: false
        cert-dir: /etc/ocikit/certs.d/upstream   # optional CA / client certificates
        auth-file: /etc/ocikit/auth.json         # optional; default: the usual credential files
        retries: 2
        tag-ttl: 5m                        # re-check a tag upstream after this long
    retention:                             # or a list of rules (applied by `ocikit registry gc` only)
      schedule: 24h                        # also applied inside the server this often, or at the
                                           # times of a cron expression (UTC): "30 3 * * *"
      rules:
      - repository: "team/*"
        keep-last: 10                      # the 10 most recently pushed tags
        keep-tags: ["^v[0-9]+$"]           # and every tag matching one of these
        keep-pulled-within: 30d            # and every tag pulled within this period
        untagged-for: 7d                   # untagged manifests go after this long
        allowEmpty: false                  # refuse a rule that would delete every tag
    notifications:
      - url: http://127.0.0.1:9000/events
        events: [push, delete]             # default: every kind
        retries: 3
        timeout: 5s

Parsing is pure: a bad entry is a one-line :class:`~ocikit.core.errors.UsageError` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..core.cron import CronSchedule
from ..core.errors import CronInvalid, UsageError
from ..core.reference import validate_repository_name
from .serve_config import _number, _optional_text

EVENT_KINDS = ("push", "delete", "pull", "proxy.fetch", "sync.done", "gc.done")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, path: str) -> float:
    """``30s``, ``10m``, ``2h``, ``7d``, ``1w`` or a number of seconds (non-negative)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"config: {path}: expected a duration like 30s, 10m, 2h, 7d")
    text = str(value).strip()
    scale = 1
    if text and text[-1] in _UNITS:
        scale, text = _UNITS[text[-1]], text[:-1]
    try:
        number = float(text) * scale
    except ValueError:
        raise UsageError(f"config: {path}: {str(value)[:40]!r} is not a duration (30s, 10m, 2h, 7d)") from None
    if not 0 <= number < 1e10:
        raise UsageError(f"config: {path}: out of range")
    return number


def parse_cron(value: Any, path: str) -> CronSchedule:
    """A cron expression (five fields, UTC, or a macro such as ``@daily``); errors name ``path``."""
    try:
        return CronSchedule.parse(value)
    except CronInvalid as err:
        raise CronInvalid(f"config: {path}: {err}") from None


def parse_when(value: Any, path: str) -> float | CronSchedule:
    """A duration (``30s``, ``24h``, seconds) or a cron expression: text of several fields, or an ``@`` macro."""
    if isinstance(value, str) and (value.strip().startswith("@") or len(value.split()) > 1):
        return parse_cron(value, path)
    return parse_duration(value, path)


def _entries(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise UsageError(f"config: {key}: expected a list of mappings")
    return value


def _known(entry: dict[str, Any], path: str, keys: set[str]) -> None:
    unknown = set(entry) - keys
    if unknown:
        raise UsageError(f"config: {path}: unknown keys {sorted(map(str, unknown))}")


# ---- proxy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyEntry:
    """Repositories under ``prefix`` are pulled through from ``host``/``path_prefix``."""

    prefix: str
    host: str
    path_prefix: str = ""
    tls_verify: bool = True
    cert_dir: str | None = None
    auth_file: str | None = None
    retries: int = 2
    tag_ttl: float = 300.0

    def upstream_repository(self, name: str) -> str | None:
        """The upstream repository of local ``name``, or ``None`` when ``name`` is not under the prefix."""
        if not name.startswith(self.prefix + "/"):
            return None
        rest = name[len(self.prefix) + 1:]
        return f"{self.path_prefix}/{rest}" if self.path_prefix else rest


def _proxy_entry(e: dict[str, Any], i: int) -> ProxyEntry:
    path = f"proxy[{i}]"
    _known(e, path, {"prefix", "upstream", "tls-verify", "cert-dir", "auth-file", "retries", "tag-ttl"})
    prefix = (_optional_text(e, "prefix", f"{path}.") or "").strip("/")
    upstream = _optional_text(e, "upstream", f"{path}.") or ""
    if not prefix:
        raise UsageError(f"config: {path}.prefix: required (the repository prefix served from the upstream)")
    try:
        validate_repository_name(prefix)
    except UsageError as err:
        raise UsageError(f"config: {path}.prefix: {err}") from None
    if not upstream.startswith("docker://") or len(upstream) <= 9:
        raise UsageError(f"config: {path}.upstream: expected docker://HOST[/PREFIX], got {upstream[:80]!r}")
    host, _, path_prefix = upstream[9:].partition("/")
    path_prefix = path_prefix.strip("/")
    if path_prefix:
        try:
            validate_repository_name(path_prefix)
        except UsageError as err:
            raise UsageError(f"config: {path}.upstream: {err}") from None
    tls = e.get("tls-verify", True)
    if not isinstance(tls, bool):
        raise UsageError(f"config: {path}.tls-verify: expected true or false")
    return ProxyEntry(prefix, host, path_prefix, tls, _optional_text(e, "cert-dir", f"{path}."),
                      _optional_text(e, "auth-file", f"{path}."), _number(e, "retries", f"{path}.", 2),
                      parse_duration(e.get("tag-ttl", 300), f"{path}.tag-ttl"))


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::", ""})


def points_at_self(entry: ProxyEntry, listen_host: str, listen_port: int) -> bool:
    """Whether ``entry``'s upstream is this server itself (a loop)."""
    host, sep, port = entry.host.rpartition(":")
    if not sep or not port.isdigit():
        host, port = entry.host, "443"
    host = host.strip("[]").lower()
    if int(port) != listen_port:
        return False
    return host == listen_host.lower() or (host in LOCAL_HOSTS and listen_host.lower() in LOCAL_HOSTS)


# ---- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRule:
    """What to keep in repositories matching ``repository`` (fnmatch); everything else of theirs goes."""

    repository: str
    keep_last: int | None = None
    keep_tags: tuple[re.Pattern[str], ...] = ()
    keep_pulled_within: float | None = None
    untagged_for: float | None = None
    allow_empty: bool = False


def _retention_rule(e: dict[str, Any], i: int) -> RetentionRule:
    path = f"retention[{i}]"
    _known(e, path, {"repository", "keep-last", "keep-tags", "keep-pulled-within", "untagged-for", "allowEmpty"})
    repo = _optional_text(e, "repository", f"{path}.")
    if not repo:
        raise UsageError(f"config: {path}.repository: required (a repository pattern, e.g. 'team/*')")
    raw = e.get("keep-tags", [])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise UsageError(f"config: {path}.keep-tags: expected a list of regular expressions")
    patterns = []
    for j, text in enumerate(raw):
        try:
            patterns.append(re.compile(str(text)))
        except re.error as err:
            raise UsageError(f"config: {path}.keep-tags[{j}]: {err}") from None
    allow = e.get("allowEmpty", False)
    if not isinstance(allow, bool):
        raise UsageError(f"config: {path}.allowEmpty: expected true or false")
    return RetentionRule(
        repo, _number(e, "keep-last", f"{path}.", 0) if "keep-last" in e else None, tuple(patterns),
        parse_duration(e["keep-pulled-within"], f"{path}.keep-pulled-within") if "keep-pulled-within" in e else None,
        parse_duration(e["untagged-for"], f"{path}.untagged-for") if "untagged-for" in e else None, allow)


# ---- notifications -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A webhook receiving the events named in ``events``."""

    url: str
    events: tuple[str, ...] = EVENT_KINDS
    retries: int = 3
    timeout: float = 5.0
    headers: tuple[tuple[str, str], ...] = ()


def _endpoint(e: dict[str, Any], i: int) -> Endpoint:
    path = f"notifications[{i}]"
    _known(e, path, {"url", "events", "retries", "timeout", "headers"})
    url = _optional_text(e, "url", f"{path}.") or ""
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"config: {path}.url: expected an http:// or https:// URL")
    events = e.get("events", list(EVENT_KINDS))
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list) or any(str(k) not in EVENT_KINDS for k in events):
        raise UsageError(f"config: {path}.events: expected a list of {', '.join(EVENT_KINDS)}")
    headers = e.get("headers") or {}
    if not isinstance(headers, dict):
        raise UsageError(f"config: {path}.headers: expected a mapping")
    return Endpoint(url, tuple(str(k) for k in events), _number(e, "retries", f"{path}.", 3),
                    parse_duration(e.get("timeout", 5), f"{path}.timeout"),
                    tuple((str(k), str(v)) for k, v in headers.items()))


# ---- all of it -----------------------------------------------------------------------------------


@dataclass
class CacheConfig:
    """The parsed ``proxy``, ``retention``, ``notifications`` and ``sync`` sections (all empty: off)."""

    proxy: list[ProxyEntry] = field(default_factory=list)
    retention: list[RetentionRule] = field(default_factory=list)
    retention_interval: float | None = None
    retention_cron: CronSchedule | None = None
    """``retention.schedule`` as a cron expression (else ``retention_interval``, in seconds)."""
    notifications: list[Endpoint] = field(default_factory=list)
    notification_queue: int = 1000
    sync: list[dict[str, Any]] = field(default_factory=list)
    """Raw ``sync:`` entries (parsed by the sync scheduler with the mirror configuration's rules)."""

    @property
    def empty(self) -> bool:
        return not (self.proxy or self.retention or self.notifications or self.sync)


def parse_cache(doc: dict[str, Any]) -> CacheConfig:
    """The cache sections of a server configuration document (other keys are ignored)."""
    cfg = CacheConfig(proxy=[_proxy_entry(e, i) for i, e in enumerate(_entries(doc, "proxy"))])
    prefixes = [p.prefix for p in cfg.proxy]
    for p in prefixes:
        clash = [q for q in prefixes if q != p and q.startswith(p + "/")]
        if prefixes.count(p) > 1 or clash:
            raise UsageError(f"config: proxy: prefix {p!r} overlaps another proxy prefix")
    retention = doc.get("retention")
    if isinstance(retention, dict):  # {schedule: 24h, rules: [...]}
        _known(retention, "retention", {"schedule", "rules"})
        if retention.get("schedule") is not None:
            when = parse_when(retention["schedule"], "retention.schedule")
            if isinstance(when, CronSchedule):
                cfg.retention_cron = when
            else:
                cfg.retention_interval = when or None
        retention = {"retention": retention.get("rules")}
    else:
        retention = doc
    cfg.retention = [_retention_rule(e, i) for i, e in enumerate(_entries(retention, "retention"))]
    cfg.notifications = [_endpoint(e, i) for i, e in enumerate(_entries(doc, "notifications"))]
    cfg.sync = _entries(doc, "sync")
    return cfg

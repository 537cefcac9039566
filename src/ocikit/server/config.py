"""Server configuration: a YAML file, overridden by command-line flags.

Example::

    listen: 127.0.0.1:5000
    tls: {cert: /etc/ocikit/cert.pem, key: /etc/ocikit/key.pem}
    storage: {driver: filesystem, root: /var/lib/ocikit, fsync: true, delete: {enabled: false}}
    # or, for replicas over one bucket (credentials: AWS env vars / ~/.aws files, or access_key/secret_key):
    # storage: {driver: s3, bucket: registry, prefix: prod, endpoint: "http://127.0.0.1:8333",
    #           region: us-east-1, path_style: true, part_size: 8MiB, redirect: presigned, redirect_expiry: 600}
    read_only: false
    auth:
      mode: token              # none | htpasswd | token
      htpasswd: /etc/ocikit/htpasswd
      realm: ocikit
      token: {secret: change-me, expiry: 300, service: ocikit}
      rules:
        - {repository: "team/*", users: [alice], actions: [pull, push, delete]}
        - {repository: "*", users: ["*"], actions: [pull]}
    limits: {manifest_size: 4194304, chunk_min_length: 0}
    manifests: {check_blobs: true, accept_sparse_index: false}
    log: {access: true}
    ui: {enabled: true}        # the web UI under /ui/ (--no-ui turns it off)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import UsageError
from ..uint import parse_uint
from ..model.manifest import MAX_MANIFEST_SIZE
from .storage.s3settings import S3Settings, parse_s3_url, settings_from_mapping

ACTIONS = ("pull", "push", "delete")
EXTRA_SECTIONS = ("proxy", "retention", "notifications", "sync")


@dataclass(frozen=True)
class Rule:
    """Grant ``actions`` on repositories matching ``repository`` (fnmatch) to ``users``.

    ``users`` holds user names, ``*`` (any authenticated user) or ``anonymous``.
    """

    repository: str
    users: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass
class AuthConfig:
    mode: str = "none"
    htpasswd: str | None = None
    realm: str = "ocikit"
    token_secret: str | None = None
    token_expiry: int = 300
    token_service: str = "ocikit"
    token_realm: str | None = None
    """Absolute URL of the token endpoint; default: this server's ``/auth/token``."""
    rules: list[Rule] = field(default_factory=list)


@dataclass
class ServerConfig:
    listen: str = "127.0.0.1:5000"
    root: str = "./ocikit-registry"
    s3: S3Settings | None = None
    """Set: the S3 driver over this bucket instead of the filesystem under ``root``."""
    tls_cert: str | None = None
    tls_key: str | None = None
    fsync: bool = True
    read_only: bool = False
    delete_enabled: bool = False
    """DELETE of manifests, tags and blobs (405 UNSUPPORTED when off, as distribution)."""
    auth: AuthConfig = field(default_factory=AuthConfig)
    manifest_size: int = MAX_MANIFEST_SIZE
    chunk_min_length: int = 0
    check_blobs: bool = True
    accept_sparse_index: bool = False
    access_log: bool = True
    shutdown_timeout: float = 30.0
    ui: bool = True
    """Serve the web UI under ``/ui/``."""
    extra_sections: dict[str, Any] = field(default_factory=dict)
    """The raw ``proxy``, ``retention``, ``notifications`` and ``sync`` sections
    (parsed by :func:`ocikit.server.cache_config.parse_cache`)."""

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        number = parse_uint(port, max_value=65535) if sep else None
        if number is None:
            raise UsageError(f"--listen {self.listen[:80]!r}: expected HOST:PORT")
        return host.strip("[]") or "127.0.0.1", number

    @property
    def storage_description(self) -> str:
        return self.s3.describe() if self.s3 is not None else f"root {self.root}"

    def with_storage(self, value: str | None) -> "ServerConfig":
        """Apply ``--storage``: ``s3://BUCKET/PREFIX?endpoint=...`` or a directory (``file://`` optional)."""
        if value is None:
            return self
        if value.startswith("s3://"):
            return dataclasses.replace(self, s3=parse_s3_url(value))
        if "://" in value and not value.startswith("file://"):
            raise UsageError(f"--storage {value!r}: expected s3://BUCKET/PREFIX?endpoint=URL or a directory")
        return dataclasses.replace(self, s3=None, root=value.removeprefix("file://"))

    def with_overrides(self, **kw: Any) -> "ServerConfig":
        """A copy with every non-``None`` keyword applied (the command-line flags)."""
        return dataclasses.replace(self, **{k: v for k, v in kw.items() if v is not None})


def _section(doc: Any, key: str, path: str = "") -> dict[str, Any]:
    """``doc[key]`` as a mapping ({} when absent); a UsageError naming it otherwise."""
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"config: {path}{key}: expected a mapping, got {type(value).__name__}")
    return value


def _number(doc: dict[str, Any], key: str, path: str, default: float, kind: type = int) -> Any:
    """``doc[key]`` as a non-negative int (or float), from YAML numbers or decimal strings."""
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"config: {path}{key}: expected a number, got {type(value).__name__}")
    try:
        number = kind(value)
    except (ValueError, OverflowError):
        raise UsageError(f"config: {path}{key}: {str(value)[:40]!r} is not a number") from None
    if number < 0 or number != number or number > 2 ** 62:
        raise UsageError(f"config: {path}{key}: out of range")
    return number


def _text_list(value: Any, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        raise UsageError(f"config: {path}: expected a string or a list of strings")
    return [str(v) for v in value]


def _rules(items: Any) -> list[Rule]:
    if items is not None and not isinstance(items, list):
        raise UsageError("config: auth.rules: expected a list of rules")
    out = []
    for i, r in enumerate(items or []):
        if not isinstance(r, dict) or "repository" not in r:
            raise UsageError(f"config: auth.rules[{i}]: expected a mapping with 'repository'")
        users = _text_list(r.get("users", ["*"]), f"auth.rules[{i}].users")
        raw_actions = r.get("actions", list(ACTIONS))
        if isinstance(raw_actions, str):
            raw_actions = [a.strip() for a in raw_actions.split(",")]
        actions = _text_list(raw_actions, f"auth.rules[{i}].actions")
        bad = [a for a in actions if a not in ACTIONS and a != "*"]
        if bad:
            raise UsageError(f"config: auth.rules[{i}].actions: unknown {bad}; use {', '.join(ACTIONS)}")
        if "*" in actions:
            actions = list(ACTIONS)
        out.append(Rule(str(r["repository"]), tuple(users), tuple(actions)))
    return out


def _optional_text(doc: dict[str, Any], key: str, path: str) -> str | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise UsageError(f"config: {path}{key}: expected a string")
    return str(value)


def parse_config(doc: dict[str, Any]) -> ServerConfig:
    """Build a :class:`ServerConfig` from a parsed YAML document (UsageError naming what is wrong)."""
    if not isinstance(doc, dict):
        raise UsageError("config: expected a mapping at the top level")
    cfg = ServerConfig()
    known = {"listen", "tls", "storage", "read_only", "auth", "limits", "manifests", "log", "shutdown_timeout", "ui",
             *EXTRA_SECTIONS}
    unknown = set(doc) - known
    if unknown:
        raise UsageError(f"config: unknown keys {sorted(map(str, unknown))}")
    if doc.get("listen") is not None:
        cfg.listen = str(_optional_text(doc, "listen", ""))
    tls = _section(doc, "tls")
    cfg.tls_cert, cfg.tls_key = _optional_text(tls, "cert", "tls."), _optional_text(tls, "key", "tls.")
    storage = _section(doc, "storage")
    driver = storage.get("driver", "filesystem")
    if driver == "s3":
        cfg.s3 = settings_from_mapping(storage)
    elif driver != "filesystem":
        raise UsageError(f"config: storage.driver {str(driver)[:40]!r}: expected filesystem or s3")
    if storage.get("root") is not None:
        cfg.root = str(_optional_text(storage, "root", "storage."))
    cfg.fsync = bool(storage.get("fsync", True))
    cfg.delete_enabled = bool(_section(storage, "delete", "storage.").get("enabled", False))
    cfg.read_only = bool(doc.get("read_only", False))
    a = _section(doc, "auth")
    token = _section(a, "token", "auth.")
    cfg.auth = AuthConfig(
        mode=str(a.get("mode", "none")), htpasswd=_optional_text(a, "htpasswd", "auth."),
        realm=str(a.get("realm", "ocikit")), token_secret=_optional_text(token, "secret", "auth.token."),
        token_expiry=_number(token, "expiry", "auth.token.", 300),
        token_service=str(token.get("service", "ocikit")), token_realm=_optional_text(token, "realm", "auth.token."),
        rules=_rules(a.get("rules")))
    if cfg.auth.mode not in ("none", "htpasswd", "token"):
        raise UsageError(f"config: auth.mode {cfg.auth.mode[:40]!r}: expected none, htpasswd or token")
    if cfg.auth.mode == "htpasswd" and not cfg.auth.htpasswd:
        raise UsageError("config: auth.mode htpasswd needs auth.htpasswd (a bcrypt htpasswd file)")
    limits = _section(doc, "limits")
    cfg.manifest_size = _number(limits, "manifest_size", "limits.", MAX_MANIFEST_SIZE)
    cfg.chunk_min_length = _number(limits, "chunk_min_length", "limits.", 0)
    manifests = _section(doc, "manifests")
    cfg.check_blobs = bool(manifests.get("check_blobs", True))
    cfg.accept_sparse_index = bool(manifests.get("accept_sparse_index", False))
    cfg.access_log = bool(_section(doc, "log").get("access", True))
    cfg.ui = bool(_section(doc, "ui").get("enabled", True))
    cfg.extra_sections = {k: doc[k] for k in EXTRA_SECTIONS if doc.get(k) is not None}
    if "shutdown_timeout" in doc:
        cfg.shutdown_timeout = _number(doc, "shutdown_timeout", "", 30.0, float)
    return cfg


def load_config(path: str) -> ServerConfig:
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"config {path}: not valid YAML: {e}") from None
    return parse_config(doc)

"""Server configuration: a YAML file, overridden by command-line flags.

Example::

    listen: 127.0.0.1:5000
    tls: {cert: /etc/ocikit/cert.pem, key: /etc/ocikit/key.pem}
    storage: {driver: filesystem, root: /var/lib/ocikit, fsync: true}
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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import UsageError
from ..model.manifest import MAX_MANIFEST_SIZE
from .storage.s3settings import S3Settings, parse_s3_url, settings_from_mapping

ACTIONS = ("pull", "push", "delete")


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
    auth: AuthConfig = field(default_factory=AuthConfig)
    manifest_size: int = MAX_MANIFEST_SIZE
    chunk_min_length: int = 0
    check_blobs: bool = True
    accept_sparse_index: bool = False
    access_log: bool = True
    shutdown_timeout: float = 30.0

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"--listen {self.listen!r}: expected HOST:PORT")
        return host.strip("[]") or "127.0.0.1", int(port)

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


def _rules(items: Any) -> list[Rule]:
    out = []
    for i, r in enumerate(items or []):
        if not isinstance(r, dict) or "repository" not in r:
            raise UsageError(f"config: auth.rules[{i}]: expected a mapping with 'repository'")
        users = r.get("users", ["*"])
        actions = r.get("actions", list(ACTIONS))
        if isinstance(users, str):
            users = [users]
        if isinstance(actions, str):
            actions = [a.strip() for a in actions.split(",")]
        bad = [a for a in actions if a not in ACTIONS and a != "*"]
        if bad:
            raise UsageError(f"config: auth.rules[{i}].actions: unknown {bad}; use {', '.join(ACTIONS)}")
        if "*" in actions:
            actions = list(ACTIONS)
        out.append(Rule(str(r["repository"]), tuple(map(str, users)), tuple(actions)))
    return out


def parse_config(doc: dict[str, Any]) -> ServerConfig:
    """Build a :class:`ServerConfig` from a parsed YAML document."""
    if not isinstance(doc, dict):
        raise UsageError("config: expected a mapping at the top level")
    cfg = ServerConfig()
    known = {"listen", "tls", "storage", "read_only", "auth", "limits", "manifests", "log", "shutdown_timeout"}
    unknown = set(doc) - known
    if unknown:
        raise UsageError(f"config: unknown keys {sorted(unknown)}")
    if "listen" in doc:
        cfg.listen = str(doc["listen"])
    tls = doc.get("tls") or {}
    cfg.tls_cert, cfg.tls_key = tls.get("cert"), tls.get("key")
    storage = doc.get("storage") or {}
    driver = storage.get("driver", "filesystem")
    if driver == "s3":
        cfg.s3 = settings_from_mapping(storage)
    elif driver != "filesystem":
        raise UsageError(f"config: storage.driver {driver!r}: expected filesystem or s3")
    if "root" in storage:
        cfg.root = str(storage["root"])
    cfg.fsync = bool(storage.get("fsync", True))
    cfg.read_only = bool(doc.get("read_only", False))
    a = doc.get("auth") or {}
    token = a.get("token") or {}
    cfg.auth = AuthConfig(
        mode=str(a.get("mode", "none")), htpasswd=a.get("htpasswd"), realm=str(a.get("realm", "ocikit")),
        token_secret=token.get("secret"), token_expiry=int(token.get("expiry", 300)),
        token_service=str(token.get("service", "ocikit")), token_realm=token.get("realm"),
        rules=_rules(a.get("rules")))
    if cfg.auth.mode not in ("none", "htpasswd", "token"):
        raise UsageError(f"config: auth.mode {cfg.auth.mode!r}: expected none, htpasswd or token")
    if cfg.auth.mode == "htpasswd" and not cfg.auth.htpasswd:
        raise UsageError("config: auth.mode htpasswd needs auth.htpasswd (a bcrypt htpasswd file)")
    limits = doc.get("limits") or {}
    cfg.manifest_size = int(limits.get("manifest_size", MAX_MANIFEST_SIZE))
    cfg.chunk_min_length = int(limits.get("chunk_min_length", 0))
    manifests = doc.get("manifests") or {}
    cfg.check_blobs = bool(manifests.get("check_blobs", True))
    cfg.accept_sparse_index = bool(manifests.get("accept_sparse_index", False))
    cfg.access_log = bool((doc.get("log") or {}).get("access", True))
    if "shutdown_timeout" in doc:
        cfg.shutdown_timeout = float(doc["shutdown_timeout"])
    return cfg


def load_config(path: str) -> ServerConfig:
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"config {path}: not valid YAML: {e}") from None
    return parse_config(doc)

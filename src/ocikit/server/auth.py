"""Access control: anonymous, htpasswd (bcrypt) basic auth, or bearer tokens from our own realm.

Per-repository rules grant ``pull``/``push``/``delete``. Pure pieces (rule matching, token
signing; the scope grammar, shared with the client, is :mod:`ocikit.model.scope`) are plain
functions; :class:`Authenticator` ties them to requests.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import bcrypt

from ..errors import Denied, ScopeInvalid, Unauthorized, UsageError
from ..model.scope import CATALOG, REPOSITORY, Scope, parse_scope
from .config import ACTIONS, AuthConfig, Rule

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Need:
    """What a request needs: ``action`` on repository ``name`` (``name`` None: catalog; action None: just log in)."""

    name: str | None
    action: str | None

    @property
    def scope(self) -> str:
        if self.name is None:
            return CATALOG
        actions = ("pull", "push") if self.action == "push" else (self.action,) if self.action else ()
        return str(Scope(REPOSITORY, self.name, frozenset(actions)))


@dataclass
class Principal:
    """Who is asking, and (in token mode) what their token grants."""

    user: str | None
    grants: dict[str, set[str]] | None = None
    catalog: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# --- pure functions ----------------------------------------------------------------------


def rule_actions(rules: Iterable[Rule], user: str | None, repository: str) -> set[str]:
    """The union of actions the rules grant ``user`` (None: anonymous) on ``repository``."""
    out: set[str] = set()
    for r in rules:
        if not fnmatch.fnmatchcase(repository, r.repository):
            continue
        if user is None:
            if ANONYMOUS in r.users:
                out.update(r.actions)
        elif user in r.users or "*" in r.users:
            out.update(r.actions)
    return out


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(secret: bytes, claims: Mapping[str, Any]) -> str:
    """An HS256 JWT."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def verify_token(secret: bytes, token: str, service: str, now: float | None = None) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token for ``service``; None otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        expected = hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(parts[2])):
            return None
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict) or claims.get("aud") != service:
        return None
    if float(claims.get("exp", 0)) < (now if now is not None else time.time()):
        return None
    return claims


def load_htpasswd(path: str) -> dict[str, bytes]:
    """``user:bcrypt-hash`` lines; other hash kinds are refused (bcrypt only, like distribution)."""
    users: dict[str, bytes] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, h = line.partition(":")
            if not sep or not h.startswith(("$2y$", "$2b$", "$2a$")):
                raise UsageError(f"{path}:{n}: expected user:bcrypt-hash ($2y$...)")
            users[user] = h.encode()
    return users


# --- the request side --------------------------------------------------------------------


class Authenticator:
    """Decides, per request, who is asking and whether they may do what they ask."""

    def __init__(self, cfg: AuthConfig) -> None:
        self.cfg = cfg
        self.mode = cfg.mode
        self.users = load_htpasswd(cfg.htpasswd) if cfg.htpasswd else {}
        self.secret = (cfg.token_secret or secrets.token_hex(32)).encode()
        self._verified: dict[tuple[str, bytes], float] = {}
        # a hash of the same cost as the users' own, checked for unknown names
        cost = max((int(h[4:6]) for h in self.users.values() if h[4:6].isdigit()), default=10)
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=min(max(cost, 4), 31)))

    async def check_password(self, user: str, password: str) -> bool:
        """bcrypt check; an unknown user costs the same bcrypt work, so names cannot be told by timing."""
        h = self.users.get(user)
        if h is None:
            await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, password.encode(), self._decoy)
            return False
        key = (user, hashlib.sha256(password.encode()).digest())
        if self._verified.get(key, 0) > time.monotonic():
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, bcrypt.checkpw, password.encode(), h)
        if ok:
            self._verified[key] = time.monotonic() + 60
        return ok

    def allowed(self, principal: Principal, name: str, action: str) -> bool:
        if self.mode == "none":
            return True
        if principal.grants is not None:
            return action in principal.grants.get(name, set())
        if not self.cfg.rules:
            return principal.user is not None
        return action in rule_actions(self.cfg.rules, principal.user, name)

    def may_list(self, principal: Principal, name: str) -> bool:
        """Whether ``name`` appears to ``principal`` in a listing (catalog, UI): they may pull it.

        In token mode the token holds the catalog scope, not every repository's, so the rules
        decide, as they would for a pull token this user asked for.
        """
        if self.mode == "none":
            return True
        if principal.grants is not None and principal.user is not None:
            return "pull" in self._granted(principal.user, name)
        return self.allowed(principal, name, "pull")

    def _granted(self, user: str | None, name: str) -> set[str]:
        if self.cfg.rules:
            return rule_actions(self.cfg.rules, user, name)
        return set(ACTIONS) if user is not None else set()

    def may_catalog(self, principal: Principal) -> bool:
        if self.mode == "none":
            return True
        if principal.grants is not None:
            return principal.catalog
        return principal.user is not None

    def _challenge(self, realm_url: str, need: Need | None, error: str | None = None) -> str:
        if self.mode == "htpasswd":
            return f'Basic realm="{self.cfg.realm}"'
        out = f'Bearer realm="{realm_url}",service="{self.cfg.token_service}"'
        if need is not None and (need.name is not None or need.action is not None):
            out += f',scope="{need.scope}"'
        if error:
            out += f',error="{error}"'
        return out

    async def authenticate(self, headers: Mapping[str, str], realm_url: str, need: Need | None) -> Principal:
        """The principal behind a request; raises Unauthorized (with a challenge) or Denied."""
        if self.mode == "none":
            return Principal(None)
        authz = headers.get("Authorization", "")
        if self.mode == "htpasswd":
            principal = Principal(None)
            creds = parse_basic(authz)
            if creds is not None:
                if not await self.check_password(*creds):
                    raise self._unauthorized("invalid username or password", realm_url, need)
                principal = Principal(creds[0])
        else:
            principal = Principal(None, grants={})
            if authz.lower().startswith("bearer "):
                claims = verify_token(self.secret, authz[7:].strip(), self.cfg.token_service)
                if claims is None:
                    raise self._unauthorized("invalid or expired token", realm_url, need, "invalid_token")
                principal = _principal_from_claims(claims)
            elif authz:
                raise self._unauthorized("bearer token required", realm_url, need)
        if need is None or (need.name is None and need.action is None):
            # /v2/: "are you logged in?"
            if principal.user is None and (self.mode == "htpasswd" or not authz):
                raise self._unauthorized("authentication required", realm_url, need)
            return principal
        ok = self.may_catalog(principal) if need.name is None else self.allowed(principal, need.name, need.action or "")
        if not ok:
            if principal.user is None or principal.grants is not None:
                raise self._unauthorized("authentication required" if principal.user is None
                                         else "insufficient scope", realm_url, need,
                                         "insufficient_scope" if authz else None)
            raise Denied(f"{principal.user} may not {need.action} {need.name}",
                         detail={"repository": need.name, "action": need.action})
        return principal

    def _unauthorized(self, message: str, realm_url: str, need: Need | None, error: str | None = None) -> Unauthorized:
        e = Unauthorized(message, detail=[{"Type": "repository", "Name": need.name, "Action": need.action}]
                         if need is not None and need.name else None)
        e.challenge = self._challenge(realm_url, need, error)  # type: ignore[attr-defined]
        return e

    async def issue_token(self, headers: Mapping[str, str], scopes: list[str], service: str | None,
                          realm_url: str) -> dict[str, Any]:
        """The token endpoint: grant the requested scopes the rules allow."""
        if self.mode != "token":
            raise Denied("this registry does not issue tokens")
        user: str | None = None
        creds = parse_basic(headers.get("Authorization"))
        if creds is not None:
            if not await self.check_password(*creds):
                e = Unauthorized("invalid username or password")
                e.challenge = f'Basic realm="{self.cfg.realm}"'  # type: ignore[attr-defined]
                raise e
            user = creds[0]
        access = []
        for text in scopes:
            try:
                scope = parse_scope(text)
            except ScopeInvalid:
                continue  # a malformed scope is simply not granted
            typ, name, actions = scope.type, scope.name, set(scope.actions)
            if typ == "registry" and name == "catalog":
                if user is not None:
                    access.append({"type": "registry", "name": "catalog", "actions": ["*"]})
                continue
            if typ != REPOSITORY:
                continue
            granted = self._granted(user, name)
            if "*" in actions:
                actions = set(ACTIONS)
            ok = sorted(actions & granted)
            if ok:
                access.append({"type": "repository", "name": name, "actions": ok})
        now = int(time.time())
        claims = {"iss": "ocikit", "sub": user or "", "aud": self.cfg.token_service, "iat": now,
                  "nbf": now - 5, "exp": now + self.cfg.token_expiry, "access": access,
                  "jti": secrets.token_hex(8)}
        token = sign_token(self.secret, claims)
        return {"token": token, "access_token": token, "expires_in": self.cfg.token_expiry,
                "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}


def _principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    grants: dict[str, set[str]] = {}
    catalog = False
    for a in claims.get("access") or []:
        if a.get("type") == "registry" and a.get("name") == "catalog":
            catalog = True
        elif a.get("type") == "repository":
            grants.setdefault(str(a.get("name")), set()).update(a.get("actions") or [])
    return Principal(claims.get("sub") or None, grants=grants, catalog=catalog)

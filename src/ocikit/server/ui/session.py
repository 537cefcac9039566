"""UI sign-in: a signed session cookie, and the CSRF checks of the two forms that post.

The cookie holds ``{"u": user, "e": expiry, "c": csrf nonce}`` and an HMAC-SHA256 over it,
keyed by a key derived from the server's auth secret (so it dies with a restart unless the
token secret is configured). It is ``HttpOnly``, ``SameSite=Strict``, limited to ``/ui/``,
and ``Secure`` under TLS. Pure functions; the request side lives in :mod:`.views`.

CSRF: the UI never writes to the registry; its only POSTs are sign-in and sign-out. Sign-in
uses a double-submit token (a random cookie repeated in a hidden field), sign-out the
session's own nonce; both also require a matching ``Origin`` when the browser sends one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "ocikit_ui"
LOGIN_COOKIE = "ocikit_ui_login"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    expires: float


def session_key(auth_secret: bytes) -> bytes:
    """The cookie-signing key: derived, so a session cookie is never a registry token."""
    return hmac.new(auth_secret, b"ocikit-ui-session-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, user: str, now: float | None = None) -> tuple[str, Session]:
    """A new session for ``user``: (cookie value, session)."""
    s = Session(user, secrets.token_urlsafe(18), (now if now is not None else time.time()) + SESSION_SECONDS)
    body = _b64(json.dumps({"u": s.user, "e": int(s.expires), "c": s.csrf}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{sig}", s


def read(key: bytes, cookie: str | None, now: float | None = None) -> Session | None:
    """The session a cookie carries, or ``None`` when it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, sig = cookie.split(".")
    try:
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(sig)):
            return None
        doc = json.loads(_unb64(body))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("u"), str) or not isinstance(doc.get("c"), str):
        return None
    expires = doc.get("e")
    if not isinstance(expires, int) or expires < (now if now is not None else time.time()):
        return None
    return Session(doc["u"], doc["c"], float(expires))


def new_login_token() -> str:
    return secrets.token_urlsafe(18)


def same_token(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two non-empty tokens."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def origin_ok(origin: str | None, scheme: str, host: str) -> bool:
    """A POST is same-origin when the browser sends no Origin (old browsers) or ours."""
    return origin is None or origin == f"{scheme}://{host}"


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: only a path inside the UI (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target \
            and "://" not in target:
        return target
    return "/ui/"

"""Registry authentication: ``WWW-Authenticate`` parsing, scopes, and the basic/bearer token flow.

The parsing is pure functions (tested exhaustively), and the scope grammar and arithmetic are
the server's too (:mod:`ocikit.model.scope`, re-exported here); :class:`Authenticator`
holds a host's credentials and token cache, and fetches tokens through a callable the client
gives it, so it does no I/O of its own.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

from ...errors import ScopeInvalid, Unauthorized
from ...model.scope import Scope, covers_all, merge_scopes, parse_scope, repository_scope

# RFC 7230 tchar
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = _TCHAR - frozenset("!#$%&'*^`|") | frozenset("/")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: ``Bearer realm="...",service="..."``."""

    scheme: str
    """Lower-cased auth scheme (``basic``, ``bearer``, ...)."""
    params: Mapping[str, str] = field(default_factory=dict)
    """Parameters with lower-cased names, values unquoted."""
    token68: str | None = None

    @property
    def scopes(self) -> list[str]:
        s = self.params.get("scope")
        return s.split() if s else []


class ChallengeSyntaxError(ValueError):
    pass


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value (RFC 7235) into its challenges.

    Handles several challenges in one header, quoted strings with backslash escapes and
    commas, token68 credentials and empty list elements. Raises :class:`ChallengeSyntaxError`
    for text that is not a challenge list.
    """
    s = header
    n = len(s)
    i = 0
    out: list[Challenge] = []

    def skip_ws(j: int) -> int:
        while j < n and s[j] in " \t":
            j += 1
        return j

    def read_token(j: int) -> tuple[str, int]:
        k = j
        while k < n and s[k] in _TCHAR:
            k += 1
        return s[j:k], k

    def read_quoted(j: int) -> tuple[str, int]:
        assert s[j] == '"'
        j += 1
        buf: list[str] = []
        while j < n:
            c = s[j]
            if c == "\\":
                if j + 1 >= n:
                    raise ChallengeSyntaxError("unterminated escape in quoted string")
                buf.append(s[j + 1])
                j += 2
                continue
            if c == '"':
                return "".join(buf), j + 1
            buf.append(c)
            j += 1
        raise ChallengeSyntaxError("unterminated quoted string")

    def is_param_start(j: int) -> bool:
        """At ``j`` (after commas/space) begins ``name =`` rather than a new scheme."""
        name, k = read_token(j)
        if not name:
            return False
        k = skip_ws(k)
        return k < n and s[k] == "=" and not (k + 1 < n and s[k + 1] == "=")

    while True:
        while i < n and s[i] in " \t,":
            i += 1
        if i >= n:
            break
        scheme, i = read_token(i)
        if not scheme:
            raise ChallengeSyntaxError(f"expected an auth scheme at position {i}: {s[i:i + 20]!r}")
        params: dict[str, str] = {}
        token68: str | None = None
        j = skip_ws(i)
        if j > i and j < n and s[j] != "," and not is_param_start(j):
            k = j
            while k < n and s[k] in _TOKEN68:
                k += 1
            m = k
            while m < n and s[m] == "=":
                m += 1
            after = skip_ws(m)
            if k == j or (after < n and s[after] != ","):
                raise ChallengeSyntaxError(f"unexpected {s[j:j + 20]!r} after scheme {scheme!r}")
            token68 = s[j:m]
            i = after
        elif j > i and j < n and s[j] != ",":
            i = j
            while True:
                name, i = read_token(i)
                if not name:
                    raise ChallengeSyntaxError(f"expected a parameter name at position {i}")
                i = skip_ws(i)
                if i >= n or s[i] != "=":
                    raise ChallengeSyntaxError(f"expected '=' after parameter {name!r}")
                i = skip_ws(i + 1)
                if i < n and s[i] == '"':
                    value, i = read_quoted(i)
                else:
                    value, i = read_token(i)
                    if not value:
                        raise ChallengeSyntaxError(f"parameter {name!r} has no value")
                params[name.lower()] = value
                i = skip_ws(i)
                if i >= n:
                    break
                if s[i] != ",":
                    raise ChallengeSyntaxError(f"unexpected {s[i]!r} at position {i}")
                # commas, then either another param of this challenge or a new challenge
                j = i
                while j < n and s[j] in " \t,":
                    j += 1
                if j >= n or not is_param_start(j):
                    break
                i = j
        else:
            i = j
            if i < n and s[i] != ",":
                raise ChallengeSyntaxError(f"unexpected {s[i]!r} at position {i}")
        out.append(Challenge(scheme.lower(), params, token68))
    return out


# ---- credentials and tokens -----------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A user name and secret; ``identity_token`` is an OAuth2 refresh token instead of a password."""

    username: str = ""
    password: str = ""
    identity_token: str | None = None

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(username={self.username!r}, password=***)"


@dataclass
class Token:
    value: str
    scopes: tuple[Scope, ...]
    expires_at: float

    def valid(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.expires_at


def parse_token_response(doc: object, now: float | None = None) -> tuple[str, float]:
    """``(token, expires_at)`` from a token server's JSON (``token`` or ``access_token``, ``expires_in``)."""
    if not isinstance(doc, dict):
        raise Unauthorized("token server answered something that is not a JSON object")
    tok = doc.get("token") or doc.get("access_token")
    if not isinstance(tok, str) or not tok:
        raise Unauthorized("token server answered no token")
    exp = doc.get("expires_in")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= 0:
        exp = 60
    now = time.monotonic() if now is None else now
    # refresh a little early; never keep a token for less than a second
    return tok, now + max(1.0, float(exp) - min(10.0, float(exp) / 10))


TokenFetcher = Callable[[Challenge, tuple[Scope, ...], Credentials | None], Awaitable[tuple[str, float]]]


class Authenticator:
    """One registry host's auth state: the scheme its challenge asked for, and a token cache per scope set.

    ``header_for(scopes)`` gives the ``Authorization`` value to send before any challenge is
    seen (None: send nothing); ``on_challenge`` handles a 401, returning the header to retry
    with, or raising :class:`Unauthorized` when retrying cannot help.
    """

    def __init__(self, host: str, creds: Credentials | None, fetch_token: TokenFetcher) -> None:
        self.host = host
        self.creds = creds
        self._fetch = fetch_token
        self.challenge: Challenge | None = None
        self.tokens: dict[tuple[Scope, ...], Token] = {}
        self.fetches = 0
        self._locks: dict[tuple[Scope, ...], asyncio.Lock] = {}

    def _cached(self, need: tuple[Scope, ...]) -> Token | None:
        now = time.monotonic()
        for key, tok in list(self.tokens.items()):
            if not tok.valid(now):
                del self.tokens[key]
                continue
            if covers_all(tok.scopes, need):
                return tok
        return None

    async def header_for(self, need: tuple[Scope, ...]) -> str | None:
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return self.creds.basic_header() if self.creds else None
        if ch.scheme == "bearer":
            tok = self._cached(need)
            if tok is None:
                tok = await self._new_token(ch, need)
            return f"Bearer {tok.value}"
        return None

    async def _new_token(self, ch: Challenge, scopes: tuple[Scope, ...], *, reuse: bool = True) -> Token:
        """Fetch a token; concurrent callers wanting the same scopes share one fetch."""
        scopes = merge_scopes(scopes)
        lock = self._locks.setdefault(scopes, asyncio.Lock())
        async with lock:
            if reuse:
                tok = self._cached(scopes)
                if tok is not None:
                    return tok
            value, expires = await self._fetch(ch, scopes, self.creds)
            self.fetches += 1
            tok = Token(value, scopes, expires)
            self.tokens[scopes] = tok
            return tok

    async def on_challenge(self, header: str | None, need: tuple[Scope, ...], sent: str | None) -> str:
        """A 401 arrived for a request sent with ``sent`` as Authorization: the header to retry with."""
        try:
            challenges = parse_challenges(header or "")
        except ChallengeSyntaxError as e:
            raise Unauthorized(f"{self.host}: unreadable WWW-Authenticate header ({e})") from None
        by_scheme = {c.scheme: c for c in challenges}
        ch = by_scheme.get("bearer") or by_scheme.get("basic")
        if ch is None:
            if not challenges:
                raise Unauthorized(f"{self.host}: authentication required (401 without a challenge)")
            raise Unauthorized(f"{self.host}: unsupported authentication scheme {challenges[0].scheme!r}")
        self.challenge = ch
        if ch.scheme == "basic":
            if self.creds is None:
                raise Unauthorized(f"{self.host}: authentication required; pass --creds USER:PASS or log in")
            hdr = self.creds.basic_header()
            if sent == hdr:
                raise Unauthorized(f"{self.host}: authentication failed: invalid username or password")
            return hdr
        if "realm" not in ch.params:
            raise Unauthorized(f"{self.host}: bearer challenge without a realm")
        wanted = []
        for s in ch.scopes:
            try:
                wanted.append(parse_scope(s))
            except ScopeInvalid:
                continue
        scopes = merge_scopes([*need, *wanted])
        # a token that was just refused (expired, revoked): forget it and fetch anew
        if sent and sent.startswith("Bearer "):
            for key, tok in list(self.tokens.items()):
                if tok.value == sent[7:]:
                    del self.tokens[key]
        tok = await self._new_token(ch, scopes)
        if sent and f"Bearer {tok.value}" == sent:
            tok = await self._new_token(ch, scopes, reuse=False)
        hdr = f"Bearer {tok.value}"
        return hdr


__all__ = ["Authenticator", "Challenge", "ChallengeSyntaxError", "Credentials", "Scope", "Token",
           "covers_all", "merge_scopes", "parse_challenges", "parse_scope", "parse_token_response",
           "repository_scope"]

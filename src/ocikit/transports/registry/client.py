"""An async HTTP client for one registry host (the Distribution API's transport layer).

One :class:`RegistryClient` per host: one aiohttp connection pool, one
:class:`~.auth.Authenticator`, the scheme found by pinging ``/v2/``. ``request`` adds
credentials, answers auth challenges, retries what is safe to retry, follows redirects by
hand (never carrying ``Authorization`` to another origin) and turns registry error bodies
into :mod:`ocikit.core.errors` types.
"""

from __future__ import annotations

import asyncio
import glob
import ipaddress
import json
import logging
import os
import ssl
from collections import Counter
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Sequence

from ..._aiohttp import aiohttp
from yarl import URL

from ...core.errors import (
    ERROR_CODES,
    Denied,
    DiskFull,
    NotFound,
    OcikitError,
    RegistryError,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from .auth import Authenticator, Challenge, ChallengeSyntaxError, Credentials, Scope, parse_challenges, \
    parse_token_response
from .threadget import MAX_REDIRECTS, REDIRECTS, ThreadedGet, origin
from .retry import RETRYABLE_STATUS, RetryPolicy, backoff_delay, parse_retry_after

log = logging.getLogger("ocikit.registry")

USER_AGENT = "ocikit/0.1"
READ_BUFSIZE = 1 << 20
SOCK_READ_TIMEOUT = 120.0
"""Seconds a response may send nothing before the request fails."""
NETWORK_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError)
CERT_DIRS = ("/etc/containers/certs.d", "/etc/docker/certs.d")


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``[::1]`` (with or without a port)."""
    h = host
    if h.startswith("["):
        h = h[1:].split("]", 1)[0]
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


_SSL_CACHE: dict[tuple[bool, tuple[str, ...]], ssl.SSLContext] = {}


def build_ssl_context(host: str, *, verify: bool, cert_dir: str | None) -> ssl.SSLContext:
    """TLS settings for ``host``: CAs (``*.crt``) and client pairs (``*.cert`` + ``*.key``) from cert dirs.

    Contexts are shared by every client with the same settings in a process (loading the
    system CA store costs ~0.1 s).
    """
    dirs = [cert_dir] if cert_dir else [os.path.join(d, host) for d in CERT_DIRS]
    key = (verify, tuple(d for d in dirs if d and os.path.isdir(d)))
    ctx = _SSL_CACHE.get(key)
    if ctx is None:
        ctx = _SSL_CACHE[key] = _new_ssl_context(verify, key[1])
    return ctx


def _new_ssl_context(verify: bool, dirs: tuple[str, ...]) -> ssl.SSLContext:
    if not verify:
        # no verification: no need to load the system CA store (~0.1-0.2 s per context)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()
    for d in dirs:
        for ca in sorted(glob.glob(os.path.join(d, "*.crt"))):
            ctx.load_verify_locations(cafile=ca)
        for cert in sorted(glob.glob(os.path.join(d, "*.cert"))):
            key = cert[:-5] + ".key"
            if not os.path.exists(key):
                raise TransportError(f"{cert}: client certificate without its key {key}")
            ctx.load_cert_chain(cert, key)
    return ctx


async def error_from_response(resp: aiohttp.ClientResponse, what: str,
                              not_found: type[OcikitError] | None = None) -> OcikitError:
    """The ocikit error a registry's error answer means, with the registry's own message."""
    try:
        body = await read_body(resp, what, ERROR_BODY_LIMIT)
    except (OcikitError, *NETWORK_ERRORS):
        body = b""
    code, message, detail = None, "", None
    try:
        doc = json.loads(body) if body else None
        errs = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            code = errs[0].get("code")
            message = str(errs[0].get("message") or "")
            detail = errs[0].get("detail")
    except ValueError:
        pass
    status = resp.status
    text = f"{what}: {message or resp.reason or 'HTTP ' + str(status)}"
    if code:
        text += f" ({code})"
    elif not message:
        text = f"{what}: HTTP {status} {resp.reason or ''}".rstrip()
    if status == 401:
        return Unauthorized(text)
    if status == 403:
        return Denied(text)
    if status == 429:
        return TooManyRequests(text)
    if isinstance(detail, dict) and detail.get("reason") == DiskFull.code:
        return DiskFull(text)   # the registry's disk is full (an ocikit server says so)
    if status == 404 and not_found is not None and code in (None, "MANIFEST_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN"):
        return not_found(text)
    cls = ERROR_CODES.get(str(code)) if code else None
    if cls is not None:
        try:
            err = cls(text)
        except TypeError:
            err = RegistryError(text)
        err.detail = detail
        return err
    if status == 404:
        return NotFound(text)
    return RegistryError(text)


class RegistryClient:
    """HTTP for one registry host. Create it anywhere; it opens its pool on first use."""

    def __init__(self, host: str, *, creds: Credentials | None = None, tls_verify: bool = True,
                 cert_dir: str | None = None, retry: RetryPolicy | None = None,
                 allow_http: bool | None = None) -> None:
        self.host = host
        self.tls_verify = tls_verify
        self.cert_dir = cert_dir
        self.retry = retry or RetryPolicy()
        # plain HTTP: when TLS checks are off (skopeo's --tls-verify=false), and for loopback
        # hosts as docker does; verified HTTPS is always tried first
        self.allow_http = (not tls_verify or is_loopback_host(host)) if allow_http is None else allow_http
        self.auth = Authenticator(host, creds, self._fetch_token)
        self._session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None
        self._base: URL | None = None
        self._ping_lock: asyncio.Lock | None = None
        self.requests: Counter[str] = Counter()
        """HTTP requests sent through :meth:`request`, by method (redirects and retries included;
        the ``/v2/`` ping not): what a mirror report counts per registry."""

    # ---- plumbing --------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._ssl = build_ssl_context(self.host, verify=self.tls_verify, cert_dir=self.cert_dir)
            conn = aiohttp.TCPConnector(ssl=self._ssl, limit=64, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=conn, auto_decompress=False, read_bufsize=READ_BUFSIZE,
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=SOCK_READ_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def base(self) -> URL:
        """``https://host`` or ``http://host``, decided by pinging ``/v2/`` once."""
        if self._base is not None:
            return self._base
        if self._ping_lock is None:
            self._ping_lock = asyncio.Lock()
        async with self._ping_lock:
            if self._base is None:
                self._base = await self._ping()
        return self._base

    async def _ping(self) -> URL:
        schemes = ["https"] + (["http"] if self.allow_http else [])
        last: BaseException | None = None
        for scheme in schemes:
            url = URL.build(scheme=scheme, authority=self.host, path="/v2/")
            for attempt in range(self.retry.times + 1):
                try:
                    async with self.session().get(url, allow_redirects=False) as resp:
                        if resp.status == 401:
                            self._prime_challenge(resp.headers.get("WWW-Authenticate"))
                        elif resp.status in RETRYABLE_STATUS and attempt < self.retry.times:
                            await asyncio.sleep(backoff_delay(self.retry, attempt,
                                                              parse_retry_after(resp.headers.get("Retry-After"))))
                            continue
                        elif resp.status >= 500:
                            raise TransportError(f"{self.host}: the registry answered /v2/ with HTTP {resp.status}")
                        return URL.build(scheme=scheme, authority=self.host)
                except aiohttp.ClientConnectorCertificateError as e:
                    raise TransportError(
                        f"{self.host}: TLS certificate not trusted ({_describe(e.certificate_error)}); "
                        "pass --cert-dir with the registry's CA, or --tls-verify=false") from None
                except aiohttp.ClientSSLError as e:
                    last = e
                    break  # not TLS on the other side (or a handshake failure): try plain HTTP if allowed
                except NETWORK_ERRORS as e:
                    last = e
                    if scheme == "https" and self.allow_http:
                        break  # an HTTP server answering a TLS hello: try plain HTTP
                    if attempt < self.retry.times:
                        await asyncio.sleep(backoff_delay(self.retry, attempt))
                        continue
                    break
        hint = "" if self.allow_http else " (use --tls-verify=false for a plain-HTTP registry)"
        raise TransportError(f"{self.host}: cannot reach the registry: {_describe(last)}{hint}")

    def _prime_challenge(self, header: str | None) -> None:
        try:
            chs = parse_challenges(header or "")
        except ChallengeSyntaxError:
            return
        by = {c.scheme: c for c in chs}
        ch = by.get("bearer") or by.get("basic")
        if ch is not None and (ch.scheme == "basic" or "realm" in ch.params):
            self.auth.challenge = ch

    async def url(self, path: str) -> URL:
        return (await self.base()).join(URL(path, encoded=True)) if not path.startswith("http") \
            else URL(path, encoded=True)

    async def _fetch_token(self, ch: Challenge, scopes: tuple[Scope, ...],
                           creds: Credentials | None) -> tuple[str, float]:
        try:
            realm = URL(ch.params["realm"])
            realm.origin()
        except ValueError:
            raise Unauthorized(f"{self.host}: token realm {ch.params['realm']!r} is not a valid URL") from None
        if realm.scheme not in ("http", "https") or not realm.host:
            raise Unauthorized(f"{self.host}: token realm {realm} is not an http(s) URL")
        query: list[tuple[str, str]] = []
        if ch.params.get("service"):
            query.append(("service", ch.params["service"]))
        for s in scopes:
            query.append(("scope", str(s)))
        sess = self.session()
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": "ocikit", "service": ch.params.get("service", ""),
                        "scope": " ".join(str(s) for s in scopes)}
                req = sess.post(realm, data=form, allow_redirects=False)
            else:
                headers = {"Authorization": creds.basic_header()} if creds is not None and creds.username else {}
                req = sess.get(realm.update_query(query), headers=headers, allow_redirects=False)
            async with req as resp:
                if resp.status in (401, 403):
                    who = f" for {creds.username!r}" if creds is not None and creds.username else ""
                    if creds is None:
                        raise Unauthorized(f"{self.host}: authentication required; pass --creds USER:PASS or log in")
                    raise Unauthorized(f"{self.host}: authentication failed: the token server refused the "
                                       f"credentials{who}")
                if resp.status != 200:
                    raise Unauthorized(f"{self.host}: token server {realm.origin()} answered HTTP {resp.status}")
                body = await read_body(resp, f"{self.host}: token server {realm.origin()}", 1 << 20,
                                       Unauthorized)
        except NETWORK_ERRORS as e:
            raise TransportError(f"{self.host}: cannot reach token server {realm.origin()}: {_describe(e)}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            raise Unauthorized(f"{self.host}: token server answered something that is not JSON") from None
        return parse_token_response(doc)

    # ---- requests --------------------------------------------------------------------------

    @asynccontextmanager
    async def request(self, method: str, path: str | URL, *, scopes: Sequence[Scope] = (),
                      headers: Mapping[str, str] | None = None, data: Any = None,
                      params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                      ok: Sequence[int] = (200,), what: str | None = None,
                      not_found: type[OcikitError] | None = None,
                      retry: bool = True) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send a request and yield the response (released on exit) when its status is in ``ok``.

        Bodies that are bytes (or None) are resent on retries, redirects and auth challenges;
        a streamed body is sent once (after auth is settled by an earlier request).
        """
        url = path if isinstance(path, URL) else await self.url(path)
        if params:
            url = url.update_query(params)
        need = tuple(scopes)
        what = what or f"{self.host}: {method} {url.path}"
        resendable = data is None or isinstance(data, (bytes, bytearray, memoryview, str))
        # Credentials go only to the registry's own origin: a pagination Link or an upload
        # Location naming another host is followed without them, as redirects are.
        home = origin(str(url)) == origin(str(await self.base()))
        authz = await self.auth.header_for(need) if home else None
        attempt = 0
        auth_rounds = 0
        while True:
            hdrs = dict(headers or {})
            if authz:
                hdrs["Authorization"] = authz
            try:
                resp = await self._send(method, url, hdrs, data, resendable)
            except NETWORK_ERRORS as e:
                inner = _ocikit_cause(e)
                if inner is not None:  # a streamed body failed (short, wrong digest, source error)
                    raise inner from None
                if retry and resendable and self.retry.should_retry_error(attempt):
                    delay = backoff_delay(self.retry, attempt)
                    log.debug("%s: %s, retrying in %.2fs", what, e, delay)
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise TransportError(f"{what}: {_describe(e)}") from None
            if resp.status == 401 and auth_rounds < 2 and resendable and home:
                challenge = resp.headers.get("WWW-Authenticate")
                resp.release()
                authz = await self.auth.on_challenge(challenge, need, authz)
                auth_rounds += 1
                continue
            if resp.status in RETRYABLE_STATUS and retry and resendable and self.retry.should_retry_status(
                    resp.status, attempt):
                delay = backoff_delay(self.retry, attempt, parse_retry_after(resp.headers.get("Retry-After")))
                log.debug("%s: HTTP %s, retrying in %.2fs", what, resp.status, delay)
                resp.release()
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if resp.status not in ok:
                try:
                    err = await error_from_response(resp, what, not_found)
                finally:
                    resp.release()
                if resp.status == 401:
                    err = Unauthorized(self._unauthorized_text(what, authz))
                raise err
            try:
                yield resp
            finally:
                resp.release()
            return

    async def prepare_get(self, path: str, size: int, *, scopes: Sequence[Scope] = (),
                          what: str) -> ThreadedGet:
        """A ``GET`` of ``size`` bytes for a worker thread to receive (:mod:`.threadget`), with the
        ``Authorization`` this client holds for ``scopes`` (a challenge it meets instead makes it
        raise :class:`NotStarted`, and the caller asks through :meth:`request`)."""
        url = await self.url(path)
        authz = await self.auth.header_for(tuple(scopes))
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if authz:
            headers["Authorization"] = authz
        if self._ssl is None:
            self._ssl = build_ssl_context(self.host, verify=self.tls_verify, cert_dir=self.cert_dir)
        self.requests["GET"] += 1
        return ThreadedGet(str(url), headers, size, ssl_context=self._ssl, timeout=SOCK_READ_TIMEOUT,
                           resumes=max(self.retry.times, 1) + 2, what=what)

    def _unauthorized_text(self, what: str, sent: str | None) -> str:
        if self.auth.creds is None:
            return f"{self.host}: authentication required; pass --creds USER:PASS or log in"
        if sent and sent.startswith("Basic "):
            return f"{self.host}: authentication failed: invalid username or password"
        return f"{what}: access denied (unauthorized)"

    async def _send(self, method: str, url: URL, headers: dict[str, str], data: Any,
                    resendable: bool) -> aiohttp.ClientResponse:
        """One request, following redirects by hand; ``Authorization`` stays with the registry's origin."""
        base = await self.base()
        sess = self.session()
        for _ in range(MAX_REDIRECTS + 1):
            self.requests[method] += 1
            resp = await sess.request(method, url, headers=headers, data=data, allow_redirects=False)
            if resp.status not in REDIRECTS or "Location" not in resp.headers:
                return resp
            loc = url.join(URL(resp.headers["Location"], encoded=True))
            resp.release()
            if origin(str(loc)) != origin(str(base)):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if resp.status == 303:
                method, data = "GET", None
            elif not resendable:
                raise TransportError(f"{self.host}: {method} {url.path} was redirected; a streamed body cannot follow")
            url = loc
        raise TransportError(f"{self.host}: too many redirects for {method} {url.path}")

    # ---- registry-wide calls -----------------------------------------------------------------

    async def catalog(self, n: int | None = None) -> list[str]:
        """Every repository name (``/v2/_catalog`` with Link pagination)."""
        out: list[str] = []
        path: str | URL = "/v2/_catalog"
        params = {"n": str(n)} if n else None
        scopes = (Scope("registry", "catalog", frozenset({"*"})),)
        while True:
            async with self.request("GET", path, scopes=scopes, params=params, what=f"{self.host}: catalog") as resp:
                doc = await read_json(resp, f"{self.host}: catalog")
                link = resp.headers.get("Link")
            out.extend(r for r in (doc.get("repositories") or []) if isinstance(r, str))
            nxt = next_link(link)
            if not nxt:
                return out
            path, params = (await self.url(nxt)), None


#: The most ocikit reads of a JSON answer (tag lists, catalogs, referrers, token bodies).
JSON_LIMIT = 16 << 20
#: The most ocikit reads of a registry's error body.
ERROR_BODY_LIMIT = 64 << 10


async def read_body(resp: aiohttp.ClientResponse, what: str, limit: int,
                    error: type[OcikitError] = RegistryError) -> bytes:
    """The whole body of an answer, at most ``limit`` bytes; past it ``error`` saying "too large".

    ``StreamReader.read(n)`` returns what happens to be buffered, so a body is read to its end
    here, in one loop, everywhere a whole answer (a manifest, a tag list, a token) is needed.
    """
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise error(f"{what}: answer too large ({declared} bytes; the limit is {limit})")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await resp.content.read(READ_BUFSIZE)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise error(f"{what}: answer too large (more than {limit} bytes)")
        parts.append(chunk)
    return b"".join(parts)


async def read_json(resp: aiohttp.ClientResponse, what: str, limit: int = JSON_LIMIT) -> dict[str, Any]:
    body = await read_body(resp, what, limit)
    try:
        doc = json.loads(body)
    except ValueError:
        raise RegistryError(f"{what}: answer is not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: answer is not a JSON object")
    return doc


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of an RFC 8288 ``Link`` header (None when there is none)."""
    if not header:
        return None
    for part in _split_links(header):
        part = part.strip()
        if not part.startswith("<") or ">" not in part:
            continue
        target, _, rest = part[1:].partition(">")
        for param in rest.split(";"):
            k, _, v = param.strip().partition("=")
            if k.strip().lower() == "rel" and "next" in v.strip().strip('"').lower().split():
                return target
    return None


def _split_links(header: str) -> list[str]:
    parts, cur, in_angle, in_quote = [], [], False, False
    for c in header:
        if c == "<" and not in_quote:
            in_angle = True
        elif c == ">" and not in_quote:
            in_angle = False
        elif c == '"' and not in_angle:
            in_quote = not in_quote
        if c == "," and not in_angle and not in_quote:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(c)
    parts.append("".join(cur))
    return parts


def _ocikit_cause(e: BaseException) -> OcikitError | None:
    """The ocikit error a body generator raised, when aiohttp wrapped it into a connection error."""
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 8:
        if isinstance(cur, OcikitError):
            return cur
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None


def _describe(e: BaseException | None) -> str:
    if e is None:
        return "no answer"
    if isinstance(e, asyncio.TimeoutError):
        return "timed out"
    text = str(e) or type(e).__name__
    return text.splitlines()[0]


__all__ = ["RegistryClient", "build_ssl_context", "error_from_response", "is_loopback_host", "next_link",
           "read_json", "read_body", "JSON_LIMIT"]

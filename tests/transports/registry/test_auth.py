"""Pure auth logic: WWW-Authenticate parsing, scopes, token answers, retry timing, Link headers."""

from __future__ import annotations

import random
from asyncio import run

import pytest
from hypothesis import given, strategies as st

from ocikit.core.errors import Unauthorized
from ocikit.transports.registry.auth import (
    Authenticator,
    Challenge,
    ChallengeSyntaxError,
    Credentials,
    Scope,
    covers_all,
    merge_scopes,
    parse_challenges,
    parse_scope,
    parse_token_response,
)
from ocikit.transports.registry.client import next_link
from ocikit.transports.registry.retry import RetryPolicy, backoff_delay, parse_retry_after



@pytest.mark.parametrize("header,want", [
    ('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"',
     [("bearer", {"realm": "https://auth.example/token", "service": "registry.example",
                  "scope": "repository:a/b:pull"}, None)]),
    ('Basic realm="Registry Realm"', [("basic", {"realm": "Registry Realm"}, None)]),
    ('basic realm=test', [("basic", {"realm": "test"}, None)]),
    ('Bearer realm = "r" , service = s', [("bearer", {"realm": "r", "service": "s"}, None)]),
    ('Bearer realm="a,b",scope="x y"', [("bearer", {"realm": "a,b", "scope": "x y"}, None)]),
    (r'Basic realm="say \"hi\" \\ there"', [("basic", {"realm": 'say "hi" \\ there'}, None)]),
    ('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
     [("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}, None),
      ("basic", {"realm": "simple"}, None)]),
    ('Basic realm="a", Bearer realm="b",service="c"',
     [("basic", {"realm": "a"}, None), ("bearer", {"realm": "b", "service": "c"}, None)]),
    ('Negotiate abc123==', [("negotiate", {}, "abc123==")]),
    ('Negotiate abc/+.~_-9, Basic realm="x"', [("negotiate", {}, "abc/+.~_-9"), ("basic", {"realm": "x"}, None)]),
    ('Bearer', [("bearer", {}, None)]),
    (', , Basic realm="x",,', [("basic", {"realm": "x"}, None)]),
    ('Bearer REALM="x",Service="y"', [("bearer", {"realm": "x", "service": "y"}, None)]),
    ('Bearer realm="",error="insufficient_scope"', [("bearer", {"realm": "", "error": "insufficient_scope"}, None)]),
    ('', []),
])
def test_parse_challenges(header, want):
    got = [(c.scheme, dict(c.params), c.token68) for c in parse_challenges(header)]
    assert got == want


@pytest.mark.parametrize("header", [
    'Basic realm="unterminated',
    'Basic realm=',
    'Bearer realm="x" junk',
    '"quoted" realm=x',
    'Basic realm="x\\',
    'Basic =x',
])
def test_parse_challenges_rejects_garbage(header):
    with pytest.raises(ChallengeSyntaxError):
        parse_challenges(header)


_tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+", min_size=1,
                  max_size=12)
_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@given(st.lists(st.tuples(_tokens, st.dictionaries(_tokens, _values, max_size=4)), min_size=1, max_size=4))
def test_parse_challenges_round_trip(challenges):
    """Any list of challenges, written with quoted values and escapes, parses back to itself."""
    def q(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    text = ", ".join(f"{s} " + ", ".join(f"{k}={q(v)}" for k, v in p.items()) if p else s
                     for s, p in challenges)
    got = parse_challenges(text)
    want = [(s.lower(), {k.lower(): v for k, v in p.items()}) for s, p in challenges]
    # lower-cased names may collide; compare as the parser keeps the last
    assert [(c.scheme, dict(c.params)) for c in got] == want


def test_scopes_parse_merge_cover():
    s = parse_scope("repository:a/b:pull,push")
    assert s == Scope("repository", "a/b", frozenset({"pull", "push"}))
    assert str(s) == "repository:a/b:pull,push"
    assert parse_scope("registry:catalog:*").actions == frozenset({"*"})
    assert parse_scope("repository:host:5000/x:pull").name == "host:5000/x"
    with pytest.raises(ValueError):
        parse_scope("repository")
    merged = merge_scopes([parse_scope("repository:a:pull"), parse_scope("repository:b:pull"),
                           parse_scope("repository:a:push")])
    assert [str(m) for m in merged] == ["repository:a:pull,push", "repository:b:pull"]
    assert merge_scopes(merged) == merged
    assert covers_all(merged, [parse_scope("repository:a:push")])
    assert not covers_all(merged, [parse_scope("repository:b:push")])
    assert covers_all(merged, [])


def test_token_response():
    tok, exp = parse_token_response({"token": "t", "expires_in": 300}, now=1000.0)
    assert tok == "t" and 1000 + 280 <= exp < 1300
    tok, exp = parse_token_response({"access_token": "a"}, now=0.0)
    assert tok == "a" and 0 < exp <= 60
    for bad in ([], {}, {"token": ""}, {"token": 5}):
        with pytest.raises(Unauthorized):
            parse_token_response(bad)


def test_authenticator_bearer_caches_per_scope_and_refreshes():
    calls: list[tuple[str, ...]] = []

    async def fetch(ch, scopes, creds):
        calls.append(tuple(str(s) for s in scopes))
        return f"tok{len(calls)}", 1e12

    async def go():
        a = Authenticator("h", Credentials("u", "p"), fetch)
        pull = (parse_scope("repository:a:pull"),)
        assert await a.header_for(pull) is None  # no challenge seen yet
        hdr = await a.on_challenge('Bearer realm="https://t/token",service="s",scope="repository:a:pull"', pull, None)
        assert hdr == "Bearer tok1"
        assert await a.header_for(pull) == "Bearer tok1"  # cached
        push = (parse_scope("repository:a:pull,push"),)
        assert await a.header_for(push) == "Bearer tok2"  # a new scope set, a new token
        assert await a.header_for(pull) in ("Bearer tok1", "Bearer tok2")
        # the registry asks for more (a mount source): scopes merged into one token
        hdr = await a.on_challenge('Bearer realm="https://t/token",scope="repository:b:pull"', push, "Bearer tok2")
        assert calls[-1] == ("repository:a:pull,push", "repository:b:pull")
        # a refused token is forgotten; another one is used or fetched
        hdr2 = await a.on_challenge('Bearer realm="https://t/token"', pull, hdr)
        assert hdr2 != hdr and all(f"Bearer {t.value}" != hdr for t in a.tokens.values())
        # when the only token covering the scopes is refused, a new one is fetched
        only = Authenticator("h", None, fetch)
        h1 = await only.on_challenge('Bearer realm="https://t/token"', pull, None)
        n = len(calls)
        h2 = await only.on_challenge('Bearer realm="https://t/token"', pull, h1)
        assert len(calls) == n + 1 and h2 != h1

    run(go())


def test_authenticator_basic_and_errors():
    async def fetch(ch, scopes, creds):  # pragma: no cover - never called for basic
        raise AssertionError

    async def go():
        anon = Authenticator("h", None, fetch)
        with pytest.raises(Unauthorized, match="authentication required"):
            await anon.on_challenge('Basic realm="x"', (), None)
        a = Authenticator("h", Credentials("u", "p"), fetch)
        hdr = await a.on_challenge('Basic realm="x"', (), None)
        assert hdr == "Basic dTpw"
        assert await a.header_for(()) == hdr
        with pytest.raises(Unauthorized, match="invalid username or password"):
            await a.on_challenge('Basic realm="x"', (), hdr)
        with pytest.raises(Unauthorized, match="unsupported authentication scheme"):
            await a.on_challenge('Digest realm="x"', (), None)
        with pytest.raises(Unauthorized, match="without a realm"):
            await a.on_challenge('Bearer service="x"', (), None)
        with pytest.raises(Unauthorized, match="without a challenge"):
            await a.on_challenge(None, (), None)

    run(go())
    assert "p" not in repr(Credentials("u", "p")).replace("password", "")


def test_retry_timing():
    pol = RetryPolicy(times=3, base=0.2, cap=5.0)
    rng = random.Random(1)
    for attempt in range(8):
        d = backoff_delay(pol, attempt, rng=rng)
        ceiling = min(5.0, 0.2 * 2 ** attempt)
        assert ceiling / 2 <= d <= ceiling
    assert backoff_delay(pol, 0, retry_after=7) == 7
    assert backoff_delay(pol, 0, retry_after=1e6) == pol.max_retry_after
    assert pol.should_retry_status(503, 0) and pol.should_retry_status(429, 2) and pol.should_retry_status(408, 0)
    assert not pol.should_retry_status(503, 3) and not pol.should_retry_status(404, 0)
    assert not pol.should_retry_status(501, 0)
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("header,want", [
    ('</v2/a/tags/list?n=2&last=b>; rel="next"', "/v2/a/tags/list?n=2&last=b"),
    ('<https://r/v2/_catalog?last=x&n=1>; rel=next', "https://r/v2/_catalog?last=x&n=1"),
    ('<https://r/a>; rel="prev", <https://r/b?x=1,2>; rel="next"', "https://r/b?x=1,2"),
    ('<https://r/a>; rel="prev"', None),
    ('<https://r/a>; title="a, b"; rel="next last"', "https://r/a"),
    (None, None), ("", None), ("garbage", None),
])
def test_next_link(header, want):
    assert next_link(header) == want


def test_challenge_scopes_property():
    assert Challenge("bearer", {"scope": "a:b:c d:e:f"}).scopes == ["a:b:c", "d:e:f"]
    assert Challenge("bearer", {}).scopes == []

"""model.scope: the token-scope grammar the registry client and the server share."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.errors import ScopeInvalid, Unauthorized, UsageError
from ocikit.model.scope import CATALOG, Scope, covers_all, merge_scopes, parse_scope, repository_scope
from ocikit.server.auth import Authenticator, Need, verify_token
from ocikit.server.config import AuthConfig, Rule
from ocikit.transports.registry.auth import Authenticator as ClientAuth
from ocikit.transports.registry.auth import Challenge


def test_grammar() -> None:
    assert parse_scope("repository:a/b:pull,push") == Scope("repository", "a/b", frozenset({"pull", "push"}))
    assert parse_scope("repository:host:5000/a:pull").name == "host:5000/a"  # the name may hold ':'
    assert parse_scope("registry:catalog:*") == parse_scope(CATALOG) == Scope("registry", "catalog", frozenset("*"))
    assert parse_scope("repository:a:").actions == frozenset()
    assert str(parse_scope("repository:a:push,pull,,pull")) == "repository:a:pull,push"
    assert repository_scope("a") == parse_scope("repository:a:pull")
    for bad in ("nonsense", "repository", "repository:a", ":a:pull", "repository::pull"):
        with pytest.raises(ScopeInvalid, match="expected type:name:actions"):
            parse_scope(bad)
    assert issubclass(ScopeInvalid, UsageError) and issubclass(ScopeInvalid, ValueError)


def test_merge_and_cover() -> None:
    merged = merge_scopes([repository_scope("b"), repository_scope("a"), repository_scope("a", "push")])
    assert [str(s) for s in merged] == ["repository:a:pull,push", "repository:b:pull"]
    assert covers_all(merged, [repository_scope("a", "push")]) and not covers_all(merged, [repository_scope("b", "push")])


@settings(deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises_typed_and_round_trips(text: str) -> None:
    try:
        s = parse_scope(text)
    except ScopeInvalid:
        return
    assert parse_scope(str(s)) == s


def test_server_challenge_client_scope_server_token_agree() -> None:
    """The server's challenge scope, parsed by the client, asked back of the server's token endpoint."""
    server = Authenticator(AuthConfig(mode="token", token_secret="s3cret",
                                      rules=[Rule("team/*", ("anonymous",), ("pull", "push"))]))
    need = Need("team/app", "push")
    assert need.scope == "repository:team/app:pull,push" and Need(None, "catalog").scope == CATALOG
    with pytest.raises(Unauthorized) as ei:  # an anonymous push: 401 with a bearer challenge
        asyncio.run(server.authenticate({}, "http://127.0.0.1/auth/token", need))
    challenge = ei.value.challenge  # type: ignore[attr-defined]
    assert 'scope="repository:team/app:pull,push"' in challenge
    issued: list[list[str]] = []

    async def fetch(ch: Challenge, scopes: tuple[Scope, ...], creds: object) -> tuple[str, float]:
        asked = [str(s) for s in scopes] + ["not-a-scope", "repository:other:pull"]
        issued.append(asked)
        body = await server.issue_token({}, asked, "ocikit", ch.params["realm"])
        return body["token"], 1e12

    async def go() -> str:
        client = ClientAuth("127.0.0.1", None, fetch)
        return await client.on_challenge(challenge, (repository_scope("team/app"),), None)

    header = asyncio.run(go())
    assert issued == [["repository:team/app:pull,push", "not-a-scope", "repository:other:pull"]]
    claims = verify_token(b"s3cret", header.removeprefix("Bearer "), "ocikit")
    assert claims is not None
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]

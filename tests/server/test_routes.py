"""Pure pieces of the server: routing, Content-Range, pagination, scopes, tokens, rules, config."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.digest import Digest
from ocikit.core.errors import BlobUploadUnknown, NameInvalid, NotFound, ScopeInvalid, UsageError
from ocikit.model.scope import CATALOG, Scope, parse_scope
from ocikit.server.access import Need, parse_basic, rule_actions, sign_token, verify_token
from ocikit.server.serve_config import Rule, parse_config
from ocikit.server.error_body import error_body
from ocikit.server.routes import is_tag, parse_content_range, parse_route
from ocikit.server.tags import paginate

D = str(Digest.of(b"x"))


@pytest.mark.parametrize("path,kind,name,ref", [
    ("/v2/", "base", None, None),
    ("/v2", "base", None, None),
    ("/v2/_catalog", "catalog", None, None),
    ("/v2/a/manifests/latest", "manifest", "a", "latest"),
    ("/v2/a/b/c/manifests/" + D, "manifest", "a/b/c", D),
    ("/v2/a/blobs/uploads/", "upload", "a", ""),
    ("/v2/a/blobs/uploads/" + "f" * 32, "upload", "a", "f" * 32),
    ("/v2/a/blobs/" + D, "blob", "a", D),
    ("/v2/blobs/blobs/" + D, "blob", "blobs", D),
    ("/v2/manifests/manifests/x", "manifest", "manifests", "x"),
    ("/v2/a/tags/list", "tags", "a", None),
    ("/v2/tags/list/tags/list", "tags", "tags/list", None),
    ("/v2/a/referrers/" + D, "referrers", "a", D),
    ("/v2/_oci/ext/discover", "discover", None, None),
    ("/v2/a/b/_ocikit/tags/digests", "tag-digests", "a/b", None),
])
def test_parse_route(path, kind, name, ref):
    r = parse_route(path)
    assert (r.kind, r.name, r.reference) == (kind, name, ref)


@pytest.mark.parametrize("path,error", [
    ("/v2/a/../b/tags/list", NameInvalid), ("/v2/A/tags/list", NameInvalid), ("/v2/a//b/tags/list", NameInvalid),
    ("/v2/.a/tags/list", NameInvalid), ("/v2/a/tags", NotFound), ("/v3/a/tags/list", NotFound),
    ("/v2/a/blobs/uploads/../../x", NotFound), ("/v2/a/blobs/uploads/xyz", BlobUploadUnknown),
    ("/v2/" + "a" * 300 + "/tags/list", NameInvalid),
])
def test_parse_route_rejects(path, error):
    with pytest.raises(error):
        parse_route(path)


@given(st.text(max_size=80))
def test_parse_route_never_crashes(tail):
    try:
        r = parse_route("/v2/" + tail)
    except (NotFound, NameInvalid, BlobUploadUnknown):
        return
    assert r.name is None or ".." not in r.name.split("/")


@pytest.mark.parametrize("value,expected", [
    ("0-99", (0, 99)), ("bytes 5-9", (5, 9)), ("bytes=5-9", (5, 9)), (" 7-7 ", (7, 7)),
    ("9-5", None), ("0-", None), ("-1-5", None), ("a-b", None), ("", None), ("0-1-2", None),
])
def test_parse_content_range(value, expected):
    assert parse_content_range(value) == expected


@given(st.integers(0, 2**40), st.integers(0, 2**40))
def test_parse_content_range_roundtrip(a, b):
    lo, hi = min(a, b), max(a, b)
    assert parse_content_range(f"{lo}-{hi}") == (lo, hi)


def test_tags():
    assert is_tag("latest") and is_tag("v1.2_3-x") and is_tag("_x") and is_tag("a" * 128)
    assert not is_tag(".x") and not is_tag("-x") and not is_tag("a" * 129) and not is_tag("a b")


@given(st.lists(st.text(alphabet="abcdef", min_size=1, max_size=4), unique=True), st.integers(0, 10))
def test_paginate_walks_everything_once(items, n):
    items = sorted(items)
    seen, last = [], None
    for _ in range(len(items) + 2):
        page, more = paginate(items, n or 1, last)
        seen += page
        if not more:
            break
        last = page[-1]
    assert seen == items


def test_paginate_zero_and_none():
    assert paginate(["a", "b"], 0, None) == ([], True)
    assert paginate(["a", "b"], None, "a") == (["b"], False)


def test_scopes_and_basic():
    assert parse_scope("repository:a/b:pull,push") == Scope("repository", "a/b", frozenset({"pull", "push"}))
    assert parse_scope("repository:host:5000/a:pull") == Scope("repository", "host:5000/a", frozenset({"pull"}))
    assert parse_scope("registry:catalog:*") == Scope("registry", "catalog", frozenset({"*"}))
    with pytest.raises(ScopeInvalid):
        parse_scope("nonsense")
    assert Need("a/b", "push").scope == "repository:a/b:pull,push" and Need(None, "catalog").scope == CATALOG
    assert parse_basic("Basic YWxpY2U6cHc6eA==") == ("alice", "pw:x")
    assert parse_basic("Basic !!!") is None and parse_basic("Bearer x") is None and parse_basic(None) is None


def test_rules():
    rules = [Rule("team/*", ("alice",), ("pull", "push")), Rule("*", ("*",), ("pull",)),
             Rule("pub/*", ("anonymous",), ("pull",))]
    assert rule_actions(rules, "alice", "team/x") == {"pull", "push"}
    assert rule_actions(rules, "bob", "team/x") == {"pull"}
    assert rule_actions(rules, None, "team/x") == set()
    assert rule_actions(rules, None, "pub/x") == {"pull"}


def test_tokens():
    secret = b"k"
    claims = {"aud": "svc", "exp": time.time() + 60, "access": []}
    tok = sign_token(secret, claims)
    assert verify_token(secret, tok, "svc")["aud"] == "svc"
    assert verify_token(b"other", tok, "svc") is None
    assert verify_token(secret, tok, "other-service") is None
    assert verify_token(secret, tok, "svc", now=time.time() + 120) is None
    head, body, sig = tok.split(".")
    assert verify_token(secret, f"{head}.{body}x.{sig}", "svc") is None
    assert verify_token(secret, "a.b", "svc") is None


def test_config():
    cfg = parse_config({"listen": "0.0.0.0:6000", "storage": {"root": "/x", "fsync": False}, "read_only": True,
                        "auth": {"mode": "token", "token": {"secret": "s"},
                                 "rules": [{"repository": "a/*", "users": "bob", "actions": "pull,push"}]},
                        "limits": {"manifest_size": 1000}, "manifests": {"accept_sparse_index": True}})
    assert cfg.host_port == ("0.0.0.0", 6000) and cfg.root == "/x" and not cfg.fsync and cfg.read_only
    assert cfg.auth.rules == [Rule("a/*", ("bob",), ("pull", "push"))]
    assert cfg.manifest_size == 1000 and cfg.accept_sparse_index
    assert cfg.with_overrides(listen="127.0.0.1:1", root=None).listen == "127.0.0.1:1"
    for bad in ({"nope": 1}, {"auth": {"mode": "ldap"}}, {"storage": {"driver": "s3"}},
                {"auth": {"rules": [{"repository": "a", "actions": ["fly"]}]}}, {"auth": {"mode": "htpasswd"}}):
        with pytest.raises(UsageError):
            parse_config(bad)


def test_error_body_keeps_spec_codes():
    import json
    body = json.loads(error_body(NameInvalid("bad name")))
    assert body == {"errors": [{"code": "NAME_INVALID", "message": "bad name"}]}
    assert json.loads(error_body(NotFound("x")))["errors"][0]["code"] == "UNSUPPORTED"

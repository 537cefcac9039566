"""Image references: the docker reference grammar, normalisation, limits, precise errors."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.errors import InvalidReference, NameInvalid
from ocikit.core.reference import (
    NAME_TOTAL_MAX,
    Reference,
    parse_reference,
    split_domain,
    validate_host,
    validate_repository_name,
    validate_tag,
)
from ocikit.core.transportref import parse_transport_reference

from helpers.cli import expect_failure

D256 = "sha256:" + "a" * 64
D512 = "sha512:" + "b" * 128


@pytest.mark.parametrize("text, domain, path, tag, digest", [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("docker.io/library/nginx", "docker.io", "library/nginx", None, None),
    ("index.docker.io/nginx:latest", "docker.io", "library/nginx", "latest", None),
    ("index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", None, None),
    ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
    ("a/b/c/d", "docker.io", "a/b/c/d", None, None),
    ("localhost/x", "localhost", "x", None, None),
    ("localhost:5000/x:1", "localhost:5000", "x", "1", None),
    ("localhost:5000/ns/x@" + D256, "localhost:5000", "ns/x", None, D256),
    ("[::1]:5000/x", "[::1]:5000", "x", None, None),
    ("[::1]/x:tag", "[::1]", "x", "tag", None),
    ("[2001:db8::1]:443/org/app:v1@" + D256, "[2001:db8::1]:443", "org/app", "v1", D256),
    ("127.0.0.1:5000/x", "127.0.0.1:5000", "x", None, None),
    ("quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd", "v3.5.0", None),
    ("ghcr.io/a/b@" + D512, "ghcr.io", "a/b", None, D512),
    ("registry:5000/x", "registry:5000", "x", None, None),
    ("Registry.Example.com/x", "Registry.Example.com", "x", None, None),
    ("Foo/bar", "Foo", "bar", None, None),  # an upper-case first component is a host, as docker says
    ("foo--bar", "docker.io", "library/foo--bar", None, None),
    ("foo__bar.baz-qux_1", "docker.io", "library/foo__bar.baz-qux_1", None, None),
    ("x:" + "T" * 128, "docker.io", "library/x", "T" * 128, None),
    ("x:_tag", "docker.io", "library/x", "_tag", None),
    ("sha256:" + "a" * 64, "docker.io", "library/sha256", "a" * 64, None),
    ("nginx:1@" + D256, "docker.io", "library/nginx", "1", D256),
])
def test_valid(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    r = parse_reference(text)
    assert (r.domain, r.path, r.tag, r.digest) == (domain, path, tag, digest)
    assert r.name == f"{domain}/{path}"
    assert parse_reference(str(r)) == r


def test_default_tag_and_reference() -> None:
    assert parse_reference("nginx", default_tag="latest").tag == "latest"
    assert parse_reference("nginx@" + D256, default_tag="latest").tag is None
    assert parse_reference("nginx").reference == "latest"
    assert parse_reference("nginx:1").reference == "1"
    assert parse_reference("nginx:1@" + D256).reference == D256


def test_familiar_and_str() -> None:
    assert parse_reference("nginx:1").familiar() == "nginx:1"
    assert str(parse_reference("nginx:1")) == "docker.io/library/nginx:1"
    assert parse_reference("bitnami/redis").familiar() == "bitnami/redis"
    assert parse_reference("quay.io/a/b:1").familiar() == "quay.io/a/b:1"
    assert parse_reference("docker.io/x/y@" + D256).familiar() == "x/y@" + D256
    nested = parse_reference("library/a/b")
    assert nested.familiar() == "library/a/b" and parse_reference(nested.familiar()) == nested


def test_with_tag_and_digest() -> None:
    r = parse_reference("quay.io/a/b:1")
    assert r.with_tag("2") == Reference("quay.io", "a/b", "2", None)
    assert r.with_digest(D256).digest == D256 and r.with_digest(D256).tag == "1"
    with pytest.raises(InvalidReference):
        r.with_tag("-bad")
    assert r.repository == "a/b"


def test_length_limits() -> None:
    # the whole name (host included) may be 255 characters
    host = "registry.example.com/"
    ok = host + "x" * (NAME_TOTAL_MAX - len(host))
    assert parse_reference(ok).path == "x" * (NAME_TOTAL_MAX - len(host))
    with pytest.raises(InvalidReference, match="longer than 255"):
        parse_reference(ok + "x")
    assert parse_reference("a" * 255).path == "library/" + "a" * 255
    with pytest.raises(InvalidReference, match="longer than 128"):
        parse_reference("x:" + "t" * 129)


H = "a" * 64
MALFORMED = [
    ("", "empty reference"),
    (" nginx", "contains white space"),
    ("nginx ", "contains white space"),
    ("ngi nx", "contains white space"),
    ("nginx\t", "contains white space"),
    ("nginx:", "empty tag after ':'"),
    ("nginx@", "empty digest after '@'"),
    (":tag", "at least one component"),
    ("@" + D256, "at least one component"),
    ("/nginx", "empty path component"),
    ("nginx/", "empty path component"),
    ("a//b", "empty path component"),
    ("NGINX", "must be lowercase"),
    ("foo/Bar", "must be lowercase"),
    ("quay.io/Org/app", "must be lowercase"),
    ("-nginx", "bad path component '-nginx'"),
    ("nginx-", "bad path component 'nginx-'"),
    (".nginx", "bad path component '.nginx'"),
    ("ngi..nx", "bad path component 'ngi..nx'"),
    ("ngi___nx", "bad path component 'ngi___nx'"),
    ("ngi_-nx", "bad path component 'ngi_-nx'"),
    ("a/b$c", "bad path component 'b$c'"),
    ("a/b:c/d", "bad path component 'b:c'"),
    ("a/b:tag:tag", "bad path component 'b:tag'"),
    ("nginx:.tag", "must match [A-Za-z0-9_]"),
    ("nginx:-tag", "must match [A-Za-z0-9_]"),
    ("nginx:ta/g", "invalid registry host 'nginx:ta'"),
    ("nginx:t$g", "must match [A-Za-z0-9_]"),
    ("nginx:" + "t" * 129, "longer than 128 characters"),
    ("a" * 256, "longer than 255 characters"),
    ("nginx@sha256:abc", "sha256 needs 64 lowercase hex"),
    ("nginx@sha256:" + "A" * 64, "sha256 needs 64 lowercase hex"),
    ("nginx@sha512:" + "a" * 64, "sha512 needs 128 lowercase hex"),
    ("nginx@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
    ("nginx@latest", "expected algorithm:encoded"),
    ("host:99999/x", "port out of range"),
    ("host:0/x", "port out of range"),
    ("host:/x", "invalid registry host 'host:'"),
    ("ho_st.com/x", "invalid registry host 'ho_st.com'"),
    ("-host.com/x", "invalid registry host '-host.com'"),
    ("host-.com/x", "invalid registry host 'host-.com'"),
    ("[::1]", "without a repository"),
    ("[::1]:5000", "without a repository"),
    ("[fe80::1%eth0]:5000/x", "invalid registry host"),
    ("[zz::1]/x", "invalid registry host"),
    (H, "64-character hex string"),
    (H + ":tag", "64-character hex string"),
]


@pytest.mark.parametrize("text, fragment", MALFORMED, ids=[repr(t)[:40] for t, _ in MALFORMED])
def test_malformed(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as ei:
        parse_reference(text)
    assert fragment in str(ei.value), str(ei.value)
    assert ei.value.code == "NAME_INVALID" and ei.value.status == 400


@pytest.mark.parametrize("text, fragment", MALFORMED, ids=[repr(t)[:40] for t, _ in MALFORMED])
def test_malformed_is_refused_wherever_an_image_is_named(text: str, fragment: str) -> None:
    """An image location (``docker://REF``, or a bare REF where docker is the default) adds no
    leniency of its own: the same reference is refused with the same precise error."""
    with pytest.raises(InvalidReference) as ei:
        parse_transport_reference("docker://" + text)
    assert fragment in str(ei.value), str(ei.value)
    if text:  # an empty location has an error of its own
        with pytest.raises(InvalidReference) as ei:
            parse_transport_reference(text, default_transport="docker")
        assert fragment in str(ei.value), str(ei.value)


@pytest.mark.parametrize("text, fragment", [("NGINX", "must be lowercase"), ("nginx:", "empty tag after ':'"),
                                            ("host:99999/x", "port out of range")])
def test_malformed_on_the_command_line_is_a_one_line_error(text: str, fragment: str) -> None:
    expect_failure("inspect", f"docker://{text}", match=re.escape(fragment), code=1)


def test_not_a_string() -> None:
    with pytest.raises(InvalidReference, match="not a string"):
        parse_reference(None)  # type: ignore[arg-type]


def test_split_domain() -> None:
    assert split_domain("nginx") == ("docker.io", "library/nginx")
    assert split_domain("index.docker.io/nginx") == ("docker.io", "library/nginx")
    assert split_domain("localhost/a") == ("localhost", "a")
    assert split_domain("a/b") == ("docker.io", "a/b")
    assert split_domain("a.b/c") == ("a.b", "c")


@pytest.mark.parametrize("name", ["a", "a/b", "a-b/c__d/e.f", "a" * 255])
def test_repository_name_valid(name: str) -> None:
    assert validate_repository_name(name) == name


@pytest.mark.parametrize("name, fragment", [
    ("", "empty"), ("A", "invalid repository name"), ("a/", "invalid repository name"),
    ("a" * 256, "longer than 255"), ("a:b", "invalid repository name"), ("-a", "invalid repository name"),
])
def test_repository_name_invalid(name: str, fragment: str) -> None:
    with pytest.raises(NameInvalid, match=fragment):
        validate_repository_name(name)


def test_validate_host_and_tag() -> None:
    assert validate_host("[::1]:5000") == "[::1]:5000"
    assert validate_host("example.com:65535") == "example.com:65535"
    with pytest.raises(InvalidReference, match="port out of range"):
        validate_host("example.com:65536")
    assert validate_tag("v1.0_rc-1") == "v1.0_rc-1"
    with pytest.raises(InvalidReference, match="empty tag"):
        validate_tag("")


# ---- property: str(parse(x)) is stable -------------------------------------------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_sep = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(lambda a, rest: a + "".join(s + b for s, b in rest),
                       _alnum, st.lists(st.tuples(_sep, _alnum), max_size=2))
_path = st.one_of(st.lists(_component, min_size=1, max_size=3).map("/".join),
                  st.lists(_component, min_size=1, max_size=2).map(lambda c: "library/" + "/".join(c)))
_dlabel = st.from_regex(r"\A[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?\Z")
_host = st.one_of(
    st.just("localhost"),
    st.lists(_dlabel, min_size=2, max_size=3).map(".".join),
    st.just("[::1]"), st.just("[2001:db8::7]"),
)
_port = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
_digest = st.one_of(st.just(D256), st.just(D512), st.binary(max_size=8).map(lambda b: __import__("hashlib").sha256(b).hexdigest()).map(lambda h: "sha256:" + h))


@st.composite
def references(draw: st.DrawFn) -> str:
    host = draw(st.one_of(st.just(""), st.builds(lambda h, p: h + p + "/", _host, _port)))
    path = draw(_path)
    first = path.split("/")[0]
    if not host and "/" in path and ("." in first or first == "localhost"):
        host = "example.com/"  # docker reads such a first component as a host: say one explicitly
    text = host + path
    if draw(st.booleans()):
        text += ":" + draw(_tag)
    if draw(st.booleans()):
        text += "@" + draw(_digest)
    return text


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(references())
def test_roundtrip_stable(text: str) -> None:
    r = parse_reference(text)
    s = str(r)
    again = parse_reference(s)
    assert again == r
    assert str(again) == s
    assert parse_reference(r.familiar()) == r


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.text(max_size=60))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        r = parse_reference(text)
    except InvalidReference:
        return
    assert parse_reference(str(r)) == r

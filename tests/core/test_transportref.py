"""Transport references in skopeo's syntax."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.errors import InvalidReference
from ocikit.core.transportref import TransportReference, parse_transport_reference
from ocikit.transports import target_tag

D = "sha256:" + "c" * 64


@pytest.mark.parametrize("text, transport, path, reference, digest", [
    ("oci:/tmp/x", "oci", "/tmp/x", None, None),
    ("oci:/tmp/x:tag", "oci", "/tmp/x", "tag", None),
    ("oci:relative/dir:v1.0", "oci", "relative/dir", "v1.0", None),
    ("oci:httpd:2.4.48", "oci", "httpd", "2.4.48", None),
    (f"oci:/tmp/x@{D}", "oci", "/tmp/x", None, D),
    (f"oci:/tmp/x:@{D}", "oci", "/tmp/x", None, D),
    ("oci:/tmp/x:example.com/app:1", "oci", "/tmp/x", "example.com/app:1", None),
    ("oci:/tmp/a@b:tag", "oci", "/tmp/a@b", "tag", None),
    ("oci-archive:/a.tar", "oci-archive", "/a.tar", None, None),
    ("oci-archive:/a.tar:v1", "oci-archive", "/a.tar", "v1", None),
    ("oci-archive:/a.tar:foo/bar:1", "oci-archive", "/a.tar", "foo/bar:1", None),
    ("docker-archive:/a.tar", "docker-archive", "/a.tar", None, None),
    ("docker-archive:/a.tar:nginx:1", "docker-archive", "/a.tar", "nginx:1", None),
    ("docker-archive:/a.tar:quay.io/a/b:2", "docker-archive", "/a.tar", "quay.io/a/b:2", None),
    ("docker-archive:/a.tar:@0", "docker-archive", "/a.tar", "@0", None),
    ("docker-archive:/a.tar:@12", "docker-archive", "/a.tar", "@12", None),
])
def test_local(text: str, transport: str, path: str, reference: str | None, digest: str | None) -> None:
    r = parse_transport_reference(text)
    assert (r.transport, r.path, r.reference, r.digest, r.image) == (transport, path, reference, digest, None)
    assert r.is_local
    assert r.selector == (digest or reference)
    assert parse_transport_reference(str(r)) == r
    assert target_tag(r) == reference


@pytest.mark.parametrize("text, name, tag, digest", [
    ("docker://nginx", "docker.io/library/nginx", "latest", None),
    ("docker://nginx:1.25", "docker.io/library/nginx", "1.25", None),
    ("docker://localhost:5000/x:1", "localhost:5000/x", "1", None),
    ("docker://[::1]:5000/x", "[::1]:5000/x", "latest", None),
    (f"docker://quay.io/a/b@{D}", "quay.io/a/b", None, D),
    (f"docker://quay.io/a/b:t@{D}", "quay.io/a/b", "t", D),
])
def test_docker(text: str, name: str, tag: str | None, digest: str | None) -> None:
    r = parse_transport_reference(text)
    assert r.transport == "docker" and not r.is_local
    assert r.image is not None
    assert (r.image.name, r.image.tag, r.image.digest) == (name, tag, digest)
    assert r.selector == (digest or tag)
    assert parse_transport_reference(str(r)) == r
    assert target_tag(r) == (None if digest else tag)


def test_default_transport() -> None:
    r = parse_transport_reference("quay.io/a/b:1", default_transport="docker")
    assert r.transport == "docker" and r.image is not None and r.image.tag == "1"
    r = parse_transport_reference("nginx", default_transport="docker")
    assert r.image is not None and str(r.image) == "docker.io/library/nginx:latest"
    # a transport prefix still wins
    assert parse_transport_reference("oci:/x:t", default_transport="docker").transport == "oci"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("nginx", "expected one of docker://REF"),
    ("dir:/x", "expected one of docker://REF"),
    ("containers-storage:x", "expected one of docker://REF"),
    ("docker:nginx", "docker transport needs docker://"),
    ("docker://", "empty reference"),
    ("docker://NGINX", "must be lowercase"),
    ("docker://nginx:-x", "invalid tag"),
    ("oci:", "empty path"),
    ("oci::tag", "empty path"),
    (f"oci:@{D}", "empty path"),
    ("oci:/x:", "empty reference after ':'"),
    ("oci:/x@sha256:bad", "bad digest 'sha256:bad'"),
    (f"oci:/x:tag@{D}", "give :TAG or @DIGEST, not both"),
    ("oci:/x:ta g", "bad character ' '"),
    ("oci:/x:t$g", "bad character '$'"),
    ("oci-archive:", "empty path"),
    ("docker-archive:/a.tar:@x", "@N needs a number"),
    ("docker-archive:/a.tar:NGINX", "must be lowercase"),
])
def test_malformed(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReference) as ei:
        parse_transport_reference(text, default_transport=None)
    assert fragment in str(ei.value), str(ei.value)


def test_str_forms() -> None:
    assert str(TransportReference("oci", path="/p", reference="t")) == "oci:/p:t"
    assert str(TransportReference("oci", path="/p", digest=D)) == f"oci:/p@{D}"  # type: ignore[arg-type]


_pathchars = st.text("abcdefghijklmnopqrstuvwxyz0123456789/._-", min_size=1, max_size=20).filter(
    lambda p: ":" not in p and "@" not in p)
_tag = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}\Z")


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.sampled_from(["oci", "oci-archive"]), _pathchars, st.one_of(st.none(), _tag))
def test_local_roundtrip(transport: str, path: str, tag: str | None) -> None:
    text = f"{transport}:{path}" + (f":{tag}" if tag else "")
    r = parse_transport_reference(text)
    assert (r.path, r.reference) == (path, tag)
    assert str(r) == text


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.text(max_size=60), st.sampled_from([None, "docker"]))
def test_arbitrary_text_never_crashes(text: str, default: str | None) -> None:
    try:
        r = parse_transport_reference(text, default_transport=default)
    except InvalidReference:
        return
    assert parse_transport_reference(str(r)) == r

"""Every parser that takes outside input, fuzzed: only ocikit's typed errors may escape.

Bounded for ``make test`` (the ``fuzz`` hypothesis profile of tests/conftest.py raises the
example counts for ``make fuzz``). Each test names the module it fuzzes.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.errors import OcikitError

pytestmark = pytest.mark.fuzz

# text that looks like the grammar more often than uniform text would
grammar_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/:@+=,;\"<> \t", max_size=80),
    st.from_regex(r"(docker://|oci:|oci-archive:|docker-archive:)?[a-z0-9.:/_@-]{0,60}", fullmatch=True),
)
numbers_text = st.one_of(st.text(max_size=30), st.from_regex(r"[0-9²٣ -]{0,30}", fullmatch=True),
                         st.integers(min_value=-10, max_value=10 ** 40).map(str))


@given(grammar_text)
def test_reference_parse_reference(text):
    from ocikit.reference import parse_reference
    try:
        parse_reference(text)
    except OcikitError:
        pass


@given(grammar_text)
def test_transportref_parse_transport_reference(text):
    from ocikit.transportref import parse_transport_reference
    try:
        parse_transport_reference(text)
    except OcikitError:
        pass


@given(st.one_of(grammar_text, st.from_regex(r"(sha256|sha512|md5)?:?[0-9a-fA-F]{0,130}", fullmatch=True)))
def test_digest_Digest(text):
    from ocikit.digest import Digest, is_digest
    try:
        Digest(text)
    except OcikitError:
        assert not is_digest(text)


@given(grammar_text)
def test_platforms_parse_platform(text):
    from ocikit.platforms import parse_platform
    try:
        parse_platform(text).normalized()
    except OcikitError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                       max_size=5),
                           max_leaves=20)
manifest_keys = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests", "subject",
                                 "annotations", "artifactType", "digest", "size", "platform", "urls"])
manifest_like = st.recursive(
    st.none() | st.integers() | st.text(max_size=20) | st.just("sha256:" + "a" * 64)
    | st.just("application/vnd.oci.image.manifest.v1+json") | st.just("application/vnd.oci.image.index.v1+json"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(manifest_keys, inner, max_size=6),
    max_leaves=25)


@given(st.one_of(st.binary(max_size=300), manifest_like.map(lambda d: json.dumps(d).encode())),
       st.sampled_from([None, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json", "text/plain"]))
def test_model_manifest_parse_manifest(raw, media_type):
    from ocikit.model import parse_manifest
    try:
        parse_manifest(raw, media_type)
    except OcikitError:
        pass


@given(grammar_text)
def test_registry_auth_parse_challenges(header):
    from ocikit.transports.registry.auth import ChallengeSyntaxError, parse_challenges
    try:
        parse_challenges(header)
    except (OcikitError, ChallengeSyntaxError):
        pass


@given(json_values)
def test_registry_auth_parse_token_response(doc):
    from ocikit.transports.registry.auth import parse_token_response
    try:
        parse_token_response(doc, now=1_700_000_000.0)
    except OcikitError:
        pass


@given(grammar_text)
def test_registry_client_next_link(header):
    from ocikit.transports.registry.client import next_link
    out = next_link(header)
    assert out is None or isinstance(out, str)


@given(numbers_text)
def test_registry_retry_parse_retry_after(value):
    from ocikit.transports.registry.retry import parse_retry_after
    out = parse_retry_after(value, now=1_700_000_000.0)
    assert out is None or isinstance(out, float)


@given(numbers_text)
def test_uint_parse_uint(value):
    from ocikit.uint import parse_uint
    out = parse_uint(value)
    assert out is None or (value.strip().isascii() and out == int(value.strip()) and out >= 0)


@given(st.one_of(numbers_text, st.from_regex(r"(bytes[ =])?[0-9]{0,30}-[0-9]{0,30}", fullmatch=True)))
def test_server_routes_parse_content_range(value):
    from ocikit.server.routes import parse_content_range
    out = parse_content_range(value)
    assert out is None or out[0] <= out[1]


@given(st.one_of(grammar_text, st.from_regex(
    r"/v2/([a-z0-9/_.-]{0,40}/(manifests|blobs|tags|referrers)/(list|uploads/)?[a-zA-Z0-9:._-]{0,70})?",
    fullmatch=True)))
def test_server_routes_parse_route(path):
    from ocikit.server.routes import parse_route
    try:
        parse_route(path)
    except OcikitError:
        pass


junk = st.none() | st.booleans() | st.integers(min_value=-5, max_value=10 ** 30) | st.floats() \
    | st.text(max_size=12) | st.lists(st.text(max_size=6) | st.integers(), max_size=3)


def shaped(schema):
    """Documents of ``schema``'s shape (key -> sub-schema, ``None`` for a leaf; a list holds one
    item schema), each value either of the right shape or junk, keys optional."""
    if schema is None:
        return junk
    if isinstance(schema, list):
        return junk | st.lists(shaped(schema[0]), max_size=3)
    return junk | st.fixed_dictionaries({}, optional={k: shaped(v) for k, v in schema.items()})


ENTRY = {k: None for k in ("source", "tags", "digest", "digests", "all-tags", "include", "exclude", "semver",
                           "newest", "platforms", "platform-mode", "referrers", "destination")}
ENTRY["source"] = None
MIRROR = {"images": [ENTRY], "rewrite": [{"source": None, "destination": None}]}
SERVER = {"listen": None, "read_only": None, "shutdown_timeout": None,
          "tls": {"cert": None, "key": None},
          "storage": {"driver": None, "root": None, "fsync": None, "delete": {"enabled": None}},
          "auth": {"mode": None, "htpasswd": None, "realm": None,
                   "token": {"secret": None, "expiry": None, "service": None, "realm": None},
                   "rules": [{"repository": None, "users": None, "actions": None}]},
          "limits": {"manifest_size": None, "chunk_min_length": None},
          "manifests": {"check_blobs": None, "accept_sparse_index": None}, "log": {"access": None}}


@given(shaped(MIRROR))
def test_mirror_config_parse_config(doc):
    from ocikit.mirror.config import parse_config
    try:
        parse_config(doc)
    except OcikitError:
        pass


@given(shaped(SERVER))
def test_server_config_parse_config(doc):
    from ocikit.server.config import parse_config
    try:
        parse_config(doc)
    except OcikitError:
        pass

"""signedIdentity rules and the simple-signing payload: pure functions, checked case by case."""

from __future__ import annotations

import pytest

from ocikit.errors import PolicyInvalid, SignatureInvalid
from ocikit.reference import parse_reference
from ocikit.trust.identity import matches, parse_rule, remap
from ocikit.trust.payload import ATOMIC_TYPE, COSIGN_TYPE, build_payload, parse_payload

D = "sha256:" + "a" * 64
TAGGED = parse_reference("reg.example.com/ns/app:v1")
BY_DIGEST = parse_reference(f"reg.example.com/ns/app@{D}")

CASES = [
    # rule, image, signed identity, fits?
    ({"type": "matchExact"}, TAGGED, "reg.example.com/ns/app:v1", True),
    ({"type": "matchExact"}, TAGGED, "reg.example.com/ns/app:v2", False),
    ({"type": "matchExact"}, BY_DIGEST, "reg.example.com/ns/app:v1", False),
    (None, TAGGED, "reg.example.com/ns/app:v1", True),
    (None, TAGGED, "reg.example.com/ns/app:v2", False),
    (None, BY_DIGEST, "reg.example.com/ns/app:whatever", True),
    (None, BY_DIGEST, "reg.example.com/ns/other:v1", False),
    ({"type": "matchRepository"}, TAGGED, "reg.example.com/ns/app:v9", True),
    ({"type": "matchRepository"}, TAGGED, "reg.example.com/ns/app2:v1", False),
    ({"type": "exactReference", "dockerReference": "reg.example.com/ns/app:v7"}, TAGGED,
     "reg.example.com/ns/app:v7", True),
    ({"type": "exactReference", "dockerReference": "reg.example.com/ns/app:v7"}, TAGGED,
     "reg.example.com/ns/app:v1", False),
    ({"type": "exactRepository", "dockerRepository": "reg.example.com/ns/app"}, None, "reg.example.com/ns/app:x", True),
    ({"type": "remapIdentity", "prefix": "mirror.local:5000/up", "signedPrefix": "reg.example.com/ns"},
     parse_reference("mirror.local:5000/up/app:v1"), "reg.example.com/ns/app:v1", True),
    ({"type": "remapIdentity", "prefix": "mirror.local:5000/up", "signedPrefix": "reg.example.com/ns"},
     parse_reference("mirror.local:5000/upstream/app:v1"), "reg.example.com/ns/app:v1", False),
    ({"type": "remapIdentity", "prefix": "mirror.local:5000/up", "signedPrefix": "reg.example.com/ns"},
     parse_reference(f"mirror.local:5000/up/app@{D}"), "reg.example.com/ns/app:v3", True),
    (None, None, "reg.example.com/ns/app:v1", False),
    (None, TAGGED, "NOT A REFERENCE", False),
]


@pytest.mark.parametrize("rule, image, signed, fits", CASES)
def test_rules(rule, image, signed, fits) -> None:
    reason = matches(parse_rule(rule, "test"), image, signed)
    assert (reason is None) == fits, reason


def test_remap_whole_components_only() -> None:
    assert str(remap(parse_reference("a.io/x/y:1"), "a.io/x", "b.io/z")) == "b.io/z/y:1"
    assert str(remap(parse_reference("a.io/xy/y:1"), "a.io/x", "b.io/z")) == "a.io/xy/y:1"


@pytest.mark.parametrize("obj, message", [
    ({"type": "matchSomething"}, "unknown signedIdentity type"),
    ({"type": "exactReference"}, "needs dockerReference"),
    ({"type": "exactReference", "dockerReference": "reg.example.com/ns/app"}, "names no tag"),
    ({"type": "matchExact", "dockerReference": "x"}, "unknown fields"),
    ({"type": "remapIdentity", "prefix": "a"}, "needs signedPrefix"),
])
def test_bad_rules(obj, message) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_rule(obj, "policy")


def test_payload_round_trip_and_strictness() -> None:
    raw = build_payload(D, "reg.example.com/ns/app:v1", kind=ATOMIC_TYPE, optional={"creator": "t"})
    p = parse_payload(raw, expect_type=ATOMIC_TYPE)
    assert (p.manifest_digest, p.docker_reference, p.optional) == (D, "reg.example.com/ns/app:v1", {"creator": "t"})
    with pytest.raises(SignatureInvalid, match="expected 'cosign"):
        parse_payload(raw, expect_type=COSIGN_TYPE)
    with pytest.raises(SignatureInvalid, match="not JSON"):
        parse_payload(b"<html>")
    with pytest.raises(SignatureInvalid, match="critical has members"):
        parse_payload(b'{"critical": {"type": "atomic container signature", "image": {}, "identity": {}, "x": 1}}')
    with pytest.raises(SignatureInvalid, match="docker-manifest-digest"):
        parse_payload(b'{"critical": {"type": "atomic container signature", "image": {"docker-manifest-digest": "x"},'
                      b' "identity": {"docker-reference": "a/b"}}}')
    assert build_payload(D, "r/x", kind=COSIGN_TYPE).endswith(b'"optional":null}')

"""Digests: the algorithm:encoded grammar, hashing, streaming verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.digest import Digest, Digester, Verifier, digest_chunks, digest_file, is_digest, verify_bytes
from ocikit.core.errors import DigestInvalid, DigestMismatch, SizeInvalid, UnsupportedDigestAlgorithm

HEX64 = "a" * 64
HEX128 = "b" * 128


@pytest.mark.parametrize("value", [
    f"sha256:{HEX64}",
    f"sha512:{HEX128}",
    "sha256:" + hashlib.sha256(b"x").hexdigest(),
])
def test_valid_digests(value: str) -> None:
    d = Digest(value)
    assert d == value and isinstance(d, str)
    assert d.algorithm == value.split(":")[0]
    assert d.encoded == value.split(":")[1]
    assert d.short == d.encoded[:12]
    assert is_digest(value)
    assert Digest(d) is d


@pytest.mark.parametrize("value, error, fragment", [
    ("", DigestInvalid, "expected algorithm:encoded"),
    ("sha256", DigestInvalid, "expected algorithm:encoded"),
    ("sha256:", DigestInvalid, "expected algorithm:encoded"),
    (":" + HEX64, DigestInvalid, "expected algorithm:encoded"),
    ("SHA256:" + HEX64, DigestInvalid, "expected algorithm:encoded"),
    ("sha256:" + "A" * 64, DigestInvalid, "64 lowercase hex"),
    ("sha256:" + "a" * 63, DigestInvalid, "64 lowercase hex"),
    ("sha256:" + "a" * 65, DigestInvalid, "64 lowercase hex"),
    ("sha256:" + "g" * 64, DigestInvalid, "64 lowercase hex"),
    ("sha512:" + "a" * 64, DigestInvalid, "128 lowercase hex"),
    ("sha512:" + "a" * 127, DigestInvalid, "128 lowercase hex"),
    ("md5:" + "a" * 32, UnsupportedDigestAlgorithm, "unsupported digest algorithm 'md5'"),
    ("sha384:" + "a" * 96, UnsupportedDigestAlgorithm, "unsupported digest algorithm 'sha384'"),
    ("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8", UnsupportedDigestAlgorithm, "unsupported"),
    ("sha256:" + HEX64 + " ", DigestInvalid, "expected algorithm:encoded"),
    ("sha256::" + HEX64, DigestInvalid, "expected algorithm:encoded"),
    ("sha256:" + "a" * 32 + "+" + "a" * 31, DigestInvalid, "expected algorithm:encoded"),
    ("sha-256:" + HEX64, UnsupportedDigestAlgorithm, "sha-256"),
])
def test_invalid_digests(value: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as ei:
        Digest(value)
    assert fragment in str(ei.value)
    assert not is_digest(value)
    assert ei.value.code == "DIGEST_INVALID"


def test_not_a_string() -> None:
    with pytest.raises(DigestInvalid, match="not a string"):
        Digest(123)  # type: ignore[arg-type]


def test_of_matches_hashlib() -> None:
    assert Digest.of(b"hello") == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert Digest.of(b"hello", "sha512") == "sha512:" + hashlib.sha512(b"hello").hexdigest()
    with pytest.raises(UnsupportedDigestAlgorithm):
        Digest.of(b"hello", "md5")


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(["sha256", "sha512"]))
def test_streaming_equals_whole(chunks: list[bytes], alg: str) -> None:
    d = Digester(alg)
    for c in chunks:
        d.update(c)
    whole = b"".join(chunks)
    assert d.digest() == Digest.of(whole, alg)
    assert d.size == len(whole)
    assert digest_chunks(chunks, alg) == (Digest.of(whole, alg), len(whole))
    v = Verifier(Digest.of(whole, alg), len(whole))
    for c in chunks:
        v.update(memoryview(c))
    assert v.verify() == Digest.of(whole, alg)


def test_verifier_mismatch_names_both_digests() -> None:
    expected = Digest.of(b"expected")
    actual = Digest.of(b"actual")
    v = Verifier(expected, 6, what="layer")
    v.update(b"actual")
    with pytest.raises(DigestMismatch) as ei:
        v.verify()
    msg = str(ei.value)
    assert str(expected) in msg and str(actual) in msg and "layer" in msg
    assert ei.value.expected == expected and ei.value.actual == actual
    assert ei.value.detail == {"expected": expected, "actual": actual}


def test_verifier_short_stream() -> None:
    data = b"0123456789"
    v = Verifier(Digest.of(data), len(data))
    v.update(data[:4])
    with pytest.raises(SizeInvalid) as ei:
        v.verify()
    assert "expected 10 bytes, got 4" in str(ei.value)
    assert (ei.value.expected, ei.value.actual) == (10, 4)


def test_verifier_long_stream_stops_early() -> None:
    data = b"0123456789"
    v = Verifier(Digest.of(data), len(data))
    v.update(data)
    with pytest.raises(SizeInvalid, match="more than the expected 10 bytes"):
        v.update(b"x")


def test_verifier_without_size() -> None:
    v = Verifier(Digest.of(b"abc"))
    v.update(b"ab")
    v.update(b"c")
    assert v.verify() == Digest.of(b"abc")


def test_verifier_rejects_bad_expected() -> None:
    with pytest.raises(DigestInvalid):
        Verifier("sha256:nope")


def test_verify_bytes() -> None:
    assert verify_bytes(b"x", Digest.of(b"x"), 1) == Digest.of(b"x")
    with pytest.raises(DigestMismatch):
        verify_bytes(b"y", Digest.of(b"x"), 1)
    with pytest.raises(SizeInvalid):
        verify_bytes(b"xx", Digest.of(b"x"), 1)


def test_digest_file(tmp_path) -> None:
    p = tmp_path / "f"
    data = bytes(range(256)) * 5000
    p.write_bytes(data)
    assert digest_file(str(p)) == (Digest.of(data), len(data))
    assert digest_file(str(p), "sha512") == (Digest.of(data, "sha512"), len(data))


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        d = Digest(text)
    except DigestInvalid:
        return
    assert d.algorithm in ("sha256", "sha512")

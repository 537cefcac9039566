"""Digests: the ``algorithm:encoded`` grammar of the image-spec, hashing and verifying streams."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from .errors import DigestInvalid, DigestMismatch, SizeInvalid, UnsupportedDigestAlgorithm

# image-spec descriptor.md: algorithm-component ::= [a-z0-9]+ ; separator ::= [+._-] ;
# encoded ::= [a-zA-Z0-9=_-]+
_GRAMMAR = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_HEX = {"sha256": re.compile(r"^[a-f0-9]{64}$"), "sha512": re.compile(r"^[a-f0-9]{128}$")}
ALGORITHMS = ("sha256", "sha512")
CHUNK = 1 << 20


class Digest(str):
    """A validated digest string such as ``sha256:<64 lowercase hex>``.

    It is a ``str``, so it serialises and compares as one; ``algorithm`` and ``encoded``
    give its two halves.
    """

    __slots__ = ()

    def __new__(cls, value: str) -> "Digest":
        if isinstance(value, Digest):
            return value
        if not isinstance(value, str):
            raise DigestInvalid(f"invalid digest {value!r}: not a string")
        m = _GRAMMAR.match(value)
        if not m:
            raise DigestInvalid(f"invalid digest {value!r}: expected algorithm:encoded")
        alg, enc = m.groups()
        pattern = _HEX.get(alg)
        if pattern is None:
            raise UnsupportedDigestAlgorithm(f"unsupported digest algorithm {alg!r} in {value!r}")
        if not pattern.match(enc):
            raise DigestInvalid(
                f"invalid digest {value!r}: {alg} needs {64 if alg == 'sha256' else 128} lowercase hex characters")
        return str.__new__(cls, value)

    @property
    def algorithm(self) -> str:
        return self.partition(":")[0]

    @property
    def encoded(self) -> str:
        return self.partition(":")[2]

    @property
    def short(self) -> str:
        return self.encoded[:12]

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        """The digest of ``data``."""
        return cls(f"{algorithm}:{_new_hash(algorithm, data).hexdigest()}")


def is_digest(value: str) -> bool:
    try:
        Digest(value)
    except DigestInvalid:
        return False
    return True


def _new_hash(algorithm: str, data: bytes = b"") -> "hashlib._Hash":
    if algorithm not in ALGORITHMS:
        raise UnsupportedDigestAlgorithm(f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm, data)


class Digester:
    """Incremental hashing: ``update`` with chunks, then ``digest()``; counts the bytes too."""

    __slots__ = ("algorithm", "_h", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._h = _new_hash(algorithm)
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        self._h.update(chunk)
        self.size += len(chunk)

    def update_all(self, parts: Iterable[bytes | bytearray | memoryview]) -> None:
        """``update`` with each part in turn (one call for a worker thread to run over a batch)."""
        for part in parts:
            self.update(part)

    def digest(self) -> Digest:
        return Digest(f"{self.algorithm}:{self._h.hexdigest()}")


class Verifier(Digester):
    """A Digester that knows what it should find.

    ``update`` raises :class:`SizeInvalid` as soon as more bytes arrive than expected, so a
    lying peer cannot make us stream forever; ``verify`` raises :class:`DigestMismatch`
    naming both digests, or :class:`SizeInvalid` for a short stream.
    """

    __slots__ = ("expected", "expected_size", "what")

    def __init__(self, expected: str, size: int | None = None, *, what: str = "blob") -> None:
        self.expected = Digest(expected)
        super().__init__(self.expected.algorithm)
        self.expected_size = size
        self.what = what

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        super().update(chunk)
        if self.expected_size is not None and self.size > self.expected_size:
            raise SizeInvalid(f"{self.what} {self.expected}: more than the expected {self.expected_size} bytes",
                              expected=self.expected_size, actual=self.size)

    def verify(self) -> Digest:
        actual = self.digest()
        if self.expected_size is not None and self.size != self.expected_size:
            raise SizeInvalid(
                f"{self.what} {self.expected}: expected {self.expected_size} bytes, got {self.size}",
                expected=self.expected_size, actual=self.size)
        if actual != self.expected:
            raise DigestMismatch(self.expected, actual, what=f"{self.what}")
        return actual


def verify_bytes(data: bytes, expected: str, size: int | None = None, *, what: str = "content") -> Digest:
    v = Verifier(expected, size, what=what)
    v.update(data)
    return v.verify()


def digest_file(path: str, algorithm: str = "sha256") -> tuple[Digest, int]:
    """Hash a file in chunks: returns (digest, size)."""
    d = Digester(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            d.update(chunk)
    return d.digest(), d.size


def digest_chunks(chunks: Iterable[bytes], algorithm: str = "sha256") -> tuple[Digest, int]:
    d = Digester(algorithm)
    for c in chunks:
        d.update(c)
    return d.digest(), d.size

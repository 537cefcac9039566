"""registries.d parsing and scope choice; the lookaside layout on disk (pure and file:// only)."""

from __future__ import annotations

import os

import pytest

from ocikit.errors import PolicyInvalid, UsageError
from ocikit.reference import parse_reference
from ocikit.trust.lookaside import RegistriesD, add_signature, put_signatures, read_signatures_sync, signature_url

D = "sha256:" + "b" * 64


def write(d, name: str, text: str) -> None:
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write(text)


def test_most_specific_section_wins_whole(tmp_path) -> None:
    write(tmp_path, "a.yaml", "default-docker:\n  lookaside: file:///default\n"
                              "docker:\n  reg.io:\n    lookaside: https://sigs.reg.io\n"
                              "  reg.io/team:\n    lookaside-staging: file:///staging\n")
    write(tmp_path, "b.yaml", "docker:\n  reg.io/team/app:v1:\n    sigstore: file:///old-name\n")
    write(tmp_path, "ignored.txt", "not: [yaml")
    r = RegistriesD.load(str(tmp_path))
    assert r.base_url(parse_reference("reg.io/team/app:v1")) == "file:///old-name"
    # reg.io/team has a section, without a read URL: reg.io's is NOT used (the section wins whole)
    assert r.base_url(parse_reference("reg.io/team/app:v2")) is None
    assert r.base_url(parse_reference("reg.io/team/app:v2"), write=True) == "file:///staging"
    assert r.base_url(parse_reference("reg.io/other/app:v2")) == "https://sigs.reg.io"
    assert r.base_url(parse_reference("quay.io/x:1"), write=True) == "file:///default"


@pytest.mark.parametrize("files, message", [
    ({"a.yaml": "default-docker: {}\n", "b.yaml": "default-docker: {}\n"}, "second default-docker"),
    ({"a.yaml": "docker:\n  r.io: {}\n", "b.yaml": "docker:\n  r.io: {}\n"}, "second section for r.io"),
    ({"a.yaml": "docker: [\n"}, "not YAML"),
    ({"a.yaml": "- a list\n"}, "not a YAML mapping"),
    ({"a.yaml": "docker:\n  r.io: just-a-string\n"}, "not a mapping"),
])
def test_bad_registries_d(tmp_path, files, message) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(PolicyInvalid, match=message):
        RegistriesD.load(str(tmp_path))


def test_missing_directory_named_explicitly(tmp_path) -> None:
    with pytest.raises(UsageError):
        RegistriesD.load(str(tmp_path / "nope"))


def test_layout_on_disk(tmp_path) -> None:
    base = f"file://{tmp_path}"
    ref = parse_reference("reg.io:5000/team/app:v1")
    assert signature_url(base, ref, D, 0) == f"{base}/team/app@sha256={'b' * 64}/signature-1"
    assert read_signatures_sync(base, ref, D) == []
    p1 = add_signature(base, ref, D, b"one")
    assert add_signature(base, ref, D, b"one") == p1  # the same bytes are not added twice
    add_signature(base, ref, D, b"two")
    assert [data for _, data in read_signatures_sync(base, ref, D)] == [b"one", b"two"]
    put_signatures(base, ref, D, [b"three"])  # replaces the set, as containers/image does on copy
    assert [data for _, data in read_signatures_sync(base, ref, D)] == [b"three"]
    with pytest.raises(UsageError, match="only file://"):
        add_signature("https://sigs.example.com", ref, D, b"x")

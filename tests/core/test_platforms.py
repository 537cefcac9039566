"""Platforms: parsing, normalisation, matching, best match, the host."""

from __future__ import annotations

import platform as stdlib_platform
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocikit.core.errors import InvalidPlatform
from ocikit.core.platforms import Platform, best_match, host_platform, matches, normalize_arch, parse_platform, select


@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64"),
    ("x86_64", "linux/amd64"),
    ("amd64", "linux/amd64"),
    ("linux/x86-64", "linux/amd64"),
    ("linux/aarch64", "linux/arm64/v8"),
    ("linux/arm64", "linux/arm64/v8"),
    ("linux/arm64/8", "linux/arm64/v8"),
    ("linux/arm64/v8", "linux/arm64/v8"),
    ("linux/armhf", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"),
    ("linux/armv7l", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7"),
    ("linux/arm/v6", "linux/arm/v6"),
    ("linux/arm", "linux/arm"),
    ("linux/i686", "linux/386"),
    ("linux/i386", "linux/386"),
    ("linux/ppc64el", "linux/ppc64le"),
    ("linux/s390x", "linux/s390x"),
    ("linux/riscv64", "linux/riscv64"),
    ("linux/amd64/v3", "linux/amd64/v3"),
    ("Linux/AMD64", "linux/amd64"),
    ("windows/amd64", "windows/amd64"),
    ("macos/arm64", "darwin/arm64/v8"),
])
def test_parse_and_normalise(text: str, expected: str) -> None:
    p = parse_platform(text)
    assert str(p) == expected
    assert parse_platform(str(p)) == p


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"), ("   ", "empty"), ("linux/", "empty component"), ("/amd64", "empty component"),
    ("linux/arm/", "empty component"), ("linux//v7", "empty component"), ("a/b/c/d", "expected os/arch[/variant]"),
    ("linux/am d64", "bad character"), ("linux/amd64;rm", "bad character"),
])
def test_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(InvalidPlatform) as ei:
        parse_platform(text)
    assert fragment in str(ei.value)


def test_normalize_arch() -> None:
    assert normalize_arch("aarch64") == ("arm64", "v8")
    assert normalize_arch("arm", "7") == ("arm", "v7")
    assert normalize_arch("armhf", None) == ("arm", "v7")
    assert normalize_arch("arm", "V6") == ("arm", "v6")


def test_dict_roundtrip() -> None:
    p = Platform("windows", "amd64", None, "10.0.17763.5329", ("win32k",))
    d = p.to_dict()
    assert d == {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329", "os.features": ["win32k"]}
    assert Platform.from_dict(d) == p


def P(s: str, **kw: object) -> Platform:
    os_, _, rest = s.partition("/")
    arch, _, variant = rest.partition("/")
    return Platform(os_, arch, variant or None, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("want, have, ok", [
    (P("linux/amd64"), P("linux/amd64"), True),
    (P("linux/amd64"), P("linux/x86_64"), True),
    (P("linux/amd64"), P("linux/arm64"), False),
    (P("linux/amd64"), P("windows/amd64"), False),
    (P("linux/arm64"), P("linux/arm64/v8"), True),
    (P("linux/arm64/v8"), P("linux/arm64"), True),
    (P("linux/aarch64"), P("linux/arm64/v8"), True),
    (P("linux/arm/v7"), P("linux/arm/v7"), True),
    (P("linux/arm/v7"), P("linux/arm/v6"), False),
    (P("linux/arm/v7"), P("linux/arm"), True),     # arm without a variant means v7
    (P("linux/arm/v6"), P("linux/arm"), False),
    (P("linux/armhf"), P("linux/arm/v7"), True),
    (P("linux/arm"), P("linux/arm/v5"), True),     # no wanted variant: any
    (P("windows/amd64", os_version="10.0.17763"), P("windows/amd64", os_version="10.0.17763.5329"), True),
    (P("windows/amd64", os_version="10.0.17763"), P("windows/amd64", os_version="10.0.17763"), True),
    (P("windows/amd64", os_version="10.0.17763"), P("windows/amd64", os_version="10.0.20348.2227"), False),
    (P("windows/amd64", os_version="10.0.17763"), P("windows/amd64"), False),
    (P("windows/amd64"), P("windows/amd64", os_version="10.0.20348.2227"), True),
    (P("linux/amd64", os_features=("sse4",)), P("linux/amd64", os_features=("sse4", "avx")), True),
    (P("linux/amd64", os_features=("avx512",)), P("linux/amd64", os_features=("sse4",)), False),
    (P("linux/amd64"), P("linux/amd64", os_features=("sse4",)), True),
])
def test_matches(want: Platform, have: Platform, ok: bool) -> None:
    assert matches(want, have) is ok


def test_best_match_exact_and_fallbacks() -> None:
    cands = [P("linux/amd64"), P("linux/arm64/v8"), P("linux/arm/v7"), None, P("linux/arm/v6")]
    assert best_match(P("linux/amd64"), cands) == 0
    assert best_match(P("linux/aarch64"), cands) == 1
    assert best_match(P("linux/arm/v7"), cands) == 2
    assert best_match(P("linux/arm/v6"), cands) == 4
    assert best_match(P("linux/arm/v8"), cands) == 2        # a 32-bit v8 CPU runs v7, newest first
    assert best_match(P("linux/arm/v8"), [P("linux/arm/v5"), P("linux/arm/v6")]) == 1
    assert best_match(P("linux/arm/v5"), [P("linux/arm/v6")]) is None
    assert best_match(P("linux/s390x"), cands) is None
    assert best_match(P("linux/amd64"), []) is None
    assert best_match(P("linux/amd64"), [None, None]) is None


def test_best_match_prefers_exact_variant() -> None:
    assert best_match(P("linux/amd64"), [P("linux/amd64/v3"), P("linux/amd64")]) == 1
    assert best_match(P("linux/amd64/v3"), [P("linux/amd64"), P("linux/amd64/v3")]) == 1
    assert best_match(P("linux/amd64"), [P("linux/amd64/v3")]) == 0
    assert best_match(P("linux/arm/v7"), [P("linux/arm"), P("linux/arm/v7")]) == 1
    assert best_match(P("linux/arm/v7"), [P("linux/arm")]) == 0


def test_best_match_windows_os_version() -> None:
    cands = [P("windows/amd64", os_version="10.0.17763.5329"), P("windows/amd64", os_version="10.0.20348.2227")]
    assert best_match(P("windows/amd64", os_version="10.0.20348"), cands) == 1
    assert best_match(P("windows/amd64", os_version="10.0.26100"), cands) is None
    assert best_match(P("windows/amd64"), cands) == 0


def test_select() -> None:
    cands = [P("linux/amd64"), P("linux/arm64/v8"), P("linux/arm/v7"), None, P("linux/ppc64le")]
    assert select([P("linux/ppc64le"), P("linux/amd64")], cands) == [0, 4]
    assert select([P("linux/amd64"), P("linux/x86_64")], cands) == [0]
    assert select([P("linux/s390x")], cands) == []


def test_host_platform() -> None:
    h = host_platform()
    assert h == h.normalized()
    machine = stdlib_platform.machine()
    expected_arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if expected_arch:
        assert h.architecture == expected_arch
    if sys.platform.startswith("linux"):
        assert h.os == "linux"
    if h.architecture == "arm64":
        assert h.variant == "v8"


_archs = st.sampled_from(["amd64", "x86_64", "arm64", "aarch64", "arm", "armhf", "armv7l", "386", "i686",
                          "ppc64le", "s390x", "riscv64"])


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.sampled_from(["linux", "windows", "darwin"]), _archs, st.sampled_from([None, "v5", "v6", "v7", "v8"]))
def test_normalised_is_fixed_point_and_self_matching(os_: str, arch: str, variant: str | None) -> None:
    p = Platform(os_, arch, variant).normalized()
    assert p.normalized() == p
    assert matches(p, p)
    assert best_match(p, [p]) == 0


@settings(deadline=None)  # a loaded CI machine must not fail a parser test
@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        p = parse_platform(text)
    except InvalidPlatform:
        return
    assert parse_platform(str(p)) == p

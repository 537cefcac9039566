"""Fuzzing ``routes``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import OcikitError

from helpers.fuzzing import grammar_text, numbers_text

pytestmark = pytest.mark.fuzz


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

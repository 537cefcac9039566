"""Fuzzing ``auth``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from ocikit.core.errors import OcikitError

from helpers.fuzzing import grammar_text, json_values

pytestmark = pytest.mark.fuzz


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

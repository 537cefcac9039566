"""Fuzzing ``platforms``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from ocikit.core.errors import OcikitError

from helpers.fuzzing import grammar_text

pytestmark = pytest.mark.fuzz


@given(grammar_text)
def test_platforms_parse_platform(text):
    from ocikit.core.platforms import parse_platform
    try:
        parse_platform(text).normalized()
    except OcikitError:
        pass

"""Fuzzing ``reference``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from ocikit.core.errors import OcikitError

from helpers.fuzzing import grammar_text

pytestmark = pytest.mark.fuzz


@given(grammar_text)
def test_reference_parse_reference(text):
    from ocikit.core.reference import parse_reference
    try:
        parse_reference(text)
    except OcikitError:
        pass

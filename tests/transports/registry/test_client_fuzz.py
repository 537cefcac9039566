"""Fuzzing ``client``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from helpers.fuzzing import grammar_text

pytestmark = pytest.mark.fuzz


@given(grammar_text)
def test_registry_client_next_link(header):
    from ocikit.transports.registry.client import next_link
    out = next_link(header)
    assert out is None or isinstance(out, str)

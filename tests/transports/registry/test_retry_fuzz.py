"""Fuzzing ``retry``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from helpers.fuzzing import numbers_text

pytestmark = pytest.mark.fuzz


@given(numbers_text)
def test_registry_retry_parse_retry_after(value):
    from ocikit.transports.registry.retry import parse_retry_after
    out = parse_retry_after(value, now=1_700_000_000.0)
    assert out is None or isinstance(out, float)

"""``parse_uint``: ASCII decimal digits only, bounded, None (never an exception) for the rest."""

from __future__ import annotations

import pytest
from hypothesis import given

from helpers.fuzzing import numbers_text

pytestmark = pytest.mark.fuzz


@given(numbers_text)
def test_uint_parse_uint(value):
    from ocikit.core.uint import parse_uint
    out = parse_uint(value)
    assert out is None or (value.strip().isascii() and out == int(value.strip()) and out >= 0)


@pytest.mark.parametrize("text,value", [("0", 0), (" 42 ", 42), ("9" * 19, None), ("9223372036854775807", (1 << 63) - 1),
                                        ("²", None), ("٣", None), ("-1", None), ("+1", None), ("1e3", None),
                                        ("", None), (None, None), ("9" * 5000, None)])
def test_parse_uint_table(text, value):
    from ocikit.core.uint import parse_uint
    assert parse_uint(text) == value


def test_parse_uint_max_value():
    from ocikit.core.uint import parse_uint
    assert parse_uint("65535", max_value=65535) == 65535
    assert parse_uint("65536", max_value=65535) is None

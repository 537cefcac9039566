"""Fuzzing ``digest``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import OcikitError

from helpers.fuzzing import grammar_text

pytestmark = pytest.mark.fuzz


@given(st.one_of(grammar_text, st.from_regex(r"(sha256|sha512|md5)?:?[0-9a-fA-F]{0,130}", fullmatch=True)))
def test_digest_Digest(text):
    from ocikit.core.digest import Digest, is_digest
    try:
        Digest(text)
    except OcikitError:
        assert not is_digest(text)

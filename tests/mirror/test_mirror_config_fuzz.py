"""Fuzzing ``config``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from ocikit.core.errors import OcikitError

from helpers.fuzzing import shaped

pytestmark = pytest.mark.fuzz


ENTRY = {k: None for k in ("source", "tags", "digest", "digests", "all-tags", "include", "exclude", "semver",
                           "newest", "platforms", "platform-mode", "referrers", "destination")}
ENTRY["source"] = None
MIRROR = {"images": [ENTRY], "rewrite": [{"source": None, "destination": None}]}


@given(shaped(MIRROR))
def test_mirror_config_parse_config(doc):
    from ocikit.mirror.mirror_config import parse_config
    try:
        parse_config(doc)
    except OcikitError:
        pass

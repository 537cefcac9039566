"""Hostile image configs: only ConfigInvalid escapes parse_config, and a parsed config's
accessors never meet a type they do not expect (issue 15, defect 5)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocikit.core.errors import ConfigInvalid
from ocikit.model.image_config import parse_config

GOOD = {"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
        "config": {"Env": ["A=1"], "Labels": {"k": "v"}}, "history": [{"created_by": "x"}]}


def _touch_everything(cfg) -> None:
    cfg.platform.normalized()
    cfg.diff_ids, cfg.env, cfg.labels, cfg.history, cfg.created, cfg.variant  # noqa: B018


@pytest.mark.parametrize("field,value", [
    ("rootfs", 5), ("rootfs", "layers"), ("rootfs", {"type": "layers", "diff_ids": "sha256:x"}),
    ("variant", 7), ("variant", ["v8"]), ("os.features", [1]), ("os.features", "sse4"),
    ("os.version", {"a": 1}), ("architecture", 64), ("created", 1700000000), ("config", []),
    ("history", {}), ("history", [1]),
])
@pytest.mark.parametrize("strict", [True, False])
def test_a_field_of_the_wrong_type_is_config_invalid_naming_it(field, value, strict):
    doc = dict(GOOD, **{field: value})
    with pytest.raises(ConfigInvalid) as e:
        parse_config(json.dumps(doc).encode(), strict=strict)
    assert field.split(".")[0] in str(e.value)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)
fields = st.sampled_from(["architecture", "os", "variant", "os.version", "os.features", "rootfs", "config",
                          "history", "created"])


@pytest.mark.fuzz
@given(st.dictionaries(fields, json_values, max_size=9), st.booleans())
def test_fuzz_only_config_invalid_escapes_and_accessors_hold(doc, strict):
    raw = json.dumps(doc).encode()
    try:
        cfg = parse_config(raw, strict=strict)
    except ConfigInvalid:
        return
    _touch_everything(cfg)


@pytest.mark.fuzz
@given(st.binary(max_size=200))
def test_fuzz_arbitrary_bytes(raw):
    try:
        parse_config(raw, strict=False)
    except ConfigInvalid:
        pass

"""Fuzzing ``config``'s parsers with outside input: only ocikit's typed errors may escape."""

from __future__ import annotations

import pytest
from hypothesis import given

from ocikit.errors import OcikitError

from helpers.fuzzing import shaped

pytestmark = pytest.mark.fuzz


SERVER = {"listen": None, "read_only": None, "shutdown_timeout": None,
          "tls": {"cert": None, "key": None},
          "storage": {"driver": None, "root": None, "fsync": None, "delete": {"enabled": None}},
          "auth": {"mode": None, "htpasswd": None, "realm": None,
                   "token": {"secret": None, "expiry": None, "service": None, "realm": None},
                   "rules": [{"repository": None, "users": None, "actions": None}]},
          "limits": {"manifest_size": None, "chunk_min_length": None},
          "manifests": {"check_blobs": None, "accept_sparse_index": None}, "log": {"access": None},
          "ui": {"enabled": None}}


@given(shaped(SERVER))
def test_server_config_parse_config(doc):
    from ocikit.server.config import parse_config
    try:
        parse_config(doc)
    except OcikitError:
        pass

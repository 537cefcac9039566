"""Fixtures of the trust tests: throwaway GPG keys, an `ocikit serve` registry, cosign keys (helpers.trust)."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from helpers.cli import run_ocikit
from helpers.servers import start_ocikit_serve
from helpers.trust import GPGKey, drop_gpg_key, make_gpg_key

JS = os.path.join(os.path.dirname(__file__), "js")
PASSPHRASE = "correct horse"


@pytest.fixture(scope="module")
def gpg_key() -> Iterator[GPGKey]:
    key = make_gpg_key("signer")
    yield key
    drop_gpg_key(key)


@pytest.fixture(scope="module")
def other_gpg_key() -> Iterator[GPGKey]:
    key = make_gpg_key("stranger")
    yield key
    drop_gpg_key(key)


@pytest.fixture(scope="module")
def serve_host(tmp_path_factory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of an ``ocikit serve``."""
    with start_ocikit_serve(str(tmp_path_factory.mktemp("serve"))) as srv:
        yield srv.host


@pytest.fixture(scope="module")
def cosign_key(tmp_path_factory) -> tuple[str, str, str]:
    """(PREFIX.key, PREFIX.pub, passphrase file) made by ``ocikit generate-key``."""
    d = tmp_path_factory.mktemp("cosign")
    pf = d / "pass"
    pf.write_text(PASSPHRASE + "\n")
    run_ocikit("generate-key", str(d / "k"), "--passphrase-file", str(pf))
    return str(d / "k.key"), str(d / "k.pub"), str(pf)

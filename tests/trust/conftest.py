"""Fixtures of the trust tests: a throwaway GPG key, an `ocikit serve` registry, images on it, cosign keys."""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from ocikit_cli import run_ocikit
from gpgkeys import GPGKey, drop_gpg_key, make_gpg_key
from servers import start_ocikit_serve

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
def registry(tmp_path_factory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of an ``ocikit serve``."""
    with start_ocikit_serve(str(tmp_path_factory.mktemp("serve"))) as srv:
        yield srv.host


def push_image(layout_dir: str, target: str, *, index: bool = False, seed: int = 0) -> str:
    """Write a generated image (or a 3-platform index) and copy it to ``target``; its digest."""
    from ocikit.testing import write_image, write_index
    from ocikit.transports.layout import OCILayout

    lay = OCILayout(layout_dir, create=True)
    desc = write_index(lay, "v1", seed=seed) if index else write_image(lay, "v1", seed=seed)
    run_ocikit("copy", "--all", "--dest-tls-verify=false", f"oci:{layout_dir}:v1", target)
    return str(desc.digest)


@pytest.fixture(scope="module")
def cosign_key(tmp_path_factory) -> tuple[str, str, str]:
    """(PREFIX.key, PREFIX.pub, passphrase file) made by ``ocikit generate-key``."""
    d = tmp_path_factory.mktemp("cosign")
    pf = d / "pass"
    pf.write_text(PASSPHRASE + "\n")
    run_ocikit("generate-key", str(d / "k"), "--passphrase-file", str(pf))
    return str(d / "k.key"), str(d / "k.pub"), str(pf)


def registries_d(directory: str, lookaside: str) -> str:
    """A registries.d directory whose default-docker lookaside (and staging) is ``lookaside``."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "default.yaml"), "w") as f:
        f.write(f"default-docker:\n  lookaside: file://{lookaside}\n  lookaside-staging: file://{lookaside}\n")
    return directory

"""ocikit._aiohttp: the command skips aiohttp's import-time CA loading; a library user keeps it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, ssl, sys
owned = sys.argv[1] == "cli"
os.environ["SSL_CERT_FILE"] = os.environ.get("PROBE_CERT_FILE", "")
if not os.environ["SSL_CERT_FILE"]:
    del os.environ["SSL_CERT_FILE"]
if owned:
    import ocikit.cli.main as m
    m.OWNS_PROCESS = True
from ocikit.transports.registry.client import build_ssl_context
import aiohttp.connector as c
print(json.dumps({
    "aiohttp_default_cas": c._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "ours": build_ssl_context("example.invalid", verify=True, cert_dir=None).cert_store_stats()["x509_ca"],
    "env": {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")},
}))
"""


def probe(mode: str, cert_file: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PROBE_CERT_FILE": cert_file}).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def system_cas() -> int:
    n = probe("library")["ours"]
    if not n:
        pytest.skip("this machine has no system CA bundle")
    return n


def test_library_import_leaves_aiohttp_defaults_alone(system_cas: int) -> None:
    got = probe("library")
    assert got["aiohttp_default_cas"] == system_cas
    assert got["ours"] == system_cas


def test_command_skips_aiohttp_defaults_but_verifies_with_the_system_cas(system_cas: int) -> None:
    got = probe("cli")
    assert got["aiohttp_default_cas"] == 0          # never used by ocikit, never loaded
    assert got["ours"] == system_cas                # our verified contexts load the CAs as before
    assert got["env"] == {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}


def test_command_restores_a_users_ssl_cert_file(tmp_path, system_cas: int) -> None:
    import ssl
    bundle = tmp_path / "one.pem"
    # a bundle of one CA: taken from the system store, written as PEM
    der = ssl.create_default_context().get_ca_certs(binary_form=True)[0]
    bundle.write_text(ssl.DER_cert_to_PEM_cert(der))
    got = probe("cli", str(bundle))
    assert got["env"]["SSL_CERT_FILE"] == str(bundle)
    assert got["ours"] == 1

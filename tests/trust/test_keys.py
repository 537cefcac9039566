"""cosign key pairs: the encrypted PEM format, passphrases, bad keys, and ``ocikit generate-key``."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from ocikit.errors import KeyInvalid, PassphraseInvalid
from ocikit.trust import keys
from helpers.cli import expect_failure, run_ocikit

# go-securesystemslib's published vector for its `encrypted` package (what cosign's keys use):
# "reallyimportant" under the passphrase "supersecret", scrypt N=32768 r=8 p=1 + nacl/secretbox.
SSL_VECTOR = (b'{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},'
              b'"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},'
              b'"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},'
              b'"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}')


def test_decrypts_the_reference_vector() -> None:
    assert keys.decrypt(SSL_VECTOR, b"supersecret") == b"reallyimportant"
    with pytest.raises(PassphraseInvalid):
        keys.decrypt(SSL_VECTOR, b"supersecreT")


def _body(pem: bytes) -> dict:
    lines = pem.decode().strip().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED SIGSTORE PRIVATE KEY-----"
    return json.loads(base64.b64decode("".join(lines[1:-1])))


def test_generated_key_format_opened_independently() -> None:
    """The document's fields as go-securesystemslib writes them, opened with hashlib's scrypt and NaCl's
    secretbox primitive directly (not through ocikit's decrypt)."""
    from cryptography.hazmat.primitives import serialization
    from nacl.bindings import crypto_secretbox_open

    pair = keys.generate(b"pw")
    doc = _body(pair.private_pem)
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox"
    salt, nonce = base64.b64decode(doc["kdf"]["salt"]), base64.b64decode(doc["cipher"]["nonce"])
    assert len(salt) == 32 and len(nonce) == 24
    k = hashlib.scrypt(b"pw", salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
    der = crypto_secretbox_open(base64.b64decode(doc["ciphertext"]), nonce, k)
    priv = serialization.load_der_private_key(der, None)
    pub = serialization.load_pem_public_key(pair.public_pem)
    assert priv.public_key().public_numbers() == pub.public_numbers()
    assert priv.curve.name == "secp256r1"


def test_cosign_pem_type_accepted_and_signatures_verify() -> None:
    pair = keys.generate(b"pw")
    old = pair.private_pem.replace(b"SIGSTORE", b"COSIGN")
    priv = keys.load_private_key(old, b"pw")
    sig = keys.sign_bytes(priv, b"payload")
    pub = keys.load_public_key(pair.public_pem)
    assert keys.verify_bytes(pub, sig, b"payload")
    assert not keys.verify_bytes(pub, sig, b"payloaD")


@pytest.mark.parametrize("data, message", [
    (b"not a key at all", "not a PEM block"),
    (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n%%%\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
     "not base64"),
    (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + base64.b64encode(b'{"kdf": 1}') +
     b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "not an encrypted key document"),
    (b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" +
     base64.b64encode(SSL_VECTOR.replace(b'"N":32768', b'"N":99')) +
     b"\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "unsupported scrypt parameters"),
])
def test_malformed_private_keys(data: bytes, message: str) -> None:
    with pytest.raises(KeyInvalid, match=message):
        keys.load_private_key(data, b"pw")


def test_decrypted_but_not_a_key() -> None:
    pem = keys.pem_encode(keys.PEM_TYPE, keys.encrypt(b"just bytes", b"pw"))
    with pytest.raises(KeyInvalid, match="not PKCS#8"):
        keys.load_private_key(pem, b"pw")


def test_malformed_public_key() -> None:
    with pytest.raises(KeyInvalid, match="not a PEM public key"):
        keys.load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


def test_generate_key_cli(tmp_path) -> None:
    pf = tmp_path / "pass"
    pf.write_text("s3cret\n")
    prefix = str(tmp_path / "cosign")
    run_ocikit("generate-key", prefix, "--passphrase-file", str(pf))
    assert stat.S_IMODE(os.stat(prefix + ".key").st_mode) == 0o600
    with open(prefix + ".key", "rb") as f:
        keys.load_private_key(f.read(), b"s3cret")  # the file's trailing newline is not part of it
    expect_failure("generate-key", prefix, "--passphrase-file", str(pf), code=2, match="refusing to overwrite")
    # OCIKIT_PASSPHRASE, and no terminal and no passphrase: a one-line usage error
    env = {**os.environ, "OCIKIT_PASSPHRASE": "from-env"}
    subprocess.run([sys.executable, "-m", "ocikit", "generate-key", str(tmp_path / "e")], env=env, check=True,
                   capture_output=True)
    with open(tmp_path / "e.key", "rb") as f:
        keys.load_private_key(f.read(), b"from-env")
    env.pop("OCIKIT_PASSPHRASE")
    p = subprocess.run([sys.executable, "-m", "ocikit", "generate-key", str(tmp_path / "n")], env=env,
                       capture_output=True, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and b"no passphrase" in p.stderr and len(p.stderr.splitlines()) == 1

"""cosign key pairs: ECDSA P-256 keys in cosign's encrypted PEM format.

The private key file is a PEM block whose body is a JSON document (the format of
go-securesystemslib's ``encrypted`` package, which cosign uses)::

    {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": "<b64>"},
     "cipher": {"name": "nacl/secretbox", "nonce": "<b64>"},
     "ciphertext": "<b64>"}

The secretbox key is scrypt(passphrase, salt); the plaintext is the PKCS#8 DER of the private
key. cosign writes the block type ``ENCRYPTED SIGSTORE PRIVATE KEY`` (older releases
``ENCRYPTED COSIGN PRIVATE KEY``); both are read. The public key is a PKIX ``PUBLIC KEY`` PEM.
The cryptography comes from ``cryptography`` (ECDSA, scrypt) and PyNaCl (secretbox).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass

from ..errors import KeyInvalid, PassphraseInvalid

PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
PEM_TYPES = (PEM_TYPE, "ENCRYPTED COSIGN PRIVATE KEY")
SCRYPT_PARAMS = {"N": 32768, "r": 8, "p": 1}
"""go-securesystemslib's ``Legacy`` strength, which cosign's keys are written with."""
ACCEPTED_SCRYPT = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})
"""The parameter sets go-securesystemslib accepts (Legacy, Standard, OWASP); others are refused."""


@dataclass(frozen=True)
class KeyPair:
    """The two files' contents of a new key pair."""

    private_pem: bytes
    public_pem: bytes


def pem_encode(kind: str, body: bytes) -> bytes:
    """A PEM block of type ``kind`` around ``body`` (base64, 64-column lines)."""
    b64 = base64.b64encode(body).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n").encode()


def _unpem(data: bytes, kinds: tuple[str, ...], what: str) -> tuple[str, bytes]:
    text = data.decode("ascii", "replace")
    for kind in kinds:
        begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
        if begin in text:
            body = text.split(begin, 1)[1].split(end, 1)[0]
            if end not in text:
                break
            try:
                return kind, base64.b64decode("".join(body.split()), validate=True)
            except binascii.Error:
                raise KeyInvalid(f"{what}: the PEM body is not base64") from None
    raise KeyInvalid(f"{what}: not a PEM block of type {' or '.join(kinds)}")


def _scrypt_key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def encrypt(plaintext: bytes, passphrase: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``passphrase`` as go-securesystemslib does; the JSON document."""
    from nacl.secret import SecretBox

    salt, nonce = os.urandom(32), os.urandom(SecretBox.NONCE_SIZE)
    key = _scrypt_key(passphrase, salt, **{k.lower(): v for k, v in SCRYPT_PARAMS.items()})
    sealed = SecretBox(key).encrypt(plaintext, nonce).ciphertext  # tag + ciphertext, as Go's secretbox.Seal
    doc = {"kdf": {"name": "scrypt", "params": SCRYPT_PARAMS, "salt": base64.b64encode(salt).decode()},
           "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(sealed).decode()}
    return json.dumps(doc, separators=(",", ":")).encode()


def decrypt(document: bytes, passphrase: bytes, *, what: str = "key") -> bytes:
    """Open a go-securesystemslib encrypted document; :class:`PassphraseInvalid` on a wrong passphrase."""
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    try:
        doc = json.loads(document)
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = {"N": int(kdf["params"]["N"]), "r": int(kdf["params"]["r"]), "p": int(kdf["params"]["p"])}
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        sealed = base64.b64decode(doc["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise KeyInvalid(f"{what}: not an encrypted key document ({e.__class__.__name__}: {e})") from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise KeyInvalid(f"{what}: unsupported kdf {kdf.get('name')!r} / cipher {cipher.get('name')!r}")
    if params not in ACCEPTED_SCRYPT:
        raise KeyInvalid(f"{what}: unsupported scrypt parameters {params}")
    if len(nonce) != SecretBox.NONCE_SIZE:
        raise KeyInvalid(f"{what}: the secretbox nonce is {len(nonce)} bytes, not {SecretBox.NONCE_SIZE}")
    key = _scrypt_key(passphrase, salt, params["N"], params["r"], params["p"])
    try:
        return SecretBox(key).decrypt(sealed, nonce)
    except CryptoError:
        raise PassphraseInvalid(f"{what}: wrong passphrase (or a damaged key file)") from None


def generate(passphrase: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair, the private key encrypted under ``passphrase``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    priv = ec.generate_private_key(ec.SECP256R1())
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return KeyPair(pem_encode(PEM_TYPE, encrypt(der, passphrase)), pub)


def load_private_key(data: bytes, passphrase: bytes, *, what: str = "private key"):  # type: ignore[no-untyped-def]
    """The private key of a cosign key file (either PEM type)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    _, body = _unpem(data, PEM_TYPES, what)
    der = decrypt(body, passphrase, what=what)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except ValueError as e:
        raise KeyInvalid(f"{what}: the decrypted key is not PKCS#8 ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyInvalid(f"{what}: only ECDSA keys are supported, this is {type(key).__name__}")
    return key


def load_public_key(data: bytes, *, what: str = "public key"):  # type: ignore[no-untyped-def]
    """An ECDSA public key from PKIX PEM (or a certificate's key from a PEM certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        if b"BEGIN CERTIFICATE" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise KeyInvalid(f"{what}: not a PEM public key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyInvalid(f"{what}: only ECDSA public keys are supported, this is {type(key).__name__}")
    return key


def public_key_hint(key) -> str:  # type: ignore[no-untyped-def]
    """A key's hint as sigstore bundles name it: base64 of the SHA-256 of its DER (PKIX) bytes."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def sign_bytes(key, data: bytes) -> bytes:  # type: ignore[no-untyped-def]
    """An ASN.1 DER ECDSA signature of SHA-256(``data``), as cosign makes."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify_bytes(key, signature: bytes, data: bytes, *, prehashed: bool = False) -> bool:  # type: ignore[no-untyped-def]
    """True when ``signature`` is ``key``'s ECDSA signature of ``data`` (its SHA-256 if ``prehashed``)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    algo = ec.ECDSA(utils.Prehashed(hashes.SHA256())) if prehashed else ec.ECDSA(hashes.SHA256())
    try:
        key.verify(signature, data, algo)
        return True
    except (InvalidSignature, ValueError):
        return False


def write_key_pair(prefix: str, passphrase: bytes, *, force: bool = False) -> tuple[str, str]:
    """Write ``PREFIX.key`` (mode 0600) and ``PREFIX.pub``; refuse to overwrite unless ``force``."""
    from ..errors import UsageError

    priv_path, pub_path = f"{prefix}.key", f"{prefix}.pub"
    if not force:
        for p in (priv_path, pub_path):
            if os.path.exists(p):
                raise UsageError(f"{p} exists; refusing to overwrite it")
    pair = generate(passphrase)
    fd = os.open(priv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pair.private_pem)
    with open(pub_path, "wb") as f:
        f.write(pair.public_pem)
    return priv_path, pub_path


__all__ = ["KeyPair", "PEM_TYPE", "PEM_TYPES", "decrypt", "encrypt", "generate", "load_private_key",
           "load_public_key", "pem_encode", "public_key_hint", "sign_bytes", "verify_bytes", "write_key_pair"]

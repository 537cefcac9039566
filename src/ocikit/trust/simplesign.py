"""GPG simple signing ("atomic container signature") through the system's ``gpg``.

A signature is an OpenPGP *signed message* (binary, not detached) whose literal data is the
JSON payload of :mod:`ocikit.trust.payload` — what containers/image writes with ``skopeo copy
--sign-by`` and reads through ``signedBy`` in containers-policy.json.

Signing uses the caller's keyring (``GNUPGHOME``, or the one given); verifying imports the
trusted keys into a private, temporary home, so only those keys can vouch for an image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Sequence

from ..errors import KeyInvalid, SignatureInvalid, SigningFailed


def _gpg() -> str:
    exe = shutil.which("gpg")
    if exe is None:
        raise SigningFailed("gpg is not installed (apt-get install gnupg)")
    return exe


def _first_line(err: bytes) -> str:
    lines = [x for x in err.decode(errors="replace").splitlines() if x.strip()]
    return lines[-1].strip() if lines else "no message"


def sign_payload(payload: bytes, fingerprint: str, *, gnupghome: str | None = None,
                 passphrase_file: str | None = None) -> bytes:
    """Sign ``payload`` with the key ``fingerprint``; the binary OpenPGP signed message."""
    cmd = [_gpg(), "--batch", "--no-tty", "--yes", "--local-user", fingerprint, "--sign", "--output", "-"]
    if gnupghome:
        cmd[1:1] = ["--homedir", gnupghome]
    if passphrase_file:
        cmd[1:1] = ["--pinentry-mode", "loopback", "--passphrase-file", passphrase_file]
    p = subprocess.run(cmd, input=payload, capture_output=True)
    if p.returncode != 0 or not p.stdout:
        raise SigningFailed(f"gpg could not sign with {fingerprint}: {_first_line(p.stderr)}")
    return p.stdout


def check_secret_key(fingerprint: str, *, gnupghome: str | None = None) -> None:
    """:class:`SigningFailed` unless the keyring holds the secret key ``fingerprint`` (checked before a copy)."""
    cmd = [_gpg(), "--batch", "--no-tty", "--with-colons", "--list-secret-keys", fingerprint]
    if gnupghome:
        cmd[1:1] = ["--homedir", gnupghome]
    p = subprocess.run(cmd, capture_output=True)
    if p.returncode != 0 or b"\nsec:" not in b"\n" + p.stdout:
        raise SigningFailed(f"no secret GPG key {fingerprint} in {gnupghome or os.environ.get('GNUPGHOME') or '~/.gnupg'}")


@dataclass(frozen=True)
class GPGResult:
    """A verified signed message: the signing key and the payload it carries."""

    fingerprint: str
    """The signing (sub)key's fingerprint."""
    primary_fingerprint: str
    payload: bytes


class Keyring:
    """Trusted OpenPGP public keys in a temporary GPG home; ``close()`` removes it.

    Built from key files (``keyPath``/``keyPaths``) and key data (``keyData``, the decoded bytes),
    armored or binary.
    """

    def __init__(self, files: Sequence[str] = (), data: Sequence[bytes] = ()) -> None:
        self.home = tempfile.mkdtemp(prefix="ocikit-gpg-")
        os.chmod(self.home, 0o700)
        self.fingerprints: set[str] = set()
        try:
            for path in files:
                with open(path, "rb") as f:
                    self._import(f.read(), path)
            for i, blob in enumerate(data):
                self._import(blob, f"keyData[{i}]")
            if not self.fingerprints:
                raise KeyInvalid("no OpenPGP public key in the keyring given")
        except BaseException:
            self.close()
            raise

    def _import(self, blob: bytes, what: str) -> None:
        p = subprocess.run([_gpg(), "--homedir", self.home, "--batch", "--no-tty", "--no-autostart",
                            "--status-fd", "1", "--import"], input=blob, capture_output=True)
        got = [ln.split()[3] for ln in p.stdout.decode(errors="replace").splitlines()
               if ln.startswith("[GNUPG:] IMPORT_OK ") and len(ln.split()) >= 4]
        if not got:
            raise KeyInvalid(f"{what}: no OpenPGP public key could be imported ({_first_line(p.stderr)})")
        self.fingerprints.update(got)

    def verify(self, signature: bytes) -> GPGResult:
        """Check a signed message against the trusted keys; :class:`SignatureInvalid` if it fails."""
        p = subprocess.run([_gpg(), "--homedir", self.home, "--batch", "--no-tty", "--no-autostart",
                            "--status-fd", "2", "--decrypt"], input=signature, capture_output=True)
        status = [ln[len("[GNUPG:] "):].split() for ln in p.stderr.decode(errors="replace").splitlines()
                  if ln.startswith("[GNUPG:] ")]
        valid = [s for s in status if s and s[0] == "VALIDSIG"]
        good = any(s and s[0] == "GOODSIG" for s in status)
        if p.returncode != 0 or not valid or not good:
            why = next((" ".join(s[:2]) for s in status if s and s[0] in
                        ("BADSIG", "ERRSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG", "NO_PUBKEY", "NODATA")), None)
            raise SignatureInvalid(f"GPG signature does not verify with the trusted keys ({why or 'not a signed message'})")
        fpr = valid[0][1]
        primary = valid[0][10] if len(valid[0]) > 10 else fpr
        if fpr not in self.fingerprints and primary not in self.fingerprints:
            raise SignatureInvalid(f"GPG signature by {fpr}, which is not a trusted key")
        return GPGResult(fpr, primary, p.stdout)

    def close(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "Keyring":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["GPGResult", "Keyring", "check_secret_key", "sign_payload"]

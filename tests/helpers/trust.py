"""Signing fixtures' helpers for tests and benches: throwaway GPG keys (a new GPG home per key, removed
afterwards), a registries.d naming a lookaside directory, a generated image pushed somewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from helpers.cli import run_ocikit
from helpers.peers import require


@dataclass
class GPGKey:
    home: str
    fingerprint: str
    public_key: str
    """Armored export of the public key."""

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "GNUPGHOME": self.home}


def make_gpg_key(name: str) -> GPGKey:
    """A passphrase-less signing key in a new short-pathed GPG home (agent sockets have a length limit)."""
    gpg = require("gpg")
    home = tempfile.mkdtemp(prefix="okg-", dir="/tmp")
    os.chmod(home, 0o700)
    env = {**os.environ, "GNUPGHOME": home}
    subprocess.run([gpg, "--batch", "--passphrase", "", "--quick-gen-key", f"{name} <{name}@example.com>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    out = subprocess.run([gpg, "--batch", "--with-colons", "--list-secret-keys"], env=env, check=True,
                         capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    pub = os.path.join(home, "public.asc")
    with open(pub, "wb") as f:
        f.write(subprocess.run([gpg, "--batch", "--armor", "--export", fpr], env=env, check=True,
                               capture_output=True).stdout)
    return GPGKey(home, fpr, pub)


def drop_gpg_key(key: GPGKey) -> None:
    subprocess.run(["gpgconf", "--homedir", key.home, "--kill", "all"], capture_output=True)
    shutil.rmtree(key.home, ignore_errors=True)


def push_image(layout_dir: str, target: str, *, index: bool = False, seed: int = 0) -> str:
    """Write a generated image (or a 3-platform index) and copy it to ``target``; its digest."""
    from ocikit.testing import write_image, write_index
    from ocikit.transports.layout import OCILayout

    lay = OCILayout(layout_dir, create=True)
    desc = write_index(lay, "v1", seed=seed) if index else write_image(lay, "v1", seed=seed)
    run_ocikit("copy", "--all", "--dest-tls-verify=false", f"oci:{layout_dir}:v1", target)
    return str(desc.digest)


def registries_d(directory: str, lookaside: str) -> str:
    """A registries.d directory whose default-docker lookaside (and staging) is ``lookaside``."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "default.yaml"), "w") as f:
        f.write(f"default-docker:\n  lookaside: file://{lookaside}\n  lookaside-staging: file://{lookaside}\n")
    return directory

"""registries.d and lookaside signature stores (containers-registries.d(5), signature-protocols).

A registries.d directory holds YAML files; each may define ``default-docker`` and a ``docker``
map from scopes (``host``, ``host/namespace``, ``host/ns/repo``, ``host/ns/repo:tag``) to a
section with ``lookaside`` (read, and write unless staging is set) and ``lookaside-staging``
(write), or their old names ``sigstore`` / ``sigstore-staging``. The most specific scope that
has a section wins, whole; ``default-docker`` applies when no scope matches.

The signatures of manifest ``sha256:<hex>`` of ``host/ns/repo`` live at
``<base>/ns/repo@sha256=<hex>/signature-1``, ``signature-2``, ... (the first missing index ends
the list). ``file://`` stores are read and written; ``http(s)://`` stores are read.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..digest import Digest
from ..errors import PolicyInvalid, TransportError, UsageError
from ..reference import Reference

MAX_SIGNATURE = 4 << 20
"""containers/image refuses a lookaside signature larger than 4 MiB; so does ocikit."""
MAX_SIGNATURES = 128


def default_dir() -> str:
    """``$HOME/.config/containers/registries.d`` if it exists, else ``/etc/containers/registries.d``."""
    user = os.path.join(os.path.expanduser("~"), ".config", "containers", "registries.d")
    return user if os.path.isdir(user) else "/etc/containers/registries.d"


@dataclass
class RegistriesD:
    """The merged sections of a registries.d directory."""

    default: Mapping[str, Any] | None = None
    scopes: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str | None = None) -> "RegistriesD":
        """Read every ``*.yaml`` of ``directory`` (the default one if None; absent: empty)."""
        import yaml

        d = directory or default_dir()
        out = cls()
        if not os.path.isdir(d):
            if directory is not None:
                raise UsageError(f"registries.d {directory}: not a directory")
            return out
        for name in sorted(os.listdir(d)):
            if not name.endswith(".yaml"):
                continue
            path = os.path.join(d, name)
            try:
                with open(path, "rb") as f:
                    doc = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise PolicyInvalid(f"{path}: not YAML: {str(e).splitlines()[0]}") from None
            if not isinstance(doc, dict):
                raise PolicyInvalid(f"{path}: not a YAML mapping")
            if doc.get("default-docker") is not None:
                if out.default is not None:
                    raise PolicyInvalid(f"{path}: a second default-docker section")
                out.default = _section(doc["default-docker"], f"{path}: default-docker")
            for scope, sec in (doc.get("docker") or {}).items():
                if scope in out.scopes:
                    raise PolicyInvalid(f"{path}: a second section for {scope}")
                out.scopes[str(scope)] = _section(sec, f"{path}: docker.{scope}")
        return out

    def section(self, ref: Reference) -> Mapping[str, Any] | None:
        """The section for ``ref``: its most specific scope, else ``default-docker``."""
        for scope in scopes_of(ref):
            if scope in self.scopes:
                return self.scopes[scope]
        return self.default

    def base_url(self, ref: Reference, *, write: bool = False) -> str | None:
        sec = self.section(ref) or {}
        keys = ("lookaside-staging", "sigstore-staging", "lookaside", "sigstore") if write else ("lookaside", "sigstore")
        for k in keys:
            if sec.get(k):
                return str(sec[k]).rstrip("/")
        return None


def _section(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PolicyInvalid(f"{where}: not a mapping")
    return value


def scopes_of(ref: Reference) -> list[str]:
    """Scopes from the most specific: ``host/repo:tag`` (or ``@digest``), ``host/repo``, its namespaces, ``host``."""
    out: list[str] = []
    if ref.digest:
        out.append(f"{ref.name}@{ref.digest}")
    if ref.tag:
        out.append(f"{ref.name}:{ref.tag}")
    parts = ref.path.split("/")
    for i in range(len(parts), 0, -1):
        out.append(f"{ref.domain}/{'/'.join(parts[:i])}")
    out.append(ref.domain)
    return out


def signature_url(base: str, ref: Reference, digest: str, index: int) -> str:
    """The URL of the ``index``-th (0-based) signature of ``digest`` in ``ref``'s repository."""
    d = Digest(digest)
    return f"{base}/{ref.path}@{d.algorithm}={d.encoded}/signature-{index + 1}"


def _file_path(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    if u.scheme != "file":
        raise UsageError(f"lookaside {url}: only file:// lookaside stores can be written")
    return urllib.parse.unquote(u.path)


def _read_one(url: str) -> bytes | None:
    u = urllib.parse.urlsplit(url)
    if u.scheme == "file":
        try:
            with open(urllib.parse.unquote(u.path), "rb") as f:
                data = f.read(MAX_SIGNATURE + 1)
        except FileNotFoundError:
            return None
    elif u.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                data = resp.read(MAX_SIGNATURE + 1)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise TransportError(f"lookaside {url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise TransportError(f"lookaside {url}: {getattr(e, 'reason', e)}") from None
    else:
        raise UsageError(f"lookaside {url}: unsupported scheme {u.scheme!r} (file, http, https)")
    if len(data) > MAX_SIGNATURE:
        raise TransportError(f"lookaside {url}: larger than {MAX_SIGNATURE} bytes; not a signature")
    return data


def read_signatures_sync(base: str, ref: Reference, digest: str) -> list[tuple[str, bytes]]:
    """Every signature of ``digest`` at ``base``: (URL, bytes), in index order."""
    out: list[tuple[str, bytes]] = []
    for i in range(MAX_SIGNATURES):
        url = signature_url(base, ref, digest, i)
        data = _read_one(url)
        if data is None:
            break
        out.append((url, data))
    return out


async def read_signatures(base: str, ref: Reference, digest: str) -> list[tuple[str, bytes]]:
    return await asyncio.to_thread(read_signatures_sync, base, ref, digest)


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".ocikit-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def add_signature(base: str, ref: Reference, digest: str, signature: bytes) -> str:
    """Append ``signature`` (unless the same bytes are there); its path."""
    for i in range(MAX_SIGNATURES):
        path = _file_path(signature_url(base, ref, digest, i))
        try:
            with open(path, "rb") as f:
                if f.read() == signature:
                    return path
        except FileNotFoundError:
            _write_atomic(path, signature)
            return path
    raise UsageError(f"{ref}@{digest}: {MAX_SIGNATURES} signatures already; refusing to add more")


def put_signatures(base: str, ref: Reference, digest: str, signatures: list[bytes]) -> list[str]:
    """Make the signatures of ``digest`` exactly ``signatures`` (as containers/image does on copy)."""
    paths = []
    for i, sig in enumerate(signatures):
        path = _file_path(signature_url(base, ref, digest, i))
        _write_atomic(path, sig)
        paths.append(path)
    i = len(signatures)
    while True:
        path = _file_path(signature_url(base, ref, digest, i))
        if not os.path.exists(path):
            break
        os.unlink(path)
        i += 1
    return paths


__all__ = ["MAX_SIGNATURE", "RegistriesD", "add_signature", "default_dir", "put_signatures", "read_signatures",
           "read_signatures_sync", "scopes_of", "signature_url"]

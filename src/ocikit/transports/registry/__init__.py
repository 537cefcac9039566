"""The registry transport: ``docker://host/repo[:tag|@digest]`` as a Store.

- :mod:`.auth` — ``WWW-Authenticate`` parsing, scopes, the basic/bearer token flow;
- :mod:`.credentials` — ``--creds``, auth.json, docker config.json, credential helpers;
- :mod:`.retry` — backoff with jitter, ``Retry-After``;
- :mod:`.client` — one host's HTTP: pool, ping, auth, retries, redirects, errors;
- :mod:`.store` — a repository as a Store (blobs, uploads, manifests, tags, referrers, mounts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.reference import validate_repository_name
from ...core.transportref import TransportReference
from .auth import Credentials
from .client import RegistryClient
from .credentials import find_credentials
from .retry import RetryPolicy
from .store import RegistryStore

if TYPE_CHECKING:
    from ..open_options import OpenOptions


def client_for(host: str, opts: "OpenOptions") -> RegistryClient:
    """A client for ``host`` with the credentials, TLS and retry settings ``opts`` asks for."""
    creds = find_credentials(host, creds=opts.creds, authfile=opts.auth_file)
    endpoint = "registry-1.docker.io" if host == "docker.io" else host
    return RegistryClient(endpoint, creds=creds, tls_verify=opts.tls_verify, cert_dir=opts.cert_dir,
                          retry=RetryPolicy(times=max(0, opts.retry_times)))


def open_repository(tref: TransportReference, opts: "OpenOptions", *, write: bool = False) -> RegistryStore:
    """The :class:`RegistryStore` of a ``docker://`` reference (no I/O until first used)."""
    assert tref.image is not None
    validate_repository_name(tref.image.path)
    client = client_for(tref.image.domain, opts)
    return RegistryStore(client, tref.image.path, upload_mode=opts.upload_mode, chunk_size=opts.chunk_size,
                         write=write)


__all__ = ["Credentials", "RegistryClient", "RegistryStore", "RetryPolicy", "client_for", "open_repository"]

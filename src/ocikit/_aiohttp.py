"""aiohttp, imported by the ``ocikit`` command without loading the system CA bundle for nothing.

At import, ``aiohttp.connector`` builds two default SSL contexts, and each loads the system CA
bundle (~50 ms apiece, on every ocikit run that talks to a registry). ocikit never uses them:
every connector it makes gets its own context from
:func:`ocikit.transports.registry.client.build_ssl_context`, which loads the CAs itself, only
when a registry is reached over HTTPS with verification on.

So when the ``ocikit`` command owns the process (:data:`ocikit.cli.main.OWNS_PROCESS`), the first
import points OpenSSL's default CA locations at an empty file for its duration and restores the
environment right after. A program that imports ocikit as a library gets aiohttp untouched:
its own aiohttp sessions keep their default CAs.
"""

from __future__ import annotations

import os
import sys


def _owned() -> bool:
    return "aiohttp" not in sys.modules and bool(getattr(sys.modules.get("ocikit.cli.main"), "OWNS_PROCESS", False))


if _owned():
    _saved = {k: os.environ.get(k) for k in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.environ["SSL_CERT_FILE"] = os.environ["SSL_CERT_DIR"] = os.devnull
    try:
        import aiohttp
    finally:
        for _k, _v in _saved.items():
            if _v is None:
                os.environ.pop(_k, None)
            else:
                os.environ[_k] = _v
else:
    import aiohttp

__all__ = ["aiohttp"]

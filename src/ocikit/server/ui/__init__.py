"""The web UI of ``ocikit serve`` under ``/ui/``: repositories, tags, image graphs, blobs, referrers.

Server-rendered pages over the registry logic (:class:`~ocikit.server.storage.registry.RegistryStorage`),
so it works on any storage driver; one stylesheet and one small script shipped in the package.
"""

from .views import setup_ui

__all__ = ["setup_ui"]

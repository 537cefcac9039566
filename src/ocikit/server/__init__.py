"""``ocikit serve``: an OCI Distribution v1.1 registry (aiohttp) over pluggable storage."""

from .app import create_app, serve
from .serve_config import ServerConfig, load_config
from .gc import GcReport, collect_garbage

__all__ = ["GcReport", "ServerConfig", "collect_garbage", "create_app", "load_config", "serve"]

"""Shared builders for the mirror tests: image sets with shared base layers, referrers, configs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from ocikit import mediatypes as mt
from ocikit.content import Store
from ocikit.model import Descriptor, build_index, build_manifest
from ocikit.testing.images import FileEntry, LayerSpec, _put as put_bytes, write_image_async

BASE = LayerSpec(entries=(FileEntry("etc/os-release", data=b"ID=mirrortest\n" * 200),
                          FileEntry("lib/libc.so", data=bytes(range(256)) * 64)))
MIDDLE = LayerSpec(entries=(FileEntry("usr/lib/python3/site.py", data=b"# runtime\n" * 500),))


async def push_signature(store: Store, subject: Descriptor, *, payload: bytes = b"signed by the test",
                         fallback: bool = True) -> Descriptor:
    """An OCI artifact manifest with ``subject``, pushed by digest, plus (``fallback``) the ``sha256-<hex>`` tag index."""
    cfg = await put_bytes(store, mt.EMPTY_JSON, mt.OCI_EMPTY)
    layer = await put_bytes(store, payload, "application/vnd.dev.cosign.simplesigning.v1+json")
    art = build_manifest(cfg, [layer], media_type=mt.OCI_MANIFEST,
                         artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
                         subject=Descriptor(subject.media_type, subject.digest, subject.size))
    await store.put_manifest(art.raw, art.media_type, None)
    art_desc = Descriptor(mt.OCI_MANIFEST, art.digest, art.size,
                          artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json")
    if not fallback:
        return art_desc
    idx = build_index([art_desc], media_type=mt.OCI_INDEX)
    await store.put_manifest(idx.raw, idx.media_type, f"{subject.digest.algorithm}-{subject.digest.encoded}")
    return art_desc


async def write_app(store: Store, tag: str, n: int, *, shared: bool = True, extra_bytes: int = 1024) -> Descriptor:
    """Image number ``n``: the shared base (and runtime) layers, then a layer of its own."""
    layers = ([BASE, MIDDLE] if shared else []) + [LayerSpec(random_bytes=extra_bytes)]
    return await write_image_async(store, tag, layers=layers, seed=1000 + n)


def run_cli(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "ocikit", *args], capture_output=True, text=True, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"ocikit {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def run_json(*args: str, check: bool = True) -> tuple[int, dict[str, Any]]:
    p = run_cli("--format", "json", *args, check=check)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f"not JSON ({p.returncode}): {p.stdout!r} {p.stderr!r}") from None


def arun(coro: Any) -> Any:
    return asyncio.run(coro)

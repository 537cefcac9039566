"""Content for the UI tests and ``bench/ui``, written straight into a server root before it starts.

Uses the registry logic (``RegistryStorage`` over the filesystem driver) and ``ocikit.testing``,
so every manifest goes through the same checks an HTTP push gets — except ``broken/manifest``,
whose bytes are written under the storage keys on purpose, as a corrupted or foreign store would.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ocikit import mediatypes as mt
from ocikit.digest import Digest
from ocikit.model import Descriptor, build_manifest
from ocikit.server.seed import seed_sample
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage, blob_key, repo_key
from ocikit.server.storage.store import RepositoryStore
from ocikit.testing.images import FileEntry, LayerSpec, write_image_async

XSS = '<script>window.__xss=1</script>"onerror="window.__xss=2" <img src=x onerror="window.__xss=3">'
BROKEN = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": "nope"}'
BASE = LayerSpec(entries=(FileEntry("etc/os-release", data=b"PRETTY_NAME=Debian GNU/Linux 10 (buster)\n"),
                          FileEntry("bin/sh", data=b"#!shell\n" * 64)))
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_TYPE = "application/spdx+json"


async def _blob(store: RepositoryStore, data: bytes, media_type: str) -> Descriptor:
    desc = Descriptor(media_type, Digest.of(data), len(data))

    async def one() -> Any:
        yield data
    if not await store.has_blob(desc):
        await store.put_blob(desc, one())
    return desc


async def referrer(store: RepositoryStore, subject: Descriptor, artifact_type: str, payload: bytes,
                   annotations: dict[str, str]) -> Digest:
    """An OCI 1.1 artifact whose subject is ``subject`` (a signature, an SBOM)."""
    empty = await _blob(store, mt.EMPTY_JSON, mt.OCI_EMPTY)
    layer = await _blob(store, payload, artifact_type)
    m = build_manifest(empty, [layer], subject=subject, artifact_type=artifact_type, annotations=annotations)
    return await store.put_manifest(m.raw, m.media_type, None)


async def httpd(storage: RegistryStorage) -> dict[str, Descriptor]:
    """Seed 002's pair: httpd 2.4.47 and 2.4.48 share their base layer, differ on top and in Env."""
    store = RepositoryStore(storage, "web/httpd")
    out = {}
    for version in ("2.4.47", "2.4.48"):
        top = LayerSpec(entries=(FileEntry("usr/local/apache2/bin/httpd", data=f"httpd {version}\n".encode()),))
        out[version] = await write_image_async(store, version, layers=(BASE, top), config={
            "Env": ["PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HTTPD_PREFIX=/usr/local/apache2", f"HTTPD_VERSION={version}"],
            "Cmd": ["httpd-foreground"], "WorkingDir": "/usr/local/apache2", "ExposedPorts": {"80/tcp": {}},
            "StopSignal": "SIGWINCH", "Labels": {"org.opencontainers.image.version": version}})
    sig = await referrer(store, out["2.4.48"], SIGNATURE_TYPE, b'{"critical": {"identity": "web/httpd"}}',
                         {"dev.cosignproject.cosign/signature": "MEUCIQDsignature"})
    sbom = await referrer(store, out["2.4.48"], SBOM_TYPE, b'{"spdxVersion": "SPDX-2.3"}',
                          {"org.opencontainers.image.created": "2026-12-03T00:00:00Z"})
    out["signature"] = Descriptor(mt.OCI_MANIFEST, sig, 0)
    out["sbom"] = Descriptor(mt.OCI_MANIFEST, sbom, 0)
    return out


async def many_tags(storage: RegistryStorage, repo: str, tags: int, distinct: int) -> None:
    """``tags`` tags over ``distinct`` different images (tag ``v0000`` ... ``v1999``)."""
    store = RepositoryStore(storage, repo)
    images = [await write_image_async(store, None, seed=1000 + i, root=False) for i in range(distinct)]
    raws = [(await store.get_manifest(str(d.digest))).raw for d in images]
    for i in range(tags):
        await storage.put_manifest(repo, f"v{i:04d}", raws[i % distinct], mt.OCI_MANIFEST)


async def xss_probe(storage: RegistryStorage) -> None:
    """Annotations and labels that are markup and script: the UI must show them as text."""
    store = RepositoryStore(storage, "xss/probe")
    await write_image_async(store, "latest", annotations={"org.opencontainers.image.description": XSS},
                            config={"Labels": {"probe": XSS}, "Cmd": [XSS]})


async def broken(storage: RegistryStorage) -> Digest:
    """A manifest the server cannot parse, stored as a damaged store would hold it."""
    d = Digest.of(BROKEN)
    await storage.driver.put(blob_key(d), BROKEN)
    await storage.driver.put(repo_key("broken/manifest", "_manifests", "revisions", d.algorithm, d.encoded),
                             mt.OCI_MANIFEST.encode())
    await storage.driver.put(repo_key("broken/manifest", "_manifests", "tags", "bad"), str(d).encode())
    return d


async def seed_all(root: str, *, tags: int = 2000, distinct: int = 40) -> dict[str, Any]:
    storage = RegistryStorage(FilesystemDriver(root, fsync=False))
    out: dict[str, Any] = {"sample": await seed_sample(storage)}
    out["httpd"] = await httpd(storage)
    await many_tags(storage, "many/tags", tags, distinct)
    await xss_probe(storage)
    out["broken"] = await broken(storage)
    return out


def seed(root: str, **kw: Any) -> dict[str, Any]:
    """``seed_all`` in a thread of its own (playwright's sync API keeps an event loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed_all(root, **kw)).result()

"""model.referrer: one rule for a referrer's descriptor — the server's referrers API and a layout's scan alike."""

from __future__ import annotations

import asyncio

import pytest

from ocikit import mediatypes as mt
from ocikit.digest import Digest
from ocikit.model import Descriptor, build_index, build_manifest
from ocikit.model.referrer import referrer_descriptor
from ocikit.ops.referrers import find_referrers
from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage
from ocikit.server.storage.store import RepositoryStore
from ocikit.testing.images import write_image_async
from ocikit.transports.layout import OCILayout

EMPTY = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
CFG = Descriptor("application/vnd.example.config+json", Digest.of(b"cfg"), 3)


def _referrers(subject: Descriptor) -> list:  # type: ignore[type-arg]
    """Referrers of every shape: artifactType set, config type fallback, annotations, an index."""
    return [
        build_manifest(EMPTY, [EMPTY], subject=subject, artifact_type="application/vnd.example.sig",
                       annotations={"org.example.k": "v"}),
        build_manifest(CFG, [EMPTY], subject=subject),
        build_index([], subject=subject, artifact_type="application/vnd.example.list"),
    ]


def test_the_rule() -> None:
    subject = Descriptor(mt.OCI_MANIFEST, Digest.of(b"s"), 1)
    sig, cfg_typed, idx = _referrers(subject)
    assert referrer_descriptor(sig) == Descriptor(sig.media_type, sig.digest, sig.size, {"org.example.k": "v"},
                                                  artifact_type="application/vnd.example.sig")
    assert referrer_descriptor(cfg_typed).artifact_type == CFG.media_type  # falls back to the config's type
    assert referrer_descriptor(idx).artifact_type == "application/vnd.example.list"
    assert referrer_descriptor(build_index([], subject=subject)).artifact_type is None
    assert referrer_descriptor(sig, sig.digest) == referrer_descriptor(sig)


@pytest.mark.parametrize("place", ["server", "layout"])
def test_every_place_lists_the_same_descriptors(tmp_path, place) -> None:
    async def go() -> tuple[list[Descriptor], list[Descriptor]]:
        if place == "server":
            st = RegistryStorage(FilesystemDriver(str(tmp_path / "root"), fsync=False))
            store = RepositoryStore(st, "ref/app")
        else:
            store = OCILayout(str(tmp_path / "lay"), create=True)
        subject = await write_image_async(store, "img")
        await store.put_blob(EMPTY, _one(mt.EMPTY_JSON))
        await store.put_blob(CFG, _one(b"cfg"))
        refs = _referrers(Descriptor(subject.media_type, subject.digest, subject.size))
        for m in refs:
            await store.put_manifest(m.raw, m.media_type, None, root=True)
        if place == "server":
            listed = [Descriptor.from_dict(e) for e in await st.referrers("ref/app", subject.digest)]
        else:
            listed = (await find_referrers(store, subject.digest)).referrers
        return listed, [referrer_descriptor(m) for m in refs]

    listed, expected = asyncio.run(go())
    key = lambda d: d.digest  # noqa: E731
    assert sorted(listed, key=key) == sorted(expected, key=key)


async def _one(data: bytes):  # type: ignore[no-untyped-def]
    yield data

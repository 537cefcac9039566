"""``--seed-sample``: a small multi-arch image in the server's own storage, and what to try with it."""

from __future__ import annotations

from ..core import mediatypes as mt
from ..model import parse_index
from ..testing.images import LayerSpec, write_index_async
from .storage.registry import RegistryStorage
from .storage.repo_store import RepositoryStore

SAMPLE_REPOSITORY = "sample/multiarch"
SAMPLE_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/ppc64le")


def _arch_tag(platform: str) -> str:
    return platform.split("/", 1)[1].replace("/", "-")


async def seed_sample(storage: RegistryStorage) -> list[str]:
    """Write ``sample/multiarch:latest`` (an OCI index) and one tag per architecture; idempotent."""
    store = RepositoryStore(storage, SAMPLE_REPOSITORY)
    tags = await storage.list_tags(SAMPLE_REPOSITORY) or []
    wanted = ["latest", *(_arch_tag(p) for p in SAMPLE_PLATFORMS)]
    if all(t in tags for t in wanted):
        return wanted
    desc = await write_index_async(store, "latest", platforms=SAMPLE_PLATFORMS,
                                   layers=(LayerSpec(random_bytes=64 * 1024),), seed=42)
    index = parse_index((await store.get_manifest(str(desc.digest))).raw, mt.OCI_INDEX)
    for child, platform in zip(index.manifests, SAMPLE_PLATFORMS):
        raw = (await store.get_manifest(str(child.digest))).raw
        await storage.put_manifest(SAMPLE_REPOSITORY, _arch_tag(platform), raw, child.media_type)
    return wanted


def try_commands(host: str, tls: bool) -> list[str]:
    """Commands a user can paste to exercise the seeded registry."""
    ref = f"{host}/{SAMPLE_REPOSITORY}"
    flag = "" if tls else "=false"
    return [
        f"ocikit copy --all --src-tls-verify{flag} docker://{ref}:latest oci:/tmp/sample:latest",
        f"skopeo inspect --tls-verify{flag} docker://{ref}:latest",
        f"skopeo inspect --raw --tls-verify{flag} docker://{ref}:latest",
        f"skopeo copy --all --src-tls-verify{flag} docker://{ref}:latest oci:/tmp/sample-skopeo:latest",
        f"ocikit tree docker://{ref}:latest",
        f"curl -s http{'s' if tls else ''}://{host}/v2/_catalog",
        f"curl -s http{'s' if tls else ''}://{host}/v2/{SAMPLE_REPOSITORY}/tags/list",
    ]

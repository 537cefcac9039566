"""Copy planning walks with the shared graph walker: iterative, so depth is no limit."""

from __future__ import annotations

import asyncio

from ocikit.content import Options
from ocikit.model import build_index
from ocikit.ops.copy import CopyOptions, plan_copy, resolve_root
from ocikit.testing import write_image
from ocikit.transports.layout import OCILayout

DEPTH = 1500
"""Deeper than the recursive planner could go (it failed with RecursionError here)."""


def test_plan_an_index_chain_of_any_depth(tmp_path) -> None:
    lay = OCILayout(str(tmp_path / "src"), create=True, sync=False)
    image = write_image(lay, None, root=False)
    chain = [image.digest]
    d = image
    for _ in range(DEPTH):
        idx = build_index([d])
        d = lay.put_bytes(idx.raw, idx.media_type)
        chain.append(d.digest)
    lay.add_entry(d, "deep")

    async def plan():  # type: ignore[no-untyped-def]
        root = await resolve_root(lay, "deep", Options())
        return await plan_copy(lay, root, CopyOptions(all_platforms=True), Options())

    p = asyncio.run(plan())
    assert [n.desc.digest for n in p.manifests] == chain  # children before parents, the root last
    assert len(p.blobs) == 2  # the image's config and layer
    assert lay.reachable() == {*chain, *p.blobs}  # layout gc walks it too

"""ocikit's registry extensions: ``/v2/_oci/ext/discover`` and ``/v2/<name>/_ocikit/tags/digests``."""

from __future__ import annotations

import pytest

from helpers.rawhttp import error_code

pytestmark = pytest.mark.asyncio


async def test_discover_lists_the_tag_digests_extension(client):
    status, doc, headers = await client.get_json("/v2/_oci/ext/discover")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    [ext] = doc["extensions"]
    assert ext["name"] == "_ocikit" and ext["endpoints"] == ["_ocikit/tags/digests"]


async def test_tag_digests_names_every_tag_with_its_digest(client):
    a = await client.push_image("ext/repo", "one")
    b = await client.push_image("ext/repo", "two")
    await client.put_manifest("ext/repo", "again", a.raw, a.media_type)
    status, doc, _ = await client.get_json("/v2/ext/repo/_ocikit/tags/digests")
    assert status == 200
    assert doc == {"name": "ext/repo", "tags": {"one": str(a.digest), "two": str(b.digest), "again": str(a.digest)}}
    # the tags list agrees (the extension adds to it, it does not replace it)
    _, tags, _ = await client.get_json("/v2/ext/repo/tags/list")
    assert sorted(tags["tags"]) == sorted(doc["tags"])


async def test_tag_digests_of_an_unknown_repository_is_name_unknown(client):
    status, doc, _ = await client.get_json("/v2/ext/nothing-here/_ocikit/tags/digests")
    assert status == 404 and error_code(doc) == "NAME_UNKNOWN"


async def test_tag_digests_is_read_only(client):
    await client.push_image("ext/ro", "t")
    async with client.s.delete(client.url("/v2/ext/ro/_ocikit/tags/digests")) as r:
        assert r.status == 405 and error_code(await r.json()) == "UNSUPPORTED"

"""Every workflow of the OCI Distribution spec, in raw HTTP, against ``ocikit serve``."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from yarl import URL

from ocikit.core import mediatypes as mt
from ocikit.core.digest import Digest
from ocikit.model import Descriptor, build_index, build_manifest, canonical_json

from helpers.rawhttp import error_code

pytestmark = pytest.mark.asyncio


# --- pull --------------------------------------------------------------------------------


async def test_base_endpoint(client):
    async with client.s.get(client.url("/v2/")) as r:
        assert r.status == 200
        assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_pull_manifest_and_blobs(client):
    img = await client.push_image("pull/one", "v1", layer_sizes=(5000, 70000))
    for ref in ("v1", img.digest):
        async with client.s.get(client.url(f"/v2/pull/one/manifests/{ref}"),
                                headers={"Accept": mt.ACCEPT_MANIFESTS}) as r:
            assert r.status == 200
            assert await r.read() == img.raw
            assert r.headers["Content-Type"] == mt.OCI_MANIFEST
            assert r.headers["Docker-Content-Digest"] == img.digest
        async with client.s.head(client.url(f"/v2/pull/one/manifests/{ref}")) as r:
            assert r.status == 200
            assert int(r.headers["Content-Length"]) == len(img.raw)
            assert r.headers["Docker-Content-Digest"] == img.digest
            assert await r.read() == b""
    for d, data in img.blobs.items():
        async with client.s.get(client.url(f"/v2/pull/one/blobs/{d}")) as r:
            assert r.status == 200
            assert int(r.headers["Content-Length"]) == len(data)
            assert r.headers["Docker-Content-Digest"] == d
            assert await r.read() == data
        async with client.s.head(client.url(f"/v2/pull/one/blobs/{d}")) as r:
            assert r.status == 200 and int(r.headers["Content-Length"]) == len(data)
    big = next(d for d, v in img.blobs.items() if len(v) == 70000)
    async with client.s.get(client.url(f"/v2/pull/one/blobs/{big}"), headers={"Range": "bytes=1000-1999"}) as r:
        assert r.status == 206
        assert await r.read() == img.blobs[big][1000:2000]
        assert r.headers["Content-Range"] == "bytes 1000-1999/70000"


async def test_pull_unknown(client):
    await client.push_image("pull/unknown", "v1")
    missing = Digest.of(b"nothing here")
    status, body, _ = await client.get_json(f"/v2/pull/unknown/blobs/{missing}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")
    status, body, _ = await client.get_json("/v2/pull/unknown/manifests/nope")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    status, body, _ = await client.get_json(f"/v2/pull/unknown/manifests/{missing}")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    status, body, _ = await client.get_json("/v2/no/such/repo/tags/list")
    assert (status, error_code(body)) == (404, "NAME_UNKNOWN")
    # blobs are linked per repository: another repository cannot read them by digest
    other = await client.push_image("pull/other", "v1")
    some = next(iter(other.blobs))
    status, body, _ = await client.get_json(f"/v2/pull/unknown/blobs/{some}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")


# --- push --------------------------------------------------------------------------------


async def test_push_monolithic_post_and_put(client):
    data = os.urandom(10000)
    d = await client.post_blob("push/mono", data)
    d2 = await client.session_blob("push/mono", data[::-1])
    for digest, content in ((d, data), (d2, data[::-1])):
        async with client.s.get(client.url(f"/v2/push/mono/blobs/{digest}")) as r:
            assert await r.read() == content


async def test_push_chunked(client):
    data = os.urandom(300_000)
    d = Digest.of(data)
    async with client.s.post(client.url("/v2/push/chunked/blobs/uploads/"), headers={"Content-Length": "0"}) as r:
        assert r.status == 202
        loc = r.headers["Location"]
        assert r.headers["Range"] == "0-0"
    # out of order: the second chunk first
    async with client.s.patch(client.url(loc), data=data[100_000:200_000],
                              headers={"Content-Range": "100000-199999", "Content-Type": "application/octet-stream"}) as r:
        assert r.status == 416
        assert r.headers["Range"] == "0-0"
    async with client.s.patch(client.url(loc), data=data[:100_000],
                              headers={"Content-Range": "0-99999", "Content-Type": "application/octet-stream"}) as r:
        assert r.status == 202
        assert r.headers["Range"] == "0-99999"
        loc = r.headers["Location"]
    # a repeated chunk is refused and changes nothing
    async with client.s.patch(client.url(loc), data=data[:100_000], headers={"Content-Range": "0-99999"}) as r:
        assert r.status == 416
        assert r.headers["Range"] == "0-99999"
    async with client.s.get(client.url(loc)) as r:
        assert r.status == 204
        assert r.headers["Range"] == "0-99999"
        assert r.headers["Location"].endswith(loc.rsplit("/", 1)[1])
    async with client.s.patch(client.url(loc), data=data[100_000:200_000],
                              headers={"Content-Range": "100000-199999"}) as r:
        assert r.status == 202 and r.headers["Range"] == "0-199999"
    async with client.s.put(client.url(loc), params={"digest": d}, data=data[200_000:],
                            headers={"Content-Range": "200000-299999", "Content-Type": "application/octet-stream"}) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Location"] == f"/v2/push/chunked/blobs/{d}"
    async with client.s.get(client.url(f"/v2/push/chunked/blobs/{d}")) as r:
        assert await r.read() == data


async def test_push_streamed(client):
    parts = [os.urandom(65536) for _ in range(20)]
    d = Digest.of(b"".join(parts))

    async def gen():
        for p in parts:
            yield p
            await asyncio.sleep(0)

    async with client.s.post(client.url("/v2/push/streamed/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    async with client.s.patch(client.url(loc), data=gen(), headers={"Content-Type": "application/octet-stream"}) as r:
        assert r.status == 202
        assert r.headers["Range"] == f"0-{65536 * 20 - 1}"
        loc = r.headers["Location"]
    async with client.s.put(client.url(loc), params={"digest": d}) as r:
        assert r.status == 201
    async with client.s.head(client.url(f"/v2/push/streamed/blobs/{d}")) as r:
        assert r.status == 200 and int(r.headers["Content-Length"]) == 65536 * 20


async def test_cross_repository_mount(client):
    data = os.urandom(4096)
    d = await client.post_blob("mount/src", data)
    async with client.s.post(client.url("/v2/mount/dst/blobs/uploads/"), params={"mount": d, "from": "mount/src"}) as r:
        assert r.status == 201
        assert r.headers["Location"] == f"/v2/mount/dst/blobs/{d}"
        assert r.headers["Docker-Content-Digest"] == d
    async with client.s.get(client.url(f"/v2/mount/dst/blobs/{d}")) as r:
        assert await r.read() == data
    # not in the source repository: an ordinary upload session instead
    async with client.s.post(client.url("/v2/mount/dst2/blobs/uploads/"),
                             params={"mount": Digest.of(b"absent"), "from": "mount/src"}) as r:
        assert r.status == 202
        assert "/v2/mount/dst2/blobs/uploads/" in r.headers["Location"]


async def test_cancel_upload(client):
    async with client.s.post(client.url("/v2/push/cancel/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    async with client.s.patch(client.url(loc), data=b"abc") as r:
        assert r.status == 202
    async with client.s.delete(client.url(loc)) as r:
        assert r.status == 204
    status, body, _ = await client.get_json(loc)
    assert (status, error_code(body)) == (404, "BLOB_UPLOAD_UNKNOWN")
    # a session of one repository is unknown to another
    async with client.s.post(client.url("/v2/push/cancel/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    status, body, _ = await client.get_json(loc.replace("push/cancel", "push/other"))
    assert (status, error_code(body)) == (404, "BLOB_UPLOAD_UNKNOWN")


async def test_push_manifest_kinds(client):
    oci = await client.push_image("kinds/oci", "v1")
    dock = await client.push_image("kinds/oci", "docker", docker=True)
    idx = await client.push_index("kinds/oci", "index", [oci, dock])
    lst = await client.push_index("kinds/oci", "list", [dock], docker=True)
    for img in (oci, dock, idx, lst):
        async with client.s.get(client.url(f"/v2/kinds/oci/manifests/{img.tag}")) as r:
            assert await r.read() == img.raw
            assert r.headers["Content-Type"] == img.media_type
            assert r.headers["Docker-Content-Digest"] == img.digest
    # a manifest can be fetched from the blobs endpoint too, byte-exact
    async with client.s.get(client.url(f"/v2/kinds/oci/blobs/{idx.digest}")) as r:
        assert await r.read() == idx.raw


async def test_index_children_must_exist(client):
    oci = await client.push_image("kinds/sparse", "v1")
    ghost = Descriptor(mt.OCI_MANIFEST, Digest.of(b"ghost"), 5)
    idx = build_index([Descriptor(oci.media_type, oci.digest, len(oci.raw)), ghost])
    r = await client.put_manifest("kinds/sparse", "idx", idx.raw, idx.media_type)
    assert r.status == 400
    status, body, _ = await client.get_json("/v2/kinds/sparse/manifests/idx")
    assert status == 404


# --- content discovery -------------------------------------------------------------------


async def test_tags_list_pagination(client):
    img = await client.push_image("disc/tags", "t0")
    for i in range(1, 7):
        r = await client.put_manifest("disc/tags", f"t{i}", img.raw, img.media_type)
        assert r.status == 201
    status, body, _ = await client.get_json("/v2/disc/tags/tags/list")
    assert body == {"name": "disc/tags", "tags": [f"t{i}" for i in range(7)]}
    status, body, headers = await client.get_json("/v2/disc/tags/tags/list", params={"n": "3"})
    assert body["tags"] == ["t0", "t1", "t2"]
    assert headers["Link"] == '</v2/disc/tags/tags/list?n=3&last=t2>; rel="next"'
    status, body, headers = await client.get_json("/v2/disc/tags/tags/list", params={"n": "3", "last": "t2"})
    assert body["tags"] == ["t3", "t4", "t5"]
    status, body, headers = await client.get_json("/v2/disc/tags/tags/list", params={"n": "3", "last": "t5"})
    assert body["tags"] == ["t6"] and "Link" not in headers
    status, body, _ = await client.get_json("/v2/disc/tags/tags/list", params={"n": "0"})
    assert body["tags"] == []


async def test_catalog_pagination(client):
    for name in ("cat/a", "cat/b", "cat/c"):
        await client.post_blob(name, b"x" + name.encode())
    status, body, _ = await client.get_json("/v2/_catalog")
    assert status == 200
    assert {"cat/a", "cat/b", "cat/c"} <= set(body["repositories"])
    assert body["repositories"] == sorted(body["repositories"])
    seen, last = [], None
    while True:
        params = {"n": "2", **({"last": last} if last else {})}
        status, body, headers = await client.get_json("/v2/_catalog", params=params)
        seen += body["repositories"]
        if "Link" not in headers:
            break
        last = body["repositories"][-1]
    full = (await client.get_json("/v2/_catalog"))[1]["repositories"]
    assert seen == full


async def test_referrers(client):
    name = "disc/refs"
    # the empty config blob that artifacts use
    await client.post_blob(name, mt.EMPTY_JSON)
    subject = await client.push_image(name, "subject")
    sdesc = Descriptor(subject.media_type, subject.digest, len(subject.raw))
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
    pushed = []
    for i, atype in enumerate(["application/vnd.example.sbom", "application/vnd.example.sig",
                               "application/vnd.example.sbom"]):
        layer = os.urandom(100)
        ld = await client.post_blob(name, layer)
        m = build_manifest(empty, [Descriptor("application/octet-stream", ld, 100)], subject=sdesc,
                           artifact_type=atype, annotations={"n": str(i)})
        r = await client.put_manifest(name, str(m.digest), m.raw, m.media_type)
        assert r.status == 201
        assert r.headers["OCI-Subject"] == subject.digest
        pushed.append((m, atype))
    # an artifact whose config media type is its artifact type
    cfg = b'{"kind":"cfg"}'
    cd = await client.post_blob(name, cfg)
    m4 = build_manifest(Descriptor("application/vnd.example.cfgtype", cd, len(cfg)), [empty], subject=sdesc)
    r = await client.put_manifest(name, str(m4.digest), m4.raw, m4.media_type)
    assert r.status == 201
    status, body, headers = await client.get_json(f"/v2/{name}/referrers/{subject.digest}")
    assert status == 200 and headers["Content-Type"] == mt.OCI_INDEX
    assert body["mediaType"] == mt.OCI_INDEX and body["schemaVersion"] == 2
    by_digest = {x["digest"]: x for x in body["manifests"]}
    assert set(by_digest) == {str(m.digest) for m, _ in pushed} | {str(m4.digest)}
    for m, atype in pushed:
        entry = by_digest[str(m.digest)]
        assert entry["artifactType"] == atype
        assert entry["size"] == len(m.raw) and entry["mediaType"] == mt.OCI_MANIFEST
        assert entry["annotations"] == dict(m.annotations)
    assert by_digest[str(m4.digest)]["artifactType"] == "application/vnd.example.cfgtype"
    status, body, headers = await client.get_json(f"/v2/{name}/referrers/{subject.digest}",
                                                  params={"artifactType": "application/vnd.example.sbom"})
    assert headers["OCI-Filters-Applied"] == "artifactType"
    assert sorted(x["digest"] for x in body["manifests"]) == sorted(
        str(m.digest) for m, a in pushed if a == "application/vnd.example.sbom")
    # deleting a referrer removes it from the list
    async with client.s.delete(client.url(f"/v2/{name}/manifests/{pushed[1][0].digest}")) as r:
        assert r.status == 202
    status, body, _ = await client.get_json(f"/v2/{name}/referrers/{subject.digest}")
    assert str(pushed[1][0].digest) not in {x["digest"] for x in body["manifests"]}
    # a subject nobody refers to (or that does not exist): an empty index
    status, body, headers = await client.get_json(f"/v2/{name}/referrers/{Digest.of(b'nobody')}")
    assert status == 200 and body["manifests"] == [] and headers["Content-Type"] == mt.OCI_INDEX


async def test_referrer_pushed_before_its_subject(client):
    name = "disc/early"
    await client.post_blob(name, mt.EMPTY_JSON)
    future = Descriptor(mt.OCI_MANIFEST, Digest.of(b"not yet pushed"), 14)
    empty = Descriptor(mt.OCI_EMPTY, Digest(mt.EMPTY_DIGEST), 2)
    m = build_manifest(empty, [empty], subject=future, artifact_type="application/vnd.example.early")
    r = await client.put_manifest(name, str(m.digest), m.raw, m.media_type)
    assert r.status == 201 and r.headers["OCI-Subject"] == future.digest
    status, body, _ = await client.get_json(f"/v2/{name}/referrers/{future.digest}")
    assert [x["digest"] for x in body["manifests"]] == [str(m.digest)]


# --- content management ------------------------------------------------------------------


async def test_delete_tag_manifest_blob(client):
    name = "mgmt/del"
    img = await client.push_image(name, "v1")
    r = await client.put_manifest(name, "v2", img.raw, img.media_type)
    async with client.s.delete(client.url(f"/v2/{name}/manifests/v1")) as r:
        assert r.status == 202
    assert (await client.get_json(f"/v2/{name}/manifests/v1"))[0] == 404
    assert (await client.get_json(f"/v2/{name}/manifests/{img.digest}"))[0] == 200
    async with client.s.delete(client.url(f"/v2/{name}/manifests/{img.digest}")) as r:
        assert r.status == 202
    status, body, _ = await client.get_json(f"/v2/{name}/manifests/{img.digest}")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")
    assert (await client.get_json(f"/v2/{name}/manifests/v2"))[0] == 404  # tags of it went too
    assert (await client.get_json(f"/v2/{name}/tags/list"))[1]["tags"] == []
    d = next(iter(img.blobs))
    async with client.s.delete(client.url(f"/v2/{name}/blobs/{d}")) as r:
        assert r.status == 202
    status, body, _ = await client.get_json(f"/v2/{name}/blobs/{d}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")
    async with client.s.delete(client.url(f"/v2/{name}/blobs/{d}")) as r:
        assert r.status == 404
    async with client.s.delete(client.url(f"/v2/{name}/manifests/nosuchtag")) as r:
        assert r.status == 404


# --- bad input ---------------------------------------------------------------------------


async def test_wrong_digest_on_upload(client):
    async with client.s.post(client.url("/v2/bad/digest/blobs/uploads/"),
                             params={"digest": Digest.of(b"other")}, data=b"content") as r:
        assert r.status == 400
        assert error_code(await r.json()) == "DIGEST_INVALID"
    async with client.s.post(client.url("/v2/bad/digest/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    async with client.s.put(client.url(loc), params={"digest": Digest.of(b"other")}, data=b"content") as r:
        assert r.status == 400 and error_code(await r.json()) == "DIGEST_INVALID"
    async with client.s.post(client.url("/v2/bad/digest/blobs/uploads/"), params={"digest": "sha256:zz"},
                             data=b"content") as r:
        assert r.status == 400 and error_code(await r.json()) == "DIGEST_INVALID"
    status, body, _ = await client.get_json("/v2/bad/digest/blobs/md5:abc")
    assert (status, error_code(body)) == (400, "DIGEST_INVALID")
    # nothing became visible
    assert (await client.get_json(f"/v2/bad/digest/blobs/{Digest.of(b'content')}"))[0] == 404


async def test_manifest_wrong_digest_and_invalid(client):
    img = await client.push_image("bad/manifest", None)
    wrong = Digest.of(b"not the manifest")
    r = await client.put_manifest("bad/manifest", wrong, img.raw, img.media_type)
    assert r.status == 400
    status, body, _ = await client.get_json(f"/v2/bad/manifest/manifests/{wrong}")
    assert status == 404
    for raw in (b"{not json", b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
                b'{"schemaVersion": 1, "name": "x"}', b"[]"):
        async with client.s.put(client.url("/v2/bad/manifest/manifests/broken"), data=raw,
                                headers={"Content-Type": mt.OCI_MANIFEST}) as r:
            assert r.status == 400
            assert error_code(await r.json()) == "MANIFEST_INVALID"
    async with client.s.put(client.url("/v2/bad/manifest/manifests/bad%20tag!"), data=img.raw,
                            headers={"Content-Type": mt.OCI_MANIFEST}) as r:
        assert r.status == 400


async def test_manifest_naming_missing_blobs(client):
    cfg = canonical_json({"architecture": "amd64", "os": "linux"})
    cd = await client.post_blob("bad/missing", cfg)
    layer = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(b"never pushed"), 12)
    m = build_manifest(Descriptor(mt.OCI_CONFIG, cd, len(cfg)), [layer])
    async with client.s.put(client.url("/v2/bad/missing/manifests/v1"), data=m.raw,
                            headers={"Content-Type": m.media_type}) as r:
        assert r.status == 400
        body = await r.json()
        assert error_code(body) == "MANIFEST_BLOB_UNKNOWN"
        assert body["errors"][0]["detail"]["digest"] == layer.digest
    # a descriptor whose size disagrees with the blob
    m2 = build_manifest(Descriptor(mt.OCI_CONFIG, cd, len(cfg) + 1), [])
    async with client.s.put(client.url("/v2/bad/missing/manifests/v2"), data=m2.raw,
                            headers={"Content-Type": m2.media_type}) as r:
        assert r.status == 400 and error_code(await r.json()) == "MANIFEST_INVALID"


async def test_oversized_manifest(client):
    raw = b'{"schemaVersion":2,"annotations":{"x":"' + b"a" * (4 * 1024 * 1024) + b'"}}'
    async with client.s.put(client.url("/v2/bad/size/manifests/big"), data=raw,
                            headers={"Content-Type": mt.OCI_MANIFEST}) as r:
        assert r.status == 413
        assert error_code(await r.json()) == "SIZE_INVALID"

    async def chunked():  # no Content-Length: the limit applies while reading
        for i in range(0, len(raw), 1 << 20):
            yield raw[i:i + (1 << 20)]

    async with client.s.put(client.url("/v2/bad/size/manifests/big"), data=chunked(),
                            headers={"Content-Type": mt.OCI_MANIFEST}) as r:
        assert r.status == 413
    assert (await client.get_json("/v2/"))[0] == 200


@pytest.mark.parametrize("path", ["/v2/a/../b/tags/list", "/v2/a/%2e%2e/b/tags/list", "/v2/..%2fetc/tags/list",
                                  "/v2/UPPER/tags/list", "/v2/a//b/tags/list", "/v2/-a/tags/list",
                                  "/v2/a/../../../../etc/passwd/blobs/uploads/"])
async def test_bad_names(client, path):
    async with client.s.get(URL(client.url(path), encoded=True)) as r:
        assert r.status in (400, 404)
        body = await r.json()
        assert error_code(body) in ("NAME_INVALID", "NAME_UNKNOWN", "UNSUPPORTED")
    assert (await client.get_json("/v2/"))[0] == 200


async def test_dotdot_name_is_name_invalid(client):
    async with client.s.post(URL(client.url("/v2/a/../b/blobs/uploads/"), encoded=True)) as r:
        assert r.status == 400
        assert error_code(await r.json()) == "NAME_INVALID"


async def test_malformed_content_range(client):
    async with client.s.post(client.url("/v2/bad/range/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    for value in ("bytes=abc", "5-2", "0-", "-1-3", "0-9999"):
        async with client.s.patch(client.url(loc), data=b"0123456789", headers={"Content-Range": value}) as r:
            assert r.status == 416, value
            assert error_code(await r.json()) == "BLOB_UPLOAD_INVALID"
    async with client.s.get(client.url(loc)) as r:
        assert r.status == 204 and r.headers["Range"] == "0-0"
    async def fifty():  # chunked: no Content-Length, so the range alone says how much must come
        yield b"x" * 50

    async with client.s.patch(client.url(loc), data=fifty(), headers={"Content-Range": "0-99"}) as r:
        assert r.status == 400 and error_code(await r.json()) == "BLOB_UPLOAD_INVALID"
    async with client.s.get(client.url(loc)) as r:
        assert r.headers["Range"] == "0-0"
    async with client.s.patch(client.url(loc), data=b"0123456789", headers={"Content-Range": "0-9"}) as r:
        assert r.status == 202 and r.headers["Range"] == "0-9"


def _raw_request(host: str, head: bytes, body: bytes, *, shutdown: bool = True) -> bytes:
    h, p = host.split(":")
    with socket.create_connection((h, int(p)), timeout=3) as s:
        s.sendall(head + body)
        if shutdown:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return out


async def test_body_shorter_than_content_length(client, serve):
    async with client.s.post(client.url("/v2/bad/short/blobs/uploads/")) as r:
        loc = r.headers["Location"]
    async with client.s.patch(client.url(loc), data=b"x" * 100) as r:
        assert r.status == 202
    head = (f"PATCH {loc} HTTP/1.1\r\nHost: {serve.host}\r\nContent-Length: 1000\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    await asyncio.to_thread(_raw_request, serve.host, head, b"y" * 400)
    # the session did not move: the partial body was cut away
    async with client.s.get(client.url(loc)) as r:
        assert r.status == 204 and r.headers["Range"] == "0-99"
    # a monolithic push with a short body leaves nothing behind
    data = b"z" * 1000
    head = (f"POST /v2/bad/short/blobs/uploads/?digest={Digest.of(data)} HTTP/1.1\r\nHost: {serve.host}\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()
    await asyncio.to_thread(_raw_request, serve.host, head, data[:500])
    assert (await client.get_json(f"/v2/bad/short/blobs/{Digest.of(data)}"))[0] == 404
    assert (await client.get_json("/v2/"))[0] == 200


async def test_body_longer_than_content_length(client, serve):
    data = b"q" * 1000
    d = Digest.of(data)
    head = (f"POST /v2/bad/long/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: {serve.host}\r\n"
            f"Content-Length: 600\r\n\r\n").encode()
    out = await asyncio.to_thread(_raw_request, serve.host, head, data, shutdown=False)
    # the extra bytes are a malformed next request: the answer is a 400 either way (the server's
    # HTTP parser, or DIGEST_INVALID for the 600 bytes that did arrive), and nothing is stored
    assert out.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", out[:200]
    assert (await client.get_json(f"/v2/bad/long/blobs/{d}"))[0] == 404
    # the same for a manifest: the first Content-Length bytes are the manifest, which is cut short
    img = await client.push_image("bad/long", None)
    head = (f"PUT /v2/bad/long/manifests/v1 HTTP/1.1\r\nHost: {serve.host}\r\nContent-Type: {mt.OCI_MANIFEST}\r\n"
            f"Content-Length: {len(img.raw) - 10}\r\n\r\n").encode()
    out = await asyncio.to_thread(_raw_request, serve.host, head, img.raw, shutdown=False)
    assert out.split(b"\r\n", 1)[0].split(b" ")[1] == b"400", out[:200]
    assert (await client.get_json("/v2/bad/long/manifests/v1"))[0] == 404
    assert (await client.get_json("/v2/"))[0] == 200


async def test_unsupported_method_and_unknown_path(client):
    async with client.s.put(client.url("/v2/x/y/tags/list")) as r:
        assert r.status == 405 and error_code(await r.json()) == "UNSUPPORTED"
    async with client.s.get(client.url("/nothing")) as r:
        assert r.status == 404


async def test_metrics(client):
    await client.get_json("/v2/")
    async with client.s.get(client.url("/metrics")) as r:
        text = await r.text()
    assert r.status == 200
    assert 'ocikit_http_requests_total{route="base",method="GET",status="200"}' in text
    assert "ocikit_blobs_committed_total" in text


async def test_request_state_uses_typed_keys(tmp_path):
    """aiohttp's NotAppKeyWarning (request or app state keyed by a plain string) made an error in a real
    ``ocikit serve`` (through its base class: ``-W`` cannot name a class outside the standard library;
    the pytest config makes it an error in-process too): every request still answers."""
    import aiohttp

    from helpers.servers import start_ocikit_serve

    env = {**os.environ, "PYTHONWARNINGS": "error::UserWarning"}
    with start_ocikit_serve(str(tmp_path), env=env, quiet=False) as srv:
        async with aiohttp.ClientSession() as s:
            for _ in range(2):
                async with s.get(f"{srv.url}/v2/") as r:
                    assert r.status == 200
                async with s.get(f"{srv.url}/v2/typed/keys/tags/list") as r:
                    assert r.status == 404 and error_code(await r.json()) == "NAME_UNKNOWN"
        with open(srv.log, "rb") as f:
            assert b"NotAppKeyWarning" not in f.read()


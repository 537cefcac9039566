"""A re-run where nothing changed: no manifest GET for an unchanged tag, requests counted by proxies.

Source: docker-registry (HEAD per tag answers Docker-Content-Digest). Targets: ocikit serve
(one tag-digests request per repository) and docker-registry (one HEAD per tag).
"""

from __future__ import annotations

from asyncio import run as arun
from collections import Counter

import pytest

from ocikit.transports import OpenOptions, open_store

from helpers.app_servers import recording_proxy
from helpers.cli import run_json
from helpers.images import write_app
from helpers.servers import docker_registry, start_ocikit_serve

pytestmark = pytest.mark.peer
INSECURE = OpenOptions(tls_verify=False)
REPOS = {"team/app-a": ("1.0", "1.1", "2.0"), "team/app-b": ("v1", "v2"), "base/tool": ("latest",)}


async def populate(host: str) -> None:
    n = 0
    for repo, tags in REPOS.items():
        for tag in tags:
            n += 1
            s = open_store(f"docker://{host}/{repo}:{tag}", write=True, options=INSECURE)
            try:
                await write_app(s, tag, n)
            finally:
                await s.close()


def config(tmp_path, host: str) -> str:
    p = tmp_path / "m.yaml"
    p.write_text("images:\n" + "".join(f"  - source: docker://{host}/{repo}:{tag}\n"
                                       for repo, tags in REPOS.items() for tag in tags))
    return str(p)


def mirror(cfg: str, to: str, tmp_path, name: str, *extra: str) -> dict:
    rc, rep = run_json("mirror", "--config", cfg, "--to", to, "--src-tls-verify=false", "--dest-tls-verify=false",
                       "--journal", str(tmp_path / f"{name}.journal"), "--state", str(tmp_path / "state.json"), *extra)
    assert rc == 0 and rep["ok"], rep
    return rep


def per_repository(seen: list[tuple[str, str]], prefix: str = "") -> Counter:
    """Requests per repository (``/v2/<name>/...``); registry-wide ones (``/v2/``, discover) apart."""
    out: Counter = Counter()
    for _method, path in seen:
        for repo in REPOS:
            if path.startswith(f"/v2/{prefix}{repo}/"):
                out[repo] += 1
    return out


def test_noop_rerun_against_ocikit_serve_is_one_request_per_repository(tmp_path):
    ntags = sum(len(t) for t in REPOS.values())
    with docker_registry(str(tmp_path)) as src, start_ocikit_serve(str(tmp_path)) as dst:
        arun(populate(src.host))
        with recording_proxy(src.host) as (sp, src_seen), recording_proxy(dst.host) as (dp, dst_seen):
            cfg = config(tmp_path, sp)
            first = mirror(cfg, f"docker://{dp}/mirror", tmp_path, "one")
            assert first["unchanged"] == 0 and first["blobs"]["moved"] > 0
            src_seen.clear()
            dst_seen.clear()
            again = mirror(cfg, f"docker://{dp}/mirror", tmp_path, "two")
    assert again["unchanged"] == ntags
    assert {i["status"] for i in again["images"]} == {"unchanged"}
    assert again["blobs"]["moved"] == 0 and again["plan"]["uniqueBlobs"] == 0
    # target: one tag-digests request per repository, plus the registry-wide discovery
    assert per_repository(dst_seen, "mirror/") == Counter({r: 1 for r in REPOS}), dst_seen
    assert sorted(p for _m, p in dst_seen if p.startswith("/v2/mirror/")) == \
        sorted(f"/v2/mirror/{r}/_ocikit/tags/digests" for r in REPOS)
    # source: one HEAD per tag, no GET of a manifest
    src_manifest = [(m, p) for m, p in src_seen if "/manifests/" in p]
    assert sorted(src_manifest) == sorted(("HEAD", f"/v2/{r}/manifests/{t}") for r, ts in REPOS.items() for t in ts)
    # the report counts what the proxies saw (the /v2/ pings apart)
    assert sum(again["requests"][dp].values()) == sum(1 for _m, p in dst_seen if p != "/v2/")
    assert again["requests"][sp] == {"HEAD": ntags}


def test_noop_rerun_against_docker_registry_makes_no_manifest_get(tmp_path):
    with docker_registry(str(tmp_path / "a")) as src, docker_registry(str(tmp_path / "b")) as dst:
        arun(populate(src.host))
        with recording_proxy(src.host) as (sp, src_seen), recording_proxy(dst.host) as (dp, dst_seen):
            cfg = config(tmp_path, sp)
            mirror(cfg, f"docker://{dp}/mirror", tmp_path, "one")
            src_seen.clear()
            dst_seen.clear()
            again = mirror(cfg, f"docker://{dp}/mirror", tmp_path, "two")
    assert again["unchanged"] == sum(len(t) for t in REPOS.values())
    assert not [x for x in src_seen + dst_seen if x[0] == "GET" and "/manifests/" in x[1]]
    assert not [x for x in src_seen + dst_seen if "/blobs/" in x[1]]
    # conditional requests: one HEAD per tag at each side
    dst_heads = sorted(p for m, p in dst_seen if m == "HEAD")
    assert dst_heads == sorted(f"/v2/mirror/{r}/manifests/{t}" for r, ts in REPOS.items() for t in ts)


def test_changed_tag_is_copied_again(tmp_path):
    with docker_registry(str(tmp_path)) as src, start_ocikit_serve(str(tmp_path)) as dst:
        arun(populate(src.host))
        cfg = config(tmp_path, src.host)
        mirror(cfg, f"docker://{dst.host}/mirror", tmp_path, "one")

        async def retag() -> None:
            s = open_store(f"docker://{src.host}/team/app-b:v2", write=True, options=INSECURE)
            try:
                await write_app(s, "v2", 99)
            finally:
                await s.close()
        arun(retag())
        again = mirror(cfg, f"docker://{dst.host}/mirror", tmp_path, "two")
    status = {i["source"].rsplit("/", 1)[-1]: i["status"] for i in again["images"]}
    assert status.pop("app-b:v2") == "ok"
    assert set(status.values()) == {"unchanged"}
    assert again["blobs"]["moved"] >= 1


def test_trust_state_asks_only_the_source_and_leaves_a_tag_moved_at_the_target(tmp_path):
    """--trust-state: the documented choice. The target is not asked about a tag the state
    recorded, so a tag someone else moved there stays moved; a run without the flag puts it back."""
    ntags = sum(len(t) for t in REPOS.values())

    async def at_target(host: str, push: bool) -> str:
        s = open_store(f"docker://{host}/mirror/team/app-a:1.0", write=push, options=INSECURE)
        try:  # another user pushes something else under one of the job's tags
            return str((await write_app(s, "1.0", 77)).digest if push else (await s.resolve("1.0")).digest)
        finally:
            await s.close()

    with docker_registry(str(tmp_path / "a")) as src, docker_registry(str(tmp_path / "b")) as dst:
        arun(populate(src.host))
        with recording_proxy(src.host) as (sp, src_seen), recording_proxy(dst.host) as (dp, dst_seen):
            cfg = config(tmp_path, sp)
            mirror(cfg, f"docker://{dp}/mirror", tmp_path, "one")
            moved = arun(at_target(dst.host, push=True))
            src_seen.clear()
            dst_seen.clear()
            trusted = mirror(cfg, f"docker://{dp}/mirror", tmp_path, "two", "--trust-state")
            assert trusted["unchanged"] == ntags
            assert not [x for x in dst_seen if x[1] != "/v2/"], dst_seen  # nothing asked at the target
            assert sorted(x for x in src_seen if "/manifests/" in x[1]) == \
                sorted(("HEAD", f"/v2/{r}/manifests/{t}") for r, ts in REPOS.items() for t in ts)
            assert arun(at_target(dst.host, push=False)) == moved  # stays moved: the price of the flag
            checked = mirror(cfg, f"docker://{dp}/mirror", tmp_path, "three")
    status = {i["source"].split("/", 3)[-1]: i["status"] for i in checked["images"]}
    assert status.pop("team/app-a:1.0") == "ok"
    assert set(status.values()) == {"unchanged"}

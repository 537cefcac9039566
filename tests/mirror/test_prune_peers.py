"""``mirror --prune``: only the tags this job wrote and no longer selects go; nobody else's."""

from __future__ import annotations

from asyncio import run as arun

import pytest

from ocikit.transports import OpenOptions, open_store
from ocikit.transports.layout import OCILayout

from helpers.cli import run_json
from helpers.images import write_app
from helpers.servers import start_ocikit_serve

pytestmark = pytest.mark.peer
INSECURE = OpenOptions(tls_verify=False)
IMAGES = [(f"apps{r}", f"t{t}") for r in range(5) for t in range(10)]


def write_sources(root) -> dict[str, str]:
    """Five layouts of ten tagged images each (shared base layers); returns repo -> layout path."""
    paths = {}

    async def go() -> None:
        n = 0
        for repo in sorted({r for r, _ in IMAGES}):
            lay = OCILayout(str(root / repo), create=True)
            paths[repo] = lay.path
            for r, tag in IMAGES:
                if r == repo:
                    n += 1
                    await write_app(lay, tag, n)
    arun(go())
    return paths


def cfg_for(tmp_path, paths: dict[str, str], images) -> str:
    p = tmp_path / "m.yaml"
    p.write_text("images:\n" + "".join(f"  - source: oci:{paths[r]}:{t}\n" for r, t in images))
    return str(p)


async def tags_at(host: str, repo: str) -> dict[str, str]:
    s = open_store(f"docker://{host}/mirror/{repo}", options=INSECURE)
    try:
        return {t: str((await s.resolve(t)).digest) for t in await s.list_tags()}
    finally:
        await s.close()


async def push_other(host: str, repo: str, tag: str, n: int) -> str:
    s = open_store(f"docker://{host}/mirror/{repo}:{tag}", write=True, options=INSECURE)
    try:
        return str((await write_app(s, tag, n)).digest)
    finally:
        await s.close()


async def alias(host: str, repo: str, tag: str, new: str) -> None:
    s = open_store(f"docker://{host}/mirror/{repo}", write=True, options=INSECURE)
    try:
        rm = await s.get_manifest(tag)
        await s.put_manifest(rm.raw, rm.media_type, new)
    finally:
        await s.close()


def mirror(cfg: str, host: str, tmp_path, *extra: str) -> dict:
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"docker://{host}/mirror", "--dest-tls-verify=false",
                       "--state", str(tmp_path / "state.json"), "--journal", str(tmp_path / "journal"), *extra)
    assert rc == 0, rep
    return rep


def all_tags(host: str) -> dict[tuple[str, str], str]:
    out = {}
    for repo in sorted({r for r, _ in IMAGES}):
        for t, d in arun(tags_at(host, repo)).items():
            out[(repo, t)] = d
    return out


def test_prune_removes_exactly_the_dropped_tags(tmp_path):
    paths = write_sources(tmp_path / "src")
    with start_ocikit_serve(str(tmp_path)) as dst:
        first = mirror(cfg_for(tmp_path, paths, IMAGES), dst.host, tmp_path)
        assert sum(1 for i in first["images"] if i["status"] == "ok") == 50
        dropped = [("apps0", "t3"), ("apps1", "t0"), ("apps2", "t9"), ("apps4", "t4"), ("apps4", "t5")]
        # someone else: a tag of their own, and a second tag on a manifest the job will prune
        theirs = arun(push_other(dst.host, "apps0", "theirs", 500))
        arun(alias(dst.host, "apps1", "t0", "keep-me"))
        before = all_tags(dst.host)
        assert len(before) == 52
        kept = [x for x in IMAGES if x not in dropped]
        cfg = cfg_for(tmp_path, paths, kept)

        rc, dry = run_json("mirror", "--config", cfg, "--to", f"docker://{dst.host}/mirror", "--dest-tls-verify=false",
                           "--state", str(tmp_path / "state.json"), "--prune", "--dry-run")
        assert rc == 0
        assert sorted(p["destination"] for p in dry["prune"]) == \
            sorted(f"{dst.host}/mirror/{r}:{t}" for r, t in dropped)
        assert {p["status"] for p in dry["prune"]} == {"would-remove"}
        assert all_tags(dst.host) == before  # a dry run removes nothing

        rep = mirror(cfg, dst.host, tmp_path, "--prune")
        assert sorted((p["destination"], p["status"]) for p in rep["pruned"]) == \
            sorted((f"{dst.host}/mirror/{r}:{t}", "removed") for r, t in dropped)
        after = all_tags(dst.host)
        assert after == {k: v for k, v in before.items() if k not in dropped}
        assert after[("apps0", "theirs")] == theirs
        assert after[("apps1", "keep-me")] == before[("apps1", "t0")]  # only the tag went, not the manifest
        # a second prune finds nothing more to do
        assert mirror(cfg, dst.host, tmp_path, "--prune")["pruned"] == []


def test_prune_keeps_a_tag_someone_else_repushed(tmp_path):
    images = IMAGES[:3]
    paths = write_sources(tmp_path / "src")
    with start_ocikit_serve(str(tmp_path)) as dst:
        mirror(cfg_for(tmp_path, paths, images), dst.host, tmp_path)
        repushed = arun(push_other(dst.host, "apps0", "t2", 900))  # not what the job wrote any more
        rep = mirror(cfg_for(tmp_path, paths, images[:1]), dst.host, tmp_path, "--prune")
        got = {p["destination"].rsplit("/", 1)[-1]: p["status"] for p in rep["pruned"]}
        assert got == {"apps0:t1": "removed", "apps0:t2": "kept"}
        assert arun(tags_at(dst.host, "apps0")) == {"t0": arun(tags_at(dst.host, "apps0"))["t0"], "t2": repushed}

"""Mirror plan, bundle, journal and verify against OCI layouts (no registry needed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from asyncio import run as arun

import pytest

from ocikit.mirror.bundle import A_SOURCE, METADATA_FILE
from ocikit.mirror.mirror_config import parse_config
from ocikit.mirror.run import MirrorJob, prepare, run_mirror
from ocikit.mirror.verify import verify_plan
from ocikit.transports.layout import OCILayout

from helpers.cli import expect_failure, run_json, run_ocikit
from helpers.images import write_app


def write_cfg(tmp_path, text: str) -> str:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return str(p)


def blob_files(root: str) -> list[str]:
    d = os.path.join(root, "blobs", "sha256")
    return [f for f in os.listdir(d) if not f.startswith(".")]


def test_bundle_round_trip_and_verify(tmp_path, src):
    lay, idx = src
    cfg = write_cfg(tmp_path, f"images:\n  - source: oci:{lay.path}:multi\n  - source: oci:{lay.path}:single\n")
    bundle = str(tmp_path / "bundle")
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--journal", str(tmp_path / "j"))
    assert rc == 0 and rep["ok"]
    # the index, both single images and the signature (found through its sha256-<hex> tag)
    kinds = sorted((i["kind"], i["digest"] == idx.digest) for i in rep["images"])
    assert kinds == [("image", False), ("image", True), ("referrer", False)]
    b = OCILayout(bundle)
    assert b.validate() == []
    entries = {e.ref_name: e for e in b.entries()}
    assert entries["multi-arch:multi"].digest == idx.digest
    assert entries["multi-arch:multi"].annotations[A_SOURCE] == f"oci:{lay.path}:multi"
    # every blob once: the files in blobs/ are exactly the reachable set
    assert sorted(blob_files(bundle)) == sorted(d.encoded for d in b.reachable())
    meta = json.load(open(os.path.join(bundle, METADATA_FILE)))
    assert {i["source"] for i in meta["images"]} >= {f"oci:{lay.path}:multi", f"oci:{lay.path}:single"}
    assert meta["blobs"]["count"] == rep["blobs"]["unique"]
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle, check=True)
    again = run_ocikit("mirror", "--config", cfg, "--to", f"dir:{bundle}", check=False, text=True)
    assert again.returncode == 2 and "already holds a finished bundle" in again.stderr

    tree = str(tmp_path / "tree")
    rc, rep2 = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", "--journal", str(tmp_path / "j2"))
    assert rc == 0 and rep2["ok"]
    target = OCILayout(os.path.join(tree, "multi-arch"))
    assert target.resolve_sync("multi").digest == idx.digest
    assert target.resolve_sync(f"sha256-{idx.digest.encoded}")  # the signature's fallback tag came along
    assert target.validate() == []
    ok = run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", text=True)
    assert "all present, digest-exact" in ok.stdout
    ok = run_ocikit("mirror", "verify", "--config", cfg, "--to", f"oci:{tree}", text=True)

    # a layer with the right size but other bytes: only --deep (which hashes every blob) sees it
    single = json.loads(open(target.blob_path(target.resolve_sync("single").digest), "rb").read())
    layer = single["layers"][-1]["digest"]
    data = open(target.blob_path(layer), "rb").read()
    os.unlink(target.blob_path(layer))
    open(target.blob_path(layer), "wb").write(bytes(len(data)))
    run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", text=True)
    deep = run_ocikit("mirror", "verify", "--deep", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", check=False,
                      text=True)
    assert deep.returncode == 1 and f"BAD     oci:{tree}/multi-arch:single: bad layer 2 {layer}" in deep.stdout, deep.stdout
    os.unlink(target.blob_path(layer))
    open(target.blob_path(layer), "wb").write(data)
    # remove one child manifest: verify names it (and exits 1)
    child = json.loads(open(target.blob_path(idx.digest), "rb").read())["manifests"][1]
    os.unlink(target.blob_path(child["digest"]))
    bad = run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", check=False, text=True)
    assert bad.returncode == 1
    assert f"missing child manifest {child['digest']} (linux/arm64/v8) of index {idx.digest}" in bad.stdout


def test_twenty_images_share_blobs_each_stored_once(tmp_path):
    lays = []

    async def build():
        for n in range(20):
            lay = OCILayout(str(tmp_path / "src" / f"app{n:02d}"), create=True)
            await write_app(lay, "1.0", n)
            lays.append(lay)
    arun(build())
    cfg = write_cfg(tmp_path, "images:\n" + "".join(f"  - source: oci:{lay.path}:1.0\n" for lay in lays))
    bundle = str(tmp_path / "bundle")
    rc, plan = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--dry-run")
    # 2 shared layers + 20 own layers + 20 configs
    assert plan["plan"]["uniqueBlobs"] == 42 and plan["plan"]["blobReferences"] == 80
    assert not os.path.exists(bundle)  # a dry run writes nothing
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--journal", str(tmp_path / "j"))
    assert rep["blobs"]["unique"] == 42
    assert rep["blobs"]["linked"] + rep["blobs"]["moved"] == 42
    assert len(blob_files(bundle)) == 42 + 20  # + the 20 manifests
    # a layout tree target: the shared blobs go to 20 repositories, transferred from the source once each
    tree = str(tmp_path / "tree")
    rc, rep = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", "--journal", str(tmp_path / "j2"))
    assert rc == 0 and rep["blobs"]["unique"] == 42
    assert rep["blobs"]["linked"] + rep["blobs"]["moved"] == 80  # one placement per repository that needs it
    assert len(set(rep["blobs"]["movedDigests"])) == len(rep["blobs"]["movedDigests"])


def test_platform_subsets_sparse_and_rewrite(tmp_path, src):
    lay, idx = src
    cfg = write_cfg(tmp_path, f"""images:
  - source: oci:{lay.path}:multi
    platforms: [linux/arm64]
    platform-mode: sparse
    referrers: false
  - source: oci:{lay.path}:multi
    destination: rewritten/multi-arch
    platforms: [linux/amd64, linux/ppc64le]
    platform-mode: rewrite
    referrers: false
""")
    p = run_ocikit("mirror", "--config", cfg, "--to", f"oci:{tmp_path / 'dry'}", "--dry-run", text=True)
    assert "sparse: index digest kept, only linux/arm64/v8 copied" in p.stdout
    assert "rewritten index: only linux/amd64, linux/ppc64le" in p.stdout
    assert f"source digest {idx.digest} (index rewritten: new digest)" in p.stdout
    tree = str(tmp_path / "tree")
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"oci:{tree}", "--journal", str(tmp_path / "j"))
    assert rc == 0, rep
    sparse = OCILayout(os.path.join(tree, "multi-arch"))
    assert sparse.resolve_sync("multi").digest == idx.digest
    children = json.loads(open(sparse.blob_path(idx.digest), "rb").read())["manifests"]
    present = [c["platform"]["architecture"] for c in children if os.path.exists(sparse.blob_path(c["digest"]))]
    assert present == ["arm64"]
    rew = OCILayout(os.path.join(tree, "rewritten", "multi-arch"))
    d = rew.resolve_sync("multi").digest
    assert d != idx.digest
    assert [c["platform"]["architecture"] for c in json.loads(open(rew.blob_path(d), "rb").read())["manifests"]] \
        == ["amd64", "ppc64le"]
    run_ocikit("mirror", "verify", "--config", cfg, "--to", f"oci:{tree}", text=True)


def test_since_writes_only_what_is_new(tmp_path):
    lay = OCILayout(str(tmp_path / "src" / "app"), create=True)
    arun(write_app(lay, "1", 1))
    cfg = write_cfg(tmp_path, f"images:\n  - source: oci:{lay.path}\n    all-tags: true\n")
    b1, b2 = str(tmp_path / "b1"), str(tmp_path / "b2")
    run_ocikit("mirror", "--config", cfg, "--to", f"dir:{b1}", "--journal", "", text=True)
    arun(write_app(lay, "2", 2))  # shares the base layers with tag 1
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"dir:{b2}", "--since", os.path.join(b1, METADATA_FILE),
                       "--journal", "")
    meta = json.load(open(os.path.join(b2, METADATA_FILE)))
    assert [i["tag"] for i in meta["images"]] == ["2"] and [u["tag"] for u in meta["unchanged"]] == ["1"]
    assert len(meta["assumedBlobs"]) == 2  # the shared base layers stayed out
    assert len(blob_files(b2)) == 3  # own layer, config, manifest
    # import both, in order, into one target: complete and verified
    tree = str(tmp_path / "tree")
    run_ocikit("mirror", "--from", f"dir:{b1}", "--to", f"oci:{tree}", "--journal", "", text=True)
    run_ocikit("mirror", "--from", f"dir:{b2}", "--to", f"oci:{tree}", "--journal", "", text=True)
    run_ocikit("mirror", "verify", "--config", cfg, "--to", f"oci:{tree}", text=True)
    # the incremental bundle alone, into an empty target: refused, naming the blob
    p = run_ocikit("mirror", "--from", f"dir:{b2}", "--to", f"oci:{tmp_path / 'empty'}", "--journal", "", check=False,
                   text=True)
    assert p.returncode == 1 and "FAILED" in p.stdout


def test_failure_is_reported_and_a_rerun_continues_from_the_journal(tmp_path):
    lays = []

    async def build():
        for n in range(4):
            lay = OCILayout(str(tmp_path / "src" / f"app{n}"), create=True)
            await write_app(lay, "1.0", n, shared=False)
            lays.append(lay)
    arun(build())
    cfg = write_cfg(tmp_path, "images:\n" + "".join(f"  - source: oci:{lay.path}:1.0\n" for lay in lays))
    # corrupt app3's own layer: that image fails, the others are mirrored
    m3 = json.loads(open(lays[3].blob_path(lays[3].resolve_sync("1.0").digest), "rb").read())
    bad = lays[3].blob_path(m3["layers"][0]["digest"])
    good = open(bad, "rb").read()
    os.unlink(bad)
    open(bad, "wb").write(b"x" * len(good))
    journal = str(tmp_path / "journal")
    bundle = str(tmp_path / "bundle")
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--journal", journal, check=False)
    assert rc == 1 and not rep["ok"]
    failed = [i for i in rep["images"] if i["status"] == "failed"]
    assert [f["source"] for f in failed] == [f"oci:{lays[3].path}:1.0"]
    assert m3["layers"][0]["digest"] in failed[0]["error"]
    assert not os.path.exists(os.path.join(bundle, METADATA_FILE))  # incomplete: not marked finished
    assert os.path.exists(journal)
    run_ocikit("mirror", "--from", f"dir:{bundle}", "--to", f"oci:{tmp_path / 'x'}", check=False,
               text=True).returncode == 1
    os.unlink(bad)
    open(bad, "wb").write(good)
    rc, rep2 = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--journal", journal)
    assert rc == 0 and rep2["ok"]
    assert rep2["blobs"]["journaled"] == 7 and rep2["blobs"]["resent"] == 0
    assert rep2["blobs"]["linked"] + rep2["blobs"]["moved"] == 1  # only the layer that failed
    assert not os.path.exists(journal)  # a finished job leaves no journal


def test_library_api_and_bad_targets(tmp_path, src):
    lay, idx = src
    cfg = parse_config({"images": [{"source": f"oci:{lay.path}:multi", "referrers": False}]}, "inline")
    rep = arun(run_mirror(MirrorJob(to=f"oci:{tmp_path / 't'}", config=cfg, journal="")))
    assert rep.ok and [i.digest for i in rep.images] == [idx.digest]

    async def verify():
        prep = await prepare(MirrorJob(to=f"oci:{tmp_path / 't'}", config=cfg, journal=""), verify=True)
        try:
            return await verify_plan(prep.plan, prep.target)
        finally:
            await prep.close()
    assert arun(verify()).ok
    cfg = str(write_cfg(tmp_path, f"images: [{{source: 'oci:{lay.path}:multi'}}]"))
    for to, why in (("docker://", "no registry host"),
                    ("docker://127.0.0.1:1/x:tag", "a target is HOST[:PORT]/PREFIX, without tag or digest"),
                    ("ftp://x", "expected docker://HOST[:PORT]/PREFIX, oci:DIR or dir:BUNDLE"),
                    ("dir:", "expected dir:BUNDLE (a directory path)")):
        expect_failure("mirror", "--config", cfg, "--to", to, "--dry-run", code=2,
                       match=re.escape(f"ocikit: error: invalid mirror target '{to}': {why}"))
    p = run_ocikit("mirror", "--to", f"oci:{tmp_path}", check=False, text=True)
    assert p.returncode == 2 and "exactly one of --config" in p.stderr
    p = run_ocikit("mirror", "--from", str(tmp_path), "--to", f"oci:{tmp_path}", check=False, text=True)
    assert p.returncode == 2
    p = run_ocikit("mirror", "--from", f"dir:{tmp_path}", "--to", f"oci:{tmp_path / 'z'}", check=False, text=True)
    assert p.returncode == 2 and "incomplete bundle" in p.stderr


def test_tar_volumes_of_a_maximum_size(tmp_path):
    from ocikit.testing.images import LayerSpec, write_image_async

    lay = OCILayout(str(tmp_path / "src" / "app"), create=True)

    async def build():
        for i in range(2):
            await write_image_async(lay, f"t{i}", layers=[LayerSpec(random_bytes=1_500_000, compression="none"),
                                                          LayerSpec(random_bytes=200_000)], seed=i)
    arun(build())
    cfg = write_cfg(tmp_path, f"images:\n  - source: oci:{lay.path}\n    all-tags: true\n")
    bundle = tmp_path / "b"
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"dir:{bundle}", "--volume-size", "1MiB", "--journal", "")
    vols = sorted(p for p in os.listdir(bundle) if p.endswith(".tar"))
    assert len(vols) >= 4 and all(os.path.getsize(bundle / v) <= 1 << 20 for v in vols)
    assert not (bundle / "blobs").exists()
    # GNU tar + cat put the layout back together, and its checksum list holds
    out = tmp_path / "joined"
    out.mkdir()
    for v in vols:
        subprocess.run(["tar", "-xf", str(bundle / v), "-C", str(out)], check=True)
    blobs = out / "blobs" / "sha256"
    for part in sorted(blobs.glob("*.part0001")):
        base = str(part)[:-len(".part0001")]
        subprocess.run(f"cat {base}.part* > {base} && rm {base}.part*", shell=True, check=True)
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, check=True)
    # ocikit reads the volumes in place
    tree = str(tmp_path / "tree")
    run_ocikit("mirror", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", "--journal", "", text=True)
    run_ocikit("mirror", "verify", "--config", cfg, "--to", f"oci:{tree}", text=True)
    os.unlink(bundle / vols[-1])
    p = run_ocikit("mirror", "--from", f"dir:{bundle}", "--to", f"oci:{tree}", "--journal", "", check=False, text=True)
    assert p.returncode == 2 and f"volume {vols[-1]} is missing" in p.stderr


def test_an_entry_that_cannot_be_listed_fails_alone(tmp_path, src):
    lay, idx = src
    cfg = write_cfg(tmp_path, f"images:\n  - source: oci:{lay.path}:single\n"
                              f"  - source: oci:{tmp_path / 'nowhere' / 'app'}\n    all-tags: true\n")
    rc, rep = run_json("mirror", "--config", cfg, "--to", f"oci:{tmp_path / 't'}", "--journal", "", check=False)
    assert rc == 1 and [i["status"] for i in rep["images"]] == ["failed", "ok"]
    assert "cannot list the tags of oci:" in rep["images"][0]["error"]
    p = run_ocikit("mirror", "--config", cfg, "--to", f"oci:{tmp_path / 't'}", "--dry-run", check=False, text=True)
    assert p.returncode == 1 and "FAILED" in p.stdout and "1 image(s) could not be planned" in p.stdout


def test_progress_reports_images_and_bytes_done_to_the_end(tmp_path, src):
    from ocikit.progress import JobProgress
    lay, _ = src
    cfg = parse_config({"images": [{"source": f"oci:{lay.path}:multi"}, {"source": f"oci:{lay.path}:single"}]})
    events: list[JobProgress] = []
    rep = arun(run_mirror(MirrorJob(to=f"oci:{tmp_path / 'tree'}", config=cfg, journal="",
                                    progress=lambda e: events.append(e) if isinstance(e, JobProgress) else None)))
    assert rep.ok and events
    last = events[-1]
    assert last.images_done == last.images_total == len(rep.images)
    assert last.bytes_done == last.bytes_total == rep.plan["bytesToMove"] > 0
    assert [e.images_done for e in events] == sorted(e.images_done for e in events)
    assert any(e.eta() is not None and e.eta() > 0 for e in events[:-1])

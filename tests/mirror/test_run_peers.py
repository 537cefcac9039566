"""The seed's scenario end to end, against real registries on 127.0.0.1.

Registry A (Debian's docker-registry 2.8, no referrers API) holds a 3-platform index, single-arch
images and a signature (an artifact manifest with a subject, found through the sha256-<hex>
tag). Mirror A -> bundle -> registry B (ocikit serve) with A stopped before the second step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from asyncio import run as arun

import pytest

from ocikit.testing.images import write_index_async
from ocikit.transports import OpenOptions, open_store

from helpers.cli import OCIKIT, run_json, run_ocikit
from helpers.images import push_signature, write_app
from helpers.peers import require, skopeo, skopeo_digest, skopeo_inspect, skopeo_raw
from helpers.servers import docker_registry, free_port, start_ocikit_serve, stop_pid, uploaded_blobs, wait_http

pytestmark = pytest.mark.peer
INSECURE = OpenOptions(tls_verify=False)


async def populate_a(host: str) -> dict:
    """The seed's images on registry A; returns their digests."""
    out = {}
    multi = open_store(f"docker://{host}/openshift-examples/multi-arch:multi", write=True, options=INSECURE)
    try:
        idx = await write_index_async(multi, "multi", platforms=("linux/amd64", "linux/arm64/v8", "linux/s390x"),
                                      docker=True)
        out["index"] = idx
        out["signature"] = await push_signature(multi, idx)
    finally:
        await multi.close()
    for repo, tag, n in (("library/httpd", "2.4.48", 1), ("library/busybox", "1.36", 2)):
        s = open_store(f"docker://{host}/{repo}:{tag}", write=True, options=INSECURE)
        try:
            out[repo] = await write_app(s, tag, n)
        finally:
            await s.close()
    return out


def test_seed_scenario_registry_to_bundle_to_ocikit_serve(tmp_path):
    require("skopeo")
    cfg = tmp_path / "m.yaml"
    bundle = str(tmp_path / "bundle")
    with docker_registry(str(tmp_path)) as a:
        imgs = arun(populate_a(a.host))
        cfg.write_text(f"images:\n  - source: docker://{a.host}/openshift-examples/multi-arch:multi\n"
                       f"  - source: docker://{a.host}/library/httpd:2.4.48\n"
                       f"  - source: docker://{a.host}/library/busybox:1.36\n")
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"dir:{bundle}", "--src-tls-verify=false",
                           "--journal", str(tmp_path / "j1"))
        assert rc == 0 and rep["ok"], rep
        assert sorted(i["kind"] for i in rep["images"]) == ["image", "image", "image", "referrer"]
    # A is stopped: everything now comes from the bundle
    idx = imgs["index"]
    with start_ocikit_serve(str(tmp_path)) as b:
        results = str(tmp_path / "results")
        rc, rep = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/mirror",
                           "--dest-tls-verify=false", "--journal", str(tmp_path / "j2"), "--results", results)
        assert rc == 0 and rep["ok"], rep
        dest = f"docker://{b.host}/mirror/openshift-examples/multi-arch"
        assert skopeo_digest(f"{dest}:multi") == idx.digest
        ins = skopeo_inspect(f"{dest}@{idx.digest}")
        assert ins["Digest"] == idx.digest
        index = json.loads(skopeo_raw(f"{dest}@{idx.digest}"))
        for child in index["manifests"]:
            p = child["platform"]
            args = ["--override-arch", p["architecture"]] + (["--override-variant", p["variant"]]
                                                              if p.get("variant") else [])
            out = tmp_path / f"pulled-{p['architecture']}"
            skopeo("copy", "--src-tls-verify=false", *args, f"{dest}@{idx.digest}", f"dir:{out}")
            import hashlib  # dir: keeps the manifest bytes as pulled: this platform's child, byte-exact
            assert "sha256:" + hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest() == child["digest"]
        # the signature: on B through the referrers API (ocikit serve has it) and the fallback tag
        with urllib.request.urlopen(f"http://{b.host}/v2/mirror/openshift-examples/multi-arch/referrers/{idx.digest}") as r:
            refs = json.loads(r.read())
        assert imgs["signature"].digest in [m["digest"] for m in refs["manifests"]]
        assert skopeo_digest(f"{dest}:sha256-{idx.digest.encoded}")
        for repo in ("library/httpd", "library/busybox"):
            assert skopeo_digest(f"docker://{b.host}/mirror/{repo}:" + ("2.4.48" if "httpd" in repo else "1.36")) \
                == imgs[repo].digest
        # outputs for the cluster
        idms = open(os.path.join(results, "imagedigestmirrorset.yaml")).read()
        assert f'source: "{a.host}/openshift-examples/multi-arch"' in idms
        assert f'"{b.host}/mirror/openshift-examples/multi-arch"' in idms
        mapping = open(os.path.join(results, "mapping.txt")).read()
        assert f"{a.host}/library/httpd@{imgs['library/httpd'].digest}={b.host}/mirror/library/httpd:2.4.48" in mapping
        assert "[[registry.mirror]]" in open(os.path.join(results, "registries.conf")).read()

        ok = run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/mirror",
                     "--dest-tls-verify=false", text=True)
        assert "all present, digest-exact" in ok.stdout
        # delete one child manifest on B: verify fails and names it
        child = index["manifests"][2]["digest"]
        run_ocikit("delete", "--tls-verify=false", f"{dest}@{child}", text=True)
        bad = run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/mirror",
                      "--dest-tls-verify=false", check=False, text=True)
        assert bad.returncode == 1, bad.stdout
        assert f"missing child manifest {child} (linux/s390x) of index {idx.digest}" in bad.stdout
        assert bad.stdout.count("MISSING") == 1  # only that child: its blobs are still there


def test_twenty_images_registry_to_registry_move_each_blob_once(tmp_path):
    with docker_registry(str(tmp_path)) as a, start_ocikit_serve(str(tmp_path)) as b:
        async def build():
            for n in range(20):
                s = open_store(f"docker://{a.host}/apps/app{n:02d}:1.0", write=True, options=INSECURE)
                try:
                    await write_app(s, "1.0", n)
                finally:
                    await s.close()
        arun(build())
        cfg = tmp_path / "m.yaml"
        cfg.write_text("images:\n" + "".join(f"  - source: docker://{a.host}/apps/app{n:02d}:1.0\n" for n in range(20)))
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--journal", str(tmp_path / "j"))
        assert rc == 0 and rep["ok"], rep
        blobs = rep["blobs"]
        assert rep["plan"]["uniqueBlobs"] == 42 and rep["plan"]["blobReferences"] == 80
        # each unique blob crossed the wire once; the 2 shared layers were mounted into the 19 other repos
        assert blobs["unique"] == 42 and blobs["moved"] == 42
        assert sorted(blobs["movedDigests"]) == sorted(set(blobs["movedDigests"]))
        assert blobs["mounted"] == 2 * 19
        run_ocikit("mirror", "verify", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                "--dest-tls-verify=false", text=True)
        # every tag is in place: the plan skips all 20 images
        rc, dry = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--dry-run")
        assert dry["plan"]["unchanged"] == 20 and dry["plan"]["uniqueBlobs"] == 0
        # --recheck plans them all; the plan asks the target: everything is there already
        rc, dry = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--dry-run", "--recheck")
        assert dry["plan"]["blobsAlreadyThere"] == 42 and dry["plan"]["bytesToMove"] == 0
        # a second run moves nothing
        rc, rep2 = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                            "--dest-tls-verify=false", "--journal", str(tmp_path / "j"), "--recheck")
        assert rep2["blobs"]["moved"] == 0 and rep2["blobs"]["alreadyThere"] == 42


def _serve_logged(tmp: str, root: str, port: int) -> subprocess.Popen:
    """ocikit serve with its access log on (start_ocikit_serve runs it --quiet): we count PUTs in it."""
    log = open(os.path.join(tmp, f"access-{port}-{time.monotonic_ns()}.log"), "wb")
    proc = subprocess.Popen([*OCIKIT, "serve", "--listen", f"127.0.0.1:{port}", "--root", root,
                             "--no-fsync"], stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log.name  # type: ignore[attr-defined]
    wait_http(f"http://127.0.0.1:{port}/v2/", proc=proc, timeout=30)
    return proc


def test_kill_9_mid_import_then_rerun_resends_nothing(tmp_path):
    # a bundle of 8 images with 2 MB layers of their own, so the import takes a moment
    src = tmp_path / "src"
    cfg = tmp_path / "m.yaml"
    from ocikit.transports.layout import OCILayout

    async def build():
        for n in range(8):
            await write_app(OCILayout(str(src / f"app{n}"), create=True), "1.0", n, extra_bytes=2 << 20)
    arun(build())
    cfg.write_text("images:\n" + "".join(f"  - source: oci:{src / f'app{n}'}:1.0\n" for n in range(8)))
    bundle = str(tmp_path / "bundle")
    run_ocikit("mirror", "--config", str(cfg), "--to", f"dir:{bundle}", "--journal", "", text=True)
    port, root = free_port(), str(tmp_path / "serve-root")
    serve = _serve_logged(str(tmp_path), root, port)
    journal = tmp_path / "journal"
    try:
        args = [*OCIKIT, "--format", "json", "mirror", "--from", f"dir:{bundle}",
                "--to", f"docker://127.0.0.1:{port}/m", "--dest-tls-verify=false", "--journal", str(journal),
                "-j", "2", "--max-per-registry", "2"]
        run1 = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and journal.read_text().count('"t":"blob"') >= 5:
                break
            assert run1.poll() is None, run1.communicate()
            time.sleep(0.01)
        os.kill(run1.pid, signal.SIGKILL)
        run1.wait()
        records = [json.loads(line) for line in journal.read_text().splitlines()
                   if '"t":"blob"' in line and line.endswith("}")]
        verified_first = {r["digest"] for r in records}
        # 8 repositories x (2 shared layers + own layer + config) = 32 placements in all
        assert 5 <= len(records) < 32, "the kill came too late to test anything"
        rc, rep = run_json("mirror", "--from", f"dir:{bundle}", "--to", f"docker://127.0.0.1:{port}/m",
                           "--dest-tls-verify=false", "--journal", str(journal))
        assert rc == 0 and rep["ok"], rep
        assert rep["blobs"]["resent"] == 0 and rep["blobs"]["journaled"] >= len(verified_first)
        assert not set(rep["blobs"]["movedDigests"]) & verified_first
    finally:
        stop_pid(serve)
    # the registry's own access log: no blob the first run completed was uploaded again
    log = open(serve.log_path).read()  # type: ignore[attr-defined]
    puts = uploaded_blobs(log)
    assert puts, log[-2000:]
    assert all(n == 1 for n in puts.values()), {d: n for d, n in puts.items() if n > 1}
    with start_ocikit_serve(str(tmp_path), root=root) as b:
        run_ocikit("mirror", "verify", "--from", f"dir:{bundle}", "--to", f"docker://{b.host}/m",
                "--dest-tls-verify=false", text=True)


def test_referrers_api_source_to_registry_without_the_api(tmp_path):
    """ocikit serve (referrers API) -> docker-registry 2.8 (none): the signature stays discoverable there."""
    with start_ocikit_serve(str(tmp_path)) as a, docker_registry(str(tmp_path)) as b:
        async def build():
            s = open_store(f"docker://{a.host}/org/app:1", write=True, options=INSECURE)
            try:
                img = await write_app(s, "1", 1, shared=False)
                return img, await push_signature(s, img, fallback=False)
            finally:
                await s.close()
        img, sig = arun(build())
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f"images:\n  - source: docker://{a.host}/org/app:1\n")
        rc, rep = run_json("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                           "--dest-tls-verify=false", "--journal", "")
        assert rc == 0 and [i["kind"] for i in rep["images"]] == ["image", "referrer"], rep
        with urllib.request.urlopen(urllib.request.Request(
                f"http://{b.host}/v2/m/org/app/manifests/sha256-{img.digest.encoded}",
                headers={"Accept": "application/vnd.oci.image.index.v1+json"})) as r:
            fallback = json.loads(r.read())
        assert [m["digest"] for m in fallback["manifests"]] == [sig.digest]
        assert fallback["manifests"][0]["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
        run_ocikit("mirror", "verify", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--src-tls-verify=false",
                "--dest-tls-verify=false", text=True)
        # without its sha256-<hex> index the signature is stored but cannot be found: verify says so
        run_ocikit("delete", "--tls-verify=false", f"docker://{b.host}/m/org/app:sha256-{img.digest.encoded}",
                   text=True)
        bad = run_ocikit("mirror", "verify", "--config", str(cfg), "--to", f"docker://{b.host}/m",
                      "--src-tls-verify=false", "--dest-tls-verify=false", check=False, text=True)
        assert bad.returncode == 1 and f"referrer {sig.digest} of {img.digest} is stored but not discoverable" \
            in bad.stdout, bad.stdout

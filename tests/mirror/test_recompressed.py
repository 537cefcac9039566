"""``mirror --dest-compress-format zstd``: every image recompressed at the target, re-runs skip them."""

from __future__ import annotations

import json
from asyncio import run as arun

from ocikit.transports import OpenOptions, open_store

from helpers.cli import run_json
from helpers.servers import start_ocikit_serve


async def layer_types(host: str, repo: str, tag: str) -> list[str]:
    """Media types of every layer of every image under ``repo:tag`` (an index or an image)."""
    s = open_store(f"docker://{host}/{repo}", options=OpenOptions(tls_verify=False))
    try:
        doc = json.loads((await s.get_manifest(tag)).raw)
        docs = [json.loads((await s.get_manifest(c["digest"])).raw) for c in doc["manifests"]] \
            if "manifests" in doc else [doc]
        return [x["mediaType"] for d in docs for x in d["layers"]]
    finally:
        await s.close()


def test_mirror_recompresses_to_zstd_and_a_rerun_skips_it(tmp_path, src):
    lay, idx = src
    cfg = tmp_path / "m.yaml"
    cfg.write_text(f"images:\n  - source: oci:{lay.path}:multi\n  - source: oci:{lay.path}:single\n")
    args = ("mirror", "--config", str(cfg), "--dest-compress-format", "zstd", "--state", str(tmp_path / "s.json"),
            "--journal", str(tmp_path / "j"))
    with start_ocikit_serve(str(tmp_path)) as dst:
        rc, rep = run_json(*args, "--to", f"docker://{dst.host}/m")
        assert rc == 0 and rep["ok"], rep
        by_kind = {(i["kind"], i["status"]) for i in rep["images"]}
        assert by_kind == {("image", "ok"), ("referrer", "skipped")}
        multi = next(i for i in rep["images"] if i["destination"].endswith(":multi"))
        assert multi["sourceDigest"] == str(idx.digest) and rep["recompressed"][str(idx.digest)] == multi["digest"]
        for tag in ("multi", "single"):
            types = arun(layer_types(dst.host, "m/multi-arch", tag))
            assert types and set(types) == {"application/vnd.oci.image.layer.v1.tar+zstd"}
        # the state knows what each tag became: a re-run finds both unchanged
        rc, again = run_json(*args, "--to", f"docker://{dst.host}/m")
        assert rc == 0 and again["unchanged"] == 2
        assert {i["status"] for i in again["images"] if i["kind"] == "image"} == {"unchanged"}

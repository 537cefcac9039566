"""``bench/serve --storage s3``: ocikit serve and docker-registry over the same SeaweedFS bucket, one run.

Each registry runs twice over its own key prefix (two replicas of one registry): one streams blob
GETs through itself, the other answers them with a redirect to a presigned URL (docker-registry's
default). Measured, on 127.0.0.1 free ports:
  * push of a 1 GiB blob (POST session + PUT with the body, streamed by curl);
  * pull of that blob streamed through the registry (1 client), and through the redirect (curl -L);
  * manifest GET p50/p99 under 64 concurrent keep-alive clients (ab -k -c 64);
  * S3 requests per pushed image (config + one layer + manifest), from SeaweedFS's own counters;
  * peak RSS of the replica that took the push and served the streamed pull.
docker-registry's S3 driver panics when AWS_CA_BUNDLE is set: it is unset for that process only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from argparse import Namespace as SimpleNamespace
from typing import Any

OCIKIT_PREFIX = "ocikit-bench"
REGISTRY_ROOT = "/docker-registry-bench"


def s3_requests(metrics_port: int, bucket: str) -> int:
    """Requests SeaweedFS's S3 gateway has answered for ``bucket`` so far."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    total = 0
    for m in re.finditer(r'^SeaweedFS_s3_request_seconds_count\{([^}]*)\}\s+(\d+)', text, re.M):
        if f'bucket="{bucket}"' in m[1]:
            total += int(m[2])
    return total


def start_ocikit_s3(b: SimpleNamespace, s3: Any, redirect: str) -> Any:
    port = b.free_port()
    url = s3.storage_url(OCIKIT_PREFIX, redirect=redirect)
    cmd = [b.PYTHON, "-m", "ocikit", "serve", "--listen", f"127.0.0.1:{port}", "--storage", url, "--quiet"]
    return b.Server(f"ocikit serve (redirect {redirect})", cmd, port, env=s3.env)


def start_registry_s3(b: SimpleNamespace, s3: Any, work: str, redirect: bool) -> Any:
    exe = shutil.which("docker-registry")
    if not exe:
        raise SystemExit("docker-registry is not installed (apt-get install docker-registry)")
    port = b.free_port()
    cfg = os.path.join(work, f"registry-{port}.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  s3:\n    accesskey: {s3.access_key}\n    secretkey: {s3.secret_key}\n"
                f"    region: us-east-1\n    regionendpoint: {s3.endpoint}\n    bucket: {s3.bucket}\n"
                f"    rootdirectory: {REGISTRY_ROOT}\n    secure: false\n    v4auth: true\n"
                f"  delete:\n    enabled: true\n  redirect:\n    disable: {str(not redirect).lower()}\n"
                f"  cache:\n    blobdescriptor: inmemory\nhttp:\n  addr: 127.0.0.1:{port}\n")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # its S3 driver panics on it
    env["OTEL_TRACES_EXPORTER"] = "none"
    return b.Server(f"docker-registry (redirect {'on' if redirect else 'off'})", [exe, "serve", cfg], port, env=env)


def get_following(srv: Any, repo: str, digest: str, size: int) -> float:
    """GB/s of one ``curl -L`` of a blob (follows a 307 to the object store)."""
    t = time.perf_counter()
    if subprocess.run(["curl", "-sS", "-f", "-L", "-o", "/dev/null", f"{srv.base}/v2/{repo}/blobs/{digest}"]).returncode:
        raise SystemExit(f"GET from {srv.name} failed")
    return size / (time.perf_counter() - t) / 1e9


def run_s3(b: SimpleNamespace, args: Any, work: str) -> None:
    """One run of both registries on one SeaweedFS; prints figures and ratios against the targets."""
    size = args.size_mib << 20
    big = os.path.join(work, "big.bin")
    big_digest = b.make_blob(big, size)
    results: dict[str, dict[str, float]] = {}
    with b.seaweedfs(work, bucket="bench") as s3:
        metrics = s3.ports["metricsPort"]
        for side in ("docker-registry", "ocikit"):
            streamed = start_registry_s3(b, s3, work, False) if side == "docker-registry" \
                else start_ocikit_s3(b, s3, "off")
            redirected = start_registry_s3(b, s3, work, True) if side == "docker-registry" \
                else start_ocikit_s3(b, s3, "presigned")
            r: dict[str, float] = {}
            gb = size / 1e9
            try:
                cpu, weed = streamed.cpu_seconds(), b.cpu_seconds(s3.proc.pid)
                r["push"] = b.bench_push(streamed, [(big, big_digest, size)], "one")
                r["pushcpu"] = (streamed.cpu_seconds() - cpu) / gb
                r["pushweed"] = (b.cpu_seconds(s3.proc.pid) - weed) / gb
                cpu = streamed.cpu_seconds()
                r["get"] = b.bench_get(streamed, "bench/push-one-0", big_digest, size, 1)
                r["getcpu"] = (streamed.cpu_seconds() - cpu) / gb
                r["get_redirect"] = get_following(redirected, "bench/push-one-0", big_digest, size)
                before = s3_requests(metrics, s3.bucket)
                b.push_small_image(streamed, "bench/small")
                r["requests"] = s3_requests(metrics, s3.bucket) - before
                b.bench_manifest(streamed, "bench/small", 1000)  # warm up
                r["p50"], r["p99"], r["rps"] = b.bench_manifest(streamed, "bench/small", args.requests)
                r["rss"] = streamed.peak_rss_mib()
            finally:
                streamed.stop()
                redirected.stop()
            results[side] = r
            print(f"  {side:<16} push {r['push']:.3f} GB/s, GET streamed {r['get']:.3f} GB/s, GET via redirect "
                  f"{r['get_redirect']:.3f} GB/s, manifest p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms "
                  f"({r['rps']:.0f} req/s), {r['requests']:.0f} S3 requests per pushed image, "
                  f"peak RSS {r['rss']:.0f} MiB, CPU s/GB push {r['pushcpu']:.2f} (SeaweedFS {r['pushweed']:.2f}) "
                  f"GET {r['getcpu']:.2f}", flush=True)
    d, o = results["docker-registry"], results["ocikit"]
    rows = [(f"push 1 x {args.size_mib} MiB (GB/s)", "push", ">= 2x"),
            (f"pull {args.size_mib} MiB streamed by the registry (GB/s)", "get", ">= 1.5x"),
            (f"pull {args.size_mib} MiB via presigned redirect (GB/s)", "get_redirect", ""),
            ("manifest GET p50, 64 clients (ms)", "p50", ""),
            ("manifest GET p99, 64 clients (ms)", "p99", ""),
            ("manifest GET throughput (req/s)", "rps", ""),
            ("S3 requests per pushed image (2 blobs + manifest)", "requests", ""),
            ("peak RSS of a replica (MiB)", "rss", "< 150 MiB"),
            ("registry CPU per GB pushed (s)", "pushcpu", ""),
            ("SeaweedFS CPU per GB pushed (s)", "pushweed", ""),
            ("registry CPU per GB streamed out (s)", "getcpu", ""),
            ]
    print(f"\nboth on one SeaweedFS ({s3.endpoint}); ratio = ocikit / docker-registry")
    print(f"{'':<52}{'docker-reg':>11}{'ocikit':>9}{'ratio':>8}  target")
    for label, key, target in rows:
        ratio = o[key] / d[key] if d[key] else float("nan")
        print(f"{label:<52}{d[key]:>11.3f}{o[key]:>9.3f}{ratio:>7.2f}x  {target}")
    # The ceiling of a streamed pull: no registry that streams from the bucket can deliver faster
    # than the bucket delivers the same object straight to the client (a presigned GET is that).
    direct = max(d["get_redirect"], o["get_redirect"])
    ceiling = direct / d["get"] if d["get"] else float("nan")
    print(f"\nceiling of a streamed pull: the bucket's own GET of the blob, {direct:.3f} GB/s, is {ceiling:.2f}x "
          f"docker-registry's streamed pull; ocikit streamed reaches {o['get'] / direct if direct else 0:.2f} of it"
          + ("" if ceiling >= 1.5 else " — the >= 1.5x target is above what this bucket allows"))
    print("\nthroughput on a shared, loaded machine follows the CPU share each process gets (SeaweedFS included);"
          " the CPU per GB rows are the load-independent view")

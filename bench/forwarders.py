"""TCP forwarders the benches measure floors with: a peer's bytes through the least work a server
in the middle must do. Threads of the bench process, on a free 127.0.0.1 port; stop with ``close``.

* :class:`SpliceForwarder`: what comes back is moved with ``splice(2)`` (no byte in user space) —
  the floor of a registry that streams blobs from S3 (its bytes cross loopback twice);
* :class:`CachingForwarder`: what comes back is received into one reused 1 MiB buffer, hashed
  (sha256), written to a file and sent on — the floor of a pull-through cache.
"""

from __future__ import annotations

import abc
import fcntl
import hashlib
import os
import socket
import threading


class Forwarder(abc.ABC):
    """Accepts on a free 127.0.0.1 port and pairs each connection with one to ``host:port``;
    requests go up as they are; :meth:`_answers` moves what comes back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.count = 0
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.lsock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            self.count += 1
            threading.Thread(target=self._pair, args=(client, self.count), daemon=True).start()

    def _pair(self, client: socket.socket, n: int) -> None:
        with client, socket.create_connection(self.target) as up:
            threading.Thread(target=self._requests, args=(client, up), daemon=True).start()
            try:
                self._answers(up, client, n)
            except OSError:
                pass

    @staticmethod
    def _requests(client: socket.socket, up: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                up.sendall(data)
            up.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @abc.abstractmethod
    def _answers(self, up: socket.socket, client: socket.socket, n: int) -> None:
        """Move what ``up`` answers to ``client`` (connection number ``n``)."""


class SpliceForwarder(Forwarder):
    """Answers moved in the kernel: ``up`` → pipe → ``client`` with ``splice(2)``."""

    def _answers(self, up: socket.socket, client: socket.socket, n: int) -> None:
        r, w = os.pipe()
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)
            while (got := os.splice(up.fileno(), w, 1 << 20)) > 0:
                while got:
                    got -= os.splice(r, client.fileno(), got)
        finally:
            os.close(r)
            os.close(w)


class CachingForwarder(Forwarder):
    """Answers received into one buffer, hashed, written to a file under ``spool`` and sent on."""

    def __init__(self, host: str, port: int, spool: str) -> None:
        self.spool = spool
        super().__init__(host, port)

    def _answers(self, up: socket.socket, client: socket.socket, n: int) -> None:
        view = memoryview(bytearray(1 << 20))
        digest = hashlib.sha256()
        fd = os.open(os.path.join(self.spool, str(n)), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            while (got := up.recv_into(view)) > 0:
                digest.update(view[:got])
                os.write(fd, view[:got])
                client.sendall(view[:got])
        finally:
            os.close(fd)

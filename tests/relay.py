"""A TCP relay between Facade and a store (PostgreSQL, Redis) that a test controls.

Faults are injected on the wire, for this instance only: the shared servers stay up for
every other test.

`drop_commit_acks = n` loses the acknowledgement of every n-th PostgreSQL COMMIT (0: none):
the server's `CommandComplete("COMMIT")` is swallowed and both sides are reset, so the
server has committed and the client cannot know it.
"""

from __future__ import annotations

import socket
import struct
import threading

from tests.support import free_port

# PostgreSQL's CommandComplete message for a COMMIT: 'C', int32 length, "COMMIT\0".
COMMIT_COMPLETE = b"C" + struct.pack("!i", 4 + len(b"COMMIT\0")) + b"COMMIT\0"


def reset(sock: socket.socket) -> None:
    """Cut a connection at once (linger 0: a reset, not a graceful close). shutdown() first,
    since the other direction's thread is blocked in recv() on the same socket and a bare
    close() would not release it."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; `stop()` refuses and cuts, `start()` resumes.

    `stall()` is a blackhole as a client sees one: connections are still accepted and what
    is sent is read, but nothing is forwarded either way and nothing is closed, so only the
    client's own timeouts end its waits. `unstall()` forwards again; connections that lived
    through the stall lost bytes, so they are cut (a client must notice and reconnect).
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.drop_commit_acks = 0  # lose every n-th COMMIT acknowledgement (0: none)
        self.commits = 0
        self.dropped_commit_acks = 0
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stalled = threading.Event()

    def stall(self) -> None:
        self._stalled.set()

    def unstall(self) -> None:
        self._stalled.clear()
        self._cut_all()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            # close() alone leaves a socket that a thread is accept()ing on listening
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        self._cut_all()

    def _cut_all(self) -> None:
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._stalled.is_set():
                with self._lock:
                    self._conns.append(client)
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # the timeout was for connecting: idle is fine
            with self._lock:
                self._conns += [client, upstream]
            for a, b, from_server in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(a, b, from_server), daemon=True).start()

    @staticmethod
    def _swallow(conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def _lose_commit_ack(self, data: bytes) -> bool:
        with self._lock:
            if self.drop_commit_acks <= 0 or COMMIT_COMPLETE not in data:
                return False
            self.commits += 1
            if self.commits % self.drop_commit_acks:
                return False
            self.dropped_commit_acks += 1
            return True

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_server and self._lose_commit_ack(data):
                    reset(dst)
                    reset(src)
                    return
                if not self._stalled.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def host_port(url: str) -> tuple[str, int]:
    netloc = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = netloc.partition(":")
    return host, int(port or 0)

"""A minimal Redis client (RESP2) for the response cache's two commands: GET and EVALSHA.

Why not redis-py, which the rest of Facade uses: a cache lookup sits on every request that
may be cached, and redis-py spends about 60 us of CPU per command under gevent (connection
pool, events, retries, observability hooks) against about 13 us for the bytes themselves.
Two commands per miss through redis-py cost a miss 30 % more CPU than no cache at all; this
client keeps it within a few percent (`make bench`). It does only what the cache needs:
pooled sockets, one command at a time per socket, AUTH and SELECT from the URL, TLS for
`rediss://`, a timeout on every socket operation, and pipelines (many commands in one
write). Any failure closes the socket and raises.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit


class RespError(Exception):
    """An error reply from Redis (`-ERR ...`, `-NOSCRIPT ...`)."""


def pack(args: tuple) -> bytes:
    """One command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Connection:
    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("Redis closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                self._fill()
            value, self.buf = self.buf[:size], self.buf[size + 2 :]
            return value
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode("utf-8", "replace"))
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _ in range(count)]
        raise ConnectionError(f"unexpected Redis reply {line[:20]!r}")


class RespClient:
    """Commands over a small pool of sockets; `call` raises on any failure (the socket goes)."""

    def __init__(self, url: str, timeout_s: float, max_idle: int = 256) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.path = parts.path
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        db = parts.path.strip("/") if parts.scheme != "unix" else ""
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        self.db = int(db or query.get("db") or 0)
        self.timeout_s = timeout_s
        self.max_idle = max_idle
        self._idle: list[_Connection] = []

    def _connect(self) -> _Connection:
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "rediss":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        conn = _Connection(sock)
        try:
            if self.password is not None:
                auth = (self.username, self.password) if self.username else (self.password,)
                self._send(conn, ("AUTH", *auth))
            if self.db:
                self._send(conn, ("SELECT", self.db))
        except BaseException:
            sock.close()
            raise
        return conn

    @staticmethod
    def _send(conn: _Connection, args: tuple) -> Any:
        conn.sock.sendall(pack(args))
        return conn.reply()

    def call(self, *args: Any) -> Any:
        conn = self._idle.pop() if self._idle else self._connect()
        try:
            result = self._send(conn, args)
        except RespError:
            self._give_back(conn)  # an error reply leaves the connection in step
            raise
        except BaseException:
            conn.sock.close()
            raise
        self._give_back(conn)
        return result

    def pipeline(self, commands: list[tuple]) -> list[Any]:
        """Send every command at once, then read every reply: an error reply is returned as
        its RespError in place, any other failure raises."""
        conn = self._idle.pop() if self._idle else self._connect()
        replies: list[Any] = []
        try:
            conn.sock.sendall(b"".join(pack(args) for args in commands))
            for _ in commands:
                try:
                    replies.append(conn.reply())
                except RespError as err:
                    replies.append(err)
        except BaseException:
            conn.sock.close()
            raise
        self._give_back(conn)
        return replies

    def _give_back(self, conn: _Connection) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.sock.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().sock.close()

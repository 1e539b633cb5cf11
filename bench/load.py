"""A small HTTP/1.1 load generator on raw gevent sockets (keep-alive, chunked reads).

Python HTTP clients cost more than the servers they would measure; this one sends
pre-built request bytes and parses only what it must, so one process can drive a thousand
concurrent streams. Run in its own process, with gevent patched.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import gevent
from gevent import socket


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    first_chunk: list[float] = field(default_factory=list)
    chunks: int = 0
    errors: int = 0
    completed: int = 0

    def merge(self, other: Result) -> None:
        self.latencies += other.latencies
        self.first_chunk += other.first_chunk
        self.chunks += other.chunks
        self.errors += other.errors
        self.completed += other.completed


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    def __init__(self, addr: tuple[str, int]):
        self.addr = addr
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(self.addr)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buf = b""
        return self.sock

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise ConnectionError("closed")
        self.buf += data

    def request(self, raw: bytes, result: Result) -> None:
        """Send one request; read the whole answer; count chunked pieces as stream chunks."""
        start = time.perf_counter()
        sock = self._connect()
        try:
            sock.sendall(raw)
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            if b"transfer-encoding: chunked" in lower:
                first = True
                while True:
                    while b"\r\n" not in self.buf:
                        self._fill()
                    size_line, _, self.buf = self.buf.partition(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    while len(self.buf) < size + 2:
                        self._fill()
                    piece, self.buf = self.buf[:size], self.buf[size + 2 :]
                    if size == 0:
                        break
                    if first:
                        result.first_chunk.append(time.perf_counter() - start)
                        first = False
                    result.chunks += piece.count(b"data: ")
            else:
                idx = lower.find(b"content-length:")
                length = int(lower[idx + 15 :].split(b"\r\n", 1)[0])
                while len(self.buf) < length:
                    self._fill()
                self.buf = self.buf[length:]
            if b"connection: close" in lower:
                self.close()
            if status != 200:
                result.errors += 1
                return
            result.latencies.append(time.perf_counter() - start)
            result.completed += 1
        except (OSError, ConnectionError, ValueError):
            result.errors += 1
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def run_for(
    addr: tuple[str, int],
    raw: bytes | Iterator[bytes],
    concurrency: int,
    seconds: float,
    requests: int = 0,
    stagger_s: float = 0.0,
) -> Result:
    """Keep `concurrency` connections busy for `seconds` (or `requests` each, if given).

    `stagger_s` spreads the connections' first requests over that time, as independent
    clients arrive; without it, long streams start and restart in lockstep bursts. `raw` may
    be an iterator: each request then takes the next bytes from it (bodies that differ).
    """
    total = Result()
    deadline = time.perf_counter() + seconds + stagger_s

    def worker(i: int) -> None:
        gevent.sleep(stagger_s * i / concurrency)
        conn = Connection(addr)
        mine = Result()
        n = 0
        while (requests and n < requests) or (not requests and time.perf_counter() < deadline):
            conn.request(raw if isinstance(raw, bytes) else next(raw), mine)
            n += 1
        conn.close()
        total.merge(mine)

    gevent.joinall([gevent.spawn(worker, i) for i in range(concurrency)])
    return total


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

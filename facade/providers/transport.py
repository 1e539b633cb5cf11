"""A lean HTTP/1.1 transport for `requests`: a `BaseAdapter` of our own, mounted on the Session.

`requests` stays the upstream client (its Session, PreparedRequest and Response, its
exceptions); only the wire under it changes. urllib3 + http.client + the email header parser
cost about a third of a worker's CPU per proxied call (a `poll` before each pooled
connection is reused, an email.message per answer, several layers of buffering). Upstreams
are a handful of known hosts answering JSON or SSE over HTTP/1.1, which needs much less:

- a LIFO pool of keep-alive sockets per (scheme, host, port), checked for a peer close with
  one non-blocking peek instead of a poll through the event loop;
- the request written with one `sendall`;
- the status line and headers parsed from one buffer; the body read by Content-Length,
  chunked framing or until close, with gzip/deflate decoded when an upstream sends them;
- a socket returned to the pool only once its answer was read to the end.

Timeouts are `(connect, read)` as with requests: the read timeout bounds every wait for bytes.
Failures raise requests' own exceptions before the answer starts (ConnectTimeout,
ReadTimeout, ConnectionError) and `TimeoutError` / `ConnectionError` while the body is read.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from ipaddress import ip_address
from urllib.parse import SplitResult, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

MAX_HEAD = 64 * 1024  # status line and headers
DNS_TTL_S = 30.0  # how long a host's addresses are reused for new connections
READ_SIZE = 65536
_Origin = tuple[str, str, int]


class _Pool:
    """Idle keep-alive sockets per origin, newest first (the warmest connection is reused)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._idle: dict[_Origin, list[socket.socket]] = {}
        self._lock = threading.Lock()

    def get(self, origin: _Origin) -> socket.socket | None:
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                sock = idle.pop()
                if _open(sock):
                    return sock
                sock.close()
        return None

    def put(self, origin: _Origin, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.maxsize:
                idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                sock.close()


def _open(sock: socket.socket) -> bool:
    """False when the peer closed an idle connection (or sent bytes nobody asked for).

    One non-blocking peek on the TCP socket under gevent's wrapper (and under TLS): nothing
    to read means the connection is still open.
    """
    raw = getattr(sock, "_sock", sock)  # gevent keeps its real socket non-blocking already
    timeout = raw.gettimeout()
    if timeout != 0.0:  # a plain socket with a timeout would wait for the peek
        raw.settimeout(0.0)
    try:
        raw.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        if timeout != 0.0:
            raw.settimeout(timeout)
    return False  # end of stream, or stray bytes: either way not a clean connection


class LeanAdapter(BaseAdapter):
    """HTTP/1.1 with keep-alive for a Session whose calls need no proxy, redirect or cookie."""

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self._pool = _Pool(pool_size)
        self._tls: ssl.SSLContext | None = None
        self._addresses: dict[tuple[str, int], tuple[float, list]] = {}

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
        verify: bool | str = True,
        cert: object = None,
        proxies: object = None,
    ) -> requests.Response:
        connect_s, read_s = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        parts = urlsplit(request.url)
        scheme = parts.scheme
        origin = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        head = _request_head(request, parts)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        sock = self._pool.get(origin)
        reused = sock is not None
        if sock is None:
            sock = self._connect(origin, connect_s, request)
        try:
            sock.settimeout(read_s)
            sock.sendall(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                sock.sendall(body)
            reader = _Reader(sock)
            status, reason, headers = reader.head()
        except TimeoutError as err:
            sock.close()
            raise requests.exceptions.ReadTimeout(str(err), request=request) from None
        except OSError as err:
            sock.close()
            what = "a reused connection was closed" if reused else "the connection failed"
            raise requests.exceptions.ConnectionError(what, request=request) from err
        except BaseException:  # a hang-up or a kill thrown in while waiting: drop the call
            sock.close()
            raise
        response = requests.Response()
        response.status_code = status
        response.reason = reason
        response.headers = headers
        response.url = request.url
        response.request = request
        response.connection = self
        response.encoding = None
        response.raw = _Body(reader, headers, request.method == "HEAD", self._pool, origin)
        if not stream:
            response.content  # noqa: B018 - read it whole now, as requests does without stream
        return response

    def _connect(
        self, origin: _Origin, connect_s: float | None, request: requests.PreparedRequest
    ) -> socket.socket:
        scheme, host, port = origin
        try:
            sock = self._dial(host, port, connect_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            raise requests.exceptions.ConnectTimeout("connect timed out", request=request) from None
        except OSError as err:
            raise requests.exceptions.ConnectionError("connect failed", request=request) from err
        return sock

    def _dial(self, host: str, port: int, connect_s: float | None) -> socket.socket:
        """Connect to the first address that answers. Lookups are cached for DNS_TTL_S: under
        gevent each one is a hand-off to a thread, and a burst of new streams would queue
        behind the resolver's few threads. An IP literal needs no lookup at all."""
        addresses = self._addresses.get((host, port))
        now = time.monotonic()
        if addresses is None or addresses[0] < now:
            if _is_ip(host):
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                addresses = (float("inf"), [(family, (host, port))])
            else:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                addresses = (now + DNS_TTL_S, [(info[0], info[4]) for info in infos])
            self._addresses[(host, port)] = addresses
        last: OSError | None = None
        for family, address in addresses[1]:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(connect_s)
            try:
                sock.connect(address)
                return sock
            except OSError as err:
                sock.close()
                last = err
        raise last or OSError(f"no address for {host}")

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import certifi  # requests' own CA bundle, so TLS trust is what requests would use

            self._tls = ssl.create_default_context(cafile=certifi.where())
        return self._tls

    def close(self) -> None:
        self._pool.close()


def _request_head(request: requests.PreparedRequest, parts: SplitResult) -> bytes:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if request.body is not None and "Content-Length" not in request.headers:
        lines.append(f"Content-Length: {len(request.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Reader:
    """Buffered reads from one socket: the answer's head, then its body."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def fill(self) -> bytes:
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise ConnectionError("the upstream closed the connection")
        return data

    def head(self) -> tuple[int, str, CaseInsensitiveDict]:
        while True:
            while (end := self.buf.find(b"\r\n\r\n")) < 0:
                if len(self.buf) > MAX_HEAD:
                    raise ConnectionError("the upstream's headers are too large")
                self.buf += self.fill()
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            self.buf = self.buf[end + 4 :]
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/") or not code.isdigit():
                raise ConnectionError("the upstream did not answer HTTP")
            if code != "100":  # an interim 100 Continue precedes the real answer
                break
        headers = CaseInsensitiveDict()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ConnectionError("the upstream sent a malformed header")
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return int(code), reason, headers

    def take(self, n: int) -> bytes:
        """Up to `n` bytes: what is buffered, else one read."""
        if not self.buf:
            self.buf = self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise ConnectionError("the upstream sent a malformed chunk")
            self.buf += self.fill()
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line


class _Body:
    """`Response.raw`: the answer's body, decoded of its framing as it is read.

    `stream()` yields pieces as they arrive (what `Response.iter_content` and `.content`
    read); `close()` drops a connection whose body was not read to its end.
    """

    def __init__(
        self,
        reader: _Reader,
        headers: CaseInsensitiveDict,
        no_body: bool,
        pool: _Pool,
        origin: _Origin,
    ) -> None:
        self._reader = reader
        self._pool = pool
        self._origin = origin
        self._keep = "close" not in headers.get("Connection", "").lower()
        self.chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        self._left = 0 if no_body else (int(length) if length and length.isdigit() else None)
        if self._left is None and not self.chunked:
            self._keep = False  # read until the upstream closes
        encoding = headers.get("Content-Encoding", "").lower()
        self._decoder = (
            zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            if encoding in ("gzip", "deflate")
            else None
        )
        self._done = False
        self._closed = False

    def _pieces(self) -> Iterator[bytes]:
        reader = self._reader
        if self.chunked:
            while True:
                size = int(reader.line().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while reader.line():  # trailers, then the blank line
                        pass
                    return
                while size:
                    piece = reader.take(size)
                    size -= len(piece)
                    yield piece
                if reader.line():
                    raise ConnectionError("the upstream sent a malformed chunk")
        elif self._left is not None:
            while self._left:
                piece = reader.take(self._left)
                self._left -= len(piece)
                yield piece
        else:
            if reader.buf:
                yield reader.buf
                reader.buf = b""
            while data := reader.sock.recv(READ_SIZE):
                yield data

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        if self._done or self._closed:
            return
        decoder = self._decoder
        try:
            for piece in self._pieces():
                if decoder is not None:
                    piece = decoder.decompress(piece)
                if piece:
                    yield piece
            if decoder is not None and (tail := decoder.flush()):
                yield tail
        except BaseException:
            self.close()
            raise
        self._done = True
        self._release()

    def read(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        """The body, or its first `amt` bytes (the rest is not read: the socket is dropped)."""
        out = bytearray()
        for piece in self.stream():
            out += piece
            if amt is not None and len(out) >= amt:
                self.close()
                return bytes(out[:amt])
        return bytes(out)

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._keep and not self._reader.buf:
            self._pool.put(self._origin, self._reader.sock)
        else:
            self._reader.sock.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.sock.close()

    def release_conn(self) -> None:
        """Called by `Response.close()`: an unfinished body cannot be reused."""
        if not self._done:
            self.close()


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True

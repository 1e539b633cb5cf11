"""The lean transport under requests, against a raw socket server that answers byte for byte
what each test scripts: framing, reuse of kept-alive connections, stale ones, and timeouts."""

from __future__ import annotations

import gzip
import socket
import threading
import time

import pytest
import requests

from facade.providers.transport import LeanAdapter


class ScriptedServer:
    """Accepts connections on loopback; for each request read, sends the next scripted answer."""

    def __init__(self, answers: list, close_after_each: bool = False) -> None:
        self.answers = list(answers)
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            pass  # the client went away mid-answer: some tests do that on purpose
        finally:
            conn.close()

    def _answer(self, conn: socket.socket) -> None:
        buf = b""
        while self.answers:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(buf) < length:
                buf += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buf[:length])
            buf = buf[length:]
            answer = self.answers.pop(0)
            if answer is None:  # hold the connection open, answering nothing
                conn.recv(1)
                return
            for piece in answer if isinstance(answer, list) else [answer]:
                conn.sendall(piece)
            if self.close_after_each:
                return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def session():
    s = requests.Session()
    s.trust_env = False
    s.mount("http://", LeanAdapter(4))
    yield s
    s.close()


def ok(body: bytes, *headers: str) -> bytes:
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_content_length_answers_reuse_one_connection(session):
    server = ScriptedServer([ok(b'{"a":1}'), ok(b'{"b":2}')])
    first = session.post(server.url + "/v1/x", data=b'{"q":1}', timeout=(2, 2))
    second = session.post(server.url + "/v1/x", data=b'{"q":2}', timeout=(2, 2))
    assert (first.json(), second.json()) == ({"a": 1}, {"b": 2})
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert server.requests[1].endswith(b'{"q":2}')
    server.close()


def test_chunked_framing_split_at_awkward_places_streams_piece_by_piece(session):
    body = b"data: one\n\ndata: two\n\n"
    framed = b"a\r\n" + body[:10] + b"\r\n" + f"{len(body) - 10:x}".encode() + b"\r\n"
    framed += body[10:] + b"\r\n0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = [head + framed[:2], framed[2:5], framed[5:17], framed[17:]]
    server = ScriptedServer([pieces, ok(b"again")])
    resp = session.post(server.url, data=b"{}", timeout=(2, 2), stream=True)
    assert b"".join(resp.raw.stream()) == body
    assert session.post(server.url, data=b"{}", timeout=(2, 2)).content == b"again"
    assert server.connections == 1  # read to its end, so the connection was reused
    server.close()


def test_an_unfinished_body_is_never_reused(session):
    big = b"x" * 100_000
    server = ScriptedServer([ok(big), ok(b"fresh")])
    resp = session.post(server.url, data=b"{}", timeout=(2, 2), stream=True)
    assert resp.raw.read(10) == b"x" * 10
    resp.close()
    assert session.post(server.url, data=b"{}", timeout=(2, 2)).content == b"fresh"
    assert server.connections == 2
    server.close()


def test_a_connection_the_upstream_closed_while_idle_is_not_used(session):
    server = ScriptedServer([ok(b"one"), ok(b"two")], close_after_each=True)
    assert session.post(server.url, data=b"{}", timeout=(2, 2)).content == b"one"
    # the server closed after answering; the next call must open a fresh connection

    time.sleep(0.1)
    assert session.post(server.url, data=b"{}", timeout=(2, 2)).content == b"two"
    assert server.connections == 2
    server.close()


def test_body_until_close_and_gzip_are_decoded(session):
    raw = gzip.compress(b'{"zipped":true}')
    until_close = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n" + raw
    server = ScriptedServer([until_close], close_after_each=True)
    assert session.post(server.url, data=b"{}", timeout=(2, 2)).json() == {"zipped": True}
    server.close()


def test_interim_100_continue_is_skipped_and_headers_are_case_insensitive(session):
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"{}", "X-Thing: a", "x-thing: b")
    server = ScriptedServer([answer])
    resp = session.post(server.url, data=b"{}", timeout=(2, 2))
    assert resp.status_code == 200 and resp.headers["X-THING"] == "a, b"
    server.close()


def test_garbage_instead_of_http_is_a_connection_error(session):
    server = ScriptedServer([b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(requests.ConnectionError):
        session.post(server.url, data=b"{}", timeout=(2, 2))
    server.close()


def test_silence_is_a_read_timeout_and_a_closed_port_a_connection_error(session):
    server = ScriptedServer([None])  # reads the request, answers nothing
    with pytest.raises(requests.ReadTimeout):
        session.post(server.url, data=b"{}", timeout=(2, 0.3))
    server.close()
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(requests.ConnectionError):
        session.post(f"http://127.0.0.1:{port}", data=b"{}", timeout=(1, 1))


def test_a_body_cut_short_raises_while_it_is_read(session):
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    server = ScriptedServer([cut], close_after_each=True)
    resp = session.post(server.url, data=b"{}", timeout=(2, 2), stream=True)
    with pytest.raises(ConnectionError):
        b"".join(resp.raw.stream())
    server.close()

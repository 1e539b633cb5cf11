"""A live fake upstream that speaks the vendors' protocols on 127.0.0.1, and misbehaves on demand.

Run as a process (`python -m tests.fakes.upstream --port 0`, prints `PORT <n>`), served by
gevent's WSGI server so it holds thousands of slow streams. It records every request it
receives and every stream a client abandoned (`GET /_fake/requests`, `GET /_fake/events`,
`POST /_fake/reset`).

Misbehaviour is asked for with directives, either in the last user message
(`[[fake status=500 slow=2]]`) or in the upstream model id (`m+status=500`), so that one
prompt can fail on one target and succeed on another:

    status=N       answer with HTTP N and the vendor's error body (retry_after=S adds Retry-After)
    slow=S         wait S seconds before answering (before the headers)
    ttft=S         streams: wait S seconds after the headers, before the first chunk
    drip=S         streams: wait S seconds between chunks
    tokens=N       answer with N tokens ("tok0 tok1 ...", one token per chunk)
    badjson        answer 200 with a body that is not JSON
    cut=N          streams: stop after N chunks without the terminator (connection closed)
    midstream=N    streams: after N chunks, send the vendor's in-stream error event
    split          streams: write the SSE bytes in awkward pieces (inside CRLF, inside UTF-8)
    crlf           streams: end lines with CRLF
    unicode        answer text with multi-byte characters and U+2028
    nousage        streams: never send usage
    tool=NAME      answer with one call to NAME, arguments {"city": "Paris"} (not after a
                   tool result: the last message being a tool result spends the directives)
    reasoning=N    usage: N of the output tokens were reasoning (OpenAI: part of
                   completion_tokens; Gemini: thoughtsTokenCount, beside candidatesTokenCount)
    cached=N       usage: N more prompt tokens, read from the prompt cache (each vendor's field)
    cachewrite=N   usage (anthropic): N more prompt tokens, written to the prompt cache
    bill4          usage: bill like an upstream that charges one input token per 4 bytes of
                   the body it received and the whole output cap times the answers asked
                   for (1,000,000 when no cap was sent: what an uncapped model may write)
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from urllib.parse import parse_qs

_DIRECTIVE = re.compile(r"\[\[fake([^\]]*)\]\]")
UNCAPPED = 1_000_000
UNICODE_TOKENS = ["héllo", "wörld", "日本語", "emoji😀", "line\u2028sep", "end"]


def parse_directives(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for group in _DIRECTIVE.findall(text or ""):
        for item in group.split():
            key, _, value = item.partition("=")
            out[key] = value or "1"
    return out


def model_directives(model: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (model or "").split("+")[1:]:
        key, _, value = item.partition("=")
        out[key] = value or "1"
    return out


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def count_prompt_words(texts: list[str]) -> int:
    return sum(len(t.split()) for t in texts)


class Plan:
    """What to answer, from the directives: the protocols render it in their own format."""

    def __init__(self, directives: dict[str, str], prompt_tokens: int):
        self.d = directives
        self.prompt_tokens = prompt_tokens
        n = int(directives.get("tokens", "5"))
        self.tokens = (
            (UNICODE_TOKENS * 10)[:n] if "unicode" in directives else [f"tok{i}" for i in range(n)]
        )

    def f(self, name: str, default: float = 0.0) -> float:
        return float(self.d.get(name, default))

    def has(self, name: str) -> bool:
        return name in self.d

    def count(self, name: str) -> int:
        return int(self.d.get(name, 0))

    def billed(self, record: dict, cap: int | None, n: int | None, default: tuple) -> tuple:
        """(input, output) tokens to report: `default`, or with `bill4` the body's size."""
        if not self.has("bill4"):
            return default
        return math.ceil(record["size"] / 4), (n or 1) * (cap or UNCAPPED)

    def piece(self, i: int) -> str:
        return self.tokens[i] + (" " if i < len(self.tokens) - 1 else "")

    @property
    def text(self) -> str:
        return "".join(self.piece(i) for i in range(len(self.tokens)))


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.events: list[dict] = []

    # -- WSGI ---------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path.startswith("/_fake/"):
            return self._control(method, path, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = {
            "_socket": environ.get("fake.socket"),
            "method": method,
            "path": path,
            "query": parse_qs(environ.get("QUERY_STRING", "")),
            "headers": headers,
            "body": body,
            "size": len(raw),
            "t": time.time(),
        }
        self.requests.append({k: v for k, v in record.items() if k != "_socket"})
        from . import protocols

        handler = protocols.route(method, path)
        if handler is None:
            return self._json(start_response, 404, {"error": {"message": f"no route {path}"}})
        return handler(self, record, start_response)

    def _control(self, method, path, start_response):
        if path == "/_fake/requests":
            return self._json(start_response, 200, self.requests)
        if path == "/_fake/events":
            return self._json(start_response, 200, self.events)
        if path == "/_fake/reset" and method == "POST":
            self.requests.clear()
            self.events.clear()
            return self._json(start_response, 200, {"ok": True})
        return self._json(start_response, 404, {"error": "unknown control path"})

    @staticmethod
    def _json(start_response, status: int, payload, headers=()) -> list[bytes]:
        data = json.dumps(payload).encode()
        start_response(
            f"{status} X",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
        )
        return [data]

    def stream(self, start_response, record: dict, plan: Plan, events):
        """Write SSE events (bytes) with the plan's pacing and faults; notice abandonment."""
        start_response(
            "200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")]
        )
        return self._paced(record, plan, events)

    def _paced(self, record: dict, plan: Plan, events):
        import gevent

        rid = record["headers"].get("x-request-id")
        sock = record.pop("_socket", None)
        completed = False
        try:
            if plan.f("ttft"):
                _wait_or_hangup(sock, plan.f("ttft"))
            for i, event in enumerate(events):
                if i and plan.f("drip"):
                    _wait_or_hangup(sock, plan.f("drip"))
                if plan.has("crlf"):
                    event = event.replace(b"\n", b"\r\n")
                if plan.has("split"):
                    for piece in awkward_pieces(event):
                        yield piece
                        gevent.sleep(0.001)
                else:
                    yield event
            completed = True
        except ClientGone:
            pass
        finally:
            if not completed:
                self.events.append({"type": "closed", "request_id": rid, "t": time.time()})


class ClientGone(Exception):
    pass


def _wait_or_hangup(sock, seconds: float) -> None:
    """Sleep, but notice at once when the client (the facade) closes the connection."""
    import gevent
    from gevent import select

    if sock is None:
        gevent.sleep(seconds)
        return
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if readable:
            import socket

            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    raise ClientGone()
            except OSError:
                raise ClientGone() from None
            gevent.sleep(min(left, 0.01))  # data pending (a pipelined request): just wait


def awkward_pieces(data: bytes) -> list[bytes]:
    """Cut inside CRLF and inside multi-byte UTF-8 characters, and into single bytes."""
    cuts = set()
    for i in range(1, len(data)):
        if data[i - 1 : i] == b"\r" or data[i] >= 0x80 or i % 7 == 0:
            cuts.add(i)
    pieces, start = [], 0
    for cut in sorted(cuts):
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return [p for p in pieces if p]


def main(argv: list[str] | None = None) -> None:
    from gevent import monkey

    monkey.patch_all()
    import socket

    from gevent.pywsgi import WSGIHandler, WSGIServer

    class Handler(WSGIHandler):
        def handle(self):
            # pywsgi writes headers and body apart: without NODELAY, Nagle and delayed ACKs
            # add 40 ms to every answer.
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return super().handle()

        def get_environ(self):
            env = super().get_environ()
            env["fake.socket"] = self.socket
            return env

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = WSGIServer(
        ("127.0.0.1", args.port), FakeUpstream(), log=None, error_log=None, handler_class=Handler
    )
    server.init_socket()
    print(f"PORT {server.address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()

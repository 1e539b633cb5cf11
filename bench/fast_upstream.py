"""A fast OpenAI-compatible upstream for the benchmark: raw gevent sockets, canned answers.

It must cost far less than the facade so the facade's own cost shows. A body containing
`"stream":true` gets SSE chunks (chunked encoding); `X-Bench-Chunks` and `X-Bench-Delay-Ms`
are not sent by the facade, so the shape comes from the model name: `bench-<chunks>-<delay_ms>`.
"""

from __future__ import annotations

import re
import sys

from gevent import monkey

monkey.patch_all()  # before any stdlib import, so sockets are cooperative

import socket  # noqa: E402 - after the monkey patch above

import gevent  # noqa: E402 - after the monkey patch above
from gevent.server import StreamServer  # noqa: E402 - after the monkey patch above

COMPLETION = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,'
    b'"model":"bench","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello from the bench upstream, a short and steady answer."},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":12,'
    b'"total_tokens":24}}'
)
CHUNK = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"bench","choices":[{"index":0,"delta":{"content":"tok "},"finish_reason":null}]}'
    b"\n\n"
)
USAGE = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"bench","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":%d,'
    b'"total_tokens":%d}}\n\ndata: [DONE]\n\n'
)
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
SHAPE = re.compile(rb'"model":\s*"bench-(\d+)-(\d+)"')


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def handle(sock, _addr) -> None:
    # Headers and the first chunk go out apart: without NODELAY, Nagle holds the chunk for
    # the client's delayed ACK and adds up to 40 ms to every first chunk.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    return
                rest += data
            body, buf = rest[:length], rest[length:]
            if b'"stream":true' in body or b'"stream": true' in body:
                stream(sock, body)
            else:
                match = SHAPE.search(body)  # bench-0-D: answer after D ms
                if match and int(match.group(2)):
                    gevent.sleep(int(match.group(2)) / 1000)
                sock.sendall(JSON_HEAD % len(COMPLETION) + COMPLETION)
    except OSError:
        return
    finally:
        sock.close()


def stream(sock, body: bytes) -> None:
    match = SHAPE.search(body)
    chunks, delay_ms = (int(match.group(1)), int(match.group(2))) if match else (20, 0)
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for i in range(chunks):
        if delay_ms and i:  # the first chunk at once: what is measured is the gateway's part
            gevent.sleep(delay_ms / 1000)
        sock.sendall(_chunked(CHUNK))
    sock.sendall(_chunked(USAGE % (chunks, chunks + 12)) + b"0\r\n\r\n")


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = StreamServer(("127.0.0.1", port), handle, backlog=4096)
    server.init_socket()
    print(f"PORT {server.address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""A misbehaving client, run as its own process: one keep-alive connection that pipelines
requests (`pipeline`) or sends large POST bodies back to back (`bodies`) as fast as it can.

`python -m tests.flood URL MODE [--count N] [--key KEY] [--body-bytes B] [--messages M]` prints
`SENT <n> ANSWERED <m>` when done. It writes from one thread and reads (and discards) the
answers from another, so the server is never held up by a slow reader.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
from urllib.parse import urlsplit


def pipelined_healthz(host: str) -> bytes:
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def large_post(host: str, key: str | None, body_bytes: int, count: int = 2000) -> bytes:
    """A chat request of about `body_bytes` in `count` messages (by default 2,000, under the
    default bound of 2,048): the costly kind to validate."""
    filler = "x" * max(1, body_bytes // count - 32)
    messages = [{"role": "user", "content": filler}] * count
    body = json.dumps(
        {"model": "sim-model", "messages": messages, "max_tokens": 1}, separators=(",", ":")
    ).encode()
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def count_answers(sock: socket.socket, done: threading.Event, answered: list[int]) -> None:
    tail = b""
    while True:
        try:
            data = sock.recv(1 << 16)
        except OSError:
            break
        if not data:
            break
        chunk = tail + data
        answered[0] += chunk.count(b"HTTP/1.1 ")
        tail = chunk[-8:]
    done.set()


def flood(url: str, mode: str, count: int, key: str | None, body_bytes: int, messages: int):
    parts = urlsplit(url)
    host = parts.netloc
    if mode == "pipeline":
        request = pipelined_healthz(host)
    else:
        request = large_post(host, key, body_bytes, messages)
    sock = socket.create_connection((parts.hostname, parts.port))
    done, answered = threading.Event(), [0]
    reader = threading.Thread(target=count_answers, args=(sock, done, answered), daemon=True)
    reader.start()
    sent = 0
    batch = max(1, (1 << 16) // len(request))
    try:
        while sent < count:
            n = min(batch, count - sent)
            sock.sendall(request * n)
            sent += n
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    done.wait(300)
    sock.close()
    return sent, answered[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("mode", choices=("pipeline", "bodies"))
    parser.add_argument("--count", type=int, default=30_000)
    parser.add_argument("--key", default=None)
    parser.add_argument("--body-bytes", type=int, default=500_000)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    sent, answered = flood(
        args.url, args.mode, args.count, args.key, args.body_bytes, args.messages
    )
    print(f"SENT {sent} ANSWERED {answered}", flush=True)


if __name__ == "__main__":
    main()

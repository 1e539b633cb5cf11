"""End to end: gunicorn with gevent workers as a process, the fake upstream as another."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import TEAM_KEY, UPSTREAM_SECRET, base_config, start_gunicorn

AUTH = {"Authorization": f"Bearer {TEAM_KEY}"}


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(
        tmp_path_factory.mktemp("gunicorn"),
        base_config(fake_upstream.url),
        workers=2,
        env={"FACADE_SSE_KEEPALIVE_S": "0.3"},
    )
    yield srv
    assert srv.stop() == 0
    assert UPSTREAM_SECRET not in srv.log() and TEAM_KEY not in srv.log()


@pytest.fixture
def http():
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def chat(text: str, **fields) -> dict:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": text}], **fields}


def read_events(resp) -> list:
    """Parse SSE by bytes (not iter_lines(decode_unicode=True), which splits on U+2028)."""
    out = []
    for block in resp.content.split(b"\n\n")[:-1]:
        data = block.removeprefix(b"data: ")
        out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


def test_completion(server, http, fake):
    resp = http.post(
        f"{server.url}/api/v1/chat/completions", json=chat("hi [[fake tokens=3]]"), headers=AUTH
    )
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["choices"][0]["message"]["content"] == "tok0 tok1 tok2"
    assert data["metrics"]["output_tokens"] == 3
    assert resp.headers["X-Request-ID"]


def test_stream(server, http):
    body = chat(
        "[[fake tokens=4 drip=0.01 split]]", stream=True, stream_options={"include_usage": True}
    )
    resp = http.post(f"{server.url}/api/v1/chat/completions", json=body, headers=AUTH, stream=True)
    assert resp.headers["Content-Type"] == "text/event-stream"
    evs = read_events(resp)
    assert evs[-1] == "[DONE]"
    assert evs[-2]["data"]["metrics"]["output_tokens"] == 4


def test_200_concurrent_streams_all_complete(server):
    def one(i: int) -> str:
        with requests.Session() as s:
            s.trust_env = False
            body = chat(f"n{i} [[fake tokens=8 drip=0.05]]", stream=True)
            resp = s.post(
                f"{server.url}/api/v1/chat/completions", json=body, headers=AUTH, timeout=30
            )
            evs = read_events(resp)
            assert evs[-1] == "[DONE]", evs[-2:]
            return "".join(
                e["data"]["choices"][0]["delta"].get("content", "")
                for e in evs[:-1]
                if e["data"]["choices"]
            )

    with ThreadPoolExecutor(200) as pool:
        texts = list(pool.map(one, range(200)))
    assert texts == ["tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7"] * 200


def test_slow_first_token_gets_keep_alive_comments(server, http):
    body = chat("[[fake tokens=2 ttft=1.6]]", stream=True)
    resp = http.post(f"{server.url}/api/v1/chat/completions", json=body, headers=AUTH)
    assert resp.status_code == 200
    blocks = resp.content.split(b"\n\n")[:-1]
    comments = [b for b in blocks if b.startswith(b":")]
    assert len(comments) >= 3, blocks[:5]
    assert all(b == b": keep-alive" for b in comments)
    data = [b for b in blocks if not b.startswith(b":")]
    assert data[-1] == b"data: [DONE]"
    text = "".join(
        json.loads(b[6:])["data"]["choices"][0]["delta"].get("content", "")
        for b in data[:-1]
        if json.loads(b[6:])["data"]["choices"]
    )
    assert text == "tok0 tok1"


def test_upstream_failing_after_keep_alive_is_an_error_event(server, http):
    body = chat("[[fake tokens=2 ttft=0.8 cut=0]]", stream=True)
    resp = http.post(f"{server.url}/api/v1/chat/completions", json=body, headers=AUTH)
    assert resp.status_code == 200
    data = [b for b in resp.content.split(b"\n\n")[:-1] if not b.startswith(b":")]
    assert data[-1] == b"data: [DONE]"
    assert json.loads(data[-2][6:])["code"] == "502"


def _open_raw_stream(server, text: str, rid: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps(chat(text, stream=True)).encode()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {TEAM_KEY}\r\nX-Request-ID: {rid}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def _wait_closed_event(fake, rid: str, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if any(e["request_id"] == rid for e in fake.events()):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"the upstream never saw request {rid} closed")


def test_hang_up_mid_stream_closes_upstream_within_a_second(server, fake):
    sock = _open_raw_stream(server, "[[fake tokens=200 drip=0.5]]", "hangup-1")
    with sock:
        received = b""
        while b"data: " not in received:
            chunk = sock.recv(65536)
            assert chunk, "the server closed the stream"
            received += chunk
    closed_at = time.monotonic()
    assert _wait_closed_event(fake, "hangup-1", within=1.0) - closed_at < 1.0


def test_hang_up_while_waiting_for_first_token_closes_upstream(server, fake):
    sock = _open_raw_stream(server, "[[fake tokens=3 ttft=20]]", "hangup-2")
    deadline = time.monotonic() + 5
    while not fake.requests("hangup-2") and time.monotonic() < deadline:
        time.sleep(0.02)
    sock.close()
    assert fake.requests("hangup-2"), "the request never reached the upstream"
    _wait_closed_event(fake, "hangup-2", within=1.0)


@pytest.mark.parametrize(
    ("kwargs", "status", "etype"),
    [
        (
            dict(data=b"{oops", headers={"Content-Type": "application/json"}),
            400,
            "invalid_request_error",
        ),
        (
            dict(data=b"hello", headers={"Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
        ),
        (dict(json=chat("x", temperature="hot")), 400, "invalid_request_error"),
        (dict(json=chat("x", unknown_field=1)), 400, "invalid_request_error"),
        (dict(json=chat("x", model="ghost")), 404, "model_not_found"),
        (dict(json=chat("x" * 100_000)), 413, "request_too_large"),
        (
            dict(
                data=(b"x" * 200_000 for _ in range(1)),
                headers={"Content-Type": "application/json"},
            ),
            413,
            "request_too_large",
        ),
        (
            dict(json=chat("x"), headers={"Authorization": "Bearer wrong"}),
            401,
            "authentication_error",
        ),
        (
            dict(
                json=chat("x", model="secret-model"),
                headers={"Authorization": "Bearer sk-other-SECRET-9e2c"},
            ),
            403,
            "permission_error",
        ),
        (
            dict(
                data=rb'{"messages": [{"role": "user", "content": "\ud800"}]}',
                headers={"Content-Type": "application/json"},
            ),
            400,
            "invalid_request_error",
        ),
    ],
)
def test_bad_inputs_answered_in_the_envelope_and_never_forwarded(
    server, http, fake, kwargs, status, etype
):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    resp = http.post(f"{server.url}/api/v1/chat/completions", headers=headers, timeout=10, **kwargs)
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["success"] is False and body["code"] == str(status)
    assert body["data"]["error"]["type"] == etype
    assert body["data"]["request_id"] == resp.headers["X-Request-ID"]
    assert fake.requests() == []


def test_invalid_utf8_body_is_a_400(server, http, fake):
    raw = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    resp = http.post(
        f"{server.url}/api/v1/chat/completions",
        data=raw,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status_code == 400 and fake.requests() == []


def test_health_and_spec(server, http):
    assert http.get(f"{server.url}/healthz").json()["data"]["status"] == "ok"
    assert http.get(f"{server.url}/readyz").status_code == 200
    spec = http.get(f"{server.url}/openapi.json").json()
    assert "/api/v1/chat/completions" in spec["paths"]
    assert http.get(f"{server.url}/docs").status_code == 200

"""Graceful drain: SIGTERM under 50 live streams, through gunicorn with gevent workers."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import threading
import time

import requests

from tests.support import TEAM_KEY, base_config, start_gunicorn

AUTH = {"Authorization": f"Bearer {TEAM_KEY}"}


def open_streams(server, count: int, directive: str) -> tuple[list, list[threading.Thread]]:
    results: list = [None] * count
    started = threading.Barrier(count + 1)

    def one(i: int) -> None:
        body = {
            "model": "gpt-test",
            "stream": True,
            "messages": [{"role": "user", "content": f"s{i} [[fake {directive}]]"}],
        }
        with requests.Session() as s:
            s.trust_env = False
            resp = s.post(
                f"{server.url}/api/v1/chat/completions",
                json=body,
                headers=AUTH,
                stream=True,
                timeout=30,
            )
            chunks = resp.iter_content(chunk_size=None)
            first = next(chunks)
            started.wait()
            results[i] = first + b"".join(chunks)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    started.wait(timeout=20)
    return results, threads


def events(raw: bytes) -> list:
    blocks = [b for b in raw.split(b"\n\n")[:-1] if not b.startswith(b":")]
    return ["[DONE]" if b == b"data: [DONE]" else json.loads(b[6:]) for b in blocks]


def text_of(evs: list) -> str:
    return "".join(
        e["data"]["choices"][0]["delta"].get("content", "")
        for e in evs
        if e != "[DONE]" and e["success"] and e["data"]["choices"]
    )


def usage_statuses(tmp_path) -> list[int]:
    """Usage rows the instance left in its SQLite store (start_gunicorn's default)."""
    with sqlite3.connect(tmp_path / "facade.db") as db:
        return [row[0] for row in db.execute("SELECT status FROM usage_records ORDER BY status")]


def refused(server) -> bool:
    host, port = server.url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_sigterm_drains_50_streams(tmp_path, fake_upstream):
    server = start_gunicorn(tmp_path, base_config(fake_upstream.url), workers=1)
    probe = requests.Session()
    probe.trust_env = False
    assert probe.get(f"{server.url}/readyz").status_code == 200  # a kept-alive connection
    late_client = requests.Session()
    late_client.trust_env = False
    assert late_client.get(f"{server.url}/healthz").status_code == 200
    results, threads = open_streams(server, 50, "tokens=10 drip=0.3")

    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    # The master passes SIGTERM on to the workers: poll over the kept-alive connection.
    ready = probe.get(f"{server.url}/readyz", timeout=2)
    while ready.status_code == 200 and time.monotonic() - sent < 1.0:
        time.sleep(0.02)
        ready = probe.get(f"{server.url}/readyz", timeout=2)
    assert ready.status_code == 503 and time.monotonic() - sent < 1.0
    assert ready.json()["data"]["error"]["type"] == "unavailable"
    # A new model call on a kept-alive connection is refused too: another replica takes it.
    late = late_client.post(
        f"{server.url}/api/v1/chat/completions",
        json={"model": "gpt-test", "messages": [{"role": "user", "content": "late"}]},
        headers=AUTH,
        timeout=5,
    )
    assert late.status_code == 503 and late.json()["data"]["error"]["type"] == "unavailable"
    deadline = time.monotonic() + 2
    while not refused(server):
        assert time.monotonic() < deadline, "still accepting new connections while draining"
        time.sleep(0.05)

    for t in threads:
        t.join(30)
    for raw in results:
        evs = events(raw)
        assert evs[-1] == "[DONE]"
        assert text_of(evs) == " ".join(f"tok{i}" for i in range(10))
    code = server.proc.wait(15)
    assert code == 0 and time.monotonic() - sent < 10 + 2, "exit inside the grace period"
    probe.close()
    late_client.close()
    assert "Traceback" not in server.log()
    assert usage_statuses(tmp_path) == [200] * 50, "every stream's usage flushed on exit"


def test_streams_past_the_graceful_timeout_end_with_an_error_event(tmp_path, fake_upstream):
    server = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_GRACEFUL_TIMEOUT_S": "4"}
    )
    results, threads = open_streams(server, 5, "tokens=40 drip=0.5")
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(15)
    for raw in results:
        evs = events(raw)
        assert evs[-1] == "[DONE]"
        assert evs[-2]["success"] is False and evs[-2]["code"] == "503"
        assert evs[-2]["data"]["error"]["type"] == "unavailable"
    assert server.proc.wait(10) == 0
    assert time.monotonic() - sent < 4 + 2
    assert "Traceback" not in server.log()
    assert usage_statuses(tmp_path) == [503] * 5


def test_idle_keep_alive_connections_do_not_hold_the_drain(tmp_path, fake_upstream):
    server = start_gunicorn(tmp_path, base_config(fake_upstream.url), workers=2)
    sessions = []
    for _ in range(6):  # idle keep-alive connections, some on each worker
        s = requests.Session()
        s.trust_env = False
        body = {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        assert s.post(f"{server.url}/api/v1/chat/completions", json=body, headers=AUTH).ok
        sessions.append(s)
    sent = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(15) == 0
    assert time.monotonic() - sent < 4, "the workers waited for idle connections"
    assert "Worker graceful timeout" not in server.log()
    for s in sessions:
        s.close()

"""`max_parallel` through gunicorn: counted across workers (and replicas with Redis), one more
is a 429 that says "parallel", and the slot always comes back: after a hang-up, an error, a
SIGKILLed worker, and (with Redis) a dead process's lease."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
import requests

from tests.support import (
    ADMIN_KEY,
    admin_headers,
    base_config,
    chat_body,
    pg_database,
    redis_namespace,
    start_gunicorn,
    worker_pids,
)

CHAT = "/api/v1/chat/completions"
HOLD = "hold [[fake tokens=200 drip=0.25]]"  # a 50 s stream whose first chunk comes at once


class Stream:
    """A streaming request on its own socket, held open until `hang_up()`."""

    def __init__(self, url: str, key: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        body = json.dumps(chat_body(HOLD, stream=True)).encode()
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.head = b""
        while b"\r\n\r\n" not in self.head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.head += chunk
        self.status = int(self.head.split(b" ", 2)[1]) if self.head else 0

    def hang_up(self) -> None:
        self.sock.close()


def post(url: str, key: str, text: str = "hi") -> requests.Response:
    return requests.post(
        f"{url}{CHAT}",
        json=chat_body(text),
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=30,
    )


def assert_parallel_refusal(resp: requests.Response, limit: int) -> None:
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["data"]["error"]["type"] == "rate_limit_exceeded"
    assert "parallel" in body["message"] and str(limit) in body["message"]
    assert resp.headers["Retry-After"] == "1"


def hold(url: str, key: str, n: int) -> list[Stream]:
    streams = [Stream(url, key) for _ in range(n)]
    assert [s.status for s in streams] == [200] * n, [s.head[:200] for s in streams]
    return streams


def wait_free(url: str, key: str, within: float) -> float:
    """Seconds until a request of `key` is admitted again (a quick one)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        resp = post(url, key)
        if resp.status_code == 200:
            return time.monotonic() - started
        assert resp.status_code == 429, resp.text
        time.sleep(0.1)
    pytest.fail(f"no slot came back within {within} s")


def create_key(url: str, **fields) -> dict:
    resp = requests.post(
        f"{url}/api/v1/admin/keys",
        json={"name": "par", "models": ["*"], **fields},
        headers=admin_headers(),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    config = base_config(fake_upstream.url)
    config["keys"].append(
        {"name": "capped", "key": "sk-capped-0123456789abcdef", "models": ["*"], "max_parallel": 2}
    )
    srv = start_gunicorn(
        tmp_path_factory.mktemp("parallel"),
        config,
        workers=2,
        env={"FACADE_ADMIN_KEY": ADMIN_KEY},
    )
    yield srv
    srv.stop()


def test_the_fourth_of_three_is_refused_and_hang_ups_give_slots_back(server):
    key = create_key(server.url, max_parallel=3)
    assert key["max_parallel"] == 3
    streams = hold(server.url, key["key"], 3)
    try:
        assert_parallel_refusal(post(server.url, key["key"]), 3)
        refused = Stream(server.url, key["key"])  # a stream is refused the same way
        assert refused.status == 429 and b"Retry-After: 1" in refused.head
        refused.hang_up()
    finally:
        for stream in streams:
            stream.hang_up()
    print(f"\nslot back after hang-ups in {wait_free(server.url, key['key'], 10):.3f} s")
    streams = hold(server.url, key["key"], 3)  # all three came back
    for stream in streams:
        stream.hang_up()


def test_errors_and_successes_give_slots_back(server):
    key = create_key(server.url, max_parallel=2)
    for _ in range(6):
        assert post(server.url, key["key"], "x [[fake status=500]]").status_code == 502
        assert post(server.url, key["key"], "x [[fake status=400]]").status_code == 400
        assert post(server.url, key["key"]).status_code == 200
    streams = hold(server.url, key["key"], 2)
    try:
        assert_parallel_refusal(post(server.url, key["key"]), 2)
    finally:
        for stream in streams:
            stream.hang_up()


def test_a_config_key_has_its_own_cap(server):
    streams = hold(server.url, "sk-capped-0123456789abcdef", 2)
    try:
        assert_parallel_refusal(post(server.url, "sk-capped-0123456789abcdef"), 2)
        assert post(server.url, "sk-other-SECRET-9e2c").status_code == 200  # others unaffected
    finally:
        for stream in streams:
            stream.hang_up()


def test_a_sigkilled_workers_slots_come_back(server):
    key = create_key(server.url, max_parallel=3)
    streams = hold(server.url, key["key"], 3)
    assert_parallel_refusal(post(server.url, key["key"]), 3)
    for pid in worker_pids(server.proc.pid):
        os.kill(pid, signal.SIGKILL)  # every worker: whichever held the slots is gone
    try:
        print(f"\nslots back after SIGKILL in {wait_free(server.url, key['key'], 20):.3f} s")
        streams += hold(server.url, key["key"], 3)
    finally:
        for stream in streams:
            stream.hang_up()


def test_two_instances_with_redis_share_the_count(tmp_path, fake_upstream):
    config = base_config(fake_upstream.url)
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        env = {
            "FACADE_DATABASE_URL": db_url,
            "FACADE_REDIS_URL": redis_url,
            "FACADE_REDIS_PREFIX": prefix,
            "FACADE_ADMIN_KEY": ADMIN_KEY,
        }
        servers = []
        for n in range(2):
            directory = tmp_path / f"replica-{n}"
            directory.mkdir()
            servers.append(start_gunicorn(directory, config, env=env))
        a, b = servers
        held: list[Stream] = []
        try:
            plain = create_key(a.url, max_parallel=3)["key"]
            rated = create_key(a.url, max_parallel=3, rpm=1000)["key"]  # in the rate script
            for key in (plain, rated):
                held += hold(a.url, key, 2) + hold(b.url, key, 1)
                assert_parallel_refusal(post(a.url, key), 3)
                assert_parallel_refusal(post(b.url, key), 3)
            held[0].hang_up()  # plain, on a
            wait_free(b.url, plain, 10)
            # A whole instance dies holding slots: its leases run out.
            os.kill(b.proc.pid, signal.SIGSTOP)  # no respawn, no clean exit anywhere
            for pid in worker_pids(b.proc.pid):
                os.kill(pid, signal.SIGKILL)
            b.proc.kill()
            took = wait_free(a.url, rated, 40)
            print(f"\nslot of a dead replica back in {took:.3f} s")
        finally:
            for stream in held:
                stream.hang_up()
            for server in servers:
                server.stop()

"""A store that drops packets: bounded 503s, an instant /readyz, and recovery without a restart.

gunicorn (gevent worker) reaches PostgreSQL and Redis through relays this test stalls: they
accept and read but forward nothing and close nothing, as a blackholed network looks to a
client. Requests that need the stalled store get a 503 within 3 s; keys that do not need it
keep being served; /readyz stays 200 and answers within 1 s, reporting the outage in its body
and in /metrics; when the relay forwards again the instance serves everything again.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.relay import TcpProxy, host_port
from tests.support import (
    ADMIN_KEY,
    PG_TEST_URL,
    REDIS_TEST_URL,
    admin_headers,
    base_config,
    chat_body,
    pg_database,
    redis_namespace,
    start_gunicorn,
)

FREE = "sk-free-0123456789abcdefghij"  # no limits: needs neither store
RATED = "sk-rated-0123456789abcdefghij"  # rpm: Redis
# A budget: held in Redis, beside the rates; PostgreSQL only seeds the spend of a period
# Redis has no mirror of yet (done by the first request, before the outage).
BUDGETED = "sk-budget-0123456789abcdefghij"
CHAT = "/api/v1/chat/completions"
# Generous for a loaded 2-core machine; the measured figures are printed (pytest -s).
STORE_503_WITHIN_S = 3.0
READYZ_WITHIN_S = 1.0


def post(url: str, key: str) -> tuple[int, float]:
    started = time.monotonic()
    resp = requests.post(
        f"{url}{CHAT}",
        json=chat_body("hi"),
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=30,
    )
    return resp.status_code, time.monotonic() - started


def readyz(url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    resp = requests.get(f"{url}/readyz", timeout=10)
    return resp, time.monotonic() - started


def dependency_gauge(url: str, name: str) -> float | None:
    text = requests.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'facade_dependency_up{{dependency="{name}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(check, within: float):
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture
def stack(tmp_path, fake_upstream):
    pg_proxy = TcpProxy(host_port(PG_TEST_URL))
    redis_proxy = TcpProxy(host_port(REDIS_TEST_URL))
    pg_proxy.start()
    redis_proxy.start()
    config = base_config(fake_upstream.url)
    config["keys"] += [
        {"name": "free", "key": FREE, "models": ["*"]},
        {"name": "rated", "key": RATED, "models": ["*"], "rpm": 100000},
        {"name": "budgeted", "key": BUDGETED, "models": ["*"], "budget_usd": 1000},
    ]
    with pg_database() as db_url, redis_namespace() as (_, prefix):
        name = db_url.rsplit("/", 1)[1]
        env = {
            "FACADE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{name}",
            "FACADE_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
            "FACADE_REDIS_PREFIX": prefix,
            "FACADE_ADMIN_KEY": ADMIN_KEY,
        }
        server = start_gunicorn(tmp_path, config, env=env)
        try:
            created = requests.post(
                f"{server.url}/api/v1/admin/keys",
                json={"name": "stored", "models": ["*"]},
                headers=admin_headers(),
                timeout=10,
            )
            assert created.status_code == 201, created.text
            yield server, pg_proxy, redis_proxy, created.json()["data"]["key"]
        finally:
            pg_proxy.unstall()
            redis_proxy.unstall()
            server.stop()
            pg_proxy.stop()
            redis_proxy.stop()


def _outage(server, proxy, dependency: str, needs: list[str], spared: list[str]) -> dict:
    url = server.url
    for key in needs + spared:
        assert post(url, key)[0] == 200
    proxy.stall()
    try:
        # Several at once: they queue on the same pool and must all be bounded.
        with ThreadPoolExecutor(8) as pool:
            refused = list(pool.map(lambda k: post(url, k), needs * 4))
        for status, took in refused:
            assert status == 503, refused
            assert took < STORE_503_WITHIN_S, refused
        for key in spared:
            status, took = post(url, key)
            assert status == 200, f"a key that does not need {dependency} was refused"
        ready = [readyz(url) for _ in range(10)]
        for resp, took in ready:
            assert resp.status_code == 200, resp.text
            assert took < READYZ_WITHIN_S, [t for _, t in ready]
        down = wait_for(
            lambda: readyz(url)[0].json()["data"]["dependencies"][dependency] == "down", 10
        )
        assert down, "/readyz never reported the outage in its body"
        assert wait_for(lambda: dependency_gauge(url, dependency) == 0.0, 10)
    finally:
        proxy.unstall()
    # Back: no restart, every key served again within a few probe intervals.
    for key in needs:
        assert wait_for(lambda k=key: post(url, k)[0] == 200, 15), "no recovery"
    assert wait_for(lambda: readyz(url)[0].json()["data"]["dependencies"][dependency] == "up", 10)
    assert dependency_gauge(url, dependency) == 1.0
    assert server.proc.poll() is None
    return {
        "503_max_s": round(max(t for _, t in refused), 3),
        "readyz_max_s": round(max(t for _, t in ready), 3),
    }


def test_postgresql_stalled(stack):
    server, pg_proxy, _redis_proxy, stored = stack
    figures = _outage(server, pg_proxy, "postgresql", [stored], [FREE, RATED, BUDGETED])
    print(f"\npostgresql stalled: {figures}")


def test_redis_stalled(stack):
    server, _pg_proxy, redis_proxy, stored = stack
    figures = _outage(server, redis_proxy, "redis", [RATED, BUDGETED], [FREE, stored])
    print(f"\nredis stalled: {figures}")

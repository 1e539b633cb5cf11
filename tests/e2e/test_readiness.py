"""/readyz reports the store and Redis in its body while they are unreachable, and stays 200
(DESIGN "Operators": a shared store's outage must not fail every replica's readiness); it
reports them up again when they are back, with no restart.

gunicorn reaches PostgreSQL and Redis through TCP proxies this test controls, so "stopping
the store" cuts only this instance's path to it and leaves the shared servers alone.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.relay import TcpProxy, host_port
from tests.support import (
    PG_TEST_URL,
    REDIS_TEST_URL,
    base_config,
    pg_database,
    redis_namespace,
    start_gunicorn,
)


def wait_status(url: str, status: int, within: float) -> float:
    started = time.monotonic()
    last = None
    while time.monotonic() - started < within:
        try:
            last = requests.get(url, timeout=2).status_code
        except requests.RequestException as err:
            last = repr(err)
        if last == status:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"/readyz stayed {last}, expected {status} within {within} s")


def wait_dependency(url: str, name: str, state: str, within: float) -> float:
    started = time.monotonic()
    last = None
    while time.monotonic() - started < within:
        resp = requests.get(url, timeout=2)
        assert resp.status_code == 200, resp.text  # readiness is the instance's own
        last = resp.json()["data"]["dependencies"][name]
        if last == state:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"/readyz showed {name} {last}, expected {state} within {within} s")


def test_readyz_follows_postgresql_and_redis(tmp_path, fake_upstream):
    pg_proxy = TcpProxy(host_port(PG_TEST_URL))
    redis_proxy = TcpProxy(host_port(REDIS_TEST_URL))
    pg_proxy.start()
    redis_proxy.start()
    with pg_database() as db_url, redis_namespace() as (_, prefix):
        name = db_url.rsplit("/", 1)[1]
        env = {
            "FACADE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg_proxy.port}/{name}",
            "FACADE_REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/0",
            "FACADE_REDIS_PREFIX": prefix,
        }
        server = start_gunicorn(tmp_path, base_config(fake_upstream.url), env=env)
        ready = f"{server.url}/readyz"
        try:
            wait_status(ready, 200, 10)
            for name, proxy in (("postgresql", pg_proxy), ("redis", redis_proxy)):
                proxy.stop()
                wait_dependency(ready, name, "down", 15)
                assert requests.get(f"{server.url}/healthz", timeout=2).status_code == 200
                proxy.start()
                wait_dependency(ready, name, "up", 15)
            assert server.proc.poll() is None, "recovered without a restart"
        finally:
            server.stop()
            pg_proxy.stop()
            redis_proxy.stop()

"""Limits and budgets through real gunicorn processes with gevent workers.

SQLite shared by the workers of one instance; PostgreSQL and Redis shared by two instances.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    wait_ready,
    worker_pids,
)

ADMIN = admin_headers()
KEYS = "/api/v1/admin/keys"
CHAT = "/api/v1/chat/completions"
# The budget test's request: the fake answers 1000 tokens to a 3-word prompt; Facade reserves
# the bound of its input (118 JSON bytes / 4 + 32 a request + 4 a message + 2 for the upstream
# model's name = 68 tokens) plus the 1000-token cap, at 1/2 USD per 1M. The output dominates,
# so ten settled requests leave less than one reservation of a budget for 10.5.
BUDGET_TEXT = "go [[fake tokens=1000]]"
BUDGET_CAP = 1000
RESERVE_USD = (68 * 1.0 + 1000 * 2.0) / 1e6
COST_USD = (3 * 1.0 + 1000 * 2.0) / 1e6
TPM_TEXT = "go [[fake tokens=100]]"


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    # Responses kept by a test would otherwise hold keep-alive connections open, and a
    # stopping worker waits for those until the graceful timeout.
    session.headers["Connection"] = "close"
    return session


def create_key(url: str, **fields) -> dict:
    with http() as s:
        resp = s.post(
            f"{url}{KEYS}", json={"name": "e2e", "models": ["*"], **fields}, headers=ADMIN
        )
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def key_view(url: str, key_id: str) -> dict:
    with http() as s:
        return s.get(f"{url}{KEYS}/{key_id}", headers=ADMIN, timeout=10).json()["data"]


def post_chat(url: str, key: str, body: dict) -> requests.Response:
    with http() as s:  # a fresh connection each: spread over the workers
        return s.post(
            f"{url}{CHAT}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


def post_raw(url: str, key: str, raw: bytes) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with http() as s:
        return s.post(f"{url}{CHAT}", data=raw, headers=headers, timeout=30)


def in_parallel(calls: list) -> list[requests.Response]:
    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def wait_for(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(fake_upstream, tmp_path_factory):
    srv = start_gunicorn(
        tmp_path_factory.mktemp("limits"),
        base_config(fake_upstream.url),
        workers=2,
        env={"FACADE_ADMIN_KEY": ADMIN_KEY},
    )
    yield srv
    assert srv.stop() == 0


def test_100_concurrent_requests_on_a_budget_for_10_serve_at_most_10(server):
    key = create_key(server.url, budget_usd=RESERVE_USD * 10.5, budget_period="daily")
    body = chat_body(BUDGET_TEXT, max_tokens=BUDGET_CAP)
    answers = in_parallel([lambda: post_chat(server.url, key["key"], body)] * 100)
    served = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert len(served) == 10
    for resp in refused:
        out = resp.json()
        assert resp.status_code == 429 and out["data"]["error"]["type"] == "budget_exceeded"
        assert "budget" in out["message"] and int(resp.headers["Retry-After"]) > 0
    costs = [r.json()["data"]["metrics"]["cost_usd"] for r in served]
    assert costs == [pytest.approx(COST_USD)] * 10

    def settled() -> dict | None:
        view = key_view(server.url, key["id"])
        return view if view["reserved_usd"] == 0 else None

    view = wait_for(settled)
    assert view, "the reservations were never settled"
    assert view["spend_usd"] == pytest.approx(sum(costs), abs=1e-9)
    # Settled, the budget has room for no further reservation either.
    assert post_chat(server.url, key["key"], body).status_code == 429


def test_rpm_is_exact_across_two_workers(server):
    key = create_key(server.url, rpm=10)
    answers = in_parallel([lambda: post_chat(server.url, key["key"], chat_body("hi"))] * 20)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 10 + [429] * 10
    for resp in answers:
        if resp.status_code == 429:
            assert resp.json()["data"]["error"]["type"] == "rate_limit_exceeded"
            assert 1 <= int(resp.headers["Retry-After"]) <= 60


def test_tpm_refuses_once_the_tokens_are_spent(server):
    key = create_key(server.url, tpm=350)
    # Each counts 167 tokens at admission and 103 once settled: the third never fits.
    body = chat_body(TPM_TEXT, max_tokens=100)
    codes = [post_chat(server.url, key["key"], body).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_the_window_outlives_sigkilled_workers(server):
    """Without Redis the counts live in memory gunicorn's master made: the workers that
    replace killed ones see what those counted."""
    key = create_key(server.url, rpm=4)
    codes = [post_chat(server.url, key["key"], chat_body("hi")).status_code for _ in range(3)]
    assert codes == [200] * 3
    for pid in worker_pids(server.proc.pid):
        os.kill(pid, signal.SIGKILL)
    codes = [post_chat(server.url, key["key"], chat_body("hi")).status_code for _ in range(2)]
    assert codes == [200, 429]


def test_revoked_and_expired_keys_are_refused_at_once_on_every_worker(server):
    revoked = create_key(server.url)
    expiring = create_key(server.url)
    soon = create_key(server.url, expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    for key in (revoked, expiring, soon):
        answers = in_parallel([lambda k=key: post_chat(server.url, k["key"], chat_body("hi"))] * 30)
        assert {r.status_code for r in answers} == {200}
    with http() as s:
        assert s.delete(f"{server.url}{KEYS}/{revoked['id']}", headers=ADMIN).status_code == 200
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        resp = s.patch(
            f"{server.url}{KEYS}/{expiring['id']}", json={"expires_at": past}, headers=ADMIN
        )
        assert resp.status_code == 200
    time.sleep(max(0.0, datetime.fromisoformat(soon["expires_at"]).timestamp() - time.time()))
    for key, why in ((revoked, "revoked"), (expiring, "expired"), (soon, "expired")):
        answers = in_parallel([lambda k=key: post_chat(server.url, k["key"], chat_body("hi"))] * 30)
        assert {r.status_code for r in answers} == {401}, key
        assert all(why in r.json()["message"] for r in answers)


def test_key_plaintext_never_reaches_the_database_or_the_log(fake_upstream, tmp_path):
    srv = start_gunicorn(
        tmp_path, base_config(fake_upstream.url), env={"FACADE_ADMIN_KEY": ADMIN_KEY}
    )
    secrets = [ADMIN_KEY]
    try:
        key = create_key(srv.url, rpm=100, tpm=100_000, budget_usd=1)
        secrets.append(key["key"])
        assert post_chat(srv.url, key["key"], chat_body("hi")).status_code == 200
        with http() as s:
            rotated = s.post(f"{srv.url}{KEYS}/{key['id']}/rotate", headers=ADMIN).json()["data"]
        secrets.append(rotated["key"])
        assert post_chat(srv.url, rotated["key"], chat_body("hi")).status_code == 200
        assert post_chat(srv.url, key["key"], chat_body("hi")).status_code == 401
    finally:
        assert srv.stop() == 0
    files = sorted(Path(tmp_path).glob("facade.db*"))
    assert files, "no database file"
    stored = b"".join(f.read_bytes() for f in files)
    assert key["id"].encode() in stored  # the key is there, by id and hash only
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in srv.log()


def test_two_instances_share_rpm_and_budget_on_postgresql_and_redis(fake_upstream, tmp_path):
    config = base_config(fake_upstream.url)
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        env = {
            "FACADE_ADMIN_KEY": ADMIN_KEY,
            "FACADE_DATABASE_URL": db_url,
            "FACADE_REDIS_URL": redis_url,
            "FACADE_REDIS_PREFIX": prefix,
        }
        a = start_gunicorn(tmp_path, config, env=env, wait=False)
        b = start_gunicorn(tmp_path, config, env=env, wait=False)  # both migrate at once
        try:
            wait_ready(a)
            wait_ready(b)
            urls = [a.url, b.url]
            limited = create_key(a.url, rpm=10)
            calls = [
                lambda i=i: post_chat(urls[i % 2], limited["key"], chat_body("hi"))
                for i in range(20)
            ]
            assert sorted(r.status_code for r in in_parallel(calls)) == [200] * 10 + [429] * 10
            # Over its rpm, the key gets its 429 whatever the body holds (the pre-check of a
            # small body is put off until the body would be refused); a fresh key, the 400.
            fresh = create_key(a.url, rpm=10)
            bad = {"model": "gpt-4o-mini", "messages": "not a list"}
            big = chat_body("x" * 100_000)
            for url in urls:
                assert post_raw(url, limited["key"], b"{not json").status_code == 429
                assert post_chat(url, limited["key"], bad).status_code == 429
                assert post_chat(url, limited["key"], big).status_code == 429
                assert post_raw(url, fresh["key"], b"{not json").status_code == 400
                assert post_chat(url, fresh["key"], bad).status_code == 400

            budget = create_key(b.url, budget_usd=RESERVE_USD * 6.5, budget_period="total")
            body = chat_body(BUDGET_TEXT, max_tokens=BUDGET_CAP)
            calls = [lambda i=i: post_chat(urls[i % 2], budget["key"], body) for i in range(40)]
            served = [r for r in in_parallel(calls) if r.status_code == 200]
            assert len(served) == 6
            costs = sum(r.json()["data"]["metrics"]["cost_usd"] for r in served)
            view = wait_for(lambda: (v := key_view(a.url, budget["id"]))["reserved_usd"] == 0 and v)
            assert view and view["spend_usd"] == pytest.approx(costs, abs=1e-9)

            with http() as s:
                assert s.delete(f"{b.url}{KEYS}/{limited['id']}", headers=ADMIN).status_code == 200
            assert post_chat(a.url, limited["key"], chat_body("hi")).status_code == 401
            with http() as s:
                assert s.get(f"{a.url}/readyz").status_code == 200
        finally:
            assert a.stop() == 0
            assert b.stop() == 0


def test_hundreds_in_flight_on_one_worker_share_its_redis_connections(fake_upstream, tmp_path):
    """300 requests at once on one worker of a limited key: each takes a Redis connection for
    its admission; past the pool's size they wait their turn, none fails."""
    config = base_config(fake_upstream.url)
    config["keys"].append(
        {
            "name": "busy",
            "key": "sk-busy-0123456789abcdefghij",
            "models": ["*"],
            "rpm": 100_000,
            "budget_usd": 1000,
        }
    )
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        env = {
            "FACADE_DATABASE_URL": db_url,
            "FACADE_REDIS_URL": redis_url,
            "FACADE_REDIS_PREFIX": prefix,
        }
        srv = start_gunicorn(tmp_path, config, env=env)
        try:
            body = chat_body("hi [[fake slow=0.5]]")
            calls = [
                lambda: post_chat(srv.url, "sk-busy-0123456789abcdefghij", body) for _ in range(300)
            ]
            statuses = [r.status_code for r in in_parallel(calls)]
            assert statuses == [200] * 300, sorted(set(statuses))
        finally:
            assert srv.stop() == 0

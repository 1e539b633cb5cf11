"""A COMMIT whose acknowledgement is lost counts once.

A relay between gunicorn and PostgreSQL lets COMMITs through but swallows the server's reply
and resets the connection: the store has the batch, the facade cannot know it and writes it
again. No request id may be recorded twice, the amount held may never go below zero, and a
budget may not serve more than it covers.
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import text

from facade.store.db import make_engine
from tests.relay import TcpProxy, host_port
from tests.support import (
    ADMIN_KEY,
    PG_TEST_URL,
    admin_headers,
    base_config,
    chat_body,
    pg_database,
    redis_namespace,
    start_gunicorn,
)

CHAT = "/api/v1/chat/completions"
# The fake answers 100 tokens to a 3-word prompt; Facade reserves its estimate of the prompt
# (22 chars: 6 + 7 tokens) plus the 100-token cap, at 1/2 USD per 1M (as tests/e2e/test_limits).
TEXT = "go [[fake tokens=100]]"
RESERVE_USD = (13 * 1.0 + 100 * 2.0) / 1e6
COST_USD = (3 * 1.0 + 100 * 2.0) / 1e6
BUDGET_USD = COST_USD * 12.5


def ledger_rows(db_url: str) -> tuple[int, int, int, float, list]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows, ids, clients, cost = conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT server_request_id),"
                    " count(DISTINCT request_id), coalesce(sum(cost_nusd), 0)"
                    " FROM usage_records"
                )
            ).one()
            ledger = conn.execute(text("SELECT spent_nusd, reserved_nusd FROM budget_ledger")).all()
    finally:
        engine.dispose()
    return rows, ids, clients, float(cost) / 1e9, [tuple(r) for r in ledger]


@pytest.mark.parametrize("redis", [False, True], ids=["postgresql", "postgresql+redis"])
def test_a_lost_commit_acknowledgement_counts_once(fake_upstream, tmp_path, redis):
    proxy = TcpProxy(host_port(PG_TEST_URL))
    proxy.start()
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        name = db_url.rsplit("/", 1)[1]
        env = {
            "FACADE_ADMIN_KEY": ADMIN_KEY,
            "FACADE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{proxy.port}/{name}",
            "FACADE_USAGE_FLUSH_S": "0.05",
        }
        if redis:
            env.update(FACADE_REDIS_URL=redis_url, FACADE_REDIS_PREFIX=prefix)
        srv = start_gunicorn(tmp_path, base_config(fake_upstream.url), workers=2, env=env)
        try:
            resp = requests.post(
                f"{srv.url}/api/v1/admin/keys",
                json={"name": "ack", "models": ["*"], "budget_usd": BUDGET_USD,
                      "budget_period": "total", "rpm": 100_000},
                headers=admin_headers(),
                timeout=10,
            )  # fmt: skip
            key = resp.json()["data"]
            view = f"{srv.url}/api/v1/admin/keys/{key['id']}"
            held: list[float] = []
            watching = threading.Event()

            def watch() -> None:
                while not watching.is_set():
                    held.append(requests.get(view, headers=admin_headers(), timeout=10)
                                .json()["data"]["reserved_usd"])  # fmt: skip
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch)
            watcher.start()
            proxy.drop_commit_acks = 2  # from now on, every other COMMIT's reply is lost

            def one(i: int) -> requests.Response:
                with requests.Session() as s:
                    s.trust_env = False
                    return s.post(
                        f"{srv.url}{CHAT}",
                        json=chat_body(TEXT, max_tokens=100),
                        headers={"Authorization": f"Bearer {key['key']}",
                                 "X-Request-ID": f"ack-{i}-{uuid.uuid4().hex[:6]}"},
                        timeout=30,
                    )  # fmt: skip

            served = 0
            with ThreadPoolExecutor(8) as pool:
                for wave in range(6):  # waves, so settlements land between admissions
                    statuses = [r.status_code for r in pool.map(one, range(wave * 8, wave * 8 + 8))]
                    # 503: an admission whose retry lost its acknowledgement too
                    assert set(statuses) <= {200, 429, 503}, statuses
                    served += statuses.count(200)
                    time.sleep(0.3)
            deadline = time.monotonic() + 30
            while held[-1] != 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            watching.set()
            watcher.join(15)
            proxy.drop_commit_acks = 0
            assert proxy.dropped_commit_acks > 0, "no acknowledgement was lost"

            rows, ids, clients, cost, ledger = ledger_rows(db_url)
            print(
                f"lost acks: {proxy.dropped_commit_acks}; served {served}, usage rows {rows}, "
                f"distinct ids {ids}, ledger (spent, held) nusd {ledger}, held min ${min(held)}"
            )
            assert rows == ids == clients == served, "a request recorded twice, or not at all"
            assert min(held) >= 0 and held[-1] == 0
            ((spent_nusd, reserved_nusd),) = ledger
            assert reserved_nusd == 0
            assert spent_nusd / 1e9 == pytest.approx(cost, abs=1e-9) == served * COST_USD
            assert spent_nusd / 1e9 <= BUDGET_USD, "the budget served more than it covers"
        finally:
            assert srv.stop() == 0
            proxy.stop()

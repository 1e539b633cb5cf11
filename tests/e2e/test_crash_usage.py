"""Nothing answered is lost on a crash, and what the dead held is given back.

Real gunicorn, real `kill -9`, with 24 requests in flight (streams and not, a key without
limits and one with a `total` budget), on SQLite and on PostgreSQL + Redis. Every request the
client got a complete answer for must have exactly one usage row (found by its X-Request-ID,
kept beside the server's own id), and the budget held by the dead returns to 0: within the
lease after a worker dies, at once when a killed server starts again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from facade.store.db import make_engine
from tests.support import (
    ADMIN_KEY,
    TEAM_KEY,
    admin_headers,
    base_config,
    chat_body,
    pg_database,
    redis_namespace,
    start_gunicorn,
)

CHAT = "/api/v1/chat/completions"
LEASE_S = 3
IN_FLIGHT = 24


def worker_pids(master: int) -> list[int]:
    path = Path(f"/proc/{master}/task/{master}/children")
    return [int(p) for p in path.read_text().split()]


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextmanager
def store_env(kind: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {"FACADE_ADMIN_KEY": ADMIN_KEY, "FACADE_LEASE_S": str(LEASE_S)}
    if kind == "sqlite":
        yield {**env, "FACADE_DATABASE_URL": f"sqlite:///{tmp_path}/facade.db"}
        return
    with pg_database() as db_url, redis_namespace() as (redis_url, prefix):
        yield {
            **env,
            "FACADE_DATABASE_URL": db_url,
            "FACADE_REDIS_URL": redis_url,
            "FACADE_REDIS_PREFIX": prefix,
        }


class Load:
    """IN_FLIGHT clients, each sending requests back to back until stopped; remembers which
    got a complete answer (a 200 whole body, or a stream through `data: [DONE]`)."""

    def __init__(self, url: str, keys: list[str]) -> None:
        self.url = url
        self.keys = keys
        self.answered: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(IN_FLIGHT)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _client(self, i: int) -> None:
        session = requests.Session()
        session.trust_env = False
        n = 0
        while not self._stop.is_set():
            n += 1
            stream = (i + n) % 2 == 0
            key = self.keys[(i // 2 + n) % len(self.keys)]
            rid = f"crash-{i}-{n}-{uuid.uuid4().hex[:6]}"
            directive = "[[fake tokens=12 drip=0.05]]" if stream else "[[fake tokens=12 slow=0.4]]"
            body = chat_body(f"hi {directive}", max_tokens=50, stream=stream)
            headers = {"Authorization": f"Bearer {key}", "X-Request-ID": rid}
            with self._lock:
                self.sent += 1
            try:
                resp = session.post(f"{self.url}{CHAT}", json=body, headers=headers, timeout=20)
                complete = resp.status_code == 200 and (
                    resp.content.endswith(b"data: [DONE]\n\n") if stream else bool(resp.json())
                )
            except (requests.RequestException, ValueError):
                complete = False  # the worker died under it
                session.close()
                session = requests.Session()
                session.trust_env = False
            if complete:
                with self._lock:
                    self.answered.append(rid)
        session.close()

    def stop(self) -> None:
        self._stop.set()


def rows_by_client_id(db_url: str) -> dict[str, int]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT request_id, count(*) FROM usage_records GROUP BY request_id"
                )
            ).all()
    finally:
        engine.dispose()
    return {r[0]: r[1] for r in rows}


def held_and_spent(url: str, key_id: str) -> tuple[float, float]:
    view = requests.get(f"{url}/api/v1/admin/keys/{key_id}", headers=admin_headers(), timeout=10)
    data = view.json()["data"]
    return data["reserved_usd"], data["spend_usd"]


def budget_key(url: str) -> dict:
    resp = requests.post(
        f"{url}/api/v1/admin/keys",
        json={"name": "crash", "models": ["*"], "budget_usd": 100, "budget_period": "total"},
        headers=admin_headers(),
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["data"]


def wait_until(check, timeout: float) -> float | None:
    """Seconds until `check()` held, or None if it never did."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def assert_every_answer_has_one_row(db_url: str, answered: list[str], what: str) -> None:
    rows = rows_by_client_id(db_url)
    missing = [rid for rid in answered if rows.get(rid, 0) == 0]
    twice = {rid: n for rid, n in rows.items() if rid and n > 1}
    print(f"{what}: {len(answered)} answered, {len(answered) - len(missing)} with a usage row")
    assert not missing, f"{what}: {len(missing)} answered requests have no usage row"
    assert not twice, f"{what}: request ids recorded twice: {twice}"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql+redis"])
def test_sigkill_of_a_worker_loses_no_answered_usage(fake_upstream, tmp_path, kind):
    with store_env(kind, tmp_path) as env:
        db_url = env["FACADE_DATABASE_URL"]
        srv = start_gunicorn(tmp_path, base_config(fake_upstream.url), workers=2, env=env)
        try:
            key = budget_key(srv.url)
            with Load(srv.url, [TEAM_KEY, key["key"]]) as load:
                time.sleep(2.0)
                # The busier worker (gevent workers do not share connections evenly).
                victim = max(worker_pids(srv.proc.pid), key=open_files)
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
                time.sleep(1.5)
            assert load.answered and load.sent > len(load.answered), "no request was cut"

            def settled() -> bool:
                rows = rows_by_client_id(db_url)
                return all(rows.get(rid) for rid in load.answered)

            assert wait_until(settled, 30) is not None
            assert_every_answer_has_one_row(db_url, load.answered, f"{kind}, worker killed")
            freed = wait_until(lambda: held_and_spent(srv.url, key["id"])[0] == 0, 60)
            assert freed is not None, "the dead worker's budget holds were never given back"
            print(f"{kind}: held back to 0 {time.monotonic() - killed_at:.1f} s after the kill")
            held, spent = held_and_spent(srv.url, key["id"])
            assert held == 0 and spent > 0
        finally:
            assert srv.stop() == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql+redis"])
def test_sigkill_of_the_whole_server_loses_no_answered_usage(fake_upstream, tmp_path, kind):
    config = base_config(fake_upstream.url)
    with store_env(kind, tmp_path) as env:
        db_url = env["FACADE_DATABASE_URL"]
        # Long leases: what comes back here comes back because the instance started again.
        env = {**env, "FACADE_LEASE_S": "600"}
        srv = start_gunicorn(tmp_path, config, workers=2, env=env)
        key = budget_key(srv.url)
        with Load(srv.url, [TEAM_KEY, key["key"]]) as load:
            time.sleep(2.0)
            pids = [srv.proc.pid, *worker_pids(srv.proc.pid)]
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            srv.proc.wait(10)
            load.stop()
        assert load.answered and load.sent > len(load.answered), "no request was cut"
        before = rows_by_client_id(db_url)
        found = sum(1 for rid in load.answered if before.get(rid))
        print(f"{kind}, server killed: {found} of {len(load.answered)} rows before the restart")

        again = start_gunicorn(tmp_path, config, workers=2, env=env)
        try:
            # At once: the first worker replays the journals and gives the holds back as it
            # boots, before it is ready.
            assert_every_answer_has_one_row(db_url, load.answered, f"{kind}, server killed")
            held, spent = held_and_spent(again.url, key["id"])
            assert held == 0, f"still held after the restart: ${held}"
            assert spent > 0
        finally:
            assert again.stop() == 0

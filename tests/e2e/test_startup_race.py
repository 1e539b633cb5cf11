"""Start-up never races: workers and replicas opening a fresh store at once all come up.

A fresh SQLite file is switched to WAL and migrated by whichever process gets there first;
the others must wait for it, not fail with "database is locked" (which made gunicorn's
master shut the whole instance down). The same for replicas on a fresh PostgreSQL database.
"""

from __future__ import annotations

import multiprocessing
import time

import requests

from tests.support import (
    TEAM_KEY,
    base_config,
    chat_body,
    pg_database,
    start_gunicorn,
    wait_ready,
)

ROUNDS = 20
PROCESSES = 4


def _open_store_rounds(directory: str, barrier, errors) -> None:
    """One process: in each round, open (WAL + migrate) and write the round's fresh file."""
    from facade.store import Store

    for n in range(ROUNDS):
        barrier.wait(60)
        try:
            store = Store(f"sqlite:///{directory}/round-{n}/facade.db")
            try:
                store.ping()
                store.atomic(lambda cur: cur.execute("SELECT count(*) FROM api_keys").fetchall())
            finally:
                store.close()
        except Exception as err:  # reported to the test, which names the round
            errors.put(f"round {n}: {type(err).__name__}: {err}")
        barrier.wait(60)


def test_four_processes_open_a_fresh_sqlite_file_at_once_20_times(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    errors = ctx.Queue()
    procs = [
        ctx.Process(target=_open_store_rounds, args=(str(tmp_path), barrier, errors))
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(240)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert not found, found
    assert [p.exitcode for p in procs] == [0] * PROCESSES


def test_gunicorn_with_four_workers_on_a_fresh_sqlite_file(tmp_path, fake_upstream):
    config = base_config(fake_upstream.url)
    for n in range(1):  # the 20 rounds are in the test above; this one is the real thing
        directory = tmp_path / f"run-{n}"
        directory.mkdir()
        server = start_gunicorn(directory, config, workers=4)
        try:
            deadline = time.monotonic() + 30
            while server.log().count("Booting worker") < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
            resp = requests.post(
                f"{server.url}/v1/chat/completions",
                json=chat_body("hi"),
                headers={"Authorization": f"Bearer {TEAM_KEY}"},
                timeout=10,
            )
            assert resp.status_code == 200, resp.text
            assert "database is locked" not in server.log()
            assert "Worker failed to boot" not in server.log()
        finally:
            assert server.stop() == 0, server.log()


def test_two_instances_start_at_once_on_a_fresh_postgresql_database(tmp_path, fake_upstream):
    config = base_config(fake_upstream.url)
    with pg_database() as url:
        env = {"FACADE_DATABASE_URL": url}
        servers = []
        for n in range(2):
            directory = tmp_path / f"replica-{n}"
            directory.mkdir()
            servers.append(start_gunicorn(directory, config, workers=2, env=env, wait=False))
        try:
            for server in servers:
                wait_ready(server)
                ready = requests.get(f"{server.url}/readyz", timeout=5)
                assert ready.status_code == 200, ready.text
                resp = requests.post(
                    f"{server.url}/v1/chat/completions",
                    json=chat_body("hi"),
                    headers={"Authorization": f"Bearer {TEAM_KEY}"},
                    timeout=10,
                )
                assert resp.status_code == 200, resp.text
        finally:
            for server in servers:
                assert server.stop() == 0, server.log()

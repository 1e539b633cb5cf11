"""Idempotent settlement, owned holds and their leases, and the journal replay (both stores)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select, text

from facade.store.journal import Journal, dead_owners, read_records, segments
from facade.store.ledger import Ledger, Settlement
from facade.store.limits import Ask, SqlLimits
from facade.store.schema import budget_holds, budget_ledger, store_owners, usage_records
from facade.store.usage import UsageWriter, instance_id
from tests.support import ROOT


def ask(reserve: int = 1_000, budget: int = 10_000) -> Ask:
    return Ask("key-1", "one", None, None, 10, budget, reserve, "total", "total")


def settlement(a: Ask, cost: int = 700, client_id: str | None = "same-id") -> Settlement:
    usage = (time.time(), "2026-01-05", a.key_id, "m", "p", "u", 3, 4, cost, 0.1, 200,
             client_id or a.request_id, 0.05, 0, None, False, a.request_id)  # fmt: skip
    return Settlement(usage, a.key_id, a.period_start, cost, True)


def ledger_row(store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        row = conn.execute(select(budget_ledger.c.spent_nusd, budget_ledger.c.reserved_nusd)).one()
    return tuple(row)


def count(store, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_a_batch_written_twice_counts_once(store):
    limits, ledger = SqlLimits(store, "w1"), Ledger(store)
    asks = [ask() for _ in range(3)]
    for a in asks:
        limits.reserve(a, time.time())
    assert ledger_row(store) == (0, 3_000) and count(store, budget_holds) == 3
    batch = [settlement(a) for a in asks]
    ledger.write(batch)
    ledger.write(batch)  # the acknowledgement was lost: written again
    ledger.write(batch + batch)  # and once more, doubled within the batch
    assert ledger_row(store) == (2_100, 0)
    assert count(store, usage_records) == 3 and count(store, budget_holds) == 0
    with store.engine.connect() as conn:
        ids = conn.execute(select(usage_records.c.server_request_id, usage_records.c.request_id))
        rows = ids.all()
    # Three requests sent the same X-Request-ID: three rows, each under its own server id.
    assert sorted(r[0] for r in rows) == sorted(a.request_id for a in asks)
    assert {r[1] for r in rows} == {"same-id"}


def test_tpm_corrections_come_back_for_new_rows_only(store):
    """With Redis the writer sends them there: a batch written twice corrects once."""
    ledger = Ledger(store)
    batch = [replace(settlement(a), slot=1000, token_delta=-20) for a in (ask(), ask())]
    assert ledger.write(batch) == {("key-1", 1000): -40}
    assert ledger.write(batch) == {}


def test_held_never_goes_below_zero(store):
    limits, ledger = SqlLimits(store, "w1"), Ledger(store)
    a = ask()
    limits.reserve(a, time.time())
    with store.transaction() as conn:  # a ledger that drifted (say, edited by hand)
        conn.execute(text("UPDATE budget_ledger SET reserved_nusd = 10"))
    ledger.write([settlement(a)])
    assert ledger_row(store) == (700, 0)


def test_the_same_request_is_held_once(store):
    limits = SqlLimits(store, "w1")
    a = ask()
    limits.reserve(a, time.time())
    if not store.is_sqlite:  # a retry after a lost acknowledgement finds its hold
        limits.reserve(a, time.time())
    assert ledger_row(store) == (0, 1_000) and count(store, budget_holds) == 1


def test_a_hold_only_settlement_gives_the_hold_back(store):
    limits, ledger = SqlLimits(store, "w1"), Ledger(store)
    a = ask()
    limits.reserve(a, time.time())
    lone = Settlement(None, a.key_id, a.period_start, 0, True, hold_id=a.request_id)
    ledger.write([lone])
    ledger.write([lone])
    assert ledger_row(store) == (0, 0) and count(store, usage_records) == 0


def test_expired_leases_are_reclaimed_by_a_sweep(store, tmp_path):
    ledger = Ledger(store)
    ledger.renew("elsewhere-1", "another-instance", lease_s=-1)  # its lease has run out
    ledger.renew("elsewhere-2", "another-instance", lease_s=600)  # alive
    SqlLimits(store, "elsewhere-1").reserve(ask(), time.time())
    SqlLimits(store, "elsewhere-2").reserve(ask(reserve=2_000), time.time())
    w = UsageWriter(store, flush_s=60, retention_days=0, journal_root=tmp_path, lease_s=30)
    done = w.sweep()
    assert done["owners"] == 1 and done["released_nusd"] == 1_000
    assert ledger_row(store) == (0, 2_000)
    with store.engine.connect() as conn:
        owners = set(conn.execute(select(store_owners.c.owner)).scalars())
    assert owners == {"elsewhere-2", w.owner}
    w.close()
    assert ledger_row(store) == (0, 2_000)  # a clean close gives back only its own


def test_holds_of_an_owner_without_a_lease_row_are_reclaimed(store, tmp_path):
    SqlLimits(store, "ghost").reserve(ask(), time.time() - 120)
    w = UsageWriter(store, flush_s=60, retention_days=0, journal_root=tmp_path, lease_s=30)
    assert w.sweep()["released_nusd"] == 1_000
    assert ledger_row(store) == (0, 0)
    w.close()


KILLED_WORKER = """
import os, sys, time
from pathlib import Path
from facade.store import Store
from facade.store.usage import UsageWriter
from facade.store.ledger import Settlement
from facade.store.limits import Ask, SqlLimits
store = Store(sys.argv[1])
w = UsageWriter(store, flush_s=3600, retention_days=0, journal_root=Path(sys.argv[2]), lease_s=600)
w.sweep()
limits = SqlLimits(store, w.owner)
for i in range(5):
    a = Ask("key-1", "one", None, None, 10, 100_000, 1_000, "total", "total")
    limits.reserve(a, time.time())
    if i < 4:  # four answered, one still in flight
        usage = (time.time(), "2026-01-05", "key-1", "m", "p", "u", 3, 4, 700, 0.1, 200,
                 f"client-{i}", 0.05, 0, None, False, a.request_id)
        w.add(Settlement(usage, "key-1", "total", 700, True))
print("READY", flush=True)
time.sleep(600)
"""


def test_a_killed_workers_journal_is_replayed_and_its_holds_given_back(store, tmp_path):
    root = tmp_path / "journal"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WORKER, store.url, str(root)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "READY"
        assert ledger_row(store) == (0, 5_000) and count(store, usage_records) == 0
        assert list(dead_owners(root)) == []  # alive: its journal is locked
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    w = UsageWriter(store, flush_s=60, retention_days=0, journal_root=root, lease_s=600)
    done = w.sweep()  # what a new worker does as it starts
    assert done["replayed"] == 4 and done["owners"] == 1
    assert ledger_row(store) == (2_800, 0)  # four spent; all five holds back
    assert count(store, usage_records) == 4
    assert w.sweep()["replayed"] == 0  # replayed once, then removed
    w.close()
    assert [p.name for p in root.iterdir()] == []


def test_the_journal_keeps_lines_until_their_batch_is_written(tmp_path):
    j = Journal(tmp_path, "owner-1")
    j.append([1, "a"])
    j.rotate()
    j.append([2, "b"])
    assert read_records(segments(j.dir)) == [[1, "a"], [2, "b"]]
    j.discard_closed()
    assert read_records(segments(j.dir)) == [[2, "b"]]
    (j.dir / "seg-99999999.jsonl").write_bytes(b'[3, "c"]\n[4, "d')  # torn by a power cut
    assert read_records(segments(j.dir))[-1] == [3, "c"]
    j.close(remove=True)
    assert not j.dir.exists()


def test_instance_id_names_the_machine_and_directory(tmp_path):
    assert instance_id(tmp_path) == instance_id(Path(str(tmp_path)))
    assert instance_id(tmp_path) != instance_id(tmp_path / "other")

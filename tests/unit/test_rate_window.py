"""The rpm/tpm window shared by the workers of one instance (facade/rate_window.py)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from facade.rate_window import WINDOW_S, RateTable, Refused, TableFull


@pytest.fixture
def tables():
    made = []

    def make(entries: int = 64, shared: bool = True) -> RateTable:
        made.append(RateTable(entries, shared=shared))
        return made[-1]

    yield make
    for table in made:
        table.close()


def forked(n: int, work) -> list[int]:
    """Run `work()` in n forked processes released at once; their exit codes."""
    read, write = os.pipe()
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:  # the child: wait for the start, work, report by exit code
            code = 99
            try:
                os.close(write)
                os.read(read, 1)  # EOF when the parent closes its end: all start together
                code = work()
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(read)
    os.close(write)
    return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]


def admitted(table: RateTable, key: str, rpm: int, tpm: int, tokens: int):
    def work() -> int:
        try:
            table.admit(key, rpm, tpm, tokens, time.time())
        except Refused:
            return 1
        return 0

    return work


def test_rpm_is_exact_across_processes(tables):
    table = tables()  # made before the fork, as gunicorn's master does
    codes = forked(20, admitted(table, "key-a", 10, 0, 0))
    assert sorted(codes) == [0] * 10 + [1] * 10
    with pytest.raises(Refused) as refused:
        table.check_rpm("key-a", 10, time.time())
    assert refused.value.used == 10


def test_tpm_is_exact_across_processes(tables):
    table = tables()
    codes = forked(12, admitted(table, "key-a", 0, 100, 30))
    assert codes.count(0) == 3 and codes.count(1) == 9
    with pytest.raises(Refused) as refused:
        table.admit("key-a", 0, 100, 11, time.time())
    assert (refused.value.kind, refused.value.used) == ("tpm", 90)
    table.admit("key-a", 0, 100, 10, time.time())


def test_a_killed_worker_drops_the_lock_and_what_it_counted_stays(tables):
    table = tables()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for _ in range(3):
                table.admit("key-a", 10, 0, 0, time.time())
            table._lock.acquire()  # killed while it holds the lock
            os.write(ready_w, b"x")
            time.sleep(60)
        finally:
            os._exit(0)
    assert os.read(ready_r, 1) == b"x"
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(ready_r)
    os.close(ready_w)
    for _ in range(7):  # the kernel dropped its record lock; its 3 requests still count
        table.admit("key-a", 10, 0, 0, time.time())
    with pytest.raises(Refused):
        table.admit("key-a", 10, 0, 0, time.time())


def test_a_request_counts_from_its_second_for_sixty_seconds(tables):
    table = tables()
    assert table.admit("k", 2, 0, 0, 1000.7) == 1000
    table.admit("k", 2, 0, 0, 1010.2)
    with pytest.raises(Refused) as refused:
        table.admit("k", 2, 0, 0, 1059.9)
    assert refused.value.slots == [(1000, 1), (1010, 1)]
    assert table.admit("k", 2, 0, 0, 1060.0) == 1060  # 1000 left the window at 1060
    with pytest.raises(Refused):
        table.check_rpm("k", 2, 1069.99)
    table.check_rpm("k", 2, 1070.0)


def test_the_window_wraps_its_ring(tables):
    table = tables()
    for second in range(1000, 1060):
        table.admit("k", 0, 0, 0, second)  # no limit: counts only
    with pytest.raises(Refused) as refused:
        table.check_rpm("k", 59, 1060)
    assert refused.value.used == 59 and refused.value.slots[0] == (1001, 1)
    with pytest.raises(Refused) as refused:
        table.check_rpm("k", 1, 1118)
    assert refused.value.slots == [(1059, 1)]
    table.check_rpm("k", 1, 1119)


def test_a_clock_behind_another_process_counts_in_the_latest_second(tables):
    table = tables()
    assert table.admit("k", 5, 0, 0, 1010.5) == 1010
    assert table.admit("k", 5, 0, 0, 1009.9) == 1010


def test_adjust_corrects_a_slot_only_while_it_is_in_the_window(tables):
    table = tables()
    slot = table.admit("k", 0, 100, 90, 1000.0)
    with pytest.raises(Refused):
        table.admit("k", 0, 100, 20, 1001.0)
    table.adjust("k", slot, 0, -50)  # it used 40, not 90
    table.admit("k", 0, 100, 20, 1001.0)
    table.adjust("k", slot, -1, -1000)  # never below zero
    table.admit("k", 0, 100, 80, 1002.0)
    table.adjust("k", 1002, 0, -80)
    table.admit("k", 0, 100, 80, 1002.0)
    later = table.admit("k", 0, 100, 100, 1062.0)
    table.adjust("k", 1002, 0, -80)  # gone from the window: must not touch slot 1062
    table.adjust("unknown", later, 0, -80)
    with pytest.raises(Refused):
        table.admit("k", 0, 100, 1, 1062.0)


def test_a_full_table_refuses_new_keys_until_one_is_idle(tables):
    table = tables(entries=8)  # room for 6 keys counted in the last minute
    for n in range(table.max_keys):
        table.admit(f"key-{n}", 10, 0, 0, 1000.0)
    with pytest.raises(TableFull):
        table.admit("one-more", 10, 0, 0, 1030.0)
    table.admit("key-0", 10, 0, 0, 1030.0)  # a key already counted is still served
    table.admit("one-more", 10, 0, 0, 1060.0)  # key-1.. were idle a minute: their room is free
    for n in range(table.max_keys - 2):  # with key-0 and one-more: full again
        table.admit(f"key-{n + 100}", 10, 0, 0, 1061.0)
    with pytest.raises(TableFull):
        table.admit("two-more", 10, 0, 0, 1061.0)
    with pytest.raises(Refused):  # key-0 kept its count through the compaction
        table.admit("key-0", 1, 0, 0, 1061.0)


def test_idle_entries_are_taken_over_and_long_ids_fit(tables):
    table = tables(entries=8)
    for n in range(200):  # far more keys than entries, one at a time
        table.admit(f"key-{n}" * 20, 1, 0, 0, 1000.0 + 60 * n)
        with pytest.raises(Refused):
            table.admit(f"key-{n}" * 20, 1, 0, 0, 1000.0 + 60 * n)
    table.check_rpm("x" * 300, 1, 0)


def test_it_agrees_with_a_list_of_requests(tables):
    """Against the plain model (every request a (second, tokens) pair), over random traffic."""
    rng = random.Random(7)
    table = tables(entries=16)
    model: dict[str, list[tuple[int, int]]] = {}
    now = 1_000_000.0
    for _ in range(3000):
        now += rng.choice([0.0, 0.01, 0.05, 0.3, 1.0, 7.0, 59.0, 130.0])
        key = f"key-{rng.randrange(5)}"
        rpm, tpm, tokens = rng.randrange(1, 12), rng.randrange(1, 400), rng.randrange(0, 60)
        window = [(s, t) for s, t in model.get(key, []) if s > int(now) - WINDOW_S]
        model[key] = window
        used, used_tokens = len(window), sum(t for _, t in window)
        try:
            slot = table.admit(key, rpm, tpm, tokens, now)
        except Refused as no:
            if no.kind == "rpm":
                assert used + 1 > rpm and no.used == used
                seconds = sorted({s for s, _ in window})
                assert no.slots == [(s, sum(1 for w, _ in window if w == s)) for s in seconds]
            else:
                assert used + 1 <= rpm and used_tokens + tokens > tpm
                assert no.used == used_tokens
            continue
        assert used + 1 <= rpm and used_tokens + tokens <= tpm and slot == int(now)
        window.append((slot, tokens))
        if tokens and rng.random() < 0.3:  # settled: the true tokens replace the estimate
            true = rng.randrange(0, tokens + 1)
            table.adjust(key, slot, 0, true - tokens)
            window[-1] = (slot, true)

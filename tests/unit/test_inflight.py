"""The in-flight table shared by the workers of one instance (facade/inflight.py)."""

from __future__ import annotations

import os

import pytest

from facade import inflight
from facade.inflight import ENTRIES, columns_for


@pytest.fixture
def tables():
    made = []

    def make(columns: int) -> inflight.SlotTable:
        made.append(inflight.SlotTable(columns))
        return made[-1]

    yield make
    for table in made:
        table.close()


def test_counts_across_columns_up_to_the_limit(tables):
    table = tables(4)
    assert table.acquire("key-a", 3, 0) is None
    assert table.acquire("key-a", 3, 1) is None
    assert table.acquire("key-a", 3, 2) is None
    assert table.acquire("key-a", 3, 3) == 3  # refused: three in flight
    assert table.acquire("key-b", 3, 0) is None  # another key is not affected
    table.release("key-a", 1)
    assert table.in_flight("key-a") == 2
    assert table.acquire("key-a", 3, 3) is None


def test_a_dead_workers_column_is_given_back(tables):
    table = tables(4)
    for _ in range(5):
        assert table.acquire("key-a", 10, 2) is None
    assert table.acquire("key-a", 10, 0) is None
    table.clear_column(2)
    assert table.in_flight("key-a") == 1


def test_release_never_goes_below_zero_and_long_ids_fit(tables):
    table = tables(1)
    long_id = "x" * 200
    table.release(long_id, 0)
    assert table.acquire(long_id, 1, 0) is None
    assert table.acquire(long_id, 1, 0) == 1
    assert table.in_flight("x" * 199) == 0


def test_a_full_table_drops_keys_with_nothing_in_flight(tables):
    table = tables(1)
    for n in range(ENTRIES):
        assert table.acquire(f"key-{n}", 1, 0) is None
        if n % 2:
            table.release(f"key-{n}", 0)
    assert table.acquire("one-more", 1, 0) is None  # compacted: the released ones went
    assert table.in_flight("key-0") == 1 and table.in_flight("key-1") == 0


def test_forked_processes_share_the_counts(tables):
    table = tables(2)
    assert table.acquire("key-a", 2, 0) is None
    pid = os.fork()
    if pid == 0:  # the child counts in its own column, in the same pages
        os._exit(0 if table.acquire("key-a", 2, 1) is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.acquire("key-a", 2, 0) == 2


def test_columns_cover_a_reload():
    assert columns_for(1) >= 2 and columns_for(8) >= 16

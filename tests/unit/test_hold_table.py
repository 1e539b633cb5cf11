"""Budget holds of a SQLite instance, shared by its workers (facade/hold_table.py)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from facade.hold_table import HoldTable, NoSlot, TableFull
from tests.unit.test_rate_window import forked

PERIOD = "2026-12-01"


@pytest.fixture
def table():
    made = HoldTable(8)  # made before any fork, as gunicorn's master does
    yield made
    made.close()


def settled(key_id: str, amount: int) -> SimpleNamespace:
    """What the writer hands back: a settlement's key, period and held amount."""
    return SimpleNamespace(key_id=key_id, period_start=PERIOD, held=amount)


def test_holds_are_exact_across_processes(table):
    slots = [table.claim(f"worker-{n}") for n in range(4)]
    assert len(set(slots)) == 4

    def hold() -> int:
        refused = table.hold("k", PERIOD, 55, 10, slots[os.getpid() % 4], lambda: 0)
        return 0 if refused is None else 1

    assert sorted(forked(20, hold)) == [0] * 5 + [1] * 15
    assert table.held([("k", PERIOD)]) == {("k", PERIOD): 50}


def test_spend_is_seeded_once_then_only_grows(table):
    slot = table.claim("w")
    reads = []

    def seed() -> int:
        reads.append(1)
        return 40

    assert table.hold("k", PERIOD, 100, 50, slot, seed) is None
    assert table.hold("k", PERIOD, 100, 20, slot, seed) == (40, 50)  # 40 + 50 + 20 > 100
    assert len(reads) == 1
    table.settle("w", {("k", PERIOD): 30}, [])  # an older value: the mirror keeps 40
    table.settle("w", {("k", PERIOD): 45}, [settled("k", 50)])
    assert table.held([("k", PERIOD)]) == {("k", PERIOD): 0}
    assert table.hold("k", PERIOD, 100, 56, slot, seed) == (45, 0)
    assert table.hold("k", PERIOD, 100, 55, slot, seed) is None


def test_a_settlement_gives_back_only_its_owners_hold(table):
    a, b = table.claim("a"), table.claim("b")
    table.hold("k", PERIOD, 100, 30, a, lambda: 0)
    table.hold("k", PERIOD, 100, 30, b, lambda: 0)
    table.settle("a", {}, [settled("k", 30), settled("k", 30)])  # twice: clamped at zero
    assert table.held([("k", PERIOD)]) == {("k", PERIOD): 30}


def test_reclaiming_a_dead_owner_frees_its_slot_and_drops_every_mirror(table):
    dead, alive = table.claim("dead"), table.claim("alive")
    table.hold("k", PERIOD, 100, 60, dead, lambda: 10)
    assert table.hold("k", PERIOD, 100, 40, alive, lambda: 10) == (10, 60)
    assert table.reclaim("dead") == 60
    assert "dead" not in table.owners()
    reads = []
    # The mirror is read again: the dead worker may have committed spend it never mirrored.
    assert table.hold("k", PERIOD, 100, 40, alive, lambda: reads.append(1) or 55) is None
    assert reads == [1]
    assert table.claim("new") == dead  # its slot is free again


def test_owners_beyond_the_slots_are_refused(table):
    for n in range(8):
        table.claim(f"w{n}")
    assert table.claim("w3") == 3  # its own again
    with pytest.raises(NoSlot):
        table.claim("one-too-many")


def test_a_full_table_drops_idle_periods_and_refuses_when_all_hold():
    small = HoldTable(2, shared=False, entries=4)
    slot = small.claim("w")
    for n in range(4):
        assert small.hold(f"k{n}", PERIOD, 100, 10, slot, lambda: 0) is None
    with pytest.raises(TableFull):
        small.hold("k9", PERIOD, 100, 10, slot, lambda: 0)
    small.settle("w", {}, [settled("k0", 10)])  # k0 holds nothing now: its entry can go
    assert small.hold("k9", PERIOD, 100, 10, slot, lambda: 0) is None
    assert small.held([("k9", PERIOD), ("k1", PERIOD)]) == {("k9", PERIOD): 10, ("k1", PERIOD): 10}
    small.close()

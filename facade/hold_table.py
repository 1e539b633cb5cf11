"""Budget holds of one SQLite instance, in memory shared by its workers.

SQLite is one instance's store (several replicas need PostgreSQL), so what a budget check
needs can live where the rate windows live (`rate_window.py`): an anonymous shared mmap made
in gunicorn's master before it forks, changed under an fcntl record lock and a thread lock.
A hold then costs a few microseconds instead of a write transaction on the request path.
The database stays the ledger of record: usage rows and settled spend are written there in
batches (`store/usage.py`), as with holds in Redis (`store/redis_budget.py`, the same
design across replicas).

An entry is one budget period of one key: a mirror of its settled spend, seeded from the
database the first time the period is used and then only ever max-merged with the values
each committed batch returns (so writers in any order agree), and one held amount per owner
slot. Each worker (its usage writer's owner) claims a slot when it starts; its holds are
added to and taken from its slot only, and a settlement gives its hold back only after its
row and spend are committed.

A dead worker's slot is not cleared when it dies: what it answered but had not written is
in its journal, and must stay held until the sweep has replayed it. The sweep then reclaims
the slot (`reclaim`), which also drops every spend mirror, so the next admission reads the
spend afresh, including anything the dead worker committed but never mirrored. A restarted
instance starts from an empty table, its spend read from the database.

Bounded: `ENTRIES` positions; an entry with nothing held can be dropped (its spend is read
again when needed). A table full of entries with live holds refuses new periods
(`TableFull`, a 503 upstream) rather than let them through unchecked.

Outside gunicorn (Flask's test client, the CLI) the first user makes a private table.
Standard library only: this module is imported by gunicorn's master.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Callable, Iterable

from .shared_lock import SharedLock

ENTRIES = 4096  # budget periods with holds at once on one instance
ID_BYTES = 48  # "<key id>|<period start>" (longer ones are hashed to fit)
OWNER_BYTES = 96
_NUM = struct.Struct("=q")
_HEAD = struct.Struct("=qq")  # seeded (0/1), spent (nano-dollars)
_AT_HEAD = ID_BYTES
_AT_HELD = ID_BYTES + _HEAD.size


class TableFull(Exception):
    """Every entry holds something: no room for another budget period."""


class NoSlot(Exception):
    """Every owner slot is taken (by live workers, or dead ones not yet swept)."""


def _ident(key_id: str, period_start: str) -> bytes:
    raw = f"{key_id}|{period_start}".encode()
    if len(raw) > ID_BYTES:
        raw = b"#" + format(zlib.crc32(raw), "08x").encode() + raw[-(ID_BYTES - 9) :]
    return raw.ljust(ID_BYTES, b"\0")


class HoldTable:
    def __init__(self, slots: int, *, shared: bool = True, entries: int = ENTRIES) -> None:
        self.slots = slots
        self.entries = entries
        self._held = struct.Struct(f"={slots}q")
        self._stride = _AT_HELD + self._held.size
        self._owners_size = OWNER_BYTES * slots
        self._mm = mmap.mmap(-1, self._owners_size + entries * self._stride)
        self._lock = SharedLock("holds", shared=shared)

    # -- owners ----------------------------------------------------------------------------
    def _owner_at(self, slot: int) -> bytes:
        at = slot * OWNER_BYTES
        return self._mm[at : at + OWNER_BYTES].rstrip(b"\0")

    def _slot_of(self, owner: bytes) -> int | None:
        for slot in range(self.slots):
            if self._owner_at(slot) == owner:
                return slot
        return None

    def claim(self, owner: str) -> int:
        """A free slot for `owner` (its own again if it has one)."""
        name = owner.encode()[:OWNER_BYTES]
        self._lock.acquire()
        try:
            slot = self._slot_of(name)
            if slot is None:
                slot = self._slot_of(b"")
                if slot is None:
                    raise NoSlot
                self._mm[slot * OWNER_BYTES : slot * OWNER_BYTES + len(name)] = name
            return slot
        finally:
            self._lock.release()

    def quiet_owners(self, ts: float) -> list[str]:
        """Every owner with a slot: the sweep gives back the holds of those without a lease
        row or a journal (each opens its journal before it claims)."""
        return self.owners()

    def owners(self) -> list[str]:
        self._lock.acquire()
        try:
            found = [self._owner_at(s) for s in range(self.slots)]
        finally:
            self._lock.release()
        return [o.decode() for o in found if o]

    # -- entries ---------------------------------------------------------------------------
    def _find(self, ident: bytes, insert: bool) -> int | None:
        mm, stride, base = self._mm, self._stride, self._owners_size
        start = zlib.crc32(ident) % self.entries
        free = None
        for i in range(self.entries):
            off = base + ((start + i) % self.entries) * stride
            head = mm[off : off + ID_BYTES]
            if head == ident:
                return off
            if head[0] == 0:  # never used: the key is not further on
                free = off if free is None else free
                break
            if free is None and head[0] == 0xFF:  # a dropped entry, reusable
                free = off
        if not insert:
            return None
        if free is None:
            self._drop_idle()
            return self._find(ident, insert=True)
        mm[free : free + stride] = bytes(stride)
        mm[free : free + ID_BYTES] = ident
        return free

    def _drop_idle(self) -> None:
        """Mark every entry with nothing held as dropped (its spend is read again when next
        needed); TableFull when every entry holds something."""
        mm, dropped = self._mm, False
        for off in list(self._entries()):
            if not any(self._held.unpack_from(mm, off + _AT_HELD)):
                mm[off : off + ID_BYTES] = b"\xff" * ID_BYTES
                dropped = True
        if not dropped:
            raise TableFull

    def _entries(self) -> Iterable[int]:
        mm, stride, base = self._mm, self._stride, self._owners_size
        for n in range(self.entries):
            off = base + n * stride
            if mm[off] not in (0, 0xFF):
                yield off

    # -- the API -----------------------------------------------------------------------------
    def hold(
        self,
        key_id: str,
        period_start: str,
        budget: int,
        amount: int,
        slot: int,
        seed: Callable[[], int],
    ) -> tuple[int, int] | None:
        """Hold `amount` in `slot` if spent + held + it fits in `budget`: None when held, else
        (spent, held) for the refusal. `seed()` reads the settled spend from the database
        when this period has no mirror yet (outside the lock: it is a store read)."""
        ident = _ident(key_id, period_start)
        for _ in range(3):  # seeded on the first pass, unless a reclaim drops it meanwhile
            self._lock.acquire()
            try:
                off = self._find(ident, insert=True)
                seeded, spent = _HEAD.unpack_from(self._mm, off + _AT_HEAD)
                if seeded:
                    held = self._held.unpack_from(self._mm, off + _AT_HELD)
                    total = sum(held)
                    if spent + total + amount > budget:
                        return spent, total
                    at = off + _AT_HELD + 8 * slot
                    _NUM.pack_into(self._mm, at, held[slot] + amount)
                    return None
            finally:
                self._lock.release()
            fresh = seed()
            self._lock.acquire()
            try:
                off = self._find(ident, insert=True)
                seeded, spent = _HEAD.unpack_from(self._mm, off + _AT_HEAD)
                _HEAD.pack_into(self._mm, off + _AT_HEAD, 1, max(spent, fresh) if seeded else fresh)
            finally:
                self._lock.release()
        raise TableFull("the budget's spend was dropped again while being read")

    def settle(
        self, owner: str, spent: dict[tuple[str, str], int], held: list, new: set | None = None
    ) -> None:
        """After the database committed: mirror its spend (where a mirror exists) and take
        the holds of the settlements `held` (key_id, period_start, held: the amount) out of
        `owner`'s slot; with `new`, only of those whose rows that write inserted (a row
        written twice gives its hold back once)."""
        self._lock.acquire()
        try:
            mm = self._mm
            slot = self._slot_of(owner.encode()[:OWNER_BYTES])
            for (key_id, period_start), value in spent.items():
                off = self._find(_ident(key_id, period_start), insert=False)
                if off is not None:
                    seeded, known = _HEAD.unpack_from(mm, off + _AT_HEAD)
                    if seeded and value > known:
                        _HEAD.pack_into(mm, off + _AT_HEAD, 1, value)
            for s in held if slot is not None else ():
                if new is not None and s.usage is not None and s.request_id not in new:
                    continue
                off = self._find(_ident(s.key_id, s.period_start), insert=False)
                if off is not None:
                    at = off + _AT_HELD + 8 * slot
                    _NUM.pack_into(mm, at, max(0, _NUM.unpack_from(mm, at)[0] - s.held))
        finally:
            self._lock.release()

    def reclaim(self, owner: str) -> int:
        """Give back all `owner` holds and free its slot; every spend mirror is dropped (read
        again from the database). Returns the nano-dollars given back."""
        name = owner.encode()[:OWNER_BYTES]
        self._lock.acquire()
        try:
            slot = self._slot_of(name)
            if slot is None:
                return 0
            mm, freed = self._mm, 0
            for off in self._entries():
                at = off + _AT_HELD + 8 * slot
                freed += _NUM.unpack_from(mm, at)[0]
                _NUM.pack_into(mm, at, 0)
                _HEAD.pack_into(mm, off + _AT_HEAD, 0, 0)
            mm[slot * OWNER_BYTES : (slot + 1) * OWNER_BYTES] = bytes(OWNER_BYTES)
            return freed
        finally:
            self._lock.release()

    def held(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Nano-dollars held now per (key id, period start)."""
        out = {}
        self._lock.acquire()
        try:
            for key_id, period_start in pairs:
                off = self._find(_ident(key_id, period_start), insert=False)
                held = 0 if off is None else sum(self._held.unpack_from(self._mm, off + _AT_HELD))
                out[(key_id, period_start)] = held
        finally:
            self._lock.release()
        return out

    def close(self) -> None:
        self._lock.close()
        self._mm.close()


# -- this instance's table ------------------------------------------------------------------
_table: HoldTable | None = None


def create_shared(workers: int) -> HoldTable:
    """In gunicorn's master, before any worker is forked: room for every worker twice over
    (a SIGHUP reload runs old and new side by side) and for dead ones not yet swept."""
    global _table
    _table = HoldTable(min(256, max(8, 4 * workers + 8)))
    return _table


def shared() -> HoldTable | None:
    return _table


_private: HoldTable | None = None


def local() -> HoldTable:
    """Outside gunicorn: one private table for this process (its accountings share it)."""
    global _private
    if _private is None:  # room for the accountings a test session makes and never closes
        _private = HoldTable(256, shared=False)
    return _private

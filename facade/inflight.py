"""Requests in flight per key, counted in memory shared by the workers of one instance.

`max_parallel` applies to every key (default 500), so counting must cost no store round
trip. The table is an anonymous shared mmap made in gunicorn's master before it forks, so
every worker maps the same pages. Each entry is a key id and one count per worker column: a
worker only ever changes its own column, and the master zeroes a dead worker's column in
`child_exit`, so what a SIGKILLed worker held is given back at once. A check and its
increment run under an fcntl record lock (the kernel drops it if its holder dies) and a
thread lock (record locks do not exclude the threads of one process). About two system
calls and a few microseconds per acquire.

Outside gunicorn (Flask's test client, the CLI) the first use makes a private table with one
column. This module is imported by gunicorn's master: standard library only.
"""

from __future__ import annotations

import logging
import mmap
import struct
import zlib

from .shared_lock import SharedLock

log = logging.getLogger("facade.inflight")

ENTRIES = 4096  # distinct keys with requests in flight at once on one instance
ID_BYTES = 40  # api key ids are at most 40 characters (the api_keys.id column)
MAX_COLUMNS = 256


def columns_for(workers: int) -> int:
    """Room for every worker twice over (a SIGHUP reload runs old and new ones side by side)
    plus replacements whose predecessors are still being reaped."""
    return min(MAX_COLUMNS, max(4, 4 * workers + 4))


class SlotTable:
    def __init__(self, columns: int, *, shared: bool = True) -> None:
        self.columns = columns
        self._stride = ID_BYTES + 4 * columns
        self._mm = mmap.mmap(-1, ENTRIES * self._stride)  # anonymous: MAP_SHARED on Unix
        self._lock = SharedLock("inflight", shared=shared)
        self._counts = struct.Struct(f"={columns}i")
        self._one = struct.Struct("=i")

    # -- entries ---------------------------------------------------------------------------
    @staticmethod
    def _id(key_id: str) -> bytes:
        raw = key_id.encode()
        if len(raw) > ID_BYTES or not raw:
            raw = b"#" + format(zlib.crc32(raw), "08x").encode() + raw[-(ID_BYTES - 9) :]
        return raw.ljust(ID_BYTES, b"\0")

    def _find(self, ident: bytes, insert: bool) -> int | None:
        """The entry's offset; with `insert`, take the first empty entry on the way."""
        mm, stride = self._mm, self._stride
        start = zlib.crc32(ident) % ENTRIES
        for i in range(ENTRIES):
            off = ((start + i) % ENTRIES) * stride
            head = mm[off : off + ID_BYTES]
            if head == ident:
                return off
            if head[0] == 0:
                if not insert:
                    return None
                mm[off : off + ID_BYTES] = ident
                return off
        return None

    def _compact(self) -> None:
        """Drop entries with nothing in flight (the table only grows otherwise)."""
        stride, counts = self._stride, self._counts
        live = []
        for n in range(ENTRIES):
            off = n * stride
            if self._mm[off] != 0:
                values = counts.unpack_from(self._mm, off + ID_BYTES)
                if any(values):
                    live.append((self._mm[off : off + ID_BYTES], values))
        self._mm[:] = bytes(len(self._mm))
        for ident, values in live:
            off = self._find(ident, insert=True)
            counts.pack_into(self._mm, off + ID_BYTES, *values)

    # -- the API -----------------------------------------------------------------------------
    def acquire(self, key_id: str, limit: int, column: int) -> int | None:
        """Count one more request of `key_id` unless `limit` are in flight; returns None when
        counted, else how many are in flight."""
        ident = self._id(key_id)
        self._lock.acquire()
        try:
            off = self._find(ident, insert=True)
            if off is None:
                self._compact()
                off = self._find(ident, insert=True)
                if off is None:  # ENTRIES keys in flight at once: count nothing, refuse nothing
                    log.error("in-flight table full: %d keys", ENTRIES)
                    return None
            base = off + ID_BYTES
            total = sum(self._counts.unpack_from(self._mm, base))
            if total >= limit:
                return total
            at = base + 4 * column
            self._one.pack_into(self._mm, at, self._one.unpack_from(self._mm, at)[0] + 1)
            return None
        finally:
            self._lock.release()

    def release(self, key_id: str, column: int) -> None:
        ident = self._id(key_id)
        self._lock.acquire()
        try:
            off = self._find(ident, insert=False)
            if off is not None:
                at = off + ID_BYTES + 4 * column
                held = self._one.unpack_from(self._mm, at)[0]
                if held > 0:
                    self._one.pack_into(self._mm, at, held - 1)
        finally:
            self._lock.release()

    def in_flight(self, key_id: str) -> int:
        ident = self._id(key_id)
        self._lock.acquire()
        try:
            off = self._find(ident, insert=False)
            return 0 if off is None else sum(self._counts.unpack_from(self._mm, off + ID_BYTES))
        finally:
            self._lock.release()

    def clear_column(self, column: int) -> None:
        """Give back everything a (dead) worker held."""
        self._lock.acquire()
        try:
            stride = self._stride
            for n in range(ENTRIES):
                off = n * stride
                if self._mm[off] != 0:
                    self._one.pack_into(self._mm, off + ID_BYTES + 4 * column, 0)
        finally:
            self._lock.release()

    def close(self) -> None:
        self._lock.close()
        self._mm.close()


# -- this process's table and column ---------------------------------------------------------
_table: SlotTable | None = None
_column = 0


def create_shared(workers: int) -> SlotTable:
    """In gunicorn's master, before any worker is forked."""
    global _table
    _table = SlotTable(columns_for(workers))
    return _table


def shared() -> SlotTable | None:
    return _table


def use_column(column: int) -> None:
    """In a freshly forked worker: the column the master gave it."""
    global _column
    _column = column


def local() -> tuple[SlotTable, int]:
    """This process's table and column (a private table outside gunicorn)."""
    global _table
    if _table is None:
        _table = SlotTable(1, shared=False)
    return _table, _column

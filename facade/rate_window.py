"""rpm and tpm counts per key, in memory shared by the workers of one instance.

Without Redis a key's rpm and tpm are limits of one instance (`FACADE_REDIS_URL` unset), so
counting them needs no store round trip. Like the in-flight table (`inflight.py`), the
counts live in an anonymous shared mmap made in gunicorn's master before it forks, and a
check and its count run under an fcntl record lock (the kernel drops it if its holder dies)
and a thread lock (record locks do not exclude the threads of one process): exact across
workers, so of 20 requests at once on an rpm of 10 exactly 10 pass.

An entry is a key id, the latest second it has counted in (its head) and a ring of 60
one-second slots (requests, tokens) indexed by the second mod 60. A request counts from the
start of the second it arrived in until 60 s later. Moving the head forward zeroes the slots
that have left the window (a slice write or two), so the ring holds nothing else and the
window's sums are one unpack and a C-speed `sum` each: no per-slot Python loop on the way in,
a few microseconds a call, lock included. Only a refusal lists the slots (for Retry-After).

Bounded: `ENTRIES` hash positions, at most `MAX_KEYS` keys counted in the last minute (an
entry whose window is empty is taken over by the next new key, and the table is compacted
when it fills up). A new key beyond that is refused (`TableFull`; the caller answers 503 and
logs an error) rather than let through uncounted: limits never silently stop, and the keys
already counted keep being served; an entry frees within 60 s of its key's last request.

A SIGKILLed worker's requests stay counted (they did arrive); the tpm correction of those it
had in flight never comes, so its key's window stays stricter for at most a minute. Killed
in the middle of a write, it leaves at most one request's tokens uncounted, for a minute.

Outside gunicorn (Flask's test client, the CLI) each user makes a private table with no
cross-process lock. This module is imported by gunicorn's master: standard library only.
"""

from __future__ import annotations

import mmap
import struct
import zlib

from .shared_lock import SharedLock

WINDOW_S = 60
ENTRIES = 8192  # hash positions; 6 MB of address space, touched only where keys land
ID_BYTES = 40  # api key ids are at most 40 characters (the api_keys.id column)
HEADER = 64  # the table's own header: the number of entries in use

_HEAD = struct.Struct("=q")  # an entry's head second, after its id
_REQUESTS = struct.Struct(f"={WINDOW_S}I")  # requests per slot
_TOKENS = struct.Struct(f"={WINDOW_S}q")  # tokens per slot
_REQ_AT = ID_BYTES + _HEAD.size
_TOK_AT = _REQ_AT + _REQUESTS.size
STRIDE = _TOK_AT + _TOKENS.size  # 768 bytes an entry
_ONE_REQ = struct.Struct("=I")
_ONE_TOK = struct.Struct("=q")
_USED = struct.Struct("=q")
_ZERO_REQUESTS = bytes(_REQUESTS.size)
_ZERO_TOKENS = bytes(_TOKENS.size)


class Refused(Exception):
    """Over the limit: `kind` ("rpm" or "tpm"), what the window holds (`used`) and its slots
    as (second, amount), oldest first."""

    def __init__(self, kind: str, used: int, slots: list[tuple[int, int]]) -> None:
        super().__init__(kind)
        self.kind = kind
        self.used = used
        self.slots = slots


class TableFull(Exception):
    """`MAX_KEYS` keys were counted in the last minute: no room for one more."""


def _ident(key_id: str) -> bytes:
    raw = key_id.encode()
    if len(raw) > ID_BYTES or not raw:
        raw = b"#" + format(zlib.crc32(raw), "08x").encode() + raw[-(ID_BYTES - 9) :]
    return raw.ljust(ID_BYTES, b"\0")


class RateTable:
    def __init__(self, entries: int = ENTRIES, *, shared: bool = True) -> None:
        self.entries = entries
        self.max_keys = entries * 3 // 4  # linear probing stays short below three quarters
        self._mm = mmap.mmap(-1, HEADER + entries * STRIDE)  # anonymous: MAP_SHARED on Unix
        self._lock = SharedLock("rates", shared=shared)

    # -- entries ---------------------------------------------------------------------------
    def _find(self, ident: bytes, second: int, insert: bool) -> int | None:
        """The entry's offset. With `insert`, a new key takes the first entry on its probe
        path whose window is empty, else the empty position that ends the path."""
        mm = self._mm
        start = zlib.crc32(ident) % self.entries
        off = HEADER + start * STRIDE
        if mm[off : off + ID_BYTES] == ident:  # most keys sit at their first position
            return off
        stale = None
        for i in range(self.entries):
            off = HEADER + ((start + i) % self.entries) * STRIDE
            if mm[off] == 0:  # never used: the key is not further on
                break
            if mm[off : off + ID_BYTES] == ident:
                return off
            if insert and stale is None:
                if second - _HEAD.unpack_from(mm, off + ID_BYTES)[0] >= WINDOW_S:
                    stale = off
        else:
            off = None
        if not insert:
            return None
        if stale is not None:  # its old key had nothing left in the window
            mm[stale : stale + ID_BYTES] = ident
            return stale
        (used,) = _USED.unpack_from(mm, 0)
        if used >= self.max_keys or off is None:
            if not self._compact(second):
                raise TableFull
            return self._place(ident)
        return self._place(ident, off)

    def _place(self, ident: bytes, off: int | None = None) -> int:
        """Put a new key in the empty position `off` (found by probing when None)."""
        mm = self._mm
        if off is None:
            start = zlib.crc32(ident) % self.entries
            for i in range(self.entries):
                off = HEADER + ((start + i) % self.entries) * STRIDE
                if mm[off] == 0:
                    break
        mm[off : off + STRIDE] = bytes(STRIDE)
        mm[off : off + ID_BYTES] = ident
        _USED.pack_into(mm, 0, _USED.unpack_from(mm, 0)[0] + 1)
        return off

    def _compact(self, second: int) -> bool:
        """Drop every key whose window is empty; True if there is room for one more."""
        mm = self._mm
        live = []
        for n in range(self.entries):
            off = HEADER + n * STRIDE
            if mm[off] != 0 and second - _HEAD.unpack_from(mm, off + ID_BYTES)[0] < WINDOW_S:
                live.append(mm[off : off + STRIDE])
        mm[:] = bytes(len(mm))
        for entry in live:
            off = self._place(entry[:ID_BYTES])
            mm[off : off + STRIDE] = entry
        return len(live) < self.max_keys

    def _advance(self, off: int, second: int) -> int:
        """Move the entry's head to `second`, zeroing the slots that left the window; returns
        the second to count in (the head's, if another process already counted later)."""
        mm = self._mm
        (head,) = _HEAD.unpack_from(mm, off + ID_BYTES)
        if second <= head:
            return head
        req, tok = off + _REQ_AT, off + _TOK_AT
        if second - head >= WINDOW_S:
            mm[req : req + _REQUESTS.size] = _ZERO_REQUESTS
            mm[tok : tok + _TOKENS.size] = _ZERO_TOKENS
        else:  # the positions of head+1 .. second held seconds now out of the window
            first = (head + 1) % WINDOW_S
            spans = [(first, first + second - head)]
            if spans[0][1] > WINDOW_S:
                spans = [(first, WINDOW_S), (0, spans[0][1] - WINDOW_S)]
            for a, b in spans:
                mm[req + 4 * a : req + 4 * b] = _ZERO_REQUESTS[: 4 * (b - a)]
                mm[tok + 8 * a : tok + 8 * b] = _ZERO_TOKENS[: 8 * (b - a)]
        # Last, so that a writer killed before this line leaves the old head: the next call
        # zeroes the same slots again.
        _HEAD.pack_into(mm, off + ID_BYTES, second)
        return second

    @staticmethod
    def _slots(amounts: tuple[int, ...], head: int) -> list[tuple[int, int]]:
        seconds = range(head - WINDOW_S + 1, head + 1)
        return [(s, amounts[s % WINDOW_S]) for s in seconds if amounts[s % WINDOW_S]]

    # -- the API -----------------------------------------------------------------------------
    def admit(self, key_id: str, rpm: int, tpm: int, tokens: int, now: float) -> int:
        """Count one request and `tokens` unless the window would then pass `rpm` or `tpm`
        (0: no such limit); returns the second it was counted in (its slot). Raises
        `Refused` (counting nothing) or `TableFull`."""
        ident = _ident(key_id)
        self._lock.acquire()
        try:
            mm = self._mm
            off = self._find(ident, int(now), insert=True)
            second = self._advance(off, int(now))
            requests = _REQUESTS.unpack_from(mm, off + _REQ_AT)
            used = sum(requests)
            if rpm and used + 1 > rpm:
                raise Refused("rpm", used, self._slots(requests, second))
            at = second % WINDOW_S
            if tokens or tpm:
                counted = _TOKENS.unpack_from(mm, off + _TOK_AT)
                used_tokens = sum(counted)
                if tpm and used_tokens + tokens > tpm:
                    raise Refused("tpm", used_tokens, self._slots(counted, second))
                _ONE_TOK.pack_into(mm, off + _TOK_AT + 8 * at, counted[at] + tokens)
            _ONE_REQ.pack_into(mm, off + _REQ_AT + 4 * at, requests[at] + 1)
            return second
        finally:
            self._lock.release()

    def check_rpm(self, key_id: str, rpm: int, now: float) -> None:
        """Raise `Refused` if one more request would pass `rpm`; counts nothing."""
        ident = _ident(key_id)
        self._lock.acquire()
        try:
            off = self._find(ident, int(now), insert=False)
            if off is None:
                return
            second = self._advance(off, int(now))
            requests = _REQUESTS.unpack_from(self._mm, off + _REQ_AT)
            used = sum(requests)
            if used + 1 > rpm:
                raise Refused("rpm", used, self._slots(requests, second))
        finally:
            self._lock.release()

    def adjust(self, key_id: str, slot: int, requests: int, tokens: int) -> None:
        """Add to one slot's counts (a refund, a tpm correction at settle), never below zero;
        nothing once the slot has left the window (a late correction must not revive it)."""
        ident = _ident(key_id)
        self._lock.acquire()
        try:
            mm = self._mm
            off = self._find(ident, slot, insert=False)
            if off is None:
                return
            (head,) = _HEAD.unpack_from(mm, off + ID_BYTES)
            if not head - WINDOW_S < slot <= head:
                return
            at = slot % WINDOW_S
            if requests:
                where = off + _REQ_AT + 4 * at
                _ONE_REQ.pack_into(mm, where, max(0, _ONE_REQ.unpack_from(mm, where)[0] + requests))
            if tokens:
                where = off + _TOK_AT + 8 * at
                _ONE_TOK.pack_into(mm, where, max(0, _ONE_TOK.unpack_from(mm, where)[0] + tokens))
        finally:
            self._lock.release()

    def close(self) -> None:
        self._lock.close()
        self._mm.close()


# -- this instance's table ------------------------------------------------------------------
_table: RateTable | None = None


def create_shared() -> RateTable:
    """In gunicorn's master, before any worker is forked."""
    global _table
    _table = RateTable()
    return _table


def shared() -> RateTable | None:
    """The table gunicorn's master made, if this process is one of its workers."""
    return _table

"""Usage records and settlements: journaled at once, written to the store in batches.

A request's end appends its settlement to this worker's journal (one local `os.write`, see
`journal.py`) and to an in-memory queue; no store round trip. A background thread (a
greenlet under gunicorn's gevent worker) writes the queue every `flush_s` in one idempotent
transaction (`ledger.py`): usage rows, spend, holds given back; then the journal segments it
covered are removed. Until a settlement is written its hold stays, so a late flush makes a
budget stricter for a moment, never overspent. With Redis the holds live there
(`redis_budget.py`): once the transaction has committed, one script call mirrors the new
spend and gives the batch's holds back, and the tpm corrections of the new rows go there too
(without Redis each was made in memory as its request settled). `close()` (gunicorn's
`worker_exit` hook, through `app.facade_close`) writes what is left.

Every `lease_s / 3` the same thread renews this worker's lease and sweeps: it replays the
journal of any dead worker of this machine (one whose journal lock is free) and gives back
that worker's holds, then gives back the holds of owners anywhere whose lease ran out (in the
database and in Redis). A new worker sweeps once as it starts, so a restarted instance
settles and releases at once.

It also prunes usage rows older than the retention period (at start and once a day).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path

from . import Store
from .db import sqlite_path
from .journal import Journal, dead_owners, forget, live_owners, read_records, segments
from .ledger import Ledger, Settlement

log = logging.getLogger("facade.usage")

PRUNE_USAGE = "DELETE FROM usage_records WHERE ts < ?"
MAX_QUEUE = 200_000  # past this (a long store outage) the journal alone keeps the rest
PRUNE_USAGE_EVERY_S = 86400.0
REPLAY_BATCH = 2000
FLUSH_CHUNK = 48  # settlements per transaction of a flush (a SQLite one holds the worker)

__all__ = ["Settlement", "UsageWriter", "instance_id", "journal_root"]


def journal_root(journal_dir: str | None, database_url: str) -> Path:
    """The usage journal of this database: FACADE_JOURNAL_DIR, else beside the SQLite file,
    else in the temp directory; one subdirectory per database, so instances on different
    databases never replay each other's journals."""
    if journal_dir:
        base = Path(journal_dir)
    else:
        db_file = sqlite_path(database_url)
        base = db_file.parent / "journal" if db_file else Path(tempfile.gettempdir())
        if not db_file:
            base = base / "facade-journal"
    return base / hashlib.sha256(database_url.encode()).hexdigest()[:12]


def instance_id(journal_root: Path) -> str:
    """This machine and journal directory: the workers that can see each other's locks."""
    seed = f"{socket.gethostname()}:{journal_root.resolve()}"
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


class UsageWriter:
    def __init__(
        self,
        store: Store,
        redis_rates=None,
        holds=None,
        *,
        flush_s: float,
        retention_days: int,
        journal_root: Path | None = None,
        lease_s: float = 30.0,
    ) -> None:
        self.store = store
        self.redis = redis_rates
        # Where budget holds live when not in the database: Redis (`redis_budget.py`) or,
        # for SQLite, memory the instance's workers share (`hold_table.py`).
        self.holds = holds
        self.flush_s = flush_s
        self.retention_days = retention_days
        self.lease_s = lease_s
        self.ledger = Ledger(store)
        self.owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        # Made on first use (a settlement, or the lease taken by the first periodic sweep), so
        # a process that never serves (a CLI command) leaves no journal and no lease behind.
        self.journal: Journal | None = None
        self.journal_root = journal_root
        self.instance = instance_id(journal_root) if journal_root is not None else ""
        self._queue: deque[Settlement] = deque()
        self._overflowed = False
        # (owner, spent, settlements, new row ids) the database has settled but the holds
        # have not yet.
        self._unsettled: list[tuple[str, dict, list, set | None]] = []
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # -- the request path ----------------------------------------------------------------
    def add(self, settlement: Settlement) -> None:
        """Journal the settlement (durable against a crash of this process) and queue it."""
        journal = self.journal or self._open_journal()
        if journal is not None:
            journal.append(settlement.record())
        self._queue.append(settlement)
        if len(self._queue) > MAX_QUEUE:
            self._queue.popleft()
            self._overflowed = True
        if self._thread is None:
            self.start()

    # -- the background thread -----------------------------------------------------------
    def open_journal(self) -> None:
        """Make this worker's journal now (siblings see a worker without one as dead)."""
        self._open_journal()

    def _open_journal(self) -> Journal | None:
        if self.journal is None and self.journal_root is not None and not self._stop.is_set():
            self.journal = Journal(self.journal_root, self.owner)
        return self.journal

    @property
    def idle(self) -> bool:
        """The background thread is not running yet."""
        return self._thread is None

    def start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="facade-usage", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        next_usage = next_sweep = 0.0
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # keep the thread alive: the store may come back
                log.exception("writing usage failed; will retry")
            try:
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + self.lease_s / 3
                    self.sweep()
                if now >= next_usage:
                    next_usage = now + PRUNE_USAGE_EVERY_S
                    self.prune_usage()
            except Exception:
                log.exception("the usage sweep failed; will retry")

    def flush(self) -> int:
        """Write everything queued so far; returns how many requests were written."""
        with self._flush_lock:
            n = len(self._queue)
            if not n and not self._overflowed:
                if self._unsettled:
                    self._settle_holds()
                return 0
            batch = [self._queue.popleft() for _ in range(n)]
            journal = self.journal
            if journal is not None:
                journal.rotate()  # what is added from now on goes to a new segment
            try:
                if self._overflowed and journal is not None:
                    # The queue dropped some: the closed segments hold them all.
                    self._replay(journal.closed_segments)
                    self._overflowed = False
                elif batch:
                    self._write(batch)
            except Exception:
                self._queue.extendleft(reversed(batch))
                while len(self._queue) > MAX_QUEUE:
                    self._queue.popleft()
                    self._overflowed = True
                raise
            if journal is not None:
                journal.discard_closed()
            return n

    def _write(self, batch: list[Settlement]) -> None:
        """One transaction per `FLUSH_CHUNK` settlements, with a turn for the worker's requests
        between them: a SQLite write never yields, and a whole batch of a few hundred rows
        would hold a request up for milliseconds. A chunk written again (a later one failed
        and the batch is retried) counts once: rows and spend by the ledger's idempotence,
        holds in memory by being given back only for rows this write inserted."""
        for start in range(0, len(batch), FLUSH_CHUNK):
            if start:
                time.sleep(0)  # under gevent, a turn for the worker's other greenlets
            self._write_chunk(batch[start : start + FLUSH_CHUNK])

    def _write_chunk(self, batch: list[Settlement]) -> None:
        spent = {} if self.holds is not None else None
        new: set[str] = set()
        tokens = self.ledger.write(batch, spent=spent, new=new)
        if self.holds is not None:
            self._settle_holds(self.owner, spent, batch, new)
        if tokens and self.redis is not None:
            try:
                self.redis.correct(tokens)
            except Exception:  # the window only stays stricter for a minute
                log.warning("could not correct token counts in Redis", exc_info=True)

    def _settle_holds(
        self,
        owner: str | None = None,
        spent: dict | None = None,
        batch: list = (),
        new: set | None = None,
    ) -> None:
        """After the database committed: mirror its spend and give the batch's holds back
        where they live. Kept and retried with the next flush when that fails (Redis down):
        until then the holds stay, and the budget is stricter, never overspent."""
        pending, self._unsettled = self._unsettled, []
        if owner is not None:
            pending.append((owner, spent or {}, [s for s in batch if s.held], new))
        for i, (who, amounts, held, inserted) in enumerate(pending):
            try:
                self.holds.settle(who, amounts, held, inserted)
            except Exception as err:
                self._unsettled = pending[i:]
                log.warning("could not give budget holds back: %s", type(err).__name__)
                return

    def _replay(self, paths: list[Path], owner: str | None = None) -> int:
        """Write journaled settlements (of `owner`, a dead worker, else this one's)."""
        batch = [Settlement.from_record(r) for r in read_records(paths)]
        written = 0
        for i in range(0, len(batch), REPLAY_BATCH):
            chunk = batch[i : i + REPLAY_BATCH]
            spent = {} if self.holds is not None else None
            new: set[str] = set()
            self.ledger.write(chunk, spent=spent, new=new)  # no tpm correction: slots gone
            if spent is not None:
                self._settle_holds(owner or self.owner, spent, chunk, new)
            written += len(chunk)
        return written

    # -- leases and the sweep ------------------------------------------------------------
    def sweep(self, *, register: bool = True) -> dict[str, int]:
        """Renew this worker's lease; settle and release what dead workers left.

        Returns counts, for logs and tests: journal lines replayed, owners reclaimed and
        nano-dollars given back."""
        if register:
            # The journal first: a sibling that sees this lease but no journal directory
            # takes this worker for dead.
            self._open_journal()
            self.ledger.renew(self.owner, self.instance, self.lease_s)
        done = {"replayed": 0, "owners": 0, "released_nusd": 0}
        if self.journal_root is not None:
            root = self.journal_root
            for owner, directory in dead_owners(root, skip=self.owner):
                # Settle what it answered first, then release what it still held: the other
                # order would free budget that its answered requests had spent.
                done["replayed"] += self._replay(segments(directory), owner)
                self._reclaim(owner, done)
                forget(directory)
            local = live_owners(root)
            for owner in self.ledger.instance_owners(self.instance):
                if owner not in local:  # its journal is gone: it is not running here
                    self._reclaim(owner, done)
        now = time.time()
        for owner in self.ledger.expired_owners(now):
            self._reclaim(owner, done)
        for owner in self.ledger.orphan_owners(now - self.lease_s):
            if owner != self.owner:
                self._reclaim(owner, done)
        if self.holds is not None:  # holds of owners with no lease row and no live journal
            live = live_owners(self.journal_root) if self.journal_root is not None else set()
            for owner in self.holds.quiet_owners(now - self.lease_s):
                if owner != self.owner and owner not in live and not self.ledger.leased(owner):
                    self._reclaim(owner, done)
        if done["replayed"] or done["released_nusd"]:
            log.warning(
                "recovered from dead workers: %d usage records replayed, holds of %d owners "
                "given back ($%.6f)",
                done["replayed"],
                done["owners"],
                done["released_nusd"] / 1e9,
            )
        return done

    def _reclaim(self, owner: str, done: dict[str, int]) -> None:
        done["released_nusd"] += self.reclaim(owner)
        done["owners"] += 1

    def reclaim(self, owner: str) -> int:
        """Give back what `owner` holds, in the database and where holds live; returns
        nano-dollars."""
        freed = 0
        if self.holds is not None:
            freed += self.holds.reclaim(owner)
        return freed + self.ledger.reclaim(owner)

    # -- housekeeping --------------------------------------------------------------------
    def prune_usage(self) -> int:
        """Delete usage rows older than the retention period (0 days: keep everything)."""
        if self.retention_days <= 0:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        with self.store.transaction() as conn:
            return conn.exec_driver_sql(self.store.q(PRUNE_USAGE), (cutoff,)).rowcount

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        clean = False
        try:
            self.flush()
            # In-flight requests are over (the graceful timeout): whatever is still held
            # was never going to settle.
            self.reclaim(self.owner)
            clean = True
        except Exception:
            log.exception("could not write the last usage records at shutdown")
        if self.journal is not None:
            # Kept when the store failed: the next start (or a sibling) replays it.
            self.journal.close(remove=clean)
            self.journal = None

"""The usage journal: each worker appends its settlements to local files before it answers.

Why: usage is written to the store in batches, off the request path; a worker killed between
an answer and the next batch would lose those rows. One `os.write` to an append-only file
costs a few microseconds and no store round trip; the page cache keeps it when the process
is killed (SIGKILL, OOM), so whoever replays the file later finds every answered request.
No fsync: a power cut of the machine may lose the last writes (as SQLite's own
`synchronous=NORMAL` may); a process crash never does.

Layout: `<root>/<owner>/lock` and `<root>/<owner>/seg-<n>.jsonl`, one JSON line per request.
The owner (one worker) holds an exclusive `flock` on its lock file for its whole life; the
kernel drops it when the process dies, however it dies. So another process that gets the
lock knows the owner is dead and may replay and remove its files (`dead_owners`). A segment
is closed at each batch write (`rotate`) and removed once the batch is in the store.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..jsonutil import JSONDecodeError, dumps, loads

log = logging.getLogger("facade.usage")

LOCK = "lock"
PREFIX = "seg-"


class Journal:
    """One owner's append-only segments."""

    def __init__(self, root: Path, owner: str) -> None:
        self.root = root
        self.owner = owner
        self.dir = root / owner
        root.mkdir(parents=True, exist_ok=True)
        # Made under a hidden name, locked, then renamed into place: a sweeper never sees
        # a live owner's directory unlocked.
        hidden = root / f".new-{owner}"
        hidden.mkdir()
        self._lock_fd = os.open(hidden / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        hidden.rename(self.dir)
        self._n = 0
        self._fd = -1
        self._lock = threading.Lock()  # append vs rotate, when requests run in threads
        self.closed_segments: list[Path] = []
        self._open_next()

    def _open_next(self) -> None:
        self._n += 1
        self.current = self.dir / f"{PREFIX}{self._n:08d}.jsonl"
        self._fd = os.open(self.current, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._written = False

    def append(self, record: list) -> None:
        line = dumps(record) + b"\n"
        with self._lock:
            os.write(self._fd, line)
            self._written = True

    def rotate(self) -> None:
        """Close the current segment (if it holds anything) and start the next one."""
        with self._lock:
            if not self._written:
                return
            os.close(self._fd)
            self.closed_segments.append(self.current)
            self._open_next()

    def discard_closed(self) -> None:
        """The closed segments are in the store: remove them."""
        for path in self.closed_segments:
            path.unlink(missing_ok=True)
        self.closed_segments.clear()

    def close(self, *, remove: bool) -> None:
        """Stop journaling; `remove` when everything is in the store (a clean exit)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
        os.close(self._lock_fd)


def segments(directory: Path) -> list[Path]:
    """A journal directory's segments, oldest first."""
    return sorted(directory.glob(f"{PREFIX}*.jsonl"))


def read_records(paths: list[Path]) -> list[list]:
    """Every complete line of the segments `paths`, in order."""
    records: list[list] = []
    for path in paths:
        for line in path.read_bytes().split(b"\n"):
            if not line:
                continue
            try:
                records.append(loads(line))
            except JSONDecodeError:  # a line torn by a machine crash: nothing to recover
                log.warning("skipping a torn usage journal line in %s", path.name)
    return records


@contextmanager
def _locked(directory: Path) -> Iterator[bool]:
    try:
        fd = os.open(directory / LOCK, os.O_RDWR)
    except OSError:  # being removed by another sweeper
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # alive
            return
        # Gone meanwhile (another sweeper replayed it) or never finished: nothing to do.
        yield directory.is_dir()
    finally:
        os.close(fd)


def dead_owners(root: Path, *, skip: str = "") -> Iterator[tuple[str, Path]]:
    """(owner, directory) of each journal whose process is dead, locked while the caller
    replays it; the caller removes the directory with `forget` when done."""
    if not root.is_dir():
        return
    for directory in sorted(root.iterdir()):
        name = directory.name
        if name.startswith(".") or name == skip or not directory.is_dir():
            continue
        with _locked(directory) as dead:
            if dead:
                yield name, directory


def forget(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def live_owners(root: Path) -> set[str]:
    """Owners with a journal directory here (alive, or dead and not yet replayed)."""
    if not root.is_dir():
        return set()
    return {p.name for p in root.iterdir() if not p.name.startswith(".")}

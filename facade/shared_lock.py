"""The lock of a table in memory shared by forked workers (`inflight.py`, `rate_window.py`,
`hold_table.py`).

Two locks in one: an fcntl record lock on a temporary file made before the fork excludes the
other processes (the kernel drops it if its holder dies, however it dies), and a thread lock
excludes the threads of this process, which one record lock does not. A thread lock made
before a fork is not the child's own, so each process makes its own on first use. About two
system calls and a few microseconds per acquire. Standard library only: imported by
gunicorn's master.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading


class SharedLock:
    def __init__(self, name: str, *, shared: bool = True) -> None:
        """`shared`: forked processes use the table (else the thread lock alone will do)."""
        self._file = tempfile.TemporaryFile(prefix=f"facade-{name}-") if shared else None
        self._thread_lock = threading.Lock()
        self._pid = os.getpid()

    def acquire(self) -> None:
        if self._pid != os.getpid():  # a lock made before fork is not this process's own
            self._pid = os.getpid()
            self._thread_lock = threading.Lock()
        self._thread_lock.acquire()
        if self._file is not None:
            fcntl.lockf(self._file, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._file is not None:
            fcntl.lockf(self._file, fcntl.LOCK_UN)
        self._thread_lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

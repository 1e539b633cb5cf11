"""Stored Responses API answers: written once, read back by the key that made them only.

A row holds the `response` object as answered and the chat conversation behind it (input and
output as chat messages), which `previous_response_id` continues from. Rows older than the
usage retention period are deleted (at start, then at most once a day, on a write), so stored
prompts live no longer than the usage records of the same requests.
"""

from __future__ import annotations

import logging
import time

from .. import jsonutil
from . import Store

log = logging.getLogger("facade.responses")

INSERT = "INSERT INTO stored_responses (id, key_id, created_at, body) VALUES (?, ?, ?, ?)"
SELECT = "SELECT body FROM stored_responses WHERE id = ? AND key_id = ?"
PRUNE = "DELETE FROM stored_responses WHERE created_at < ?"
PRUNE_EVERY_S = 86400.0


class ResponseStore:
    def __init__(self, store: Store, *, retention_days: int) -> None:
        self.store = store
        self.retention_days = retention_days
        self._insert, self._select, self._prune = store.q(INSERT), store.q(SELECT), store.q(PRUNE)
        self._next_prune = 0.0

    def save(self, response_id: str, key_id: str, response: dict, context: list[dict]) -> None:
        """Keep one answered response and its conversation (a fresh id: never an update)."""
        body = jsonutil.dumps({"response": response, "context": context}).decode()
        row = (response_id, key_id, float(response["created_at"]), body)
        self.store.autocommit(lambda cur: cur.execute(self._insert, row))
        if time.monotonic() >= self._next_prune:
            self.prune()

    def get(self, response_id: str, key_id: str) -> dict | None:
        """`{"response", "context"}` when this key stored that id; None otherwise (another
        key's response is not told apart from a missing one)."""
        rows = self.store.autocommit(
            lambda cur: cur.execute(self._select, (response_id, key_id)).fetchall()
        )
        return jsonutil.loads(rows[0][0]) if rows else None

    def prune(self) -> int:
        """Delete stored responses older than the retention period (0 days: keep all)."""
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        if self.retention_days <= 0:
            return 0
        cutoff = time.time() - self.retention_days * 86400
        return self.store.autocommit(lambda cur: cur.execute(self._prune, (cutoff,)).rowcount)

"""One admitted request, from admission until it settles or is released, exactly once.

`StoreAccounting.admit` (accounting.py) makes a `StoreAdmission` once the request's limits,
parallel slot and budget hold are counted; the pipeline settles it with the measured call or
releases it when no upstream answered. Either way it gives the parallel slot back, corrects
the tpm estimate, and hands the usage row to the writer (journal first, `store/usage.py`).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from .config import ModelConfig
from .errors import FacadeError
from .parallel import ParallelSlot
from .store.schema import NANO
from .store.usage import Settlement


class Admission(Protocol):
    def settle(
        self, model: ModelConfig, metrics: dict, request_id: str, status: int = 200
    ) -> None: ...

    def release(self, error: BaseException | None = None) -> None: ...


class FreeAdmission:
    """What a gateway without a store admits: nothing to count, nothing to record."""

    def settle(self, model: ModelConfig, metrics: dict, request_id: str, status: int = 200) -> None:
        return None

    def release(self, error: BaseException | None = None) -> None:
        return None


class StoreAdmission:
    """One admitted request; settles or releases exactly once."""

    __slots__ = (
        "acct", "key", "first", "request_id", "client_request_id", "ts", "day", "period_start",
        "reserved", "slot", "tokens", "parallel", "session_id", "cached",
    )  # fmt: skip

    def __init__(
        self, acct, key, plan, request_id, ts, period_start, session_id=None, cached=False,
        client_request_id=None,
    ):  # fmt: skip
        self.acct = acct
        self.cached = cached  # a cache hit: no tokens counted against tpm, no budget held
        self.session_id = session_id
        self.key = key
        self.first = plan[0]
        self.request_id = request_id  # server-made, unique: the usage row's key
        self.client_request_id = client_request_id
        self.ts = ts
        self.day = acct.clock.day(ts)
        self.period_start = period_start
        self.reserved = 0
        self.slot: int | None = None
        self.tokens = 0
        self.parallel: ParallelSlot | None = None

    def _give_back_slot(self) -> None:
        """The request is over: its parallel slot is free again (once)."""
        parallel, self.parallel = self.parallel, None
        if parallel is not None:
            parallel.release()

    def _tpm_correction(self, acct: Any, used: int) -> int:  # a StoreAccounting
        """tpm: the estimate counted at admission out, the `used` tokens in. Without Redis it is
        made in the shared window at once; with Redis the writer makes it (new rows only)."""
        if self.slot is None or not self.key.tpm or self.cached:
            return 0
        delta = used - self.tokens
        if delta and acct.rates is not None:
            acct.rates.correct(self.key.id, self.slot, delta)
            return 0
        return delta

    def _row(
        self, model, provider, upstream, tokens_in, tokens_out, cost, latency, status, ttft,
        cached, hit,
    ) -> tuple:  # fmt: skip
        """The usage_records row, in ledger.USAGE_COLUMNS order."""
        return (
            self.ts, self.day, self.key.id, model, provider, upstream, tokens_in, tokens_out,
            cost, latency, status, self.client_request_id or self.request_id, ttft, cached,
            self.session_id, hit, self.request_id,
        )  # fmt: skip

    def settle(self, model: ModelConfig, metrics: dict, request_id: str, status: int = 200) -> None:
        """Record the measured call; `request_id` is the caller-facing id, unused here (the
        row is keyed by the admission's own server-made id)."""
        self._give_back_slot()
        if self.acct is None:
            return
        acct, self.acct = self.acct, None
        cost = round(metrics["cost_usd"] * NANO)
        used = metrics["input_tokens"] + metrics["output_tokens"]
        usage = self._row(
            model.name, metrics.get("provider"), metrics.get("upstream_model"),
            metrics["input_tokens"], metrics["output_tokens"], cost,
            metrics.get("latency_s", 0.0), status, metrics.get("time_to_first_token_s"),
            metrics.get("cached_input_tokens", 0), bool(metrics.get("cache_hit")),
        )  # fmt: skip
        delta = self._tpm_correction(acct, used)
        acct.writer.add(
            Settlement(usage, self.key.id, self.period_start, cost, self.reserved, self.slot,
                       delta)
        )  # fmt: skip

    def release(self, error: BaseException | None = None) -> None:
        """The call failed before any answer: nothing spent; the reservation goes back."""
        self._give_back_slot()
        if self.acct is None:
            return
        acct, self.acct = self.acct, None
        status = error.status if isinstance(error, FacadeError) else 502
        model, target = self.first
        latency = round(time.time() - self.ts, 6)
        usage = self._row(
            model.name, target.provider, target.model, 0, 0, 0, latency, status, None, 0, False
        )
        delta = self._tpm_correction(acct, 0)
        acct.writer.add(
            Settlement(usage, self.key.id, self.period_start, 0, self.reserved, self.slot,
                       delta)
        )  # fmt: skip

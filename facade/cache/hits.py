"""Serving a cache hit, whole or as a replayed stream, and storing a finished stream.

A hit is admitted like any request but asks only for a request (rpm) and a parallel slot:
no tokens, no budget. It settles with zero cost and its usage row says it was a hit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..accounting import Accounting, Admission
from ..config import ModelConfig, TargetConfig
from ..errors import FacadeError
from ..keys import ApiKey
from ..metering import Meter, usage_of
from ..outcome import Outcome
from ..providers import ChatCall, ChunkStream
from . import Lookup, ResponseCache, hit_metrics
from .replay import ReplayStream, assemble, replay

Plan = list[tuple[ModelConfig, TargetConfig]]


class Replay(NamedTuple):
    """What the pipeline needs to present a replayed hit as an opened stream."""

    first: dict
    rest: ChunkStream
    call: ChatCall
    provider: str
    meter: Meter
    finish: Callable[[dict | None, FacadeError | None], dict]


def model_named(plan: Plan, name: str | None) -> ModelConfig:
    """The plan's model of that name (the one that answered the original), else the first."""
    for model, _target in plan:
        if model.name == name:
            return model
    return plan[0][0]


def _record(outcome: Outcome, model: ModelConfig, original: dict, metrics: dict) -> None:
    outcome.attempts = 0
    outcome.model = model.name
    outcome.provider = original.get("provider")
    outcome.upstream_model = original.get("upstream_model")
    outcome.metrics = metrics
    outcome.cache_saved_usd = original.get("cost_usd") or 0.0


def _admit(
    accounting: Accounting, plan: Plan, body: dict, key: ApiKey, request_id: str, outcome: Outcome
) -> Admission:
    outcome.admission_tried = True
    try:
        return accounting.admit(
            key, plan, body, request_id, session_id=outcome.session_id, cached=True
        )
    except BaseException:
        outcome.cache = None  # refused (429): nothing was served from the cache
        raise


def answer_hit(
    accounting: Accounting,
    answer: dict,
    plan: Plan,
    body: dict,
    key: ApiKey,
    request_id: str,
    outcome: Outcome,
) -> dict:
    """The cached answer with the hit's metrics, admitted and settled at no cost."""
    meter = Meter()
    admission = _admit(accounting, plan, body, key, request_id, outcome)
    try:
        model = model_named(plan, answer.get("model"))
        original = answer["metrics"]
        metrics = answer["metrics"] = hit_metrics(original, meter)
        _record(outcome, model, original, metrics)
        admission.settle(model, metrics, request_id)
    except BaseException as exc:
        admission.release(exc)
        raise
    return answer


def replay_hit(
    accounting: Accounting,
    answer: dict,
    plan: Plan,
    body: dict,
    key: ApiKey,
    request_id: str,
    outcome: Outcome,
) -> Replay:
    """The cached answer as a stream of chunks; settled when the relay finishes it."""
    meter = Meter()
    admission = _admit(accounting, plan, body, key, request_id, outcome)
    try:
        model = model_named(plan, answer.get("model"))
        original = answer["metrics"]
        upstream_model = original.get("upstream_model") or ""
        call = ChatCall(body, model, upstream_model, None, request_id, True)
        chunks = replay(answer)
    except BaseException as exc:
        admission.release(exc)
        raise

    def finish(usage: dict | None, error: FacadeError | None) -> dict:
        metrics = hit_metrics(original, meter)
        outcome.status = error.status if error else 200
        _record(outcome, model, original, metrics)
        admission.settle(model, metrics, request_id, status=outcome.status)
        return metrics

    provider = original.get("provider") or ""
    return Replay(chunks[0], ReplayStream(chunks[1:]), call, provider, meter, finish)


def store_streamed(
    cache: ResponseCache, lookup: Lookup, chunks: list[dict], model: str, metrics: dict
) -> None:
    """Store a completed stream as the chat.completion it adds up to (if it does)."""
    answer = assemble(chunks)
    if answer is not None:
        answer["model"] = model
        answer["usage"] = usage_of(metrics)
        answer["metrics"] = metrics
        cache.store(lookup, answer)

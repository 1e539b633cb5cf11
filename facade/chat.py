"""The chat pipeline, independent of how the answer is presented (envelope or plain OpenAI).

admit (limits, budget) -> pick model and targets -> call, falling back before the first
byte -> measure -> settle (true cost) and record usage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .accounting import Admission
from .config import ModelConfig, TargetConfig
from .errors import FacadeError, UnavailableError, UpstreamError
from .keys import ApiKey
from .metering import Meter, usage_tokens
from .providers import ChatCall, ChunkStream
from .schemas.chat import output_cap
from .tokens import estimate_messages

log = logging.getLogger("facade.chat")


@dataclass(slots=True)
class Outcome:
    """What the access log, the usage record and the metrics need to know of one request."""

    model: str | None = None
    provider: str | None = None
    upstream_model: str | None = None
    attempts: int = 0
    status: int = 200
    metrics: dict | None = None
    extra: dict = field(default_factory=dict)


@dataclass(slots=True)
class OpenedStream:
    """A stream whose first chunk has arrived, so no error can come before the 200."""

    first: dict
    rest: ChunkStream
    call: ChatCall
    provider: str
    meter: Meter
    attempts: int
    include_usage: bool
    finish: Callable[[dict | None, FacadeError | None], dict]


class ChatPipeline:
    def __init__(self, gateway) -> None:  # noqa: ANN001 - facade.gateway.Gateway (cycle)
        self.gw = gateway

    def _plan(self, body: dict, key: ApiKey) -> list[tuple[ModelConfig, TargetConfig]]:
        """Every (model, target) to try in order; 503 when all of them are cooling down."""
        router = self.gw.router
        plan: list[tuple[ModelConfig, TargetConfig]] = []
        cooling: UnavailableError | None = None
        for model in router.models_for(body.get("model"), key, body):
            try:
                plan.extend((model, target) for target in router.plan(model))
            except UnavailableError as err:
                cooling = cooling or err
        if not plan:
            raise cooling or UnavailableError("no target can answer this model")
        return plan

    def _fallback_wait(self, err: UpstreamError) -> None:
        wait = getattr(err, "retry_after_s", None)
        if wait:
            time.sleep(min(wait, self.gw.config.retry_after_cap_s))

    def complete(self, body: dict, key: ApiKey, request_id: str, outcome: Outcome) -> dict:
        plan = self._plan(body, key)
        admission = self.gw.accounting.admit(key, plan, body, request_id)
        try:
            data = self._complete(plan, body, request_id, outcome, admission)
        except BaseException:
            admission.release()
            raise
        return data

    def _complete(self, plan, body, request_id, outcome: Outcome, admission: Admission) -> dict:
        cap = output_cap(body)
        last: UpstreamError | None = None
        for attempts, (model, target) in enumerate(plan, 1):
            outcome.attempts = attempts
            call = ChatCall(body, model, target.model, cap, request_id, False)
            meter = Meter()
            provider = self.gw.providers[target.provider]
            try:
                data = provider.complete(call)
            except UpstreamError as err:
                self._failed(model, target, err, attempts, request_id)
                if not err.retryable:
                    raise
                self._fallback_wait(err)
                last = err
                continue
            meter.finish()
            self.gw.router.succeeded(model, target, meter.end - meter.start)
            tokens = usage_tokens(data.get("usage"))
            if tokens is None:
                tokens = (estimate_messages(body["messages"]), _estimate_output(data))
            metrics = meter.metrics(model, provider.name, call.upstream_model, *tokens, attempts)
            data["model"] = model.name
            data["metrics"] = metrics
            self._record(outcome, model, target, provider.name, metrics)
            admission.settle(model, metrics, request_id)
            return data
        raise last

    def open_stream(
        self, body: dict, key: ApiKey, request_id: str, outcome: Outcome
    ) -> OpenedStream:
        plan = self._plan(body, key)
        admission = self.gw.accounting.admit(key, plan, body, request_id)
        try:
            return self._open_stream(plan, body, request_id, outcome, admission)
        except BaseException:
            admission.release()
            raise

    def _open_stream(self, plan, body, request_id, outcome, admission) -> OpenedStream:
        cap = output_cap(body)
        last: UpstreamError | None = None
        for attempts, (model, target) in enumerate(plan, 1):
            outcome.attempts = attempts
            call = ChatCall(body, model, target.model, cap, request_id, True)
            meter = Meter()
            provider = self.gw.providers[target.provider]
            stream = None
            try:
                stream = provider.stream(call)
                first = next(iter(stream))
            except StopIteration:
                stream.close()
                err = UpstreamError(f"upstream {provider.name} sent an empty stream")
            except UpstreamError as exc:
                if stream is not None:
                    stream.close()
                err = exc
            else:
                return OpenedStream(
                    first=first,
                    rest=stream,
                    call=call,
                    provider=provider.name,
                    meter=meter,
                    attempts=attempts,
                    include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
                    finish=self._stream_finisher(
                        model, target, provider.name, call, meter, attempts, outcome, admission
                    ),
                )
            self._failed(model, target, err, attempts, request_id)
            if not err.retryable:
                raise err
            self._fallback_wait(err)
            last = err
        raise last

    def _stream_finisher(self, model, target, provider, call, meter, attempts, outcome, admission):
        def finish(usage: dict | None, error: FacadeError | None) -> dict:
            tokens = usage_tokens(usage)
            if tokens is None:  # cut off, or an upstream that ignores include_usage
                tokens = (estimate_messages(call.body["messages"]), meter.content_chunks)
            metrics = meter.metrics(model, provider, call.upstream_model, *tokens, attempts)
            if error is None:
                self.gw.router.succeeded(model, target, metrics["latency_s"])
            outcome.status = error.status if error else 200
            self._record(outcome, model, target, provider, metrics)
            admission.settle(model, metrics, call.request_id)
            return metrics

        return finish

    def _failed(
        self, model: ModelConfig, target: TargetConfig, err: UpstreamError, attempt: int, rid: str
    ) -> None:
        self.gw.router.failed(target, err)
        log.warning(
            "attempt %d for %s via %s/%s failed: %s (%s)",
            attempt,
            model.name,
            target.provider,
            target.model,
            err.type,
            err.message,
            extra={"request_id": rid},
        )

    @staticmethod
    def _record(outcome: Outcome, model, target, provider: str, metrics: dict) -> None:
        outcome.model = model.name
        outcome.provider = provider
        outcome.upstream_model = target.model
        outcome.metrics = metrics


def _estimate_output(data: dict) -> int:
    total = 0
    for choice in data.get("choices") or ():
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, str):
            total += (len(content) + 3) // 4
    return total


def iterate_rest(opened: OpenedStream) -> Iterator[dict]:
    yield opened.first
    yield from opened.rest

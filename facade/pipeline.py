"""The chat pipeline, independent of how the answer is presented (envelope or plain OpenAI).

admit (limits, budget) -> pick model and targets -> call, falling back before the first
byte -> measure -> settle (true cost) and record usage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from .accounting import Accounting, Admission
from .cache import CHAT, EMBEDDINGS, Lookup, ResponseCache
from .cache.hits import answer_hit, replay_hit, store_streamed
from .cache.replay import RecordingStream
from .config import ModelConfig, TargetConfig
from .errors import FacadeError, UnavailableError, UpstreamError
from .estimates import (
    estimate_inputs,
    estimate_messages,
    estimate_output,
    estimate_request,
    output_cap,
)
from .first_chunk import PendingFirst, first_of, open_bounded
from .keys import ApiKey
from .metering import NO_DETAILS, Meter, usage_details, usage_tokens
from .outcome import Outcome
from .providers import ChatCall, ChunkStream, EmbeddingCall, Provider
from .router import Router
from .schemas.chat_request import extra_params
from .telemetry import observe, tracing

log = logging.getLogger("facade.chat")


@dataclass(slots=True)
class OpenedStream:
    """A stream whose first chunk has arrived (so no error came before the 200), or is
    still on its way after the keep-alive interval (`PendingFirst`)."""

    first: dict | PendingFirst
    rest: ChunkStream | None  # None while the first chunk is pending
    call: ChatCall
    provider: str
    meter: Meter
    attempts: int
    include_usage: bool
    finish: Callable[[dict | None, FacadeError | None], dict]


Plan = list[tuple[ModelConfig, TargetConfig]]
T = TypeVar("T")
# One upstream attempt: (admission, model, target, attempt number, trace headers) -> result.
Attempt = Callable[[Admission, ModelConfig, TargetConfig, int, "dict | None"], T]


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """The few settings the pipeline reads, so it never needs the whole config."""

    retry_after_cap_s: float  # longest wait on an upstream's Retry-After before falling back
    sse_keepalive_s: float  # how long a stream's first chunk may take before keep-alives start
    log_prompts: bool  # whether an upstream's error message (which may quote the prompt) is logged


class ChatPipeline:
    """One request from admission to settlement; the parts it needs are given, not looked up."""

    def __init__(
        self,
        router: Router,
        accounting: Accounting,
        providers: Mapping[str, Provider],
        options: PipelineOptions,
        cache: ResponseCache | None = None,
    ) -> None:
        self.router = router
        self.accounting = accounting
        self.providers = providers
        self.options = options
        self.cache = cache

    def plan(self, body: dict, key: ApiKey) -> Plan:
        """Every (model, target) to try in order; 503 when all of them are cooling down."""
        router = self.router
        extras = extra_params(body)
        if extras:
            router.check_extras(extras)
        plan: Plan = []
        cooling: UnavailableError | None = None
        for model in router.models_for(body.get("model"), key, body):
            try:
                plan.extend((model, target) for target in router.plan(model))
            except UnavailableError as err:
                cooling = cooling or err
        if not plan:
            raise cooling or UnavailableError("no target can answer this model")
        if extras:
            plan = router.accepting_extras(plan, extras)
        return plan

    def _fallback_wait(self, err: UpstreamError) -> None:
        wait = getattr(err, "retry_after_s", None)
        if wait:
            time.sleep(min(wait, self.options.retry_after_cap_s))

    def _with_fallback(
        self,
        plan: Plan,
        request_id: str,
        outcome: Outcome,
        attempt: Callable[[ModelConfig, TargetConfig, int, dict | None], T],
    ) -> T:
        """Try each (model, target) in order until one answers; retry only retryable errors.

        `attempt(model, target, n, trace)` returns the result or raises UpstreamError; `trace`
        is the W3C trace context headers for its upstream call (or None). Nothing has
        reached the client while this runs, so every failure here may still fall back.
        """
        last: UpstreamError | None = None
        for n, (model, target) in enumerate(plan, 1):
            outcome.attempts = n
            outcome.model, outcome.provider = model.name, target.provider
            outcome.upstream_model = target.model
            span, trace = None, outcome.trace_headers  # off: the caller's own context
            if tracing.ENABLED:
                span, trace = tracing.start_attempt(outcome, model, target, n)
            try:
                result = attempt(model, target, n, trace)
            except UpstreamError as err:
                if span is not None:
                    tracing.end_attempt(span, err)
                self._failed(model, target, err, n, request_id)
                if not err.retryable:
                    raise
                last = err
                if n < len(plan):
                    self._fallback_wait(err)
                continue
            except BaseException as err:
                if span is not None:
                    tracing.end_attempt(span, err)
                raise
            if span is not None:
                tracing.answered(outcome, span, stream=isinstance(result, OpenedStream))
            return result
        raise last

    def _call(
        self,
        key: ApiKey,
        plan: Plan,
        body: dict,
        request_id: str,
        outcome: Outcome,
        attempt: Attempt[T],
        native: dict | None = None,
    ) -> T:
        """Admit the request (limits, budget), then try the plan with fallback.

        `attempt(admission, model, target, n, trace)` makes one upstream attempt; the
        admission is released if no upstream answer comes of any of them.
        """
        # The usage row's key is the server's own id; the caller's X-Request-ID rides beside
        # it (two tenants may send the same one).
        outcome.admission_tried = True
        admission = self.accounting.admit(
            key,
            plan,
            body,
            outcome.server_request_id or request_id,
            session_id=outcome.session_id,
            native=native,
            client_request_id=outcome.client_request_id,
        )
        try:
            return self._with_fallback(plan, request_id, outcome, partial(attempt, admission))
        except BaseException as exc:
            admission.release(exc)
            raise

    def complete(
        self,
        body: dict,
        key: ApiKey,
        request_id: str,
        outcome: Outcome,
        native: dict | None = None,
    ) -> dict:
        """One whole answer. `native` is the client's own vendor body (see ChatCall.native)."""
        plan = self.plan(body, key)
        lookup = self.cache.lookup(CHAT, body, key, plan, outcome, native) if self.cache else None
        if lookup is not None and lookup.answer is not None:
            return answer_hit(self.accounting, lookup.answer, plan, body, key, request_id, outcome)
        cap = output_cap(body)

        def attempt(
            admission: Admission,
            model: ModelConfig,
            target: TargetConfig,
            n: int,
            trace: dict | None,
        ) -> dict:
            meter = Meter()
            provider = self.providers[target.provider]
            limit = model.max_output_tokens if cap is None else cap
            data = provider.complete(
                ChatCall(body, model, target.model, limit, request_id, False, trace, native)
            )
            usage = data.get("usage")
            tokens = usage_tokens(usage)
            if tokens is None:
                tokens = (estimate_messages(body["messages"]), estimate_output(data))
                details = NO_DETAILS
            else:
                details = usage_details(usage, *tokens)
            return self._answered(
                data, tokens, details, model, target, n, meter, outcome, admission
            )

        data = self._call(key, plan, body, request_id, outcome, attempt, native)
        if lookup is not None and data.get("choices"):
            self.cache.store(lookup, data)
        return data

    def open_stream(
        self,
        body: dict,
        key: ApiKey,
        request_id: str,
        outcome: Outcome,
        native: dict | None = None,
    ) -> OpenedStream:
        plan = self.plan(body, key)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        lookup = self.cache.lookup(CHAT, body, key, plan, outcome, native) if self.cache else None
        if lookup is not None and lookup.answer is not None:
            hit = replay_hit(self.accounting, lookup.answer, plan, body, key, request_id, outcome)
            return OpenedStream(
                hit.first, hit.rest, hit.call, hit.provider, hit.meter, 0, include_usage, hit.finish
            )
        cap = output_cap(body)

        def attempt(
            admission: Admission,
            model: ModelConfig,
            target: TargetConfig,
            n: int,
            trace: dict | None,
        ) -> OpenedStream:
            meter = Meter()
            provider = self.providers[target.provider]
            limit = model.max_output_tokens if cap is None else cap
            call = ChatCall(body, model, target.model, limit, request_id, True, trace, native)
            sink: list[dict] | None = None if lookup is None else []

            def open_first() -> tuple[ChunkStream, dict]:
                stream = provider.stream(call)
                first = first_of(stream, provider.name)
                if sink is not None:  # kept to store the answer once it is complete
                    sink.append(first)
                    stream = RecordingStream(stream, sink)
                return stream, first

            opened = open_bounded(open_first, self.options.sse_keepalive_s)
            stream, first = (None, opened) if isinstance(opened, PendingFirst) else opened
            finish = self._stream_finisher(
                model, target, provider.name, call, meter, n, outcome, admission, lookup, sink
            )
            return OpenedStream(first, stream, call, provider.name, meter, n, include_usage, finish)

        return self._call(key, plan, body, request_id, outcome, attempt, native)

    def count_tokens(self, body: dict, key: ApiKey, request_id: str, native: dict) -> int:
        """The input tokens of a request, as its first target counts them (an Anthropic-kind
        upstream has a free endpoint for it), else Facade's estimate. Nothing is admitted or
        settled: counting costs no budget."""
        model, target = self.plan(body, key)[0]
        call = ChatCall(body, model, target.model, None, request_id, False, None, native)
        counted = self.providers[target.provider].count_tokens(call)
        return counted if counted is not None else estimate_request(body)

    def embed(self, body: dict, key: ApiKey, request_id: str, outcome: Outcome) -> dict:
        model = self.router.embedding_model(body["model"], key)
        plan = [(model, target) for target in self.router.plan(model)]
        lookup = self.cache.lookup(EMBEDDINGS, body, key, plan, outcome) if self.cache else None
        if lookup is not None and lookup.answer is not None:
            return answer_hit(self.accounting, lookup.answer, plan, body, key, request_id, outcome)

        def attempt(
            admission: Admission,
            model: ModelConfig,
            target: TargetConfig,
            n: int,
            trace: dict | None,
        ) -> dict:
            meter = Meter()
            provider = self.providers[target.provider]
            call = EmbeddingCall(body, model, target.model, request_id, trace)
            data = provider.embed(call)
            tokens = (data.get("usage") or {}).get("prompt_tokens")
            if not isinstance(tokens, int):
                tokens = estimate_inputs(body["input"])
            return self._answered(
                data, (tokens, 0), NO_DETAILS, model, target, n, meter, outcome, admission
            )

        data = self._call(key, plan, body, request_id, outcome, attempt)
        if lookup is not None:
            self.cache.store(lookup, data)
        return data

    def _answered(
        self,
        data: dict,
        tokens: tuple[int, int],
        details: tuple[int, int, int],
        model: ModelConfig,
        target: TargetConfig,
        n: int,
        meter: Meter,
        outcome: Outcome,
        admission: Admission,
    ) -> dict:
        """Measure a whole (non-streamed) answer, record it, settle its true cost."""
        meter.finish()
        self.router.succeeded(model, target, meter.end - meter.start)
        metrics = meter.metrics(model, target.provider, target.model, *tokens, n, details)
        data["model"] = model.name
        data["metrics"] = metrics
        self._record(outcome, model, target, target.provider, metrics)
        admission.settle(model, metrics, outcome.request_id)
        return data

    def _stream_finisher(
        self,
        model: ModelConfig,
        target: TargetConfig,
        provider: str,
        call: ChatCall,
        meter: Meter,
        attempts: int,
        outcome: Outcome,
        admission: Admission,
        lookup: Lookup | None = None,
        sink: list[dict] | None = None,
    ) -> Callable[[dict | None, FacadeError | None], dict]:
        def finish(usage: dict | None, error: FacadeError | None) -> dict:
            tokens = usage_tokens(usage)
            if tokens is None:  # cut off, or an upstream that ignores include_usage
                tokens = (estimate_messages(call.body["messages"]), meter.content_chunks)
                details = NO_DETAILS
            else:
                details = usage_details(usage, *tokens)
            metrics = meter.metrics(
                model, provider, call.upstream_model, *tokens, attempts, details
            )
            if error is None:
                self.router.succeeded(model, target, metrics["latency_s"])
            outcome.status = error.status if error else 200
            self._record(outcome, model, target, provider, metrics)
            admission.settle(model, metrics, call.request_id, status=outcome.status)
            if error is None and sink:
                store_streamed(self.cache, lookup, sink, model.name, metrics)
            return metrics

        return finish

    def _failed(
        self, model: ModelConfig, target: TargetConfig, err: UpstreamError, attempt: int, rid: str
    ) -> None:
        self.router.failed(target, err)
        observe.upstream_failed(target.provider, err.type)
        # An upstream's own message may quote the prompt: logged only with prompt logging on.
        detail = err.message if self.options.log_prompts else f"status {err.status}"
        log.warning(
            "attempt %d for %s via %s/%s failed: %s (%s)",
            attempt,
            model.name,
            target.provider,
            target.model,
            err.type,
            detail,
            extra={"request_id": rid},
        )

    @staticmethod
    def _record(
        outcome: Outcome, model: ModelConfig, target: TargetConfig, provider: str, metrics: dict
    ) -> None:
        outcome.model = model.name
        outcome.provider = provider
        outcome.upstream_model = target.model
        outcome.metrics = metrics

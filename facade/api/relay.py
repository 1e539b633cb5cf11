"""Relay an opened upstream stream to the client, one presented event per chunk.

The 200 is already committed when this runs, so every failure becomes one error event
followed by [DONE]. The upstream is closed when the relay ends, when the client hangs up
(the server closes the body) or when the hang-up watch fires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from ..drain import Drain
from ..errors import ClientClosedError, FacadeError, InternalError, UpstreamError
from ..first_chunk import PendingFirst
from ..metering import usage_of
from ..outcome import Outcome
from ..pipeline import OpenedStream
from ..telemetry import observe
from .hangup import HangupWatch

log = logging.getLogger("facade.stream")

KEEPALIVE = b": keep-alive\n\n"  # an SSE comment: every client ignores it
SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Presenter(Protocol):
    """How chunks and errors are written on the wire (envelope, plain OpenAI, Anthropic's
    events, LLMstudio's NDJSON). Optional: `keepalive`, the bytes sent while the first chunk
    is awaited (an SSE comment by default), and `content_type` (text/event-stream)."""

    done: bytes

    def chunk(self, chunk: dict) -> bytes: ...

    def error(self, err: FacadeError, request_id: str) -> bytes: ...


def _has_content(chunk: dict) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if delta and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")):
            return True
    return False


class Relay:
    """The response body of a stream: iterate for SSE bytes; `close()` always ends it properly.

    A WSGI server closes the body without iterating it when the client is gone before the
    first write; a generator closed unstarted runs none of its code, so the settling (usage,
    budget) and the access line are guaranteed here instead.
    """

    def __init__(
        self,
        opened: OpenedStream,
        present: Presenter,
        request_id: str,
        watch: HangupWatch,
        outcome: Outcome,
        keepalive_s: float = 10.0,
        drain: Drain | None = None,
    ):
        self._opened = opened
        self._watch = watch
        self._outcome = outcome
        self._usage_chunk: dict | None = None
        self._ended = False
        self._keepalive_s = keepalive_s
        self._drain = drain
        # The completion's text, kept only when the operator logs prompts.
        self._text: list[str] | None = [] if outcome.prompt is not None else None
        self._greenlet = _current_greenlet()
        if drain is not None:
            drain.track(self)
        self._gen = self._relay(present, request_id)

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def close(self) -> None:
        self._gen.close()
        self._end(ClientClosedError("client closed"))  # no-op when the relay already ended

    def interrupt(self, error: FacadeError) -> None:
        """End the relay from outside (the drain deadline): it sends `error`, then [DONE]."""
        if self._greenlet is not None and not self._ended:
            import gevent

            gevent.kill(self._greenlet, error)

    def _end(self, error: FacadeError | None) -> dict | None:
        """Settle and log once: on completion, on error, or when the client went away."""
        if self._ended:
            return None
        self._ended = True
        if self._drain is not None:
            self._drain.untrack(self)
        self._watch.stop()
        if isinstance(self._opened.first, PendingFirst):
            self._opened.first.cancel()
        if self._opened.rest is not None:
            self._opened.rest.close()
        usage = self._usage_chunk.get("usage") if self._usage_chunk else None
        metrics = self._opened.finish(usage, error)
        if self._text is not None:
            self._outcome.completion = ["".join(self._text)]
        observe.finish(self._outcome, error.status if error else 200)
        return metrics

    def _keep_alive(self, pending: PendingFirst, keepalive: bytes) -> Iterator[bytes]:
        """Keep-alives (SSE comments) until the first chunk arrives; returns (stream, first)."""
        try:
            while not pending.wait(self._keepalive_s):
                yield keepalive
        except BaseException:
            pending.cancel()
            raise
        return pending.get()

    def _relay(self, present: Presenter, request_id: str) -> Iterator[bytes]:
        opened = self._opened
        model = opened.call.model.name
        meter = opened.meter
        error: FacadeError | None = None
        try:
            if isinstance(opened.first, PendingFirst):
                keepalive = getattr(present, "keepalive", KEEPALIVE)  # NDJSON: a blank line
                opened.rest, opened.first = yield from self._keep_alive(opened.first, keepalive)
            chunks = iter(opened.rest)
            chunk = opened.first
            while chunk is not None:
                if chunk.get("usage") is not None:
                    self._usage_chunk = chunk
                    if chunk.get("choices"):
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    else:
                        chunk = None
                if chunk is not None:
                    if _has_content(chunk):
                        meter.content()
                        if self._text is not None:
                            self._text.append(_content_of(chunk))
                    chunk["model"] = model
                    yield present.chunk(chunk)
                chunk = next(chunks, None)
        except FacadeError as err:
            error = ClientClosedError("client closed") if self._watch.gone else err
        except Exception:  # a bug in translation: the stream must still end properly
            log.exception("stream relay failed", extra={"request_id": request_id})
            error = InternalError("the gateway failed while relaying the stream")
        if error is not None:
            self._outcome.error_type = error.type
        metrics = self._end(error)
        if isinstance(error, ClientClosedError):
            return
        if error is not None:
            if isinstance(error, UpstreamError):
                log.warning("stream broke off: %s", error.type, extra={"request_id": request_id})
            yield present.error(error, request_id)
        elif opened.include_usage:
            final = dict(self._usage_chunk) if self._usage_chunk else _usage_chunk(opened, metrics)
            final.update(model=model, choices=[], metrics=metrics)
            final.setdefault("usage", usage_of(metrics))
            yield present.chunk(final)
        yield present.done


def _content_of(chunk: dict) -> str:
    choices = chunk.get("choices") or ()
    return "".join((c.get("delta") or {}).get("content") or "" for c in choices)


def _current_greenlet():
    """The request's greenlet under gunicorn's gevent worker; None elsewhere."""
    from gevent import getcurrent, monkey

    return getcurrent() if monkey.is_module_patched("socket") else None


def _usage_chunk(opened: OpenedStream, metrics: dict) -> dict:
    first = opened.first
    return {
        "id": first.get("id"),
        "object": "chat.completion.chunk",
        "created": first.get("created"),
        "usage": usage_of(metrics),
    }

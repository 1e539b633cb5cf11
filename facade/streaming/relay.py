"""Relay an opened upstream stream to the client, one presented event per chunk.

The 200 is already committed when this runs, so every failure becomes one error event
followed by [DONE]. The upstream is closed in `finally`, which also runs when the client
hangs up (the server closes this generator) or the hang-up watch fires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from ..chat import OpenedStream
from ..errors import ClientClosedError, FacadeError, InternalError, UpstreamError
from .hangup import HangupWatch

log = logging.getLogger("facade.stream")

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Presenter(Protocol):
    """How chunks and errors are written on the wire (envelope or plain OpenAI)."""

    done: bytes

    def chunk(self, chunk: dict) -> bytes: ...

    def error(self, err: FacadeError, request_id: str) -> bytes: ...


def _has_content(chunk: dict) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        if delta and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")):
            return True
    return False


def relay(
    opened: OpenedStream, present: Presenter, request_id: str, watch: HangupWatch
) -> Iterator[bytes]:
    model = opened.call.model.name
    meter = opened.meter
    usage_chunk: dict | None = None
    error: FacadeError | None = None
    finished = False
    try:
        try:
            chunks = iter(opened.rest)
            chunk = opened.first
            while True:
                usage = chunk.get("usage")
                if usage is not None:
                    usage_chunk = chunk
                    if chunk.get("choices"):
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                    else:
                        chunk = None
                if chunk is not None:
                    if _has_content(chunk):
                        meter.content()
                    chunk["model"] = model
                    yield present.chunk(chunk)
                chunk = next(chunks, None)
                if chunk is None:
                    break
        except FacadeError as err:
            error = ClientClosedError("client closed") if watch.gone else err
        except Exception:  # a bug in translation: the stream must still end properly
            log.exception("stream relay failed", extra={"request_id": request_id})
            error = InternalError("the gateway failed while relaying the stream")
        watch.stop()
        usage = usage_chunk.get("usage") if usage_chunk else None
        finished = True
        metrics = opened.finish(usage, error)
        if watch.gone:
            return
        if error is not None:
            if isinstance(error, UpstreamError):
                log.warning("stream broke off: %s", error.message, extra={"request_id": request_id})
            yield present.error(error, request_id)
        elif opened.include_usage:
            final = dict(usage_chunk) if usage_chunk else _usage_chunk(opened, metrics)
            final.update(model=model, choices=[], metrics=metrics)
            final.setdefault("usage", _usage_of(metrics))
            yield present.chunk(final)
        yield present.done
    finally:
        watch.stop()
        opened.rest.close()
        if not finished:  # the client went away mid-relay
            opened.finish(
                usage_chunk.get("usage") if usage_chunk else None,
                ClientClosedError("client closed"),
            )


def _usage_of(metrics: dict) -> dict:
    return {
        "prompt_tokens": metrics["input_tokens"],
        "completion_tokens": metrics["output_tokens"],
        "total_tokens": metrics["total_tokens"],
    }


def _usage_chunk(opened: OpenedStream, metrics: dict) -> dict:
    first = opened.first
    return {
        "id": first.get("id"),
        "object": "chat.completion.chunk",
        "created": first.get("created"),
        "usage": _usage_of(metrics),
    }
